"""
The inbound TLS policy (issue 15): both submission listeners, 465 with
implicit TLS and 587 after STARTTLS, speak TLS 1.2 or newer with ECDHE key
exchange and AEAD ciphers only by default; tls.min_version, tls.ciphers
and tls.ciphersuites change that, a reload included; a cipher list OpenSSL
selects nothing from is a configuration error with its line.

The clients are Python's ssl module (OpenSSL underneath, nothing of ours)
and testssl.sh, which grades each listener the way an auditor would. A
refused client must be refused by the server, for the expected reason:
the weak clients lower OpenSSL's security level so that they really offer
TLS 1.1 or the CBC suite, and the test checks the server's alert.
"""
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import warnings

import pytest

from conftest import run_postern, self_signed
from helpers import SMTP, client_context, expect, wait_until

LISTENERS = ("smtps", "submission")

# The server's alerts: protocol_version (70) for a version it does not
# speak, handshake_failure (40) when no suite is shared.
PROTOCOL_VERSION = "TLSV1_ALERT_PROTOCOL_VERSION"
HANDSHAKE_FAILURE = "SSLV3_ALERT_HANDSHAKE_FAILURE"


def client(cafile, version=None, ciphers=None, seclevel0=False):
    """A verifying client context; version: the only TLS version it
    offers (ssl.TLSVersion); ciphers: its TLS 1.2 list."""
    ctx = client_context(cafile)
    if version is not None:
        with warnings.catch_warnings():
            # TLS 1.1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
    if ciphers is not None or seclevel0:
        # OpenSSL 3 refuses TLS 1.1 and some old suites at the default
        # security level before sending anything: lower it so the
        # ClientHello really carries them and the server decides.
        ctx.set_ciphers((ciphers or "DEFAULT") +
                        (":@SECLEVEL=0" if seclevel0 else ""))
    return ctx


def handshake(d, listener, ctx):
    """TLS with ctx on listener (smtps: at connect; submission: after
    EHLO and STARTTLS); then EHLO over it. (version, cipher), or the
    ssl.SSLError of the handshake."""
    c = None
    try:
        if listener == "smtps":
            c = SMTP(d.address(listener), d.port(listener), ctx,
                     implicit=True)
        else:
            c = SMTP(d.address(listener), d.port(listener), ctx)
            c.greeting()
            c.ehlo()
            c.starttls()
        if listener == "smtps":
            c.greeting()
        expect(c.ehlo(), 250, conn=c)
        return c.sock.version(), c.sock.cipher()[0]
    except ssl.SSLError as e:
        return e
    finally:
        if c is not None:
            c.close()


def refused(result, reason):
    """Assert the handshake failed with the server's alert reason."""
    assert isinstance(result, ssl.SSLError), \
        f"handshake succeeded: {result}"
    assert result.reason == reason, f"{result.reason}: {result}"


@pytest.mark.parametrize("listener", LISTENERS)
def test_default_policy(postern_factory, tls_files, listener):
    """TLS 1.1, CBC suites (with and without ECDHE) and static-RSA key
    exchange are refused on both listeners; ECDHE with AES-GCM or
    ChaCha20 over TLS 1.2, and TLS 1.3, are accepted."""
    d = postern_factory()
    cafile = tls_files[0]
    v12 = ssl.TLSVersion.TLSv1_2
    refused(handshake(d, listener, client(
        cafile, ssl.TLSVersion.TLSv1_1, seclevel0=True)), PROTOCOL_VERSION)
    for weak in ("AES128-SHA", "ECDHE-RSA-AES128-SHA",
                 "ECDHE-RSA-AES256-SHA384", "AES128-GCM-SHA256",
                 "AES256-GCM-SHA384"):
        refused(handshake(d, listener, client(cafile, v12, weak,
                                              seclevel0=True)),
                HANDSHAKE_FAILURE)
    for good in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                 "ECDHE-RSA-CHACHA20-POLY1305"):
        assert handshake(d, listener, client(cafile, v12, good)) == \
            ("TLSv1.2", good)
    version, _ = handshake(d, listener, client(cafile))
    assert version == "TLSv1.3"


