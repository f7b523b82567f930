"""
Promises 6 and 7 (ARCHITECTURE.md): every limit gives its reply from
submit/REPLIES.md, the session stays in step (or closes when the table
says so), nothing is queued, and the daemon keeps serving others.
"""
import socket
import threading
import time

from helpers import (SMTP, assert_nothing_queued, assert_queued,
                     expect, make_message, plain, queued_id, smtps)

ALICE = "alice@example.test"


def test_size_parameter_too_big(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    limit = postern.limits["message_size"]
    r = expect(c.cmd(f"MAIL FROM:<alice@example.test> SIZE={limit + 1}"), 552,
               "5.3.4", "exceeds fixed limit", conn=c)
    assert str(limit) in r.text, r
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    expect(c.cmd(f"MAIL FROM:<alice@example.test> SIZE={limit}"), 250,
           "2.1.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_message_too_big_while_streaming(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    limit = postern.limits["message_size"]
    line = b"x" * 78 + b"\r\n"
    body = line * (limit // len(line) + 100)
    msg = make_message(ALICE, ["bob@example.com"], subject="big", body=body)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    r = expect(c.data(msg), 552, "5.3.4", "exceeds fixed limit", conn=c)
    assert str(limit) in r.text, r
    # read to the final dot: still in step
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_message_just_under_the_limit(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    limit = postern.limits["message_size"]
    head = make_message(ALICE, ["bob@example.com"], subject="fits", body=b"")
    line = b"y" * 78 + b"\r\n"
    body = line * ((limit - len(head) - 2000) // len(line))
    msg = head + body
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, msg)


def test_too_many_recipients(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    n = postern.limits["recipients"]
    rcpts = [f"r{i}@example.com" for i in range(n)]
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    for r in rcpts:
        expect(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5", conn=c)
    expect(c.cmd("RCPT TO:<onemore@example.com>"), 452, "4.5.3",
           "too many recipients", conn=c)
    expect(c.cmd("RCPT TO:<andanother@example.com>"), 452, "4.5.3", conn=c)
    # the refusal left the transaction as it was: exactly n recipients
    msg = make_message(ALICE, rcpts, subject="many")
    qid = queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text)
    c.close()
    assert postern.queue_ids() == [qid]
    assert_queued(postern, qid, ALICE, rcpts, ALICE, msg)


def test_too_many_recipients_nothing_queued_after_rset(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    n = postern.limits["recipients"]
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    for i in range(n):
        expect(c.cmd(f"RCPT TO:<r{i}@example.com>"), 250, "2.1.5", conn=c)
    expect(c.cmd("RCPT TO:<over@example.com>"), 452, "4.5.3", conn=c)
    expect(c.cmd("RSET"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_header_section_too_big(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    limit = postern.limits["header_size"]
    extra = [f"X-Filler-{i}: " + "h" * 900 for i in range(limit // 900 + 5)]
    msg = make_message(ALICE, ["bob@example.com"], subject="fat header",
                       extra_headers=extra)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    r = expect(c.data(msg), 552, "5.3.4", "header section", conn=c)
    assert str(limit) in r.text, r
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_header_without_end_is_bounded(postern, ssl_ctx):
    """A 'header' that never ends (no empty line, one huge folded field)."""
    c = smtps(postern, ssl_ctx, login=ALICE)
    limit = postern.limits["header_size"]
    fold = b"X-Long: start\r\n" + b" continued\r\n" * (limit // 10)
    msg = b"From: alice@example.test\r\n" + fold
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.data(msg), 552, "5.3.4", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_too_many_errors(postern_factory, ssl_ctx):
    d = postern_factory(limits={"errors_per_session": 3})
    c = smtps(d, ssl_ctx)
    replies = []
    for i in range(6):
        try:
            r = c.cmd(f"FROB{i}")
        except Exception:
            break
        replies.append(r)
        if r.code == 421:
            break
    last = replies[-1]
    expect(last, 421, "4.7.0", "too many errors", conn=c)
    assert last.lines[0].startswith("4.7.0 relay.example.test"), last
    # the errors before it were answered normally
    assert all(r.code == 502 for r in replies[:-1]), replies
    assert 3 <= len(replies) <= 4, replies
    assert c.closed(), c.dump()
    assert_nothing_queued(d)
    # and the daemon serves the next client
    c2 = smtps(d, ssl_ctx)
    expect(c2.cmd("NOOP"), 250, "2.0.0", conn=c2)
    c2.close()


def test_failed_auth_counts_as_error(postern_factory, ssl_ctx):
    d = postern_factory(limits={"errors_per_session": 3})
    c = smtps(d, ssl_ctx)
    codes = []
    for i in range(5):
        try:
            r = c.auth_plain(ALICE, f"guess{i}")
        except Exception:
            break
        codes.append(r.code)
        if r.code == 421:
            break
    assert codes[-1] == 421, codes
    assert c.closed()
    assert_nothing_queued(d)


def test_command_timeout(postern_factory, ssl_ctx):
    d = postern_factory(limits={"command_timeout": '"10s"'})
    c = smtps(d, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    t0 = time.monotonic()
    c.sock.settimeout(30)
    r = c.reply()
    waited = time.monotonic() - t0
    expect(r, 421, "4.4.2", "timeout exceeded", conn=c)
    assert r.lines[0].startswith("4.4.2 relay.example.test"), r
    assert 9 <= waited <= 20, waited
    assert c.closed()
    assert_nothing_queued(d)


def test_command_timeout_before_tls(postern_factory):
    d = postern_factory(limits={"command_timeout": '"10s"'})
    c = SMTP("127.0.0.1", d.port("submission"))
    c.greeting()
    c.sock.settimeout(30)
    expect(c.reply(), 421, "4.4.2", conn=c)
    assert c.closed()
    assert_nothing_queued(d)


def test_data_timeout(postern_factory, ssl_ctx):
    d = postern_factory(limits={"data_timeout": '"10s"'})
    c = smtps(d, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.cmd("DATA"), 354, conn=c)
    c.send(b"From: alice@example.test\r\nSubject: stall\r\n\r\nhalf")
    c.sock.settimeout(30)
    expect(c.reply(), 421, "4.4.2", "timeout", conn=c)
    assert c.closed()
    assert_nothing_queued(d)


def test_session_lifetime(postern_factory, ssl_ctx):
    # the smallest lifetime the configuration allows is one minute
    d = postern_factory(limits={"session_lifetime": '"1m"',
                                "command_timeout": '"10s"'})
    c = smtps(d, ssl_ctx, login=ALICE)
    t0 = time.monotonic()
    r = None
    while time.monotonic() - t0 < 80:
        r = c.cmd("NOOP")
        if r.code != 250:
            break
        time.sleep(2)
    assert 55 <= time.monotonic() - t0 <= 75
    expect(r, 421, "4.4.2", "lifetime", conn=c)
    assert c.closed()
    assert_nothing_queued(d)


def admitted(d, listener, ctx=None, implicit=False, timeout=5):
    """A connection that got its 220 greeting. The daemon's readiness
    probes (connect, close) may still hold slots for a moment, so a 421
    right after start is retried until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        c = SMTP("127.0.0.1", d.port(listener), ctx, implicit=implicit)
        r = c.reply()
        if r.code == 220:
            return c
        c.close()
        assert time.monotonic() < deadline, f"never admitted: {r!r}"
        time.sleep(0.05)


def test_connections_per_ip(postern_factory, ssl_ctx):
    # loopback is exempt by default (test_guard.py)
    d = postern_factory(limits={"connections_per_ip": 2,
                                "exempt_networks": "[ ]"})
    a = admitted(d, "trusted")
    b = admitted(d, "smtps", ssl_ctx, implicit=True)
    c = SMTP("127.0.0.1", d.port("submission"))
    r = c.reply()
    expect(r, 421, "4.7.0", "Too many connections from your address", conn=c)
    assert r.lines[0].startswith("4.7.0 relay.example.test"), r
    assert c.closed()
    # the two admitted sessions are unaffected
    expect(a.cmd("NOOP"), 250, "2.0.0", conn=a)
    expect(b.cmd("NOOP"), 250, "2.0.0", conn=b)
    # a slot frees when one closes
    expect(a.cmd("QUIT"), 221, "2.0.0", conn=a)
    assert a.closed()
    e = admitted(d, "trusted")
    expect(e.cmd("NOOP"), 250, "2.0.0", conn=e)
    assert_nothing_queued(d, conns=[b, e])


def test_connections_total(postern_factory):
    d = postern_factory(limits={"connections": 2, "connections_per_ip": 20})
    a = admitted(d, "trusted")
    b = admitted(d, "submission")
    c = SMTP("127.0.0.1", d.port("trusted"))
    expect(c.reply(), 421, "4.7.0", "Too many connections", conn=c)
    assert c.closed()
    expect(a.cmd("NOOP"), 250, "2.0.0", conn=a)
    assert_nothing_queued(d, conns=[a, b])


def test_slow_client_does_not_block_others(postern, ssl_ctx):
    """One client stalls mid-DATA; another sends a message meanwhile."""
    slow = smtps(postern, ssl_ctx, login=ALICE)
    expect(slow.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=slow)
    expect(slow.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=slow)
    expect(slow.cmd("DATA"), 354, conn=slow)
    slow.send(b"From: alice@example.test\r\nSubject: slow\r\n\r\npart")
    # a half-open TLS handshake too
    raw = socket.create_connection(("127.0.0.1", postern.port("smtps")))
    raw.sendall(b"\x16\x03\x01")
    fast = smtps(postern, ssl_ctx, login=ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="fast")
    qid = fast.send_message(ALICE, ["bob@example.com"], msg)
    fast.close()
    assert postern.queue_ids() == [qid]
    # the slow one finishes later
    slow.send(b" two\r\n" + b".\r\n")
    qid2 = queued_id(expect(slow.reply(), 250, "2.0.0", conn=slow).text)
    slow.close()
    raw.close()
    assert sorted([qid, qid2]) == postern.queue_ids()


def test_recipient_flood_pipelined(postern_factory):
    """A flood of pipelined RCPTs in one write: the first `recipients` are
    accepted, every later one gets 452 4.5.3, in order, and the session is
    still in step afterwards. (Plain socket on the trusted listener, so a
    writer thread and the reader can share it; errors_per_session is raised
    so that the flood is answered rather than cut off with 421, which
    test_too_many_errors covers.)"""
    d = postern_factory(limits={"errors_per_session": 1000})
    c = plain(d)
    n = d.limits["recipients"]
    total = 900
    flood = ("MAIL FROM:<app@example.test>\r\n" +
             "".join(f"RCPT TO:<r{i}@example.com>\r\n" for i in range(total)))
    t = threading.Thread(target=c.send, args=(flood,))
    t.start()
    expect(c.reply(), 250, "2.1.0", conn=c)
    replies = [c.reply() for _ in range(total)]
    t.join(30)
    codes = [r.code for r in replies]
    assert codes[:n] == [250] * n, codes[:n + 3]
    assert set(codes[n:]) == {452}, sorted(set(codes[n:]))
    assert {r.enh for r in replies[n:]} == {"4.5.3"}
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    expect(c.cmd("RSET"), 250, "2.0.0", conn=c)
    assert_nothing_queued(d, conns=[c])


def sized_message(size, subject):
    """A message of exactly `size` bytes (as the client sends it, before
    dot-stuffing; no line starts with a dot)."""
    head = make_message(ALICE, ["bob@example.com"], subject=subject, body=b"")
    n = size - len(head)
    assert n >= 2
    lines = []
    while n > 0:
        k = min(n, 80)
        if k < 2:          # fold a 1-byte remainder into the previous line
            prev = lines.pop()
            lines.append(b"z" + prev)
            break
        lines.append(b"z" * (k - 2) + b"\r\n")
        n -= k
    msg = head + b"".join(lines)
    assert len(msg) == size
    return msg


def test_message_size_boundary(postern_factory, ssl_ctx):
    d = postern_factory(limits={"message_size": 10000})
    c = smtps(d, ssl_ctx, login=ALICE)
    exact = sized_message(10000, "exactly the limit")
    qid = c.send_message(ALICE, ["bob@example.com"], exact)
    over = sized_message(10001, "one byte over")
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.data(over), 552, "5.3.4", "10000", conn=c)
    expect(c.cmd("MAIL FROM:<alice@example.test> SIZE=10000"), 250, "2.1.0",
           conn=c)
    expect(c.cmd("RSET"), 250, "2.0.0", conn=c)
    expect(c.cmd("MAIL FROM:<alice@example.test> SIZE=10001"), 552, "5.3.4",
           conn=c)
    c.close()
    assert d.queue_ids() == [qid]
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, exact)
    assert d.wait_tmp_empty() == []


def test_command_line_length_boundary(postern_factory, ssl_ctx):
    d = postern_factory(limits={"line_length": 512})
    c = smtps(d, ssl_ctx, login=ALICE)
    line = "NOOP " + "a" * (512 - 2 - 5)          # 512 with CRLF
    assert len(line) + 2 == 512
    expect(c.cmd(line), 250, "2.0.0", conn=c)
    expect(c.cmd(line + "b"), 500, "5.5.2", "line too long", conn=c)
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(d, conns=[c])
