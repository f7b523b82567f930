"""
The queue commands that change the running daemon, through its admin-only
control socket (daemon/control.c, relay/sched.c sched_admin), against a
real queue: messages deferred by an aiosmtpd sink that answers 451 until
the test lets it accept, found through dnsmasq (as in test_relay_mx.py).
relay.retry.first is an hour, so nothing is retried unless asked.

- flush ID delivers that message at once and no other; flush alone the
  rest;
- hold is marked on disk (the envelope's hold record), survives a
  restart, and a held message is never attempted (not by flush either)
  until it is released, which delivers it;
- delete removes without a bounce; delete --bounce sends the submitter
  exactly one;
- list --json, its filters and show --json, parsed by json and checked
  field by field; the last deferral reason in the text list;
- bad input: a malformed or unknown id, a release of a message not on
  hold, a message being delivered right now, a daemon not running, a
  user who is neither root nor the daemon's: one line on stderr, exit 1,
  nothing changed; every request logged with who asked.
"""
import email
import json
import os
import pwd
import subprocess
import time

import pytest

from conftest import POSTERN, run_postern
from helpers import make_message, submission, wait_until
from test_relay_mx import ALICE, RECORDS, mxnet  # noqa: F401

ROUTE_HOME = ('routes = ( { domain = "example.test"; '
              'next_hop = "[127.0.0.4]"; } );')
HOUR = 'first = "1h"; max = "1h";'


def queue(d, *args):
    return run_postern(["queue"] + list(args), config=d.conf)


def listed(d, *filters):
    """`queue list --json [filters]`: {queue id: object}"""
    r = queue(d, "list", "--json", *filters)
    assert r.returncode == 0 and r.stderr == "", r
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    return {o["queue_id"]: o for o in objs}


def deferred(d, qid):
    o = listed(d).get(qid)
    return o is not None and o["attempts"] >= 1


@pytest.fixture
def relay(mxnet):
    """A daemon relaying to mx-a.test, whose sink answers 451 until
    sink.accepting is set; example.test (bounces) goes to a home sink."""
    make, server, sinks, start_sink = mxnet
    sink = start_sink("127.0.0.2")
    sink.accepting = False
    orig = sink.handle_RCPT

    async def rcpt(server_, session, envelope, address, options):
        if not sink.accepting:
            return "451 4.7.1 not yet, try again later"
        return await orig(server_, session, envelope, address, options)
    sink.handle_RCPT = rcpt
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make(ROUTE_HOME, retry=HOUR)
    d.start()
    return d, sink, home


def send(d, ctx, n, rcpt="user@mx-a.test", sender=ALICE, login=ALICE):
    c = submission(d, ctx, login=login)
    ids = []
    for i in range(n):
        ids.append(c.send_message(sender, [rcpt], make_message(
            sender, [rcpt], subject=f"admin {i}")))
    c.close()
    for qid in ids:
        wait_until(lambda: deferred(d, qid), f"{qid} deferred once", d)
    return ids


def got_subjects(sink):
    with sink.lock:
        return [email.message_from_bytes(data)["Subject"]
                for _, _, data in sink.got]


def test_flush_delivers_at_once(relay, ssl_ctx):
    d, sink, _ = relay
    a, b = send(d, ssl_ctx, 2)
    sink.accepting = True
    r = queue(d, "flush", a)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{a}: due now\n", ""), r
    wait_until(lambda: a not in listed(d), "the flushed message sent", d,
               timeout=10)
    assert got_subjects(sink) == ["admin 0"]
    assert b in listed(d), "flush of one id sent another"
    assert f"control: uid=0 (root): queue.flush {a}" in d.log()
    r = queue(d, "flush")
    assert r.returncode == 0, r
    assert "every message waiting for a retry is due now" in r.stdout
    wait_until(lambda: listed(d) == {}, "flush sent the rest", d,
               timeout=10)
    assert sorted(got_subjects(sink)) == ["admin 0", "admin 1"]


