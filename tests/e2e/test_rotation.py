"""
DKIM key rotation without a signing gap, against a real DNS server
(dnsmasq on a loopback port; the daemon's `resolver` points at it and
`dkim_check_interval` is 1 second).

- `postern keys rotate` makes the next selectors' keys as pending (0600,
  the state file 0600), prints their records, refuses a second rotation
  while one is pending; `keys status` and `keys dns` show every selector
  with its state; `keys sign` uses the active ones unless -s names one.
- The daemon keeps signing with the old selectors while the new records
  are absent, and while a different key is published; from the first
  check after the exact records appear it signs with the new ones, the
  old ones become retiring (on disk: a restart keeps it), and every
  signature verifies with dkimpy (keys from that DNS server) and
  Mail::DKIM.
- `keys remove` forgets only retiring selectors, never one the
  configuration still lists; a damaged state file stops the daemon with
  the file and line named.
"""
import os
import stat
import subprocess
import time

import pytest

from conftest import POSTERN, ROOT, run_postern
from helpers import (DNSMASQ, Dnsmasq, dkim_signatures, dkimpy_results,
                     final_message, free_udp_port, mail_dkim_results,
                     plain_records, plant_retiring, submit_smtplib)

DOMAIN = "example.test"
ALICE = "alice@example.test"

pytestmark = pytest.mark.skipif(
    not os.access(DNSMASQ, os.X_OK),
    reason=f"{DNSMASQ} missing (apt-get install dnsmasq-base)")


def status(d):
    """{selector: (algorithm, state)} from `keys status`."""
    r = run_postern(["keys", "status", DOMAIN], config=d.conf)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == DOMAIN, r.stdout
    out = {}
    for line in lines[1:]:
        sel, alg, state = line.split()[:3]
        out[sel] = (alg, state)
    return out


def rotate(d):
    """Run `keys rotate`; returns (new rsa selector, new ed25519 one)."""
    r = run_postern(["keys", "rotate", DOMAIN], config=d.conf)
    assert r.returncode == 0, r.stdout + r.stderr
    month = time.strftime("%Y%m", time.gmtime())
    new = (f"r{month}", f"e{month}")
    for sel in new:
        key = os.path.join(d.state_dir, "keys", DOMAIN, sel + ".key")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600, key
        assert f"selector {sel}:" in r.stdout and "pending" in r.stdout
        assert f"{sel}._domainkey.{DOMAIN}. IN TXT" in r.stdout
    assert "keeps signing with r1 e1" in r.stdout, r.stdout
    st = os.path.join(d.state_dir, "keys", DOMAIN, "state")
    assert stat.S_IMODE(os.stat(st).st_mode) == 0o600
    return new


def submit(d, ctx, subject):
    msg = (f"From: {ALICE}\r\nTo: bob@example.com\r\n"
           f"Subject: {subject}\r\n"
           "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
           f"Message-ID: <{time.time_ns()}@client.example.test>\r\n"
           "\r\nRotation test.\r\n").encode()
    qid = submit_smtplib(d, ctx, msg)
    return final_message(d, qid)


