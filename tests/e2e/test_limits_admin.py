"""
Limits an admin can see and lift (issue 14): `postern limits show
[--json]` and `postern limits unlock IP|LOGIN` against real lockouts made
by failing AUTH with smtplib, and real counts made by sending mail,
through the daemon's control socket (submit/limits.h, daemon/control.h).

Loopback is exempt by default, so every daemon here sets
limits.exempt_networks to none: 127.0.0.1 is then an address like any
other, and the one the clients come from.
"""
import json
import os
import re
import smtplib
import subprocess
import time

from conftest import POSTERN, run_postern
from helpers import USERS, make_message, submit_smtplib, wait_until

ALICE = "alice@example.test"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# A uid that is neither root nor the daemon's user (run as root, the test
# daemons become `nobody`, who may use the control socket), with no
# passwd entry.
OUTSIDER = "4242"


def daemon(postern_factory, **kw):
    """A started daemon with these limits, once its control socket is
    served: the fixture's readiness is the TCP listeners', and the
    socket may come a moment later (the daemon logs "ready" after
    opening everything)."""
    d = postern_factory(limits=limits(**kw))
    path = os.path.join(d.state_dir, "control")
    wait_until(lambda: "ready hostname=" in d.log() and os.path.exists(path),
               "the control socket", d)
    return d


def limits(**kw):
    kw.setdefault("exempt_networks", "[ ]")
    kw.setdefault("auth_failure_window", '"1d"')
    kw.setdefault("auth_failure_delay", '"0"')
    kw.setdefault("auth_lockout", '"1h"')
    return kw


def client(d, ssl_ctx):
    """smtplib on the submission listener after EHLO, STARTTLS, EHLO."""
    s = smtplib.SMTP("127.0.0.1", d.port("submission"), timeout=30)
    s.ehlo()
    s.starttls(context=ssl_ctx)
    s.ehlo()
    return s


def auth_plain(s, login, password):
    """One AUTH PLAIN exchange (smtplib's login() would try LOGIN too
    after a failure, two failures for one call); its reply code."""
    s.user, s.password = login, password
    try:
        code, _ = s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        code = e.smtp_code
    return code


def fail_auth(d, ssl_ctx, login, n):
    """n wrong passwords for login from 127.0.0.1, each answered 535."""
    s = client(d, ssl_ctx)
    for _ in range(n):
        assert auth_plain(s, login, "not-the-password") == 535
    s.close()


def limits_cmd(d, *args):
    return run_postern(["limits"] + list(args), config=d.conf)


