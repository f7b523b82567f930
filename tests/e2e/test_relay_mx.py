"""
Delivery in relay.mode = "mx" (the default) to real SMTP servers on
loopback: aiosmtpd sinks on 127.0.0.2, .3 and .4 (one port, the
configured relay.port), found through dnsmasq on a loopback port serving
MX and address records (common/dns over libunbound).

- MX in preference order, the implicit MX (no MX record: the domain's
  own address), the next MX when the first is down; what the sink gets
  is the signed message, and its signatures verify (dkimpy, keys from
  the records conftest installed);
- per-recipient outcomes: 250 delivered, 550 failed, 451 deferred with
  the reply kept in the envelope; a retry sends only to the deferred
  recipient, never again to one already accepted;
- NXDOMAIN (550 5.1.2) and a null MX (556 5.1.10, RFC 7505) fail at
  once, and one bounce (RFC 3464, signed, null sender) goes to the
  sender before the message is removed;
- a route sends a domain to a fixed next hop without MX lookup.
"""
import asyncio
import email
import os
import re
import socket
import threading
import time

import pytest

from conftest import free_port, ipv6_available
from helpers import (DNSMASQ, Dnsmasq, dkimpy_results, expect,
                     free_udp_port, submission, submit_smtplib, wait_until)

try:
    from aiosmtpd.controller import Controller
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False

pytestmark = [
    pytest.mark.skipif(not os.access(DNSMASQ, os.X_OK),
                       reason=f"{DNSMASQ} missing"),
    pytest.mark.skipif(not HAVE_AIOSMTPD, reason="python3-aiosmtpd missing"),
]

ALICE = "alice@example.test"


