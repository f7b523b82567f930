"""
Outbound connections in relay.mode = "mx" (relay/deliver.c): reuse,
limits and relay.pause, against aiosmtpd sinks on 127.0.0.2 and .4 found
through dnsmasq, as in test_relay_mx.py. Each sink counts the SMTP
sessions it sees (a session is a connection that said EHLO or HELO; the
Controller's own start-up probe never does) and how many are open at
once, and timestamps every DATA.

- a connection is kept after its transaction and reused by the next
  message, across domains whose MX is the same host ("reused" in the
  log); a burst of messages goes over fewer connections than messages;
- relay.connections_per_host = 1 with a slow server: never two sessions
  at once, and the messages wait their turn instead of failing;
- relay.connections = 1 with two destinations: the idle connection to
  one is closed to make room for the other; transactions never overlap;
- relay.pause: transactions to one destination at least that far apart;
  stopping the daemon while messages wait for it leaves them queued;
- a cached connection the server closed meanwhile (it hung up after the
  message, or its idle timeout fired) is replaced by a new one and the
  next message is delivered in the same attempt, not deferred.
"""
import asyncio
import os
import threading
import time

import pytest

from conftest import free_port
from helpers import (DNSMASQ, Dnsmasq, free_udp_port, queued_id,
                     smtplib_session, wait_until)

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False
    Controller = SMTP = object

pytestmark = [
    pytest.mark.skipif(not os.access(DNSMASQ, os.X_OK),
                       reason=f"{DNSMASQ} missing"),
    pytest.mark.skipif(not HAVE_AIOSMTPD, reason="python3-aiosmtpd missing"),
]

ALICE = "alice@example.test"

RECORDS = [
    "--mx-host=mx-a.test,mx1.mx-a.test,10",
    "--mx-host=mx-b.test,mx1.mx-a.test,10",     # the same MX host
    "--host-record=mx1.mx-a.test,127.0.0.2",
    "--host-record=implicit.test,127.0.0.4",     # no MX: implicit MX
]


