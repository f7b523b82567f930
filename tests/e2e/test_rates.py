"""
Per-login and per-recipient rate limits (submit/rates.c), with a short
limits.rate_window so that the reset can be seen: every limit answers
with its code, the setting's name and when the window ends, and takes
mail again in the next window.

Windows are aligned to the epoch; each test starts right after a window
boundary so that its messages fall in one window.
"""
import time

from helpers import expect, make_message, plain, submission

ALICE = "alice@example.test"
WINDOW = 10         # seconds: limits.rate_window in these tests


def window_start():
    """Sleep until just after the next window boundary."""
    left = WINDOW - time.time() % WINDOW
    time.sleep(left + 0.2)


def send(c, sender, rcpts, subject):
    """One message; returns the reply to MAIL, or to the first refused
    RCPT, or to the end of data."""
    r = c.cmd(f"MAIL FROM:<{sender}>")
    if r.code != 250:
        return r
    for rcpt in rcpts:
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        if r.code != 250:
            c.cmd("RSET")
            return r
    return c.data(make_message(sender, rcpts, subject=subject))


def limits(**kw):
    kw.setdefault("rate_window", f'"{WINDOW}s"')
    return kw


def test_user_messages_per_hour(postern_factory, ssl_ctx):
    d = postern_factory(limits=limits(user_messages_per_hour=3))
    window_start()
    c = submission(d, ssl_ctx, login=ALICE)
    for i in range(3):
        expect(send(c, ALICE, ["bob@example.com"], f"m{i}"), 250, "2.0.0",
               conn=c)
    r = send(c, ALICE, ["bob@example.com"], "m3")
    expect(r, 450, "4.7.1", f"{ALICE} has sent 3 messages this hour",
           "limits.user_messages_per_hour = 3", "try again after", conn=c)
    c.close()
    assert d.log().count(f"rate limit: {ALICE} reached "
                         "limits.user_messages_per_hour = 3") == 1
    # the next window takes mail again
    window_start()
    c = submission(d, ssl_ctx, login=ALICE)
    expect(send(c, ALICE, ["bob@example.com"], "later"), 250, "2.0.0",
           conn=c)
    c.close()


def test_user_recipients_per_hour(postern_factory, ssl_ctx):
    d = postern_factory(limits=limits(user_recipients_per_hour=4))
    window_start()
    c = submission(d, ssl_ctx, login=ALICE)
    expect(send(c, ALICE, ["a@example.com", "b@example.com",
                           "c@example.com"], "three"), 250, conn=c)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, conn=c)
    expect(c.cmd("RCPT TO:<d@example.com>"), 250, conn=c)
    expect(c.cmd("RCPT TO:<e@example.com>"), 452, "4.7.1",
           "has sent 4 recipients this hour",
           "limits.user_recipients_per_hour = 4", conn=c)
    c.close()


def test_recipient_flood(postern_factory, ssl_ctx):
    """An application (the trusted listener, no AUTH) asked to send 100
    'confirmation' messages to one victim gets only the configured number
    through; the rest are refused with 4xx at RCPT, logged once."""
    d = postern_factory(limits=limits(recipient_messages_per_hour=5))
    window_start()
    codes = []
    for i in range(100):          # one connection per message, as apps do
        c = plain(d)
        r = send(c, "app@example.test", ["Victim@Example.net"], f"c{i}")
        c.close()
        codes.append(r.code)
        if r.code != 250:
            assert r.code == 450 and r.enh == "4.7.1", r
            assert "<Victim@example.net>: Recipient address rejected" in \
                r.text and "recipient_messages_per_hour = 5" in r.text
    assert codes.count(250) == 5 and codes[:5] == [250] * 5
    log = d.log()
    # case does not dodge the limit, and the log has one line, not 95
    assert log.count("flood: recipient <Victim@example.net>") == 1
    # other recipients are not affected
    c = plain(d)
    expect(send(c, "app@example.test", ["other@example.net"], "x"), 250,
           conn=c)
    c.close()


def test_limit_per_login_from_senders(postern_factory, ssl_ctx):
    """A senders entry sets its login's own limit."""
    d = postern_factory(senders=(), limits=limits(user_messages_per_hour=50),
                        extra='senders = ( { login = "admin@example.test"; '
                              'addresses = [ "*@example.test" ]; '
                              'messages_per_hour = 1; } );')
    window_start()
    c = submission(d, ssl_ctx, login="admin@example.test")
    expect(send(c, "admin@example.test", ["bob@example.com"], "one"), 250,
           conn=c)
    expect(send(c, "admin@example.test", ["bob@example.com"], "two"), 450,
           "4.7.1", "senders.messages_per_hour = 1", conn=c)
    c.close()
    # alice is held to the default
    c = submission(d, ssl_ctx, login=ALICE)
    expect(send(c, ALICE, ["bob@example.com"], "alice"), 250, conn=c)
    c.close()
