"""
limits.bounces_per_hour (relay/budget.c budget_bounce, relay/sched.c
sched_finish): bounces to one envelope sender per "hour" (a short
limits.rate_window here). Delivery as in test_relay_mx.py: dnsmasq and
aiosmtpd sinks on loopback; the MX refuses 'reject*' recipients with 550,
and the sender's domain example.test is routed to a sink of its own,
where the bounces arrive.

- over the limit, a bounce is not written but held: its message stays
  queued (failed recipient, no dsn) until the sender's window ends; the
  first hold in a window is logged once as a warning, each held message
  at info with the window's end;
- after each window the held bounces go out, limit by limit, each once
  and each for its own message, and the queue empties;
- another sender's bounce is not held by the first sender's limit;
- a held message survives a restart (SIGTERM): the envelope says which
  recipient failed and records no bounce, so the restarted daemon writes
  it (a restart forgets the counts).

Windows are aligned to the epoch; each test starts right after a window
boundary so that its first bounces fall in one window.
"""
import email
import time

from helpers import make_message, submission, wait_until
from test_relay_mx import ALICE, RECORDS, mxnet  # noqa: F401

WINDOW = 10         # seconds: limits.rate_window in these tests
CAROL = "carol@example.test"    # sent by the admin login (*@example.test)
ROUTE_HOME = ('routes = ( { domain = "example.test"; '
              'next_hop = "[127.0.0.4]"; } );')


def window_start():
    """Sleep until just after the next window boundary; returns the
    boundary (the window's start)."""
    left = WINDOW - time.time() % WINDOW
    time.sleep(left + 0.2)
    now = time.time()
    return int(now - now % WINDOW)


def hhmmss(t):
    return time.strftime("%H:%M:%S UTC", time.gmtime(t))


def daemon(make, per_hour):
    d = make(ROUTE_HOME)
    d.limits["rate_window"] = f'"{WINDOW}s"'
    d.limits["bounces_per_hour"] = per_hour
    d.write_config()
    d.start()
    return d


def send_all(d, ctx, login, sender, subjects):
    """One session: a message to a refused recipient per subject;
    returns {queue id: subject}."""
    c = submission(d, ctx, login=login)
    ids = {}
    for subj in subjects:
        rcpt = f"reject-{subj}@mx-a.test"
        qid = c.send_message(sender, [rcpt],
                             make_message(sender, [rcpt], subject=subj))
        ids[qid] = subj
    c.close()
    return ids


def dsn_of(got):
    """(recipients, X-Postern-Queue-ID, original Subject) of a bounce the
    home sink got"""
    mail_from, rcpts, data = got
    assert mail_from == "<>"
    msg = email.message_from_bytes(data)
    assert msg.get_content_type() == "multipart/report"
    parts = msg.get_payload()
    blocks = parts[1].get_payload()
    headers = email.message_from_string(parts[2].get_payload())
    return rcpts, blocks[0]["X-Postern-Queue-ID"], headers["Subject"]


def bounces(home, rcpt):
    """[(queue id, subject)] of the bounces to rcpt so far"""
    out = []
    for got in list(home.got):
        rcpts, qid, subj = dsn_of(got)
        if rcpts == [rcpt]:
            out.append((qid, subj))
    return out


def held_lines(log, sender):
    return [l for l in log.splitlines()
            if f": bounce to <{sender}> held until " in l and
            "(limits.bounces_per_hour)" in l]


def held_id(line):
    return line.split("id=", 1)[1].split(":", 1)[0]