class Stats:
    """Counters shared by one or more sinks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sessions = 0        # EHLO/HELO'd connections, ever
        self.open = set()        # such connections open now
        self.max_open = 0
        self.in_txn = 0          # between MAIL and the end of DATA
        self.max_in_txn = 0


class Sink:
    """Records every transaction (mail_from, rcpts, data, monotonic time
    of DATA); delay: seconds handle_DATA sleeps; drop: hang up right
    after answering DATA."""

    def __init__(self, name, stats=None, delay=0.0, drop=False):
        self.name = name
        self.stats = stats or Stats()
        self.delay = delay
        self.drop = drop
        self.got = []
        self.lost = 0            # sessions that ended

    # called by CountingSMTP
    def session_started(self, key):
        s = self.stats
        with s.lock:
            if key in s.open:
                return           # EHLO again (RSET state)
            s.sessions += 1
            s.open.add(key)
            s.max_open = max(s.max_open, len(s.open))

    def session_ended(self, key):
        s = self.stats
        with s.lock:
            if key in s.open:
                s.open.discard(key)
                self.lost += 1

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        s = self.stats
        with s.lock:
            s.in_txn += 1
            s.max_in_txn = max(s.max_in_txn, s.in_txn)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        s = self.stats
        with s.lock:
            s.in_txn -= 1
            self.got.append((envelope.mail_from, list(envelope.rcpt_tos),
                             envelope.original_content, time.monotonic()))
        if self.drop:
            asyncio.get_running_loop().call_later(0.05,
                                                  server.transport.close)
        return "250 2.0.0 queued here"

    def rcpts(self):
        with self.stats.lock:
            return [r for _, rs, _, _ in self.got for r in rs]

    def times(self):
        with self.stats.lock:
            return [t for _, _, _, t in self.got]


class CountingSMTP(SMTP):
    """aiosmtpd's SMTP telling its handler when a session starts (EHLO or
    HELO) and ends."""

    async def smtp_EHLO(self, hostname):
        self.event_handler.session_started(id(self))
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname):
        self.event_handler.session_started(id(self))
        await super().smtp_HELO(hostname)

    def connection_lost(self, error):
        self.event_handler.session_ended(id(self))
        super().connection_lost(error)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def net(postern_factory, workdir):
    """(make_daemon(extra), start_sink(ip, **sink_and_smtp_kwargs));
    DNS serves RECORDS."""
    port = free_port()
    server = Dnsmasq(free_udp_port(), workdir)
    controllers = []

    def start_sink(ip, stats=None, delay=0.0, drop=False, **smtp_kwargs):
        sink = Sink(ip, stats, delay, drop)
        c = CountingController(sink, hostname=ip, port=port, **smtp_kwargs)
        c.start()
        controllers.append(c)
        return sink

    def make(extra=""):
        d = postern_factory(start=False, extra=(
            f'resolver = "127.0.0.1@{server.port}";\n'
            f'relay = {{ port = {port}; tls = "none"; '
            f'retry = {{ first = "1s"; max = "1s"; }}; {extra} }};'))
        d.start()
        return d

    server.start({}, extra=RECORDS)
    yield make, start_sink
    for c in controllers:
        c.stop()
    server.stop()


def message(rcpts, subject):
    return (f"From: {ALICE}\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: {subject}\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{time.time_ns()}@client.example.test>\r\n"
            "\r\nOver a shared connection.\r\n").encode()


def submit_many(d, ctx, rcpt_lists):
    """One submission session, one message per entry of rcpt_lists;
    returns the queue ids."""
    ids = []
    s = smtplib_session(d, ctx, ALICE)
    try:
        for i, rcpts in enumerate(rcpt_lists):
            code, resp = s.mail(ALICE)
            assert code == 250, (code, resp)
            for r in rcpts:
                code, resp = s.rcpt(r)
                assert code == 250, (r, code, resp)
            code, resp = s.data(message(rcpts, f"message {i}"))
            assert code == 250, (code, resp)
            ids.append(queued_id(resp))
        s.quit()
    finally:
        s.close()
    return ids


def sent_lines(d, qid):
    return [l for l in d.log().splitlines()
            if f"id={qid} to=" in l and "status=sent" in l]


def assert_no_deferral(d):
    log = d.log()
    assert "status=deferred" not in log, log[-4000:]


def test_reuse_across_messages_and_domains(net, ssl_ctx):
    """Three messages one after the other, to two domains with the same
    MX host: one connection carries all three."""
    make, start_sink = net
    sink = start_sink("127.0.0.2")
    d = make()
    rcpts = ["bob@mx-a.test", "carol@mx-b.test", "dave@mx-a.test"]
    for n, r in enumerate(rcpts, 1):
        [qid] = submit_many(d, ctx=ssl_ctx, rcpt_lists=[[r]])
        wait_until(lambda: len(sink.got) == n, f"message {n}", d)
        wait_until(lambda: sent_lines(d, qid), f"{qid} recorded", d)
    assert sink.rcpts() == rcpts
    assert sink.stats.sessions == 1
    log = d.log()
    assert log.count(" reused connection (message ") == 2, log[-4000:]
    assert "reused connection (message 3 on it)" in log
    assert_no_deferral(d)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)


def test_burst_uses_fewer_connections_than_messages(net, ssl_ctx):
    """Five messages submitted in one session: with at most two
    connections to the host, the others wait and take over a connection
    that finished its transaction."""
    make, start_sink = net
    sink = start_sink("127.0.0.2")
    d = make("connections_per_host = 2;")
    ids = submit_many(d, ssl_ctx, [[f"u{i}@mx-a.test"] for i in range(5)])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sorted(sink.rcpts()) == sorted(f"u{i}@mx-a.test"
                                          for i in range(5))
    assert len(sink.got) == 5
    assert sink.stats.sessions <= 2
    assert sink.stats.max_open <= 2
    log = d.log()
    assert log.count(" reused connection (message ") >= 3, log[-4000:]
    for qid in ids:
        assert len(sent_lines(d, qid)) == 1
    assert_no_deferral(d)


def test_connections_per_host_with_a_slow_server(net, ssl_ctx):
    """connections_per_host = 1 and a server that takes 1 s per message
    (the next ones arrive meanwhile): one session at a time, every
    message delivered."""
    make, start_sink = net
    sink = start_sink("127.0.0.2", delay=1.0)
    d = make("connections_per_host = 1;")
    submit_many(d, ssl_ctx, [[f"u{i}@mx-a.test"] for i in range(3)])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert len(sink.got) == 3
    assert sink.stats.max_open == 1
    assert sink.stats.max_in_txn == 1
    assert sink.stats.sessions < 3
    log = d.log()
    assert "waiting for relay.connections_per_host" in log, log[-4000:]
    assert_no_deferral(d)


def test_total_limit_closes_an_idle_connection(net, ssl_ctx):
    """connections = 1 and two destinations: a message to the other one
    closes the idle connection instead of waiting for its idle timeout;
    transactions never overlap."""
    make, start_sink = net
    stats = Stats()
    a = start_sink("127.0.0.2", stats=stats)
    b = start_sink("127.0.0.4", stats=stats)
    d = make("connections = 1;")
    [first] = submit_many(d, ssl_ctx, [["bob@mx-a.test"]])
    wait_until(lambda: sent_lines(d, first), "the first message", d)
    t0 = time.monotonic()
    [second] = submit_many(d, ssl_ctx, [["carol@implicit.test"]])
    wait_until(lambda: sent_lines(d, second), "the second message", d)
    # well before the idle connection would have timed out (5 s)
    assert time.monotonic() - t0 < 4.0
    assert "closing the connection: room for another destination" in \
        d.log()
    # a burst to both: one transaction at a time
    submit_many(d, ssl_ctx, [["u1@mx-a.test"], ["u2@implicit.test"],
                             ["u3@mx-a.test"], ["u4@implicit.test"]])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sorted(a.rcpts()) == ["bob@mx-a.test", "u1@mx-a.test",
                                 "u3@mx-a.test"]
    assert sorted(b.rcpts()) == ["carol@implicit.test", "u2@implicit.test",
                                 "u4@implicit.test"]
    assert stats.max_in_txn == 1
    assert_no_deferral(d)


def test_pause_between_transactions(net, ssl_ctx):
    """relay.pause = 2s: three messages to one host arrive at least ~2 s
    apart (and not much more), over the one connection."""
    make, start_sink = net
    sink = start_sink("127.0.0.2")
    d = make('pause = "2s";')
    submit_many(d, ssl_ctx, [[f"u{i}@mx-a.test"] for i in range(3)])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    times = sink.times()
    assert len(times) == 3
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 1.9 for g in gaps), gaps
    assert all(g < 4.5 for g in gaps), gaps
    assert sink.stats.sessions == 1
    assert "waiting for relay.pause" in d.log()
    assert_no_deferral(d)


@pytest.mark.parametrize("how", ["hangup", "server-timeout"])
def test_dead_cached_connection_is_replaced(net, ssl_ctx, how):
    """The server closed the cached connection (it hung up after the
    message, or its own 1 s idle timeout fired): the next message goes
    over a new connection in the same attempt."""
    make, start_sink = net
    if how == "hangup":
        sink = start_sink("127.0.0.2", drop=True)
    else:
        sink = start_sink("127.0.0.2", timeout=1)
    d = make()
    [first] = submit_many(d, ssl_ctx, [["bob@mx-a.test"]])
    wait_until(lambda: sent_lines(d, first), "the first message", d)
    # the server side of the cached connection is gone
    wait_until(lambda: sink.lost == 1, "the server to close", d)
    [second] = submit_many(d, ssl_ctx, [["carol@mx-a.test"]])
    wait_until(lambda: sent_lines(d, second), "the second message", d)
    assert sink.rcpts() == ["bob@mx-a.test", "carol@mx-a.test"]
    assert sink.stats.sessions == 2
    log = d.log()
    assert f"id={second} relay=mx1.mx-a.test[127.0.0.2]:" in log
    assert [l for l in log.splitlines() if f"id={second} " in l and
            "reused connection was closed by the server; retrying on a "
            "new one" in l], log[-4000:]
    assert "attempt=1 " in sent_lines(d, second)[0]
    assert_no_deferral(d)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)


def test_stop_while_groups_wait(net, ssl_ctx):
    """Stopping the daemon while messages wait for relay.pause (and a
    connection sits idle) exits cleanly; the waiting messages stay
    queued, and after a restart the next one goes out at once."""
    make, start_sink = net
    sink = start_sink("127.0.0.2")
    d = make('pause = "30s";')
    ids = submit_many(d, ssl_ctx, [[f"u{i}@mx-a.test"] for i in range(3)])
    wait_until(lambda: len(sink.got) == 1, "the first message", d)
    wait_until(lambda: d.log().count("waiting for relay.pause") == 2,
               "two messages to wait", d)
    assert d.stop() == 0
    [sent] = sink.rcpts()
    waiting = [q for i, q in enumerate(ids) if sent != f"u{i}@mx-a.test"]
    assert set(waiting) <= set(d.queue_ids()), (waiting, d.queue_ids())
    d.start()
    wait_until(lambda: len(sink.got) == 2, "one more after the restart", d)
    assert len(sink.got) == 2