class Sink:
    """Records every transaction; refuses recipients by local part:
    'reject*' 550 5.1.1, 'later*' 451 4.2.0 (each time), 'flaky*' 451
    4.2.0 the first time only."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.got = []          # (mail_from, [rcpts], data bytes)
        self.deferred = set()
        self.delay = 0         # seconds before answering the data

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 no such user here"
        if local.startswith("later"):
            return "451 4.2.0 mailbox busy, try later"
        if local.startswith("flaky") and address not in self.deferred:
            self.deferred.add(address)
            return "451 4.2.0 greylisted, try again"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.got.append((envelope.mail_from, list(envelope.rcpt_tos),
                             envelope.original_content))
        return "250 2.0.0 queued here"

    def rcpts(self):
        with self.lock:
            return [r for _, rs, _ in self.got for r in rs]


@pytest.fixture
def mxnet(postern_factory, workdir):
    """(make_daemon(extra), dnsmasq, {ip: Sink}, start_sink(ip))"""
    port = free_port()
    dport = free_udp_port()
    server = Dnsmasq(dport, workdir)
    sinks = {}
    controllers = []

    def start_sink(ip, **kw):
        sink = Sink(ip)
        c = Controller(sink, hostname=ip, port=port, **kw)
        c.start()
        controllers.append(c)
        sinks[ip] = sink
        return sink

    def make(extra="", retry='first = "1s"; max = "1s";'):
        return postern_factory(start=False, extra=(
            f'resolver = "127.0.0.1@{dport}";\n'
            f'relay = {{ port = {port}; tls = "none"; '
            f'retry = {{ {retry} }}; {extra} }};'))

    make.port = port
    yield make, server, sinks, start_sink
    for c in controllers:
        c.stop()
    server.stop()


RECORDS = [
    "--mx-host=mx-a.test,mx1.mx-a.test,10",
    "--mx-host=mx-a.test,mx2.mx-a.test,20",
    "--host-record=mx1.mx-a.test,127.0.0.2",
    "--host-record=mx2.mx-a.test,127.0.0.3",
    "--host-record=implicit.test,127.0.0.4",   # no MX: implicit MX
    "--mx-host=nullmx.test,.,0",
]


def submit(d, ctx, rcpts, subject="mx"):
    msg = (f"From: {ALICE}\r\nTo: {', '.join(rcpts)}\r\n"
           f"Subject: {subject}\r\n"
           "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
           f"Message-ID: <{time.time_ns()}@client.example.test>\r\n"
           "\r\nOver the network.\r\n.leading dot\r\n").encode()
    return submit_smtplib(d, ctx, msg, rcpts=rcpts)


def test_mx_order_implicit_mx_and_exact_bytes(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        start_sink(ip)
    server.start({}, extra=RECORDS)
    d = make()
    d.start()
    qid = submit(d, ssl_ctx, ["bob@mx-a.test", "carol@implicit.test"])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sinks["127.0.0.2"].rcpts() == ["bob@mx-a.test"]   # MX 10
    assert sinks["127.0.0.3"].rcpts() == []                  # MX 20
    assert sinks["127.0.0.4"].rcpts() == ["carol@implicit.test"]
    for ip in ("127.0.0.2", "127.0.0.4"):
        mail_from, _, data = sinks[ip].got[0]
        assert mail_from == ALICE
        # the signatures, our Received, the client's message; the
        # server undid the dot-stuffing (smtpc's unit tests compare
        # every byte with the queue file)
        assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
        assert b"\r\nReceived: from " in data
        assert data.endswith(b"\r\n\r\nOver the network.\r\n"
                             b".leading dot\r\n")
        assert dkimpy_results(data, d.dkim_records) == [True, True]
    log = d.log()
    assert f"id={qid} to=<bob@mx-a.test> relay=mx1.mx-a.test[127.0.0.2]:" \
        in log
    assert "status=sent (250 2.0.0 queued here)" in log


def test_next_mx_when_the_first_is_down(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    start_sink("127.0.0.3")             # mx1 (127.0.0.2) refuses
    server.start({}, extra=RECORDS)
    d = make()
    d.start()
    submit(d, ssl_ctx, ["bob@mx-a.test"])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sinks["127.0.0.3"].rcpts() == ["bob@mx-a.test"]
    assert "relay=mx1.mx-a.test[127.0.0.2]:" in d.log()


def test_per_recipient_outcomes_and_no_resend(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    sink = start_sink("127.0.0.2")
    server.start({}, extra=RECORDS)
    d = make()
    d.start()
    qid = submit(d, ssl_ctx, ["bob@mx-a.test", "reject-me@mx-a.test",
                              "later@mx-a.test"])
    # bob delivered, reject-me failed, later deferred and retried
    wait_until(lambda: int(d.envelope(qid).get("attempts") or 0) >= 3,
             "three attempts", d)
    env = d.envelope(qid)
    assert env.rcpts == [("delivered", "bob@mx-a.test"),
                         ("failed", "reject-me@mx-a.test"),
                         ("pending", "later@mx-a.test")]
    replies = env.replies
    assert replies["reject-me@mx-a.test"] == "550 5.1.1 no such user here"
    assert replies["later@mx-a.test"] == \
        "451 4.2.0 mailbox busy, try later"
    # every retry sent to 'later' only: bob got exactly one copy
    assert sink.rcpts().count("bob@mx-a.test") == 1
    assert len(sink.got) == 1


def test_rcpt_refuses_nxdomain_and_null_mx(mxnet, ssl_ctx):
    """At RCPT, the domain is looked up while the session waits (the
    loop does not): NXDOMAIN 550 5.1.2, null MX 556 5.1.10, an existing
    domain 250; a lookup slower than limits.recipient_lookup_timeout is
    accepted. Pipelined commands are answered in order meanwhile."""
    make, server, sinks, start_sink = mxnet
    black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    black_hole.bind(("127.0.0.1", 0))     # takes queries, never answers
    try:
        server.start({}, extra=RECORDS + [
            f"--server=/slow.test/127.0.0.1#{black_hole.getsockname()[1]}"])
        d = make()
        d.limits["recipient_lookup_timeout"] = 1
        d.write_config()
        d.start()
        c = submission(d, ssl_ctx, login=ALICE)
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, "2.1.0", conn=c)
        expect(c.cmd("RCPT TO:<x@nosuch.test>"), 550, "5.1.2",
               "<x@nosuch.test>: Recipient address rejected: domain "
               "nosuch.test does not exist", conn=c)
        expect(c.cmd("RCPT TO:<y@nullmx.test>"), 556, "5.1.10",
               "domain nullmx.test accepts no mail (null MX)", conn=c)
        expect(c.cmd("RCPT TO:<bob@mx-a.test>"), 250, "2.1.5", conn=c)
        t0 = time.time()
        expect(c.cmd("RCPT TO:<z@slow.test>"), 250, "2.1.5", conn=c)
        assert 0.8 < time.time() - t0 < 10
        # pipelined: three RCPTs and a NOOP in one write, replies in order
        c.send(b"RCPT TO:<a@nosuch.test>\r\nRCPT TO:<b@mx-a.test>\r\n"
               b"RCPT TO:<c@nullmx.test>\r\nNOOP\r\n")
        assert c.reply().code == 550
        assert c.reply().code == 250
        assert c.reply().code == 556
        assert c.reply().code == 250
        c.close()
        log = d.log()
        assert "rcpt=<x@nosuch.test> refused: NXDOMAIN" in log
        assert "rcpt=<z@slow.test> domain lookup timed out; accepted" in log
    finally:
        black_hole.close()


def test_failed_recipient_bounces_to_the_sender(mxnet, ssl_ctx):
    """The MX refuses one recipient with 550 5.1.1; once the other is
    delivered, one bounce goes to the sender (routed to a sink here):
    null envelope sender, From MAILER-DAEMON@ the sender's domain, signed
    with its keys, an RFC 3464 report naming only the failed one."""
    make, server, sinks, start_sink = mxnet
    mx = start_sink("127.0.0.2")
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make('routes = ( { domain = "example.test"; '
             'next_hop = "[127.0.0.4]"; } );')
    d.start()
    qid = submit(d, ssl_ctx, ["bob@mx-a.test", "reject-me@mx-a.test"],
                 subject="will bounce")
    wait_until(lambda: len(home.got) == 1, "the bounce", d)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert mx.rcpts() == ["bob@mx-a.test"]
    mail_from, rcpts, data = home.got[0]
    assert mail_from == "<>" and rcpts == [ALICE]   # aiosmtpd: "<>"
    msg = email.message_from_bytes(data)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@example.test>"
    assert msg["To"] == f"<{ALICE}>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    human = parts[0].get_payload()
    assert "<reject-me@mx-a.test>: 550 5.1.1 no such user here" in human
    assert "bob@mx-a.test" not in human
    text = data.decode()
    assert "Reporting-MTA: dns; relay.example.test" in text
    assert f"X-Postern-Queue-ID: {qid}" in text
    assert ("Final-Recipient: rfc822; reject-me@mx-a.test\r\n"
            "Action: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 no such user here") in text
    assert "Subject: will bounce" in parts[2].as_string()
    assert "Over the network." not in text      # headers only
    assert dkimpy_results(data, d.dkim_records) == [True, True]
    log = d.log()
    assert f"id={qid} bounce id=" in log
    assert f"id={qid} removed: every recipient is final" in log


def test_route_overrides_mx(mxnet, ssl_ctx):
    make, server, sinks, start_sink = mxnet
    sink = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make('routes = ( { domain = "mx-a.test"; '
             'next_hop = "[127.0.0.4]"; } );')
    d.start()
    submit(d, ssl_ctx, ["bob@sub.mx-a.test"])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sink.rcpts() == ["bob@sub.mx-a.test"]


# -- smarthost mode --------------------------------------------------------

class Authenticator:
    """aiosmtpd authenticator accepting one login/password; remembers
    every attempt."""

    def __init__(self, login, password):
        self.login = login.encode()
        self.password = password.encode()
        self.seen = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        self.seen.append((mechanism, auth_data.login))
        ok = (auth_data.login == self.login and
              auth_data.password == self.password)
        # handled=False: aiosmtpd itself answers 535 to a failure
        return AuthResult(success=ok, handled=False)


def test_smarthost_starttls_auth(postern_factory, tls_files, workdir,
                                 ssl_ctx):
    """Everything goes to the smarthost: STARTTLS required and the
    certificate verified (relay.ca_file, the address 127.0.0.1 in its
    subjectAltName), AUTH with the password from a 0600 file, no MX
    lookup at all."""
    import ssl
    cert, key = tls_files
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    auth = Authenticator("relay@example.test", "upstream secret")
    sink = Sink("smarthost")
    port = free_port()
    c = Controller(sink, hostname="127.0.0.1", port=port, tls_context=ctx,
                   require_starttls=True, auth_required=True,
                   authenticator=auth)
    c.start()
    try:
        pw = os.path.join(workdir, "upstream.pw")
        with open(pw, "w") as f:
            f.write("upstream secret\n")
        os.chmod(pw, 0o600)
        d = postern_factory(start=False, extra=(
            f'relay = {{ mode = "smarthost"; ca_file = "{cert}";\n'
            f'  smarthost = {{ host = "127.0.0.1"; port = {port}; '
            f'tls = "require"; login = "relay@example.test"; '
            f'password_file = "{pw}"; }}; }};'))
        d.start()
        submit(d, ssl_ctx, ["bob@anywhere.test", "carol@elsewhere.test"])
        wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
        assert sorted(sink.rcpts()) == ["bob@anywhere.test",
                                        "carol@elsewhere.test"]
        assert len(sink.got) == 1          # one transaction for both
        assert auth.seen and auth.seen[-1][1] == b"relay@example.test"
        assert dkimpy_results(sink.got[0][2], d.dkim_records) == \
            [True, True]
        log = d.log()
        assert "relay=127.0.0.1[127.0.0.1]:" in log
        assert "tls=TLSv1.3 verified" in log or \
            "tls=TLSv1.2 verified" in log
        assert "upstream secret" not in log
    finally:
        c.stop()


# -- address families ---------------------------------------------------------

@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on loopback")
@pytest.mark.parametrize("ip,want", [("any", "::1"), ("ipv6", "::1"),
                                     ("ipv4", "127.0.0.2")])
def test_relay_ip_families(mxnet, ssl_ctx, ip, want):
    """An MX host with an A and an AAAA record: IPv6 first by default,
    only one family when relay.ip says so (large providers reject IPv6
    senders without matching reverse DNS)."""
    make, server, sinks, start_sink = mxnet
    for addr in ("127.0.0.2", "::1"):
        start_sink(addr)
    server.start({}, extra=["--mx-host=dual.test,mx.dual.test,10",
                            "--host-record=mx.dual.test,127.0.0.2,::1"])
    d = make(f'ip = "{ip}";')
    d.start()
    submit(d, ssl_ctx, ["bob@dual.test"])
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sinks[want].rcpts() == ["bob@dual.test"]
    other = "127.0.0.2" if want == "::1" else "::1"
    assert sinks[other].rcpts() == []


# -- expiry and SMTPUTF8 --------------------------------------------------------

def test_expired_recipient_fails_and_bounces(mxnet, ssl_ctx):
    """A recipient deferred (451 each time) past relay.retry.expire fails
    with 5.4.7, keeping the last reply, and is bounced to the sender."""
    make, server, sinks, start_sink = mxnet
    start_sink("127.0.0.2")
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make('routes = ( { domain = "example.test"; '
             'next_hop = "[127.0.0.4]"; } );',
             retry='first = "1s"; max = "1s"; expire = "3s";')
    d.start()
    qid = submit(d, ssl_ctx, ["later@mx-a.test"])
    wait_until(lambda: len(home.got) == 1, "the bounce", d, timeout=30)
    data = home.got[0][2].decode()
    assert "Final-Recipient: rfc822; later@mx-a.test\r\nAction: failed\r\n" \
        "Status: 5.4.7\r\n" in data
    assert "delivery time expired after" in data
    assert "last reply: 451 4.2.0 mailbox busy, try later" in data
    assert "relay.retry.expire" in d.log()
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert qid not in d.queue_ids()


def test_smtputf8_message_to_a_server_without_it(mxnet, ssl_ctx):
    """A message that needs SMTPUTF8 (a UTF-8 address) to a server that
    does not offer it fails for good with 553 5.6.7 (RFC 6531 3.5) and a
    clear reason, and bounces; nothing is sent to that server."""
    make, server, sinks, start_sink = mxnet
    mx = start_sink("127.0.0.2", enable_SMTPUTF8=False)
    home = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make('routes = ( { domain = "example.test"; '
             'next_hop = "[127.0.0.4]"; } );')
    d.start()
    msg = (f"From: {ALICE}\r\nTo: =?utf-8?q?J=C3=B6rg?= <jörg@mx-a.test>\r\n"
           "Subject: utf8\r\n\r\nHallo.\r\n").encode()
    qid = submit_smtplib(d, ssl_ctx, msg, rcpts=["jörg@mx-a.test"],
                         mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    wait_until(lambda: len(home.got) == 1, "the bounce", d)
    assert mx.got == []
    data = home.got[0][2]
    assert b"Status: 5.6.7" in data
    assert b"553 5.6.7" in data
    assert qid


def test_bounce_address_is_the_outbound_sender(mxnet, ssl_ctx):
    """domains.bounce_address replaces the submitter's address as MAIL
    FROM outbound (remote bounces reach one mailbox); From: and the
    signatures are untouched."""
    make, server, sinks, start_sink = mxnet
    mx = start_sink("127.0.0.2")
    server.start({}, extra=RECORDS)
    d = make()
    d.domain_options["example.test"] = \
        'bounce_address = "bounces@mail.example.test";'
    d.write_config()
    d.start()
    submit(d, ssl_ctx, ["bob@mx-a.test"])
    wait_until(lambda: len(mx.got) == 1, "the delivery", d)
    mail_from, _, data = mx.got[0]
    assert mail_from == "bounces@mail.example.test"
    assert f"From: {ALICE}".encode() in data
    assert dkimpy_results(data, d.dkim_records) == [True, True]


def test_route_tls_require_refuses_plaintext(mxnet, ssl_ctx):
    """A route with tls = "require" to a server without STARTTLS does not
    send the message in clear: deferred with the reason, never delivered
    there."""
    make, server, sinks, start_sink = mxnet
    sink = start_sink("127.0.0.4")
    server.start({}, extra=RECORDS)
    d = make('routes = ( { domain = "mx-a.test"; next_hop = "[127.0.0.4]"; '
             'tls = "require"; } );')
    d.start()
    qid = submit(d, ssl_ctx, ["bob@mx-a.test"])
    wait_until(lambda: (d.envelope(qid).get("attempts") or "0") != "0",
               "an attempt", d)
    env = d.envelope(qid)
    assert env.rcpts == [("pending", "bob@mx-a.test")]
    assert "STARTTLS" in env.replies["bob@mx-a.test"], env.replies
    assert sink.got == []


# -- a destination that is down ---------------------------------------------

def test_dead_domain_waits_others_go(mxnet, ssl_ctx):
    """In mx mode a destination is a recipient domain: once every MX
    address of down.test refused a connection, later messages for it are
    neither tried nor rewritten, a recipient of it beside one of up.test
    is deferred without a connection ("not tried"), and up.test's mail
    goes out as usual."""
    make, server, sinks, start_sink = mxnet
    up = start_sink("127.0.0.2")
    server.start({}, extra=["--mx-host=up.test,mx.up.test,10",
                            "--host-record=mx.up.test,127.0.0.2",
                            "--mx-host=down.test,mx.down.test,10",
                            "--host-record=mx.down.test,127.0.0.5"])
    d = make(retry='first = "1m"; max = "1h"; expire = "1d";')
    d.start()
    first = submit(d, ssl_ctx, ["bob@down.test"])
    wait_until(lambda: "relay=down.test destination down" in d.log(),
               "down.test to be found down", d)
    waiting = [submit(d, ssl_ctx, ["carol@down.test"], f"w{i}")
               for i in range(5)]
    mixed = submit(d, ssl_ctx, ["dave@up.test", "eve@down.test"])
    wait_until(lambda: "dave@up.test" in up.rcpts(), "up.test's delivery",
               d)
    wait_until(lambda: (d.envelope(mixed).get("attempts") or "0") != "0",
               "the mixed message's attempt written", d)
    env = d.envelope(mixed)
    assert env.rcpts == [("delivered", "dave@up.test"),
                         ("pending", "eve@down.test")], env
    assert "not tried: down.test is down" in \
        env.replies["eve@down.test"], env.replies
    time.sleep(1)
    for qid in waiting:
        assert d.envelope(qid).get("attempts") is None, d.envelope(qid)
    log = d.log()
    # one connection to down.test's MX: the first message's
    connects = re.findall(r".*connect host=\S*\[127\.0\.0\.5\].*", log)
    assert len(connects) == 1, "\n".join(connects)
    assert log.count("destination down") == 1, log[-3000:]
    assert d.envelope(first).get("attempts") == "1"