def test_bounces_held_per_sender_then_sent(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    start_sink("127.0.0.2")
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = daemon(make, 2)
    w0 = window_start()
    w1, w2 = w0 + WINDOW, w0 + 2 * WINDOW
    ids = send_all(d, ssl_ctx, ALICE, ALICE,
                   [f"bl{i}" for i in range(5)])
    carol_ids = send_all(d, ssl_ctx, "admin@example.test", CAROL,
                         ["carol0"])
    assert len(ids) == 5 and len(carol_ids) == 1

    # first window: two bounces to alice, three held; carol's not held
    wait_until(lambda: len(held_lines(d.log(), ALICE)) >= 3 and
               len(bounces(home, ALICE)) >= 2 and
               len(bounces(home, CAROL)) >= 1,
               "two bounces, three held, carol's bounce", d)
    assert time.time() < w1 - 0.5, "too slow: the first window is over"
    log = d.log()
    held = held_lines(log, ALICE)
    assert len(held) == 3, held
    assert all(f"held until {hhmmss(w1)} " in l for l in held), held
    first_held = {held_id(l) for l in held}
    assert first_held < set(ids), (first_held, ids)
    sent = bounces(home, ALICE)
    assert len(sent) == 2
    assert {q for q, _ in sent} == set(ids) - first_held
    for qid in first_held:          # waiting in the queue, no bounce yet
        env = d.envelope(qid)
        assert env.rcpts == [("failed", f"reject-{ids[qid]}@mx-a.test")]
        assert env.get("dsn") is None
    assert log.count(f"bounce limit: <{ALICE}> reached "
                     "limits.bounces_per_hour = 2") == 1
    assert bounces(home, CAROL) == [(q, s) for q, s in carol_ids.items()]
    assert held_lines(log, CAROL) == []
    assert f"bounce limit: <{CAROL}>" not in log

    # second window: two more; the last one held until the third
    wait_until(lambda: len(bounces(home, ALICE)) >= 4,
               "the second window's bounces", d, timeout=WINDOW + 20)
    wait_until(lambda: len(held_lines(d.log(), ALICE)) >= 4,
               "the last bounce held again", d)
    assert time.time() < w2 - 0.5, "too slow: the second window is over"
    held = held_lines(d.log(), ALICE)
    assert len(held) == 4, held
    assert f"held until {hhmmss(w2)} " in held[3]
    assert held_id(held[3]) in first_held
    assert len(bounces(home, ALICE)) == 4

    # third window: the last one; then nothing is left
    wait_until(lambda: len(bounces(home, ALICE)) >= 5,
               "the last bounce", d, timeout=WINDOW + 20)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    time.sleep(1.5)     # room for a bounce that should not come
    sent = bounces(home, ALICE)
    assert sorted(sent) == sorted(ids.items())   # each once, its own
    assert len(bounces(home, CAROL)) == 1
    assert len(home.got) == 6
    log = d.log()
    assert len(held_lines(log, ALICE)) == 4      # no spinning
    # one warning per window that held something
    assert log.count(f"bounce limit: <{ALICE}> reached "
                     "limits.bounces_per_hour = 2") == 2
    for qid in ids:
        assert f"id={qid} bounce id=" in log
        assert f"id={qid} removed: every recipient is final" in log


def test_held_bounce_survives_restart(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    start_sink("127.0.0.2")
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = daemon(make, 1)
    w0 = window_start()
    w1 = w0 + WINDOW
    ids = send_all(d, ssl_ctx, ALICE, ALICE, ["r0", "r1", "r2"])
    wait_until(lambda: len(held_lines(d.log(), ALICE)) >= 2 and
               len(bounces(home, ALICE)) >= 1 and len(d.queue_ids()) == 2,
               "one bounce sent, two held", d)
    held = {held_id(l) for l in held_lines(d.log(), ALICE)}
    assert len(held) == 2 and held < set(ids)
    assert sorted(d.queue_ids()) == sorted(held)
    assert d.stop() == 0
    for qid in held:                # the envelope says it all
        env = d.envelope(qid)
        assert env.rcpts == [("failed", f"reject-{ids[qid]}@mx-a.test")]
        assert env.get("dsn") is None
    d.start()
    # the restart forgot the count: one more bounce at once, the other
    # held until the same window's end
    wait_until(lambda: len(bounces(home, ALICE)) >= 2,
               "a held bounce after the restart", d)
    wait_until(lambda: len(held_lines(
        d.log().split("==== start #2 ====")[1], ALICE)) >= 1,
        "the other held again", d)
    assert time.time() < w1 - 0.5, "too slow: the first window is over"
    second = d.log().split("==== start #2 ====")[1]
    assert "relay: mode=mx messages=2" in second
    again = held_lines(second, ALICE)
    assert len(again) == 1 and f"held until {hhmmss(w1)} " in again[0]
    wait_until(lambda: len(bounces(home, ALICE)) >= 3,
               "the last bounce", d, timeout=WINDOW + 20)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    time.sleep(1.5)
    assert sorted(bounces(home, ALICE)) == sorted(ids.items())