def test_server_order_prefers_chacha_for_who_asks(postern_factory, tls_files):
    """The server's order (AES-GCM first), except for a client whose
    first choice is ChaCha20 (SSL_OP_PRIORITIZE_CHACHA)."""
    d = postern_factory()
    v12 = ssl.TLSVersion.TLSv1_2
    assert handshake(d, "smtps", client(
        tls_files[0], v12,
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")) == \
        ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    assert handshake(d, "smtps", client(
        tls_files[0], v12,
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256")) == \
        ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305")


@pytest.mark.parametrize("listener", LISTENERS)
def test_min_version_13(postern_factory, tls_files, listener):
    """tls.min_version = "1.3": a TLS 1.2 client, even with the best
    suite, gets protocol_version; TLS 1.3 works."""
    d = postern_factory(tls_options='min_version = "1.3";')
    refused(handshake(d, listener, client(
        tls_files[0], ssl.TLSVersion.TLSv1_2,
        "ECDHE-RSA-AES128-GCM-SHA256")), PROTOCOL_VERSION)
    assert handshake(d, listener, client(
        tls_files[0], ssl.TLSVersion.TLSv1_3))[0] == "TLSv1.3"


@pytest.mark.parametrize("listener", LISTENERS)
def test_custom_ciphers_honoured(postern_factory, tls_files, listener):
    """tls.ciphers replaces the list: only its one suite is accepted,
    also one the default leaves out (a CBC suite, for an old client)."""
    d = postern_factory(tls_options='ciphers = "ECDHE-RSA-AES128-SHA";')
    v12 = ssl.TLSVersion.TLSv1_2
    assert handshake(d, listener, client(
        tls_files[0], v12, "ECDHE-RSA-AES128-SHA")) == \
        ("TLSv1.2", "ECDHE-RSA-AES128-SHA")
    refused(handshake(d, listener, client(
        tls_files[0], v12, "ECDHE-RSA-AES128-GCM-SHA256")),
        HANDSHAKE_FAILURE)


def test_bad_cipher_list_is_a_config_error(postern_factory):
    """check-config names the file and line of a list OpenSSL selects
    nothing from; a reload to it is refused and the policy stays."""
    d = postern_factory(start=False,
                        tls_options='\n  ciphers = "NO-SUCH-CIPHER";')
    r = run_postern(["check-config", "-c", d.conf])
    assert r.returncode == 1, r.stdout + r.stderr
    lines = d.config_text().splitlines()
    line = 1 + next(i for i, l in enumerate(lines) if "NO-SUCH" in l)
    assert re.search(
        rf"^{re.escape(d.conf)}:{line}: tls\.ciphers: OpenSSL selects no "
        r'TLS 1\.2 cipher from "NO-SUCH-CIPHER"', r.stderr, re.M), r.stderr


def test_policy_follows_reload(postern_factory, tls_files):
    """SIGHUP with a new policy: sessions that start afterwards get it on
    both listeners, even when the daemon (no longer root) cannot read
    the key again and keeps the certificate it loaded at start. A reload
    to a bad list is refused and the policy in force stays."""
    d = postern_factory()
    v12 = ssl.TLSVersion.TLSv1_2
    cbc = client(tls_files[0], v12, "ECDHE-RSA-AES128-SHA")
    for listener in LISTENERS:
        refused(handshake(d, listener, cbc), HANDSHAKE_FAILURE)
    wait_until(lambda: "ready hostname=" in d.log(), "the daemon ready", d)
    d.tls_options = 'ciphers = "ECDHE-RSA-AES128-SHA";'
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded " in d.log(), "the reload", d)
    if os.geteuid() == 0:
        # the key is root's, mode 0600, and the daemon runs as nobody
        assert "keeping the certificate loaded at start" in d.log()
    for listener in LISTENERS:
        assert handshake(d, listener, cbc) == \
            ("TLSv1.2", "ECDHE-RSA-AES128-SHA"), listener
    d.tls_options = 'ciphers = "NO-SUCH-CIPHER";'
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "refused" in d.log(), "the refused reload", d)
    assert "tls.ciphers: OpenSSL selects no" in d.log()
    assert handshake(d, "smtps", cbc) == ("TLSv1.2", "ECDHE-RSA-AES128-SHA")



# -- testssl.sh ---------------------------------------------------------------

# Debian installs it as testssl; upstream's name is testssl.sh.
TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")

