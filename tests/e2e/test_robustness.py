"""
Promise 6 (ARCHITECTURE.md) from the outside: clients that vanish at
awkward moments, talk garbage, or just sit there. The daemon must survive
(the fixture fails a test whose daemon died), leave tmp/ empty and the
queue consistent, and keep serving.
"""
import os
import socket
import ssl
import threading

from helpers import (assert_queued, dot_stuff, expect, make_message, plain,
                     smtps)

ALICE = "alice@example.test"


def queue_consistent(d):
    names = d.queue_files()
    ids = set(d.queue_ids())
    assert set(names) == ids, f"not queue files: {sorted(set(names) - ids)}"
    for qid in ids:
        d.envelope(qid)
    return ids


def still_serving(d, ctx):
    c = smtps(d, ctx, login=ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="still serving")
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    return qid


def test_disconnect_right_after_final_dot(postern_factory, ssl_ctx):
    """The client hangs up while its message is being committed: the
    commit callback must not touch the freed session (no crash); the
    message may or may not be queued, but completely or not at all."""
    postern = postern_factory(limits={"connections_per_ip": 100})
    errors = []

    def one(i):
        try:
            hang_up(i)
        except Exception as e:          # noqa: BLE001
            errors.append(f"{i}: {e!r}")

    def hang_up(i):
        c = smtps(postern, ssl_ctx, login=ALICE)
        msg = make_message(ALICE, ["bob@example.com"], subject=f"hangup {i}")
        c.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        expect(c.reply(), 250, "2.1.0", conn=c)
        expect(c.reply(), 250, "2.1.5", conn=c)
        expect(c.reply(), 354, conn=c)
        c.send(dot_stuff(msg) + b".\r\n")
        c.sock.close()            # no TLS close_notify, no QUIT

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert postern.wait_tmp_empty() == []
    queue_consistent(postern)
    still_serving(postern, ssl_ctx)


def test_disconnect_mid_data_and_mid_auth(postern, ssl_ctx):
    for cut in ("data", "auth", "tls"):
        if cut == "tls":
            s = socket.create_connection(("127.0.0.1", postern.port("smtps")))
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            s.close()
            continue
        c = smtps(postern, ssl_ctx, login=ALICE if cut == "data" else None)
        if cut == "data":
            c.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
            for _ in range(3):
                c.reply()
            c.send(b"From: alice@example.test\r\n\r\n" + b"x" * 50000)
        else:
            expect(c.cmd("AUTH LOGIN"), 334, conn=c)
        c.sock.close()
    assert postern.wait_tmp_empty() == []
    assert postern.queue_ids() == []
    still_serving(postern, ssl_ctx)


def test_garbage_on_every_port(postern, ssl_ctx):
    junk = [os.urandom(4096), b"\x00" * 2000 + b"\r\n", b"\xff\xfe" * 3000,
            b"\r\n" * 500, b"EHLO " + b"\x80" * 300 + b"\r\n"]
    for name in ("submission", "smtps", "trusted"):
        for j in junk:
            s = socket.create_connection(("127.0.0.1", postern.port(name)))
            s.settimeout(10)
            try:
                s.sendall(j)
                s.recv(65536)
            except OSError:
                pass
            s.close()
    assert postern.queue_ids() == []
    still_serving(postern, ssl_ctx)


def test_many_idle_connections(postern_factory, ssl_ctx):
    """Hundreds of idle clients (half in TLS) do not stop a real one."""
    d = postern_factory(limits={"connections_per_ip": 1000})
    idle = []
    try:
        for i in range(300):
            if i % 2:
                s = ssl_ctx.wrap_socket(
                    socket.create_connection(("127.0.0.1", d.port("smtps"))),
                    server_hostname="127.0.0.1")
            else:
                s = socket.create_connection(("127.0.0.1", d.port("submission")))
            idle.append(s)
        still_serving(d, ssl_ctx)
        c = plain(d)
        expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
        c.close()
    finally:
        for s in idle:
            try:
                s.close()
            except (OSError, ssl.SSLError):
                pass
    assert d.alive()