def show_json(d):
    r = limits_cmd(d, "show", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    ans = json.loads(r.stdout)
    assert set(ans) == {"lockouts", "near"}, ans
    return ans


def lockout(ans, kind, key):
    found = [x for x in ans["lockouts"]
             if x["kind"] == kind and x["key"] == key]
    assert len(found) <= 1, ans
    return found[0] if found else None


def one_line_error(r):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("postern: "), r.stderr
    return lines[0]


def test_ip_lockout_show_and_unlock(postern_factory, ssl_ctx):
    """Three wrong passwords from 127.0.0.1 lock it out (421 at the
    greeting); show lists the lockout with its end in the future (JSON and
    text); unlock lifts it at once (AUTH 235 right after), show no longer
    lists it, and a second unlock says it was not locked out. Each request
    is logged by the daemon."""
    d = daemon(postern_factory, auth_failures_per_ip=3,
               auth_failures_per_login=100)
    fail_auth(d, ssl_ctx, "mallory@example.test", 3)
    try:
        smtplib.SMTP("127.0.0.1", d.port("submission"), timeout=30)
        raise AssertionError("a locked-out address was greeted")
    except smtplib.SMTPConnectError as e:
        assert e.smtp_code == 421, e

    ans = show_json(d)
    lock = lockout(ans, "ip", "127.0.0.1")
    assert lock is not None, ans
    assert lock["until"] > time.time() + 3000, lock     # auth_lockout 1h
    assert ISO.match(lock["until_utc"]), lock
    assert lock["until_utc"] == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(lock["until"]))
    assert lock["failures"] == 3, lock
    # mallory's 3 of 100 are not near their limit; nothing else is
    assert ans["near"] == [], ans

    r = limits_cmd(d, "show")
    assert r.returncode == 0, r.stderr
    assert "lockouts:" in r.stdout and "127.0.0.1" in r.stdout, r.stdout
    assert time.strftime("%Y-%m-%d %H:%M:%S",
                         time.gmtime(lock["until"])) in r.stdout, r.stdout

    r = limits_cmd(d, "unlock", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "unlocked 127.0.0.1\n"
    s = client(d, ssl_ctx)          # greeted again: no 421
    assert auth_plain(s, ALICE, USERS[ALICE]) == 235
    s.quit()
    assert lockout(show_json(d), "ip", "127.0.0.1") is None

    r = limits_cmd(d, "unlock", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "127.0.0.1 was not locked out\n"
    # the failures were forgotten: one more does not lock it out again
    fail_auth(d, ssl_ctx, "mallory@example.test", 1)
    assert lockout(show_json(d), "ip", "127.0.0.1") is None

    wait_until(lambda: d.log().count(
        "control: uid=0 (root): limits.unlock 127.0.0.1") == 2,
        "the control log lines", d)
    log = d.log()
    assert "control: uid=0 (root): limits.show" in log, log
    assert re.search(r"limits: unlocked ip 127\.0\.0\.1 \(locked until "
                     r"\d\d:\d\d:\d\d UTC\)", log), log
    assert "limits: ip 127.0.0.1 was not locked out" in log, log


def test_login_lockout_show_and_unlock(postern_factory, ssl_ctx):
    """Wrong passwords for alice lock the login out (454 even with the
    right password); show lists kind login; unlock ALICE (any case) lifts
    it and alice authenticates at once."""
    d = daemon(postern_factory, auth_failures_per_ip=100,
               auth_failures_per_login=3)
    fail_auth(d, ssl_ctx, ALICE, 3)
    s = client(d, ssl_ctx)
    assert auth_plain(s, ALICE, USERS[ALICE]) == 454
    s.close()

    ans = show_json(d)
    lock = lockout(ans, "login", ALICE)
    assert lock is not None, ans
    assert lock["until"] > time.time(), lock
    assert lock["failures"] == 3, lock
    assert lockout(ans, "ip", "127.0.0.1") is None, ans
    r = limits_cmd(d, "show")
    assert r.returncode == 0, r.stderr
    assert ALICE in r.stdout and "login" in r.stdout, r.stdout

    r = limits_cmd(d, "unlock", ALICE.upper())
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"unlocked {ALICE.upper()}\n"
    s = client(d, ssl_ctx)
    assert auth_plain(s, ALICE, USERS[ALICE]) == 235
    s.quit()
    assert show_json(d)["lockouts"] == []
    wait_until(lambda: f"control: uid=0 (root): limits.unlock "
               f"{ALICE.upper()}" in d.log(), "the control log line", d)
    assert f"limits: unlocked login {ALICE} (locked until" in d.log()


def test_near_limit_after_messages(postern_factory, ssl_ctx):
    """4 messages of limits.user_messages_per_hour = 5 (80 %): alice is
    near her limit, with the setting's name and the hour's end; 3 of 5
    would not be."""
    d = daemon(postern_factory, user_messages_per_hour=5)
    # all in one hour (the windows are aligned to the hour)
    if time.time() % 3600 > 3540:
        time.sleep(3600 - time.time() % 3600 + 1)
    for i in range(3):
        submit_smtplib(d, ssl_ctx, make_message(ALICE, ["bob@example.com"],
                                                subject=f"n{i}"))
    assert show_json(d)["near"] == []
    submit_smtplib(d, ssl_ctx, make_message(ALICE, ["bob@example.com"],
                                            subject="n3"))
    ans = show_json(d)
    assert ans["lockouts"] == []
    near = [x for x in ans["near"] if x["kind"] == "login"]
    assert len(near) == 1, ans
    hour_end = (int(time.time()) // 3600 + 1) * 3600
    assert near[0] == {"kind": "login", "key": ALICE,
                       "limit": "limits.user_messages_per_hour",
                       "count": 4, "max": 5, "window_end": hour_end}, ans
    r = limits_cmd(d, "show")
    assert r.returncode == 0, r.stderr
    assert "limits.user_messages_per_hour" in r.stdout, r.stdout
    assert "4/5" in r.stdout and ALICE in r.stdout, r.stdout
    assert "no lockouts" in r.stdout, r.stdout


def test_bad_argument_refused_before_connecting(postern_factory):
    """unlock with something neither an address nor a login: one line,
    exit 1, and the daemon never hears of it."""
    d = daemon(postern_factory)
    line = one_line_error(limits_cmd(d, "unlock", "not/an/ip@@"))
    assert "not/an/ip@@" in line and "neither an IP address nor a login" \
        in line, line
    assert "not/an/ip" not in d.log()
    r = limits_cmd(d, "show")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "no lockouts, nothing near its limit\n"


def test_daemon_not_running(postern_factory):
    """With the daemon stopped, show and unlock say so: exit 1."""
    d = daemon(postern_factory)
    d.stop()
    for args in (("show", "--json"), ("show",), ("unlock", "127.0.0.1")):
        line = one_line_error(limits_cmd(d, *args))
        assert "not running" in line, line


def test_outsider_refused(postern_factory):
    """Someone who is neither root nor the daemon's user, and can read
    the configuration, is refused with a clear error."""
    d = daemon(postern_factory)
    r = subprocess.run(["setpriv", f"--reuid={OUTSIDER}",
                        f"--regid={OUTSIDER}", "--clear-groups", POSTERN,
                        "limits", "show", "-c", d.conf],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    line = one_line_error(r)
    assert "permission denied" in line.lower(), line
    assert "root" in line, line
