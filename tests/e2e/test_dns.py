"""
DNS through a real server on loopback: dnsmasq on 127.0.0.1 and a free
port serves exactly the TXT records that `postern keys dns --plain`
prints, and the configuration says `resolver = "127.0.0.1@PORT";`.

- `keys dns --check` (common/dns.c over libunbound) says ok for every
  DKIM record and exits 0; a changed or missing DKIM record is DIFFERENT
  or MISSING and exits 1; a server that refuses is a temporary failure.
  SPF and DMARC follow keys/dnsrec.h's rules (an SPF record that lost
  our mechanism is DIFFERENT) but only warn: the exit status stays 0.
- A message submitted through the daemon verifies with dkimpy, whose
  public keys come from that DNS server through dnspython (rsa-sha256 and
  ed25519-sha256 signatures both).

libopendkim's own lookups (`keys verify` without --local) cannot be sent
to another port, so they are not tested here.
"""
import os
import time

import pytest

from conftest import run_postern
from helpers import (DNSMASQ, Dnsmasq, dkim_signatures, final_message,
                     free_udp_port, plain_records, submit_smtplib)

DOMAIN = "example.test"
ALICE = "alice@example.test"

try:
    import dkim
    import dns.resolver
    HAVE_PY = True
except ImportError:
    HAVE_PY = False

pytestmark = [
    pytest.mark.skipif(not os.access(DNSMASQ, os.X_OK),
                       reason=f"{DNSMASQ} missing (apt-get install "
                       "dnsmasq-base)"),
]
needs_py = pytest.mark.skipif(not HAVE_PY, reason="needs python3-dkim and "
                              "python3-dnspython")


@pytest.fixture
def dns_setup(postern_factory, workdir):
    """(daemon, not started, configured with the loopback resolver;
    Dnsmasq; {name: value} from `keys dns --plain`)."""
    port = free_udp_port()
    d = postern_factory(start=False,
                        extra=f'resolver = "127.0.0.1@{port}";')
    records = plain_records(d)
    # what conftest installed is what keys dns printed
    for name, value in d.dkim_records.items():
        assert records[name] == value, name
    server = Dnsmasq(port, workdir)
    yield d, server, records
    server.stop()


def check(d):
    """`keys dns --check`: (exit status, {name: rest of line})."""
    r = run_postern(["keys", "dns", "--check"], config=d.conf)
    lines = {}
    for line in r.stdout.splitlines():
        name, sep, rest = line.partition(": ")
        assert sep, f"not NAME: RESULT: {line!r}\n{r.stderr}"
        lines[name] = rest
    return r.returncode, lines, r


def dkim_names(records):
    return sorted(n for n in records if "._domainkey." in n)


def test_check_all_published(dns_setup):
    d, server, records = dns_setup
    server.start(records)
    rc, lines, r = check(d)
    assert rc == 0, r.stdout + r.stderr
    assert set(lines) == set(records), lines
    assert len(dkim_names(records)) == 2
    for name in dkim_names(records):
        assert lines[name] == "ok", (name, lines[name])
    assert lines[DOMAIN] == (f"ok (published: {records[DOMAIN]}; matches "
                             "the suggestion)")
    assert lines[f"_dmarc.{DOMAIN}"] == \
        f"ok (published: {records[f'_dmarc.{DOMAIN}']})"


def test_check_whitespace_and_tag_order_ignored(dns_setup):
    d, server, records = dns_setup
    recs = dict(records)
    rsa = [n for n in dkim_names(recs) if n.startswith("r1.")][0]
    tags = dict(t.strip().split("=", 1) for t in recs[rsa].split(";"))
    p = tags["p"]
    spaced = " ".join(p[i:i + 60] for i in range(0, len(p), 60))
    recs[rsa] = f"p={spaced} ;  k = rsa ;v=DKIM1"
    # SPF that authorizes more than the suggestion is ok; one that lost
    # our mechanism is DIFFERENT, only a warning (keys/dnsrec.h's rules)
    ours = records[DOMAIN].split()[1]
    recs[DOMAIN] = f"v=spf1 mx {ours.upper()} ~all"
    server.start(recs)
    rc, lines, r = check(d)
    assert rc == 0, r.stdout + r.stderr
    assert lines[rsa] == "ok"
    assert lines[DOMAIN].startswith(f"ok (published: {recs[DOMAIN]}; "
                                    "differs from the suggestion: v=spf1 ")
    recs[DOMAIN] = "v=spf1 mx -all"
    server.start(recs)
    rc, lines, r = check(d)
    assert rc == 0, r.stdout + r.stderr
    assert lines[DOMAIN] == (f"DIFFERENT (published: v=spf1 mx -all; does "
                             f"not authorize {ours}; suggested: "
                             f"{records[DOMAIN]})")
    # a wrong key type with the same p= is not the same record
    recs[rsa] = f"v=DKIM1; k=ed25519; p={p}"
    server.start(recs)
    rc, lines, r = check(d)
    assert rc == 1 and lines[rsa].startswith("DIFFERENT"), r.stdout


