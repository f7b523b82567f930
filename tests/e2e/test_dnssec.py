"""DNSSEC validation in the daemon, against a signed zone on NSD.

The daemon forwards to NSD (`resolver`) and validates from the zone's DS
(`dnssec_trust_anchor`), as it validates from the root key in
production. The DANE decision is not there yet: what shows here is that
an answer that fails validation is never used (a bogus MX defers the
mail, where without validation it is delivered), that a validated
NXDOMAIN still refuses at RCPT, and that a trust anchor that cannot be
read stops the start. tests/unit/test_dnssec.c checks each answer's
security flag through common/dns itself.
"""
import os
import time

import pytest

from conftest import free_port
from helpers import expect, submission, submit_smtplib, wait_until
from test_dkim import serve_refuses
from test_relay_mx import ALICE, HAVE_AIOSMTPD, Sink

if HAVE_AIOSMTPD:
    from aiosmtpd.controller import Controller

pytestmark = pytest.mark.skipif(not HAVE_AIOSMTPD,
                                reason="python3-aiosmtpd missing")


@pytest.fixture
def sink():
    """A recording SMTP server on 127.0.0.1, where every MX of the test
    zones points."""
    s = Sink("127.0.0.1")
    s.port = free_port()
    c = Controller(s, hostname="127.0.0.1", port=s.port)
    c.start()
    yield s
    c.stop()


def daemon(postern_factory, zone, sink, validate=True):
    return postern_factory(extra=(
        f'resolver = "{zone.resolver}";\n'
        f'dnssec_trust_anchor = "{zone.anchor}";\n'
        f'dnssec_validation = {"true" if validate else "false"};\n'
        f'relay = {{ port = {sink.port}; tls = "none"; ip = "ipv4"; '
        f'retry = {{ first = "1s"; max = "1s"; }}; }};'))


def message(rcpts):
    return (f"From: {ALICE}\r\nTo: {', '.join(rcpts)}\r\n"
            "Subject: dnssec\r\n"
            "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{time.time_ns()}@client.example.test>\r\n"
            "\r\nSigned or not.\r\n").encode()


RCPTS = ["bob@dane.test", "carol@plain.test", "dave@bogus.dane.test"]


@pytest.mark.parametrize("validate", [True, False],
                         ids=["validating", "no-anchor"])
def test_bogus_mx_defers_secure_and_insecure_deliver(
        postern_factory, signed_zone, sink, ssl_ctx, validate):
    """Secure (dane.test) and insecure (plain.test) domains are
    delivered; the badly signed bogus.dane.test, whose MX NSD serves all
    the same, waits while the daemon validates, and is delivered only
    when validation is off (dnssec_validation = false)."""
    d = daemon(postern_factory, signed_zone, sink, validate)
    qid = submit_smtplib(d, ssl_ctx, message(RCPTS), sender=ALICE,
                         rcpts=RCPTS, login=ALICE)
    if not validate:
        wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
        assert sorted(sink.rcpts()) == sorted(RCPTS)
        return
    wait_until(lambda: len(sink.rcpts()) == 2 and
               f"id={qid} to=<dave@bogus.dane.test>" in d.log(),
               "two deliveries and the bogus one deferred", d)
    assert sorted(sink.rcpts()) == ["bob@dane.test", "carol@plain.test"]
    assert d.queue_ids() == [qid]
    log = d.log()
    assert "MX lookup of bogus.dane.test: temporary failure" in log
    assert "status=deferred" in log


def test_rcpt_refuses_validated_nxdomain(postern_factory, signed_zone, sink,
                                         ssl_ctx):
    """At RCPT a securely denied domain (NSEC-proven NXDOMAIN) and an
    unsigned one that does not exist are refused; the bogus domain is
    accepted and left to delivery, never judged from forged data."""
    d = daemon(postern_factory, signed_zone, sink)
    c = submission(d, ssl_ctx, login=ALICE)
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<x@nothere.dane.test>"), 550, "5.1.2", conn=c)
    expect(c.cmd("RCPT TO:<x@nothere.plain.test>"), 550, "5.1.2", conn=c)
    expect(c.cmd("RCPT TO:<x@bogus.dane.test>"), 250, "2.1.5", conn=c)
    expect(c.cmd("RCPT TO:<x@dane.test>"), 250, "2.1.5", conn=c)
    c.close()


def test_unreadable_trust_anchor_stops_start(postern_factory, workdir):
    """The anchor is read once, at start: a file that is not there, or
    holds no DS or DNSKEY record, stops `postern serve` with its name."""
    d = postern_factory(start=False, extra=(
        'dnssec_trust_anchor = "/nonexistent/root.key";'))
    serve_refuses(d, "dns: trust anchor /nonexistent/root.key: "
                  "No such file or directory")
    bad = os.path.join(workdir, "anchor")
    with open(bad, "w") as f:
        f.write("dane.test. IN DS not a DS record\n")
    d = postern_factory(start=False, extra=(
        f'dnssec_trust_anchor = "{bad}";'))
    serve_refuses(d, f"dns: trust anchor {bad}: no DS or DNSKEY record")


def test_zone_serves_the_certificates_tlsa(signed_zone, tls_files):
    """The fixture's contract for the DANE tests to come: NSD serves
    _25._tcp.mx.dane.test. TLSA 3 1 1 with the SHA-256 of the session
    certificate's public key, signed (an RRSIG beside it), asked with
    dnspython, not through Postern."""
    import dns.message
    import dns.query
    import dns.rdatatype
    from dnssec import spki_sha256
    q = dns.message.make_query("_25._tcp.mx.dane.test.", "TLSA",
                               want_dnssec=True)
    r = dns.query.udp(q, "127.0.0.1", port=signed_zone.port, timeout=5)
    types = {rrset.rdtype for rrset in r.answer}
    assert types == {dns.rdatatype.TLSA, dns.rdatatype.RRSIG}, r
    (tlsa,) = [rd for rrset in r.answer for rd in rrset
               if rrset.rdtype == dns.rdatatype.TLSA]
    assert (tlsa.usage, tlsa.selector, tlsa.mtype) == (3, 1, 1)
    assert tlsa.cert.hex() == spki_sha256(tls_files[0])