# What testssl.sh is asked for: protocols (-p), cipher categories (-s),
# the server's preferences and order (-P), certificate and defaults (-S),
# every vulnerability check (-U). No DNS (the test certificate's name is
# in no DNS). About 70 s per listener on loopback, 90 s against the
# sanitized build; -S alone takes 45 s of it, but the certificate's
# findings are part of the grade.
TESTSSL_ARGS = ["--quiet", "--color", "0", "--warnings", "off",
                "--nodns", "none", "--connect-timeout", "10",
                "--openssl-timeout", "10", "-p", "-s", "-P", "-S", "-U"]

# Findings that are about the test certificate being self-signed, and no
# CA's: a certificate from a CA does not have them. Nothing else is exempt.
EXEMPT = {
    # CRITICAL "failed (self signed).": no CA in the trust store issued it
    "cert_chain_of_trust",
    # HIGH "Neither CRL nor OCSP URI provided": only a CA writes those
    # into the certificates it issues
    "cert_revocation",
}

# Findings that must be there, so that a scan which skipped a check (or
# stopped early) cannot pass for one that found nothing.
EXPECTED = ("heartbleed", "CCS", "ROBOT", "secure_renego",
            "secure_client_renego", "CRIME_TLS", "POODLE_SSL",
            "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST",
            "LUCKY13", "RC4", "cipherlist_NULL", "cipherlist_aNULL",
            "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA",
            "cipherlist_AVERAGE", "cipher_order", "cert_trust",
            "cert_chain_of_trust", "cert_expirationStatus")


def weakness(entry):
    """Does a testssl finding report a weakness?"""
    finding = entry.get("finding", "")
    return (entry.get("severity") in ("HIGH", "CRITICAL") or
            re.search(r"(?<!not )\bVULNERABLE\b", finding, re.I) is not None
            or "NOT ok" in finding)


@pytest.fixture(scope="module")
def testssl_cert(tmp_path_factory):
    """A self-signed certificate valid for 90 days, as one from Let's
    Encrypt is: the session's is valid for 2, which testssl.sh rightly
    calls expiring."""
    return self_signed(str(tmp_path_factory.mktemp("testssl")), days=90)


@pytest.mark.skipif(TESTSSL is None,
                    reason="testssl.sh is not installed (Debian package "
                    "testssl.sh; contrib/install-deps.sh installs it): "
                    "the listeners' TLS policy is NOT graded")
@pytest.mark.parametrize("listener", LISTENERS)
def test_testssl(postern_factory, workdir, testssl_cert, listener):
    """testssl.sh grades the listener (465 at connect, 587 with -t smtp):
    TLS 1.2 and 1.3 only, no finding VULNERABLE, NOT ok, HIGH or
    CRITICAL but the self-signed certificate's (EXEMPT)."""
    d = postern_factory(start=False)
    d.cert, d.key = testssl_cert
    d.write_config()
    d.start()
    out = os.path.join(workdir, f"testssl-{listener}.json")
    cmd = [TESTSSL] + TESTSSL_ARGS + ["--jsonfile", out]
    if listener == "submission":
        cmd += ["-t", "smtp"]
    cmd.append(f"{d.address(listener)}:{d.port(listener)}")
    start = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300, cwd=workdir)
    print(f"testssl.sh {listener}: {time.monotonic() - start:.0f} s")
    assert os.path.exists(out), p.stdout[-5000:]
    with open(out) as f:
        findings = json.load(f)
    by_id = {e["id"]: e for e in findings}
    report = "\n".join(f'{e["id"]} {e["severity"]} {e["finding"]}'
                       for e in findings)
    assert not [e for e in findings if e["severity"] == "FATAL" or
                e["id"] == "scanProblem"], report + "\n" + p.stdout[-3000:]
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[proto]["finding"] == "not offered", report
    for proto in ("TLS1_2", "TLS1_3"):
        assert by_id[proto]["finding"].startswith("offered"), report
    missing = [i for i in EXPECTED if i not in by_id]
    assert not missing, f"no finding {missing}:\n{report}"
    # the exemptions still say what they are exempt for
    assert "self signed" in by_id["cert_chain_of_trust"]["finding"], report
    bad = [f'{e["id"]} {e["severity"]} {e["finding"]}' for e in findings
           if weakness(e) and e["id"] not in EXEMPT]
    assert not bad, "\n".join(bad) + "\n--- all findings:\n" + report
