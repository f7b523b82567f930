"""
The graceful stop (SIGTERM): listeners close at once, clients between
transactions get 421 4.3.2, a transaction in progress finishes (its 250,
then the 421), a delivery in flight finishes and is recorded, and the
daemon exits 0 with the queue intact; past stop_timeout what is left gets
the 421 and is not accepted. After a restart every message that got 250
is delivered, once.
"""
import socket
import time

from helpers import expect, make_message, submission, wait_until
from test_relay_mx import ALICE, RECORDS, mxnet, submit  # noqa: F401


def daemon(mxnet, stop_timeout):
    """A daemon delivering to the mxnet sinks, with its own stop_timeout
    (the test default is 3s)."""
    make, server, sinks, start_sink = mxnet
    d = make()
    d.extra += f'\nstop_timeout = "{stop_timeout}";'
    d.write_config()
    return d


def refused(d):
    """True if the submission port refuses connections."""
    try:
        socket.create_connection(("127.0.0.1", d.port("submission")),
                                 timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_sigterm_during_data(mxnet, ssl_ctx):
    """SIGTERM while one client is in the middle of DATA and another is
    idle: the idle one gets 421 4.3.2 at once, new connections are
    refused, the one in DATA finishes and gets its 250 and then the 421;
    the daemon exits 0. With the sink up again after a restart, every
    message that got 250 is delivered exactly once."""
    make, server, sinks, start_sink = mxnet
    server.start({}, extra=RECORDS)
    d = daemon(mxnet, "20s")
    d.start()
    # no MX server yet: these two stay queued (deferred)
    early = [submit(d, ssl_ctx, ["bob@mx-a.test"], subject=f"early {i}")
             for i in range(2)]
    busy = submission(d, ssl_ctx, login=ALICE)
    expect(busy.cmd(f"MAIL FROM:<{ALICE}>"), 250, "2.1.0", conn=busy)
    expect(busy.cmd("RCPT TO:<carol@mx-a.test>"), 250, "2.1.5", conn=busy)
    expect(busy.cmd("DATA"), 354, conn=busy)
    msg = make_message(ALICE, ["carol@mx-a.test"], subject="in flight")
    head, tail = msg[:len(msg) // 2], msg[len(msg) // 2:]
    busy.send(head)
    idle = submission(d, ssl_ctx, login=ALICE)
    t0 = time.monotonic()
    d.proc.send_signal(15)
    expect(idle.reply(), 421, "4.3.2", "shutting down", conn=idle)
    assert idle.closed()
    wait_until(lambda: refused(d), "the listeners to close", d, timeout=10)
    assert d.alive(), "gone before the transaction in DATA finished"
    busy.send(tail + (b"" if tail.endswith(b"\r\n") else b"\r\n") +
              b".\r\n")
    expect(busy.reply(), 250, "2.0.0", "queued as", conn=busy)
    expect(busy.reply(), 421, "4.3.2", conn=busy)
    assert busy.closed()
    d.proc.wait(30)
    assert d.proc.returncode == 0, d.log()
    assert time.monotonic() - t0 < 20, "waited for the stop_timeout"
    d.stop()
    assert len(d.queue_ids()) == 3
    log = d.log()
    assert "stopping: every transaction and delivery finished" in log
    # the MX server comes up, the daemon comes back: all three arrive
    sink = start_sink("127.0.0.2")
    d.start()
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    subjects = sorted(m[2].split(b"Subject: ")[1].split(b"\r\n")[0]
                      for m in sink.got)
    assert subjects == [b"early 0", b"early 1", b"in flight"], subjects
    assert len(early) == 2


def test_sigterm_timeout_drops_open_transaction(mxnet, ssl_ctx):
    """A client that stalls in DATA past stop_timeout gets 421 4.3.2; its
    message was never accepted, so nothing of it stays (not in the queue,
    not in tmp/); the daemon exits 0."""
    make, server, sinks, start_sink = mxnet
    server.start({}, extra=RECORDS)
    d = daemon(mxnet, "2s")
    d.start()
    c = submission(d, ssl_ctx, login=ALICE)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<carol@mx-a.test>"), 250, "2.1.5", conn=c)
    expect(c.cmd("DATA"), 354, conn=c)
    c.send(b"From: alice@example.test\r\nSubject: never\r\n\r\nhalf")
    d.proc.send_signal(15)
    expect(c.reply(), 421, "4.3.2", conn=c)
    assert c.closed()
    d.proc.wait(15)
    assert d.proc.returncode == 0, d.log()
    d.stop()
    assert d.queue_ids() == []
    assert d.tmp_files() == []
    assert "stop_timeout (2s) passed" in d.log()


def test_sigterm_lets_delivery_finish(mxnet, ssl_ctx):
    """SIGTERM while a message is being delivered (the MX server takes 3 s
    to answer the data): the delivery finishes and is recorded, the
    daemon exits 0 with the queue empty, and a restart does not deliver
    it again."""
    make, server, sinks, start_sink = mxnet
    sink = start_sink("127.0.0.2")
    sink.delay = 3
    server.start({}, extra=RECORDS)
    d = daemon(mxnet, "20s")
    d.start()
    submit(d, ssl_ctx, ["dave@mx-a.test"], subject="slow")
    # the data is with the sink, which holds its answer for 3 s
    wait_until(lambda: "[127.0.0.2]" in d.log() and " connected" in
               d.log(), "the delivery to start", d)
    time.sleep(0.5)
    assert sink.got == [], "delivered before the signal"
    d.proc.send_signal(15)
    d.proc.wait(30)
    assert d.proc.returncode == 0, d.log()
    d.stop()
    assert len(sink.got) == 1
    assert d.queue_ids() == []
    d.start()
    time.sleep(1.5)
    assert len(sink.got) == 1