def sign(d, *args):
    """`keys sign` in bytes (the output has CRLF line ends)."""
    msg = (f"From: {ALICE}\nTo: bob@example.com\nSubject: s\n\nx\n")
    p = subprocess.run([POSTERN, "keys", "sign", DOMAIN] + list(args) +
                       ["-c", d.conf], input=msg.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def selectors_of(msg):
    return [(s["a"], s["s"]) for s in dkim_signatures(msg)]


def wait_log(d, text, count=1, timeout=20):
    deadline = time.time() + timeout
    while d.log().count(text) < count:
        assert d.alive(), d.describe()
        assert time.time() < deadline, f"no {text!r} in the log:\n" + \
            d.log()[-3000:]
        time.sleep(0.1)


@pytest.fixture
def rot(postern_factory, workdir):
    port = free_udp_port()
    d = postern_factory(start=False,
                        extra=f'resolver = "127.0.0.1@{port}";\n'
                              'dkim_check_interval = "1s";')
    server = Dnsmasq(port, workdir)
    yield d, server
    server.stop()


def test_rotate_cli(rot):
    d, _ = rot
    before = plain_records(d)
    rsa, ed = rotate(d)
    assert status(d) == {
        "r1": ("rsa-sha256", "active"), "e1": ("ed25519-sha256", "active"),
        rsa: ("rsa-sha256", "pending"), ed: ("ed25519-sha256", "pending")}

    # keys dns prints the pending records too, with their state
    after = plain_records(d)
    assert set(after) == set(before) | {f"{rsa}._domainkey.{DOMAIN}",
                                        f"{ed}._domainkey.{DOMAIN}"}
    r = run_postern(["keys", "dns"], config=d.conf)
    assert f"selector {rsa}: rsa-sha256, 2048 bits, pending" in r.stdout
    assert "selector r1: rsa-sha256, 2048 bits, active" in r.stdout

    # one rotation at a time
    r = run_postern(["keys", "rotate", DOMAIN], config=d.conf)
    assert r.returncode == 1
    assert f"selector {rsa} (rsa-sha256) is already pending" in r.stderr

    # sign: the active selectors, or the one -s names (pending included)
    assert selectors_of(sign(d)) == [("rsa-sha256", "r1"),
                                     ("ed25519-sha256", "e1")]
    signed = sign(d, "-s", rsa)
    assert selectors_of(signed) == [("rsa-sha256", rsa)]
    assert dkimpy_results(signed, after) == [True]

    # nothing can be removed yet: only retiring selectors can
    r = run_postern(["keys", "remove", DOMAIN, rsa], config=d.conf)
    assert r.returncode == 1
    assert f"selector {rsa} is pending; only retiring" in r.stderr


def test_daemon_switches_only_when_published(rot, ssl_ctx, workdir):
    d, server = rot
    old = plain_records(d)
    rsa, ed = rotate(d)
    full = plain_records(d)
    rsa_name = f"{rsa}._domainkey.{DOMAIN}"
    ed_name = f"{ed}._domainkey.{DOMAIN}"

    # 1. the new records are absent: the old selectors sign
    server.start(old)
    d.start()
    wait_log(d, f"pending selector {rsa}: {rsa_name} is not published "
             "yet (NXDOMAIN)")
    wait_log(d, f"pending selector {ed}: {ed_name} is not published yet")
    msg = submit(d, ssl_ctx, "absent")
    assert selectors_of(msg) == [("rsa-sha256", "r1"),
                                 ("ed25519-sha256", "e1")]
    assert dkimpy_results(msg, old) == [True, True]

    # 2. different keys are published: still the old selectors
    wrong = dict(old)
    wrong[rsa_name] = old[f"r1._domainkey.{DOMAIN}"]
    wrong[ed_name] = old[f"e1._domainkey.{DOMAIN}"]
    server.start(wrong)
    wait_log(d, f"pending selector {rsa}: {rsa_name} publishes a "
             "different key")
    wait_log(d, f"pending selector {ed}: {ed_name} publishes a "
             "different key")
    msg = submit(d, ssl_ctx, "wrong")
    assert selectors_of(msg) == [("rsa-sha256", "r1"),
                                 ("ed25519-sha256", "e1")]
    assert status(d)[rsa] == ("rsa-sha256", "pending")

    # 3. the exact records appear: switched from the next check on
    server.start(full)
    wait_log(d, f"selector {rsa} is published with its exact key")
    wait_log(d, f"selector {ed} is published with its exact key")
    msg = submit(d, ssl_ctx, "published")
    assert selectors_of(msg) == [("rsa-sha256", rsa), ("ed25519-sha256", ed)]
    assert dkimpy_results(msg, full) == [True, True]
    got = mail_dkim_results(msg, full, workdir)
    rsa_results = [g for g in got if g[0] == "rsa-sha256"]
    assert [g[2:4] for g in rsa_results] == [(rsa, "pass")], got
    assert status(d) == {
        "r1": ("rsa-sha256", "retiring"), "e1": ("ed25519-sha256", "retiring"),
        rsa: ("rsa-sha256", "active"), ed: ("ed25519-sha256", "active")}
    assert "selector r1 is retiring, was active" in d.log()

    # keys dns keeps printing the retiring records
    assert plain_records(d) == full

    # 4. a restart keeps the new state
    d.restart()
    msg = submit(d, ssl_ctx, "after restart")
    assert selectors_of(msg) == [("rsa-sha256", rsa), ("ed25519-sha256", ed)]

    # 5. remove: not while the configuration lists r1
    r = run_postern(["keys", "remove", DOMAIN, "r1"], config=d.conf)
    assert r.returncode == 1
    assert "selector r1 is still in the configuration (line" in r.stderr
    r = run_postern(["keys", "remove", DOMAIN, rsa], config=d.conf)
    assert r.returncode == 1 and "is active; only retiring" in r.stderr


def test_remove_retiring(postern_factory):
    """A retiring selector only in the state file is forgotten and its key
    deleted; keys dns stops printing it."""
    d = postern_factory(start=False)
    old = plant_retiring(d, DOMAIN)
    assert status(d)["r0"] == ("rsa-sha256", "retiring")
    assert f"r0._domainkey.{DOMAIN}" in plain_records(d)
    r = run_postern(["keys", "remove", DOMAIN, "r0"], config=d.conf)
    assert r.returncode == 0, r.stderr
    assert f"Delete its DNS record now: r0._domainkey.{DOMAIN} TXT" in r.stdout
    assert not os.path.exists(old)
    assert "r0" not in status(d)
    assert f"r0._domainkey.{DOMAIN}" not in plain_records(d)


def test_damaged_state_refused(postern_factory):
    d = postern_factory(start=False)
    path = os.path.join(d.state_dir, "keys", DOMAIN, "state")
    with open(path, "w") as f:
        f.write("postern-dkim-state 1\nselector r9 rsa-sha256 soon 1 /x\n")
    r = run_postern(["check-config"], config=d.conf)
    assert r.returncode == 1
    assert f"{path}: line 2: state is not active, pending or retiring" \
        in r.stderr
    r = run_postern(["serve"], config=d.conf)
    assert r.returncode == 1
    assert f"{path}: line 2" in r.stderr
