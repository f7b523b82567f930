"""
Reload on SIGHUP: a new configuration, new DKIM keys, users and sender
grants for sessions that start afterwards; sessions in progress keep
theirs and are never dropped; listeners that stay keep their socket; a
broken configuration is refused with a log line and the old one goes on.
"""
import os
import signal
import socket
import subprocess
import threading
import time

from conftest import DkimSelector, Listener, free_port, run_postern
from helpers import (SMTP, dkimpy_results, expect, final_message,
                     make_message, submission, wait_until)

ALICE = "alice@example.test"
NEWBIE = "newbie@example.test"
NEWBIE_PW = "newbie-secret-9"


def hup(d):
    """SIGHUP, once the daemon handles it (after "ready")."""
    wait_until(lambda: "ready hostname=" in d.log(), "the daemon ready", d)
    d.proc.send_signal(signal.SIGHUP)


def send(c, sender, subject, rcpt="someone@example.com", from_header=None):
    expect(c.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", conn=c)
    expect(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", conn=c)
    return c.data(make_message(sender, [rcpt], subject=subject,
                               from_header=from_header))


def signature_selector(d, qid):
    """The s= of the DKIM-Signature fields the message will leave with."""
    msg = final_message(d, qid)
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    head = "\r\n".join(l for l in head.replace("\r\n\t", " ").replace(
        "\r\n ", " ").split("\r\n") if l.lower().startswith(
        "dkim-signature:"))
    sels = [part.split("=", 1)[1] for line in head.split("\r\n")
            for part in line.replace(";", " ").split()
            if part.startswith("s=")]
    return sels


def test_reload_keeps_sessions_and_applies_to_new_ones(postern_factory,
                                                       ssl_ctx):
    """While one client keeps submitting over one connection and others
    connect, SIGHUP brings in a new user, a new sender grant, a new DKIM
    selector with a new key and a new listener: the old connection is
    never dropped and its messages stay signed with the old selector and
    key; sessions started after the reload sign with the new ones (the
    first message after it already verifies, with dkimpy, against the new
    key and not the old: the daemon keeps parsed keys, and must not sign
    with a stale one), the new user logs in and may use its grant, and
    the new listener accepts."""
    d = postern_factory(dkim={"example.test": [("r1", "rsa-sha256")]})
    old = submission(d, ssl_ctx, login=ALICE)
    q1 = QUEUED(send(old, ALICE, "before"))
    # the new user: postern users add, while the daemon runs
    r = run_postern(["users", "add", NEWBIE], config=d.conf,
                    stdin=NEWBIE_PW + "\n")
    assert r.returncode == 0, r.stderr
    # a new selector r2 replaces r1, a grant for the new user, and a
    # new trusted listener on another port
    old_records = dict(d.dkim_records)
    new_key = os.path.join(d.dir, "r2-new.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", new_key], check=True,
                   capture_output=True)
    d.dkim["example.test"] = [DkimSelector("r2", "rsa-sha256",
                                           source=new_key)]
    d.install_dkim_keys()
    d.give_to_user()        # as `postern keys generate` run as root does
    d.senders = list(d.senders) + [(NEWBIE, ["news@example.test"])]
    stop = threading.Event()
    errors = []

    def others():
        """Connections opened throughout the reload: all greeted."""
        while not stop.is_set():
            try:
                c = SMTP("127.0.0.1", d.port("trusted"))
                r = c.reply()
                if r.code != 220:
                    errors.append(repr(r))
                c.cmd("QUIT")
                c.close()
            except Exception as e:      # noqa: BLE001
                errors.append(repr(e))
            time.sleep(0.02)

    t = threading.Thread(target=others)
    t.start()
    try:
        d.write_config()
        hup(d)
        wait_until(lambda: "reloaded " in d.log(), "the reload", d)
        # the old session goes on, with its old settings
        q2 = QUEUED(send(old, ALICE, "during"))
        expect(old.cmd("NOOP"), 250, "2.0.0", conn=old)
    finally:
        stop.set()
        t.join(10)
    assert errors == [], errors
    old.cmd("QUIT")
    old.close()
    assert signature_selector(d, q1) == ["r1"]
    assert signature_selector(d, q2) == ["r1"]
    # a new session: new selector, new user, its grant
    c = submission(d, ssl_ctx)
    expect(c.auth_plain(NEWBIE, NEWBIE_PW), 235, "2.7.0", conn=c)
    q3 = QUEUED(send(c, "news@example.test", "after"))
    c.close()
    assert signature_selector(d, q3) == ["r2"]
    # the keys themselves, checked by an independent verifier
    r1 = "r1._domainkey.example.test"
    r2 = "r2._domainkey.example.test"
    assert dkimpy_results(final_message(d, q1), old_records) == [True]
    assert dkimpy_results(final_message(d, q2), old_records) == [True]
    assert dkimpy_results(final_message(d, q3), d.dkim_records) == [True]
    stale = {r2: old_records[r1]}      # r2 under the old key: must fail
    assert dkimpy_results(final_message(d, q3), stale) == [False]
    log = d.log()
    assert "reload of" not in log, log       # nothing refused
    assert log.count("session=") > 0


def QUEUED(r):
    expect(r, 250, "2.0.0", "queued as")
    return r.text.split("queued as ")[1].strip()


def test_reload_broken_config_keeps_old(postern_factory, ssl_ctx):
    """A configuration that does not load is refused with the loader's
    FILE:LINE message in the log; the daemon keeps running on the old one
    and mail still flows, on the same sockets."""
    d = postern_factory()
    with open(d.conf) as f:
        good = f.read()
    with open(d.conf, "a") as f:
        f.write("limits = { recipients = \"many\"; };\n")
    hup(d)
    wait_until(lambda: "refused" in d.log(), "the refusal", d)
    log = d.log()
    assert "reload of " + d.conf + " refused" in log, log
    assert "postern.conf:" in log      # the loader's own message
    assert d.alive()
    c = submission(d, ssl_ctx, login=ALICE)
    QUEUED(send(c, ALICE, "still flowing"))
    c.close()
    # a key that does not load is refused too
    with open(d.conf, "w") as f:
        f.write(good.replace('selector = "r1"', 'selector = "zz"'))
    hup(d)
    wait_until(lambda: "a DKIM key does not load" in d.log(),
               "the key refusal", d)
    c = submission(d, ssl_ctx, login=ALICE)
    QUEUED(send(c, ALICE, "still flowing 2"))
    c.close()


def test_reload_listeners(postern_factory, ssl_ctx):
    """A listener the new configuration drops is closed, one it adds is
    opened, one it keeps keeps its socket (a client connected before the
    reload is unaffected)."""
    d = postern_factory()
    kept = SMTP("127.0.0.1", d.port("trusted"))
    expect(kept.reply(), 220, conn=kept)
    smtps_port = d.port("smtps")
    d.listeners = [l for l in d.listeners if l.name != "smtps"]
    extra = Listener("extra", "none", trusted=True,
                     senders=["alice@example.test"])
    extra.port = free_port()
    d.listeners.append(extra)
    d.write_config()
    hup(d)
    wait_until(lambda: "reloaded " in d.log(), "the reload", d)
    expect(kept.cmd("NOOP"), 250, "2.0.0", conn=kept)
    kept.close()
    c = SMTP("127.0.0.1", extra.port)
    expect(c.reply(), 220, conn=c)
    c.close()
    try:
        socket.create_connection(("127.0.0.1", smtps_port), 2).close()
        assert False, "the dropped listener still accepts"
    except ConnectionRefusedError:
        pass
    assert f"listener 127.0.0.1:{smtps_port} closed by the reload" in \
        d.log()


def test_reload_after_privilege_drop(postern_factory, workdir, ssl_ctx):
    """Running as `user` (nobody), a reload reads the configuration, the
    DKIM keys (the user's own) and the sasldb again; the TLS key, kept
    0600 root as INSTALL allows, can no longer be read: the reload keeps
    the certificate loaded at start, says so, and applies the rest (a new
    sender grant), with TLS still working."""
    import os
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(workdir, 0o755)
    d = postern_factory(start=False, extra='user = "nobody";')
    os.chmod(d.dir, 0o755)
    for root, dirs, files in os.walk(d.state_dir):
        for name in dirs + files + ["."]:
            os.chown(os.path.join(root, name), nobody.pw_uid,
                     nobody.pw_gid)
    os.chown(d.sasldb, nobody.pw_uid, nobody.pw_gid)
    d.start()
    wait_until(lambda: "running as user=nobody" in d.log(),
               "the privilege drop", d)
    d.senders = list(d.senders) + [(ALICE, ["shop@example.test"])]
    d.write_config()
    os.chmod(d.conf, 0o644)
    hup(d)
    wait_until(lambda: "reloaded " in d.log() or "refused" in d.log(),
               "the reload", d)
    log = d.log()
    assert "reloaded " in log, log
    assert "keeping the certificate loaded at start" in log
    c = submission(d, ssl_ctx, login=ALICE)
    QUEUED(send(c, "shop@example.test", "granted by the reload"))
    c.close()