def test_hold_survives_restart_until_release(relay, ssl_ctx):
    d, sink, _ = relay
    a, b = send(d, ssl_ctx, 2)
    r = queue(d, "hold", a)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{a}: on hold\n", ""), r
    # marked on disk: the newest envelope of its queue file says so
    assert d.envelope(a).get("hold") is not None
    held = listed(d, "--held")
    assert list(held) == [a]
    assert held[a]["queue_name"] == "hold"
    assert abs(held[a]["held_since"] - time.time()) < 30
    assert list(listed(d, "--deferred")) == [b]
    text = queue(d, "list").stdout
    assert "on hold since" in [l for l in text.splitlines() if a in l][0]
    # holding it again changes nothing and is no error
    assert queue(d, "hold", a).returncode == 0

    sink.accepting = True
    assert queue(d, "flush").returncode == 0
    wait_until(lambda: b not in listed(d), "the other message sent", d,
               timeout=10)
    time.sleep(1.5)             # more than a tick: a held one would go now
    assert got_subjects(sink) == ["admin 1"]
    assert f"id={a} put on hold by uid=0 (root)" in d.log()

    d.restart()
    # after a restart, flushed and due: found on hold, never attempted
    assert queue(d, "flush").returncode == 0
    time.sleep(2)
    assert got_subjects(sink) == ["admin 1"]
    assert list(listed(d, "--held")) == [a]
    attempts = [l for l in d.log().splitlines()
                if f"id={a} to=" in l]
    assert len(attempts) == 1, attempts     # the first deferral only

    r = queue(d, "release", a)
    assert (r.returncode, r.stdout) == (0, f"{a}: released, due now\n"), r
    wait_until(lambda: listed(d) == {}, "the released message sent", d,
               timeout=10)
    assert sorted(got_subjects(sink)) == ["admin 0", "admin 1"]


def test_delete_and_delete_with_bounce(relay, ssl_ctx):
    d, sink, home = relay
    a, b = send(d, ssl_ctx, 2)
    r = queue(d, "delete", a)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{a}: deleted\n", ""), r
    assert a not in listed(d) and a not in d.queue_ids()
    assert f"id={a} deleted by uid=0 (root)" in d.log()

    r = queue(d, "delete", "--bounce", b)
    assert r.returncode == 0, r
    assert r.stdout == f"{b}: deleted; its sender gets a bounce\n"
    wait_until(lambda: len(home.got) >= 1, "the bounce", d, timeout=10)
    wait_until(lambda: listed(d) == {}, "the queue empty", d, timeout=10)
    time.sleep(1.5)
    assert len(home.got) == 1, "not exactly one bounce"
    mail_from, rcpts, data = home.got[0]
    assert mail_from == "<>" and rcpts == [ALICE]
    dsn = email.message_from_bytes(data)
    assert dsn.get_content_type() == "multipart/report"
    report = dsn.get_payload()[1].get_payload()
    fields = "\n".join(str(p) for p in report)
    assert "Action: failed" in fields
    assert "user@mx-a.test" in fields
    assert "deleted from the queue by the administrator" in fields
    assert sink.got == [], "a deleted message was sent"


