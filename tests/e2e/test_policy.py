"""
Promises 1 and 2 (ARCHITECTURE.md): no open relay, and senders are who
they say they are — at MAIL FROM (553 5.7.1) and in the From: header after
DATA (550 5.7.1), for authenticated logins and for the trusted listener.
"""
import pytest

from helpers import (assert_nothing_queued, assert_queued, expect,
                     make_message, plain, queued_id, smtps)

ALICE = "alice@example.test"
ADMIN = "admin@example.test"


def mail_rcpt(c, sender, rcpt="bob@example.com"):
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", conn=c)
    expect(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", conn=c)


@pytest.mark.parametrize("sender", ["bob@example.test", "alice@example.org",
                                    "alice@other.test", "alicex@example.test",
                                    "postmaster@example.test"])
def test_sender_not_owned(postern, ssl_ctx, sender):
    c = smtps(postern, ssl_ctx, login=ALICE)
    r = expect(c.cmd(f"MAIL FROM:<{sender}>"), 553, "5.7.1", "not owned",
               conn=c)
    assert sender in r.text and ALICE in r.text, r
    # the refused MAIL opened no transaction
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_null_sender(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ADMIN)
    expect(c.cmd("MAIL FROM:<>"), 553, "5.7.1", "Null sender", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


@pytest.mark.parametrize("sender", ["ALICE@Example.Test", "alice+tag@example.test",
                                    "Alice+Other.Tag@EXAMPLE.TEST"])
def test_own_address_variants(postern, ssl_ctx, sender):
    c = smtps(postern, ssl_ctx, login=ALICE)
    msg = make_message(sender, ["bob@example.com"], subject="variant",
                       from_header=f"Alice <{sender}>")
    mail_rcpt(c, sender)
    qid = queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text)
    c.close()
    env = postern.envelope(qid)
    assert env.sender.lower() == sender.lower(), env
    assert env.login == ALICE


def test_admin_grant_covers_the_domain_only(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ADMIN)
    msg = make_message("noreply@example.test", ["bob@example.com"],
                       subject="admin")
    mail_rcpt(c, "noreply@example.test")
    qid = queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text)
    expect(c.cmd("MAIL FROM:<noreply@other.test>"), 553, "5.7.1", conn=c)
    expect(c.cmd("MAIL FROM:<noreply@sub.example.test>"), 553, "5.7.1", conn=c)
    c.close()
    assert postern.queue_ids() == [qid]
    assert_queued(postern, qid, "noreply@example.test", ["bob@example.com"],
                  ADMIN, msg)


def test_from_header_not_owned(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    mail_rcpt(c, ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="forged",
                       from_header="The Boss <boss@example.test>")
    r = expect(c.data(msg), 550, "5.7.1", "not owned", conn=c)
    assert "boss@example.test" in r.text, r
    # the session goes on; the transaction is over
    expect(c.cmd("DATA"), 503, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


@pytest.mark.parametrize("headers,what", [
    ("Subject: no from\r\nTo: bob@example.com\r\n", "no From:"),
    ("From: alice@example.test\r\nFrom: alice@example.test\r\nSubject: 2\r\n",
     "two From: fields"),
    ("From: alice@example.test, bob@example.test\r\nSubject: 2\r\n",
     "two mailboxes"),
    ("From: undisclosed:;\r\nSubject: group\r\n", "empty group"),
])
def test_from_header_count(postern, ssl_ctx, headers, what):
    c = smtps(postern, ssl_ctx, login=ALICE)
    mail_rcpt(c, ALICE)
    msg = (headers + "\r\nbody\r\n").encode()
    expect(c.data(msg), 550, "5.6.0", "exactly one From", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_from_header_malformed(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    mail_rcpt(c, ALICE)
    msg = b"From: <alice@example.test\r\nSubject: x\r\n\r\nbody\r\n"
    r = c.data(msg)
    assert r.code == 550 and r.enh == "5.6.0", r
    assert "From" in r.text, r
    assert_nothing_queued(postern, conns=[c])


def test_from_header_forms_that_are_owned(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    ids = []
    for i, fh in enumerate([
            '"Smith, Alice" <alice@example.test>',
            "alice@example.test (Alice in comments)",
            "=?utf-8?q?Al=C3=AFce?= <ALICE@EXAMPLE.TEST>",
            "Alice\r\n <alice+news@example.test>"]):
        msg = make_message(ALICE, ["bob@example.com"], subject=f"form {i}",
                           from_header=fh)
        mail_rcpt(c, ALICE)
        ids.append(queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text))
    c.close()
    assert sorted(ids) == postern.queue_ids()


def test_other_user_cannot_use_alice(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login="bob@example.test")
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 553, "5.7.1", conn=c)
    mail_rcpt(c, "bob@example.test")
    msg = make_message("bob@example.test", ["x@example.com"],
                       from_header="alice@example.test")
    expect(c.data(msg), 550, "5.7.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


# -- the trusted listener -----------------------------------------------------

def test_trusted_listener_allowed_sender(postern):
    c = plain(postern)
    msg = make_message("app@example.test", ["bob@example.com"],
                       subject="from the app", message_id=False, date=False)
    mail_rcpt(c, "app@example.test")
    qid = queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text)
    expect(c.cmd("QUIT"), 221, "2.0.0", conn=c)
    env = assert_queued(postern, qid, "app@example.test", ["bob@example.com"],
                        None, msg, added_message_id=True, added_date=True)
    assert env.login is None, env


def test_trusted_listener_other_sender(postern):
    c = plain(postern)
    r = expect(c.cmd("MAIL FROM:<other@example.test>"), 553, "5.7.1",
               "not allowed on this listener", conn=c)
    assert "other@example.test" in r.text, r
    expect(c.cmd("MAIL FROM:<>"), 553, "5.7.1", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_trusted_listener_from_header_not_allowed(postern):
    c = plain(postern)
    mail_rcpt(c, "app@example.test")
    msg = make_message("app@example.test", ["bob@example.com"],
                       from_header="ceo@example.test")
    expect(c.data(msg), 550, "5.7.1", "not allowed on this listener", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_trusted_listener_advertises_no_auth(postern):
    from helpers import ehlo_keywords
    c = plain(postern, ehlo=False)
    kw = ehlo_keywords(c.ehlo())
    assert "AUTH" not in kw and "STARTTLS" not in kw, kw
    assert_nothing_queued(postern, conns=[c])