def test_check_changed_and_missing(dns_setup):
    d, server, records = dns_setup
    recs = dict(records)
    rsa = [n for n in dkim_names(recs) if n.startswith("r1.")][0]
    ed = [n for n in dkim_names(recs) if n.startswith("e1.")][0]
    v = recs[rsa]
    i = v.index("p=") + 40
    recs[rsa] = v[:i] + ("A" if v[i] != "A" else "B") + v[i + 1:]
    del recs[ed]
    del recs[f"_dmarc.{DOMAIN}"]
    server.start(recs)
    rc, lines, r = check(d)
    assert rc == 1, r.stdout + r.stderr
    assert lines[rsa] == (f"DIFFERENT (published: {recs[rsa]}; a "
                          "different key published)")
    assert lines[ed] == "MISSING"
    assert lines[f"_dmarc.{DOMAIN}"] == "MISSING"
    assert lines[DOMAIN].startswith("ok (published: v=spf1")

    # only the DKIM records count: SPF and DMARC missing alone is exit 0
    recs = {n: v for n, v in records.items() if "._domainkey." in n}
    server.start(recs)
    rc, lines, r = check(d)
    assert rc == 0, r.stdout
    assert lines[DOMAIN] == "MISSING"
    assert lines[f"_dmarc.{DOMAIN}"] == "MISSING"


def test_check_one_domain_and_plain_excluded(dns_setup):
    d, server, records = dns_setup
    server.start(records)
    r = run_postern(["keys", "dns", DOMAIN, "--check"], config=d.conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == len(records)
    r = run_postern(["keys", "dns", "--check", "--plain"], config=d.conf)
    assert r.returncode == 2
    assert "--check and --plain" in r.stderr


def test_check_server_refuses(dns_setup):
    d, server, records = dns_setup
    server.start({}, local=False)     # no zone, no upstream: REFUSED
    rc, lines, r = check(d)
    assert rc == 1, r.stdout + r.stderr
    assert set(lines) == set(records)
    for name in records:
        assert lines[name] == "temporary DNS failure", (name, lines)


def submit(d, ctx, msg):
    return submit_smtplib(d, ctx, msg)


@needs_py
def test_signatures_verify_with_keys_from_dns(dns_setup, ssl_ctx):
    d, server, records = dns_setup
    server.start(records)
    rc, lines, r = check(d)
    assert rc == 0, r.stdout + r.stderr
    d.start()
    msg = (f"From: {ALICE}\r\nTo: bob@example.com\r\n"
           "Subject: keys from DNS\r\n"
           "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
           f"Message-ID: <{time.time_ns()}@client.example.test>\r\n"
           "\r\nHello over loopback DNS.\r\n").encode()
    qid = submit(d, ssl_ctx, msg)
    final = final_message(d, qid)

    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = server.port
    asked = []

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        asked.append(name.rstrip("."))
        try:
            ans = res.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(ans[0].strings)

    sigs = dkim_signatures(final)
    assert sorted(s["a"] for s in sigs) == ["ed25519-sha256", "rsa-sha256"]
    for i, s in enumerate(sigs):
        ok = dkim.DKIM(final).verify(idx=i, dnsfunc=dnsfunc)
        assert ok, f"dkimpy with DNS keys: s={s['s']} a={s['a']} fails"
    assert sorted(asked) == dkim_names(records), asked

    # and the same check fails once the server serves another key
    recs = dict(records)
    rsa = [n for n in dkim_names(recs) if n.startswith("r1.")][0]
    recs[rsa] = recs[[n for n in dkim_names(recs) if n != rsa][0]]
    server.start(recs)
    idx = [i for i, s in enumerate(sigs) if s["a"] == "rsa-sha256"][0]
    try:
        ok = dkim.DKIM(final).verify(idx=idx, dnsfunc=dnsfunc)
    except Exception:       # dkimpy raises on a key of the wrong type
        ok = False
    assert not ok, "rsa-sha256 verified with the ed25519 key served"