def test_list_json_filters_and_show(relay, ssl_ctx):
    d, sink, _ = relay
    (a,) = send(d, ssl_ctx, 1)
    (b,) = send(d, ssl_ctx, 1, rcpt="Other@MX-A.test",
                sender="carol@example.test", login="admin@example.test")
    objs = listed(d)
    assert set(objs) == {a, b}
    o = objs[a]
    assert o["queue_id"] == a
    assert o["queue_name"] == "deferred"
    assert o["sender"] == ALICE and o["login"] == ALICE
    assert o["client"] == "127.0.0.1"
    assert isinstance(o["arrival_time"], int)
    assert abs(o["arrival_time"] - time.time()) < 60
    assert o["message_size"] > 0
    assert o["attempts"] == 1
    assert o["next_attempt"] > time.time() + 3000   # an hour's back-off
    assert o["held_since"] is None and o["bounce_id"] is None
    assert o["smtputf8"] is False
    (rc,) = o["recipients"]
    assert rc["address"] == "user@mx-a.test" and rc["status"] == "pending"
    assert rc["delay_reason"] == "451 4.7.1 not yet, try again later"
    assert rc["reply"] == {"code": 451, "enhanced": "4.7.1",
                           "text": "not yet, try again later"}

    assert list(listed(d, "--sender", ALICE.upper())) == [a]
    assert list(listed(d, "--sender", "carol@example.test")) == [b]
    assert list(listed(d, "--recipient", "other@mx-a.test")) == [b]
    assert set(listed(d, "--recipient", "@mx-a.TEST")) == {a, b}
    assert listed(d, "--recipient", "@example.com") == {}
    assert listed(d, "--held") == {}
    assert set(listed(d, "--deferred")) == {a, b}

    r = queue(d, "show", a, "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == objs[a]
    # the text list shows why it waits
    line = [l for l in queue(d, "list").stdout.splitlines() if a in l][0]
    assert "(deferred: 451 4.7.1 not yet, try again later)" in line


def test_connection_failure_reason_listed(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    server.start({}, extra=RECORDS)      # no sink: connections refused
    d = make(retry=HOUR)
    d.start()
    (a,) = send(d, ssl_ctx, 1)
    rc = listed(d)[a]["recipients"][0]
    assert rc["reply"]["code"] == 0
    assert "refused" in rc["delay_reason"].lower(), rc
    line = [l for l in queue(d, "list").stdout.splitlines() if a in l][0]
    assert "(deferred: 000 -)" not in line
    assert "refused" in line.lower(), line


def one_line_error(r, *words):
    assert r.returncode == 1, r
    assert r.stdout == "", r
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("postern: "), r.stderr
    for w in words:
        assert w in lines[0], (w, r.stderr)


def test_bad_input_changes_nothing(relay, ssl_ctx):
    d, sink, _ = relay
    a, b = send(d, ssl_ctx, 2)
    before = listed(d)
    for bad in ("../../etc/passwd", "x", "A" * 21):
        one_line_error(queue(d, "hold", bad), bad, "not a queue id")
    missing = "A" * 20
    one_line_error(queue(d, "hold", a, missing), missing,
                   "no such message in the queue")
    one_line_error(queue(d, "release", b), b, "not on hold")
    one_line_error(queue(d, "delete", missing), "no such message")
    assert listed(d) == before, "a refused request changed something"
    assert f"control: uid=0 (root): queue.hold refused: {missing}" in d.log()
    # usage errors: exit 2
    for args in (["hold"], ["delete", "--bounce"], ["list", "--held",
                 "--deferred"], ["release", a, "--bounce"],
                 ["show", a, "--json", "--message"]):
        r = queue(d, *args)
        assert r.returncode == 2, (args, r)

    # a message being delivered right now
    sink.accepting = True
    sink.delay = 4
    assert queue(d, "flush", a).returncode == 0
    wait_until(lambda: "sched state idle -> delivering" in d.log() or
               f"id={a} flushed" in d.log(), "the attempt", d)
    time.sleep(0.5)
    for cmd in ("hold", "delete", "release"):
        one_line_error(queue(d, cmd, a), a, "right now")
    wait_until(lambda: a not in listed(d), "the slow delivery", d)
    sink.delay = 0

    d.stop()
    one_line_error(queue(d, "flush"), "not running")
    one_line_error(queue(d, "hold", b), "not running")
    assert listed(d)[b]["held_since"] is None


def test_only_root_and_the_daemon_user(relay, ssl_ctx):
    d, sink, _ = relay
    (a,) = send(d, ssl_ctx, 1)
    try:
        other = pwd.getpwnam("daemon")
    except KeyError:
        pytest.skip("no user 'daemon'")
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    # the client reads the configuration without the files it names
    # (the TLS key is root's): what stops that user is the socket
    os.chmod(d.conf, 0o644)

    def as_other(*args):
        return subprocess.run(
            ["setpriv", f"--reuid={other.pw_uid}",
             f"--regid={other.pw_gid}", "--clear-groups", POSTERN,
             "queue"] + list(args) + ["-c", d.conf],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=30)

    # the state directory keeps others from the socket
    one_line_error(as_other("hold", a), "permission denied")
    # and if the socket is reachable, the daemon refuses by uid itself
    sock = os.path.join(d.state_dir, "control")
    st_dir = os.stat(d.state_dir).st_mode & 0o777
    os.chmod(d.state_dir, 0o711)
    os.chmod(sock, 0o666)
    try:
        one_line_error(as_other("hold", a), "permission denied",
                       "only root and the daemon's user")
    finally:
        os.chmod(d.state_dir, st_dir)
        os.chmod(sock, 0o600)
    assert f"control: uid={other.pw_uid} (daemon) refused" in d.log()
    assert listed(d)[a]["held_since"] is None
    # root may
    assert queue(d, "hold", a).returncode == 0
