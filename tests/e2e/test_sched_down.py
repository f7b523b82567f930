"""
A next hop that is down costs nothing per message (relay/SCHED.md,
"Destinations that are down"; relay/deliver.c's dl_site): the real
./postern in smarthost mode towards a port where nothing listens.

The first message finds the smarthost down ("destination down" in the
log, once); the messages submitted after it are neither tried nor
rewritten on disk (their envelopes still say attempts 0); only one probe
per back-off period (relay.retry.first 2s, doubling to relay.retry.max
4s) is made, whatever the number of messages. Then a real SMTP server
(aiosmtpd) starts on that port: the next probe gets through, the log
says "destination up again" once, and every message arrives.

The smarthost port is free_port()'s, or the first free one of
POSTERN_E2E_PORTS ("FIRST-LAST") when that is set, for machines where
test servers must stay within a range.
"""
import os
import re
import socket
import threading
import time

import pytest

from conftest import free_port
from helpers import smtplib_session, wait_until

try:
    from aiosmtpd.controller import Controller
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False

pytestmark = pytest.mark.skipif(not HAVE_AIOSMTPD,
                                reason="python3-aiosmtpd missing")

ALICE = "alice@example.test"
N = 60


def smarthost_port():
    spec = os.environ.get("POSTERN_E2E_PORTS")
    if not spec:
        return free_port()
    first, last = (int(x) for x in spec.split("-"))
    for port in range(first, last + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    pytest.skip(f"no free port in POSTERN_E2E_PORTS={spec}")


class Sink:
    def __init__(self):
        self.lock = threading.Lock()
        self.rcpts = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.rcpts.extend(envelope.rcpt_tos)
        return "250 2.0.0 queued here"


def message(i):
    return (f"From: {ALICE}\r\nTo: bob@elsewhere.test\r\n"
            f"Subject: down {i}\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: <down.{i}.{time.time_ns()}@client.example.test>\r\n"
            "\r\nWaiting for the smarthost.\r\n").encode()


def submit_many(d, ctx, first, n):
    """n messages over one authenticated session"""
    s = smtplib_session(d, ctx, ALICE)
    try:
        for i in range(first, first + n):
            s.sendmail(ALICE, ["bob@elsewhere.test"], message(i))
        s.quit()
    finally:
        s.close()


def attempts(log):
    """delivery attempts that reached the transport: one log line per
    recipient per attempt (the probes, and the first that found out)"""
    return len(re.findall(r"to=<bob@elsewhere\.test> relay=\S+ attempt=",
                          log))


def test_dead_smarthost_one_probe_per_backoff(postern_factory, ssl_ctx):
    port = smarthost_port()
    d = postern_factory(start=False, extra=(
        f'relay = {{ mode = "smarthost";\n'
        f'  smarthost = {{ host = "127.0.0.1"; port = {port}; '
        f'tls = "none"; }};\n'
        f'  retry = {{ first = "2s"; max = "4s"; expire = "1d"; }}; }};'))
    d.start()

    # the first message finds the smarthost down
    submit_many(d, ssl_ctx, 0, 1)
    wait_until(lambda: "destination down" in d.log(),
               "the smarthost to be found down", d)
    t0 = time.monotonic()
    submit_many(d, ssl_ctx, 1, N)
    wait_until(lambda: len(d.queue_ids()) == N + 1, "every message queued",
               d)
    time.sleep(5)           # at least one probe, and a doubled back-off
    elapsed = time.monotonic() - t0
    log = d.log()
    made = attempts(log)
    # one attempt found it down, then at most one probe per 2 s
    assert 1 <= made <= 2 + elapsed / 2, \
        f"{made} attempts in {elapsed:.1f}s for {N + 1} messages:\n" + \
        log[-4000:]
    assert made < N / 4, log[-4000:]
    assert log.count("destination down") == 1, log[-4000:]
    # the waiting messages were never rewritten: no attempt on disk
    untouched = [q for q in d.queue_ids()
                 if d.envelope(q).get("attempts") in (None, "0")]
    assert len(untouched) >= N + 1 - made, \
        f"only {len(untouched)} of {N + 1} envelopes untouched"

    # the smarthost comes up: the next probe gets through, then the rest
    sink = Sink()
    c = Controller(sink, hostname="127.0.0.1", port=port)
    c.start()
    try:
        wait_until(lambda: d.queue_ids() == [], "the queue to empty", d,
                   timeout=30)
        with sink.lock:
            assert len(sink.rcpts) == N + 1, sink.rcpts
        log = d.log()
        assert log.count("destination up again") == 1, log[-4000:]
        assert log.count("destination down") == 1, log[-4000:]
    finally:
        c.stop()
