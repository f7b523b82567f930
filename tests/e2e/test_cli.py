"""
The command line: check-config (good and broken configurations, each
failing with its expected FILE:LINE: error), serve refusing a broken
configuration, `postern users` (passwords on stdin only) checked over real
SMTP, and `postern queue list/show`.
"""
import os
import re
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import POSTERN, ROOT, free_port, run_postern
from helpers import (USERS, assert_queued, expect, make_message, queued_id,
                     smtps, wait_until)

ALICE = "alice@example.test"


# -- check-config ------------------------------------------------------------

def test_check_config_good(postern_factory):
    d = postern_factory(start=False)
    r = run_postern(["check-config"], config=d.conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout, r.stdout
    assert r.stderr.strip() == "" or "error" not in r.stderr.lower(), r.stderr


def adapt_example(text, d):
    """The shipped example, with its paths pointed at this test's files and
    its privileged ports and addresses replaced by free loopback ports."""
    text = re.sub(r'(?m)^state_dir = ".*";', f'state_dir = "{d.state_dir}";', text)
    text = re.sub(r'(?m)^user = ".*";', "", text)
    text = re.sub(r'certificate = "[^"]*";', f'certificate = "{d.cert}";', text)
    text = re.sub(r'(?m)^(\s*)key = "/etc[^"]*";', rf'\1key = "{d.key}";', text)
    text = re.sub(r'sasldb = "[^"]*";', f'sasldb = "{d.sasldb}";', text)
    text = re.sub(r'address = "0\.0\.0\.0"; port = 587;',
                  f'address = "127.0.0.1"; port = {free_port()};', text)
    text = re.sub(r'address = "0\.0\.0\.0"; port = 465;',
                  f'address = "127.0.0.1"; port = {free_port()};', text)
    text = re.sub(r'address = "::"; +port = 587;',
                  f'address = "127.0.0.2"; port = {free_port()};', text)
    text = re.sub(r'address = "::"; +port = 465;',
                  f'address = "127.0.0.2"; port = {free_port()};', text)
    return text


def example_dkim_selectors(text):
    """[(domain, selector, algorithm, key or None)] of the dkim entries in
    a configuration's domains list (comments dropped)."""
    text = re.sub(r"#[^\n]*", "", text)
    m = re.search(r"(?m)^domains\s*=\s*\(", text)
    if not m:
        return []
    out = []
    domain = None
    for t in re.finditer(r'\bname\s*=\s*"([^"]+)"|\{([^{}]*\bselector\s*=[^{}]*)\}',
                         text[m.end():]):
        if t.group(1):
            domain = t.group(1)
            continue
        body = t.group(2)
        sel = re.search(r'selector\s*=\s*"([^"]+)"', body).group(1)
        alg = re.search(r'algorithm\s*=\s*"([^"]+)"', body).group(1)
        key = re.search(r'\bkey\s*=\s*"([^"]+)"', body)
        out.append((domain, sel, alg, key.group(1) if key else None))
    return out


def install_example_keys(text, d, keysrc):
    """Copy the session's test keys to where the (adapted) example's dkim
    entries point."""
    for domain, sel, alg, key in example_dkim_selectors(text):
        path = key or f"keys/{domain}/{sel}.key"
        path = os.path.join(d.state_dir, path)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        kind = "ed25519" if alg.startswith("ed25519") else "rsa"
        shutil.copyfile(keysrc.paths[kind], path)
        os.chmod(path, 0o600)


def test_check_config_shipped_example(postern_factory, dkim_keys):
    example = os.path.join(ROOT, "config", "postern.conf.example")
    if not os.path.exists(example):
        pytest.skip("config/postern.conf.example not written yet")
    d = postern_factory(start=False)
    with open(example) as f:
        text = adapt_example(f.read(), d)
    with open(d.conf, "w") as f:
        f.write(text)
    install_example_keys(text, d, dkim_keys)
    r = run_postern(["check-config"], config=d.conf)
    assert r.returncode == 0, r.stdout + r.stderr + "\n" + text
    assert "configuration OK" in r.stdout


def test_check_config_dev_conf_shape():
    """config/dev.conf parses; only its files in ./var (made by make run)
    may be missing."""
    dev = os.path.join(ROOT, "config", "dev.conf")
    if not os.path.exists(dev):
        pytest.skip("config/dev.conf not written yet")
    r = run_postern(["check-config"], config=dev)
    if r.returncode == 0:
        assert "configuration OK" in r.stdout
        return
    for line in r.stderr.strip().splitlines():
        assert re.search(r"(var/|tls/|sasldb|state_dir|no such file|not found|"
                         r"cannot|missing)", line, re.I), r.stderr


def broken(d, before, after, count=1):
    """Write d's configuration with `before` replaced by `after`; return
    the 1-based line where `after` starts."""
    with open(d.conf) as f:
        text = f.read()
    assert text.count(before) >= count, (before, text)
    text = text.replace(before, after, count)
    with open(d.conf, "w") as f:
        f.write(text)
    return text[:text.index(after)].count("\n") + 1


def assert_config_error(d, line, *words):
    r = run_postern(["check-config"], config=d.conf)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert "configuration OK" not in r.stdout
    errs = [l for l in r.stderr.splitlines() if l.startswith(d.conf + ":")]
    assert errs, f"no '{d.conf}:LINE: message' line in stderr:\n{r.stderr}"
    want = f"{d.conf}:{line}:"
    hit = [l for l in errs if l.startswith(want)]
    assert hit, f"no error at {want}\n{r.stderr}\n---\n{open(d.conf).read()}"
    for w in words:
        assert any(w.lower() in l.lower() for l in hit), \
            f"{w!r} not in {hit}"
    return r


BROKEN_CASES = [
    # (id, before, after, words that must appear in the error)
    ("unknown-key", "hostname =", "bogus_setting = 1;\nhostname =",
     ["bogus_setting"]),
    ("port-out-of-range", 'tls = "implicit";',
     'tls = "implicit"; } , { address = "127.0.0.1"; port = 70000; tls = "implicit";',
     ["port"]),
    ("bad-tls-mode", 'tls = "implicit";', 'tls = "sometimes";', ["tls"]),
    ("recipients-zero", "recipients = 5;", "recipients = 0;", ["recipients"]),
    ("bad-duration", 'command_timeout = "10s";', 'command_timeout = "ten";',
     ["command_timeout"]),
    ("unknown-limit", "recipients = 5;", "recipients = 5; recipents = 6;",
     ["recipents"]),
    ("syntax-error", "hostname =", "hostname == oops\nhostname =", []),
    ("plaintext-auth-public", 'trusted = true;',
     'trusted = true; } , { address = "0.0.0.0"; port = 20999; tls = "none"; '
     'allow_plaintext_auth = true;', ["allow_plaintext_auth"]),
    ("grant-outside-hosted-domain", '"*@example.test"', '"*@elsewhere.test"',
     ["elsewhere.test"]),
]


@pytest.mark.parametrize("before,after,words", [c[1:] for c in BROKEN_CASES],
                         ids=[c[0] for c in BROKEN_CASES])
def test_check_config_broken(postern_factory, before, after, words):
    d = postern_factory(start=False)
    line = broken(d, before, after)
    assert_config_error(d, line, *words)


def test_check_config_missing_certificate(postern_factory):
    d = postern_factory(start=False)
    line = broken(d, f'certificate = "{d.cert}";',
                  f'certificate = "{d.dir}/nonexistent.pem";')
    assert_config_error(d, line, "nonexistent.pem")


def test_check_config_missing_file():
    r = run_postern(["check-config"], config="/nonexistent/postern.conf")
    assert r.returncode == 1
    assert "/nonexistent/postern.conf" in r.stderr


def test_serve_refuses_broken_config(postern_factory):
    d = postern_factory(start=False)
    broken(d, "hostname =", "bogus_setting = 1;\nhostname =")
    p = subprocess.Popen([POSTERN, "serve",
                          "-c", d.conf], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("serve kept running with a broken configuration")
    assert p.returncode != 0
    assert f"{d.conf}:" in err, err
    for port in d.ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, \
                f"something listens on {port}"


def test_serve_refuses_world_readable_key(postern_factory, workdir, tls_files):
    """A TLS key readable by others is refused at startup (lesson 12)."""
    d = postern_factory(start=False)
    key = os.path.join(workdir, "loose-key.pem")
    shutil.copy(tls_files[1], key)
    os.chmod(key, 0o644)
    broken(d, f'key = "{d.key}";', f'key = "{key}";')
    r = run_postern(["check-config"], config=d.conf)
    assert r.returncode == 1
    assert "accessible by others (mode 0644)" in r.stderr
    assert key in r.stderr
    p = subprocess.Popen([POSTERN, "serve", "-c", d.conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("a world-readable TLS key was accepted")
    assert p.returncode != 0


# -- users ---------------------------------------------------------------------

def users(d, *args, stdin=None):
    return run_postern(["users"] + list(args), config=d.conf,
                       stdin=stdin if stdin is not None else "")


def try_login(d, ctx, login, password):
    c = smtps(d, ctx)
    r = c.auth_plain(login, password)
    c.cmd("QUIT")
    c.close()
    return r


def test_users_add_list_passwd_delete(postern_factory, ssl_ctx):
    d = postern_factory()
    r = users(d, "list")
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) >= set(USERS), r.stdout

    # add: the password comes from stdin, never argv
    r = users(d, "add", "carol@example.test", stdin="carol-pass-1\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "carol-pass-1" not in r.stdout + r.stderr
    assert "carol@example.test" in users(d, "list").stdout.split()
    expect(try_login(d, ssl_ctx, "carol@example.test", "carol-pass-1"), 235, "2.7.0")

    # adding again fails and leaves the password alone
    r = users(d, "add", "carol@example.test", stdin="other\n")
    assert r.returncode != 0, r.stdout
    expect(try_login(d, ssl_ctx, "carol@example.test", "carol-pass-1"), 235, "2.7.0")

    # passwd: old password stops working, new one works
    r = users(d, "passwd", "carol@example.test", stdin="carol-pass-2\n")
    assert r.returncode == 0, r.stdout + r.stderr
    expect(try_login(d, ssl_ctx, "carol@example.test", "carol-pass-1"), 535, "5.7.8")
    expect(try_login(d, ssl_ctx, "carol@example.test", "carol-pass-2"), 235, "2.7.0")

    # and carol can send mail as herself
    c = smtps(d, ssl_ctx)
    c.login("carol@example.test", "carol-pass-2")
    msg = make_message("carol@example.test", ["bob@example.com"])
    qid = c.send_message("carol@example.test", ["bob@example.com"], msg)
    c.close()
    assert_queued(d, qid, "carol@example.test", ["bob@example.com"],
                  "carol@example.test", msg)

    # passwd of a user that does not exist fails
    r = users(d, "passwd", "nobody@example.test", stdin="x\n")
    assert r.returncode != 0

    # delete: login fails afterwards
    r = users(d, "delete", "carol@example.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "carol@example.test" not in users(d, "list").stdout.split()
    expect(try_login(d, ssl_ctx, "carol@example.test", "carol-pass-2"), 535, "5.7.8")
    r = users(d, "delete", "carol@example.test")
    assert r.returncode != 0

    # the others are untouched
    expect(try_login(d, ssl_ctx, ALICE, USERS[ALICE]), 235, "2.7.0")


def test_users_add_rejects_empty_password(postern_factory):
    d = postern_factory(start=False)
    r = users(d, "add", "dave@example.test", stdin="\n")
    assert r.returncode != 0, r.stdout
    assert "dave@example.test" not in users(d, "list").stdout.split()


def test_users_password_not_in_argv(postern_factory):
    """There is no way to pass the password as an argument: an extra
    argument is refused rather than taken as the password."""
    d = postern_factory(start=False)
    r = run_postern(["users", "add", "eve@example.test", "eve-password"],
                    config=d.conf, stdin="")
    assert r.returncode != 0
    assert "eve@example.test" not in users(d, "list").stdout.split()


# -- queue list / show ---------------------------------------------------------

def test_queue_list_and_show(postern_factory, ssl_ctx):
    d = postern_factory()
    assert run_postern(["queue", "list"], config=d.conf).stdout.strip() == ""
    c = smtps(d, ssl_ctx, login=ALICE)
    ids = {}
    for i in range(3):
        marker = f"queue-show-marker-{i}"
        msg = make_message(ALICE, [f"r{i}@example.com", "bob@example.com"],
                           subject=marker, body=f"body {marker}\r\n")
        expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
        expect(c.cmd(f"RCPT TO:<r{i}@example.com>"), 250, "2.1.5", conn=c)
        expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
        qid = queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text)
        ids[qid] = marker
    c.close()

    r = run_postern(["queue", "list"], config=d.conf)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    listed = [l.split()[0] for l in lines]
    assert sorted(listed) == sorted(ids), r.stdout
    for l in lines:
        assert ALICE in l, l
    # the binary as `mailq` prints exactly the same, and so does
    # `sendmail -bp` (the sendmail(1) name for it)
    m = run_as(d.dir, "mailq", "-c", d.conf)
    assert (m.returncode, m.stdout, m.stderr) == (0, r.stdout, ""), m
    m = run_as(d.dir, "sendmail", "-bp", "-C", d.conf)
    assert (m.returncode, m.stdout, m.stderr) == (0, r.stdout, ""), m
    m = run_as(d.dir, "sendmail", "-bp", "-C", d.conf, "bob@example.com")
    assert m.returncode == 64 and "takes no recipients" in m.stderr, m

    for qid, marker in ids.items():
        r = run_postern(["queue", "show", qid], config=d.conf)
        assert r.returncode == 0, r.stderr
        assert ALICE in r.stdout
        assert "bob@example.com" in r.stdout
        assert f"Subject: {marker}" in r.stdout
        assert f"body {marker}" in r.stdout
        assert "Received:" in r.stdout

    # while the daemon runs and after it stopped
    d.stop()
    r = run_postern(["queue", "list"], config=d.conf)
    assert sorted(l.split()[0] for l in r.stdout.splitlines() if l.strip()) == sorted(ids)


def run_as(directory, name, *args):
    """The binary run under another name (a symlink in directory), as
    packages and scripts call it."""
    link = os.path.join(directory, name)
    if not os.path.islink(link):
        os.symlink(POSTERN, link)
    return subprocess.run([link] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30,
                          cwd=directory)


def test_mailq_and_newaliases_names(postern_factory):
    d = postern_factory(start=False)
    # newaliases (a package's postinst may run it): nothing to do, exit 0
    r = run_as(d.dir, "newaliases")
    assert (r.returncode, r.stderr) == (0, ""), r
    assert r.stdout == ("newaliases: Postern has no aliases file (it "
                        "delivers no local mail): nothing to do\n")
    # and sendmail -bi / -I, the same thing by its sendmail(1) names
    for args in (["-bi"], ["-I"]):
        s = run_as(d.dir, "sendmail", *args)
        assert (s.returncode, s.stdout, s.stderr) == (0, r.stdout, ""), s
    # mailq: what queue list says, errors included (no queue yet here)
    r = run_as(d.dir, "mailq", "-c", d.conf)
    q = run_postern(["queue", "list"], config=d.conf)
    assert q.returncode == 1 and "No such file" in q.stderr, q
    assert (r.returncode, r.stdout, r.stderr) == \
        (q.returncode, q.stdout, q.stderr), r
    for bad in (["-x"], ["-c", d.conf, "extra"], ["show"]):
        r = run_as(d.dir, "mailq", *bad)
        assert r.returncode == 2 and r.stdout == "", (bad, r)
        assert r.stderr.endswith("usage: mailq [-c FILE]     (postern queue "
                                 "list: one line per queued message)\n"), r
    r = run_as(d.dir, "mailq", "-c", os.path.join(d.dir, "missing.conf"))
    assert r.returncode == 1 and "missing.conf" in r.stderr, r


def test_queue_show_bad_ids(postern_factory):
    d = postern_factory(start=False)
    for bad in ("../../etc/passwd", "AAAAAAAAAAAAAAAAAAAA", "x"):
        r = run_postern(["queue", "show", bad], config=d.conf)
        assert r.returncode != 0, (bad, r.stdout)
        assert "root:" not in r.stdout


# -- privileges ----------------------------------------------------------------

def test_serve_drops_privileges_to_user(postern_factory, workdir, ssl_ctx):
    """Started as root with `user` set (as INSTALL says to run it), the
    daemon binds, then runs as that user: it must still be able to queue
    (state_dir and its subdirectories usable by the user) and read the
    sasldb that `postern users add` gave to the user."""
    import pwd
    if os.geteuid() != 0:
        pytest.skip("needs root to test the privilege drop")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    os.chmod(workdir, 0o755)
    d = postern_factory(start=False, extra='user = "nobody";')
    os.chmod(d.dir, 0o755)
    # as INSTALL says: the state directory belongs to the daemon's user
    os.chown(d.state_dir, nobody.pw_uid, nobody.pw_gid)
    # users add as root with `user` set hands the sasldb to that user
    r = run_postern(["users", "add", "frank@example.test"], config=d.conf,
                    stdin="frank-pass\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.stat(d.sasldb).st_uid == nobody.pw_uid, "sasldb not given to user"
    # no chown -R of state_dir beyond that: keys/ and keys/example.test/
    # stay root's, as a setup script running mkdir as root leaves them
    d.give_to_user = lambda: None
    assert os.stat(os.path.join(d.state_dir, "keys")).st_uid == 0
    d.start()
    wait_until(lambda: "running as user=nobody" in d.log(),
               "the privilege drop", d)
    with open(f"/proc/{d.proc.pid}/status") as f:
        uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
    assert set(uids) == {str(nobody.pw_uid)}, uids
    c = smtps(d, ssl_ctx)
    c.login("frank@example.test", "frank-pass")
    msg = make_message("frank@example.test", ["bob@example.com"])
    qid = c.send_message("frank@example.test", ["bob@example.com"], msg)
    c.close()
    assert_queued(d, qid, "frank@example.test", ["bob@example.com"],
                  "frank@example.test", msg)
    for name in (qid,):
        st = os.stat(os.path.join(d.queue_dir, name))
        assert st.st_uid == nobody.pw_uid, name
        assert stat.S_IMODE(st.st_mode) == 0o600, name
    # the DKIM folders were made by root (as a setup script would): the
    # daemon gives them to its user, so the rotation state it reads and
    # rewrites there after the drop is reachable: no warning
    for sub in ("keys", "keys/example.test"):
        st = os.stat(os.path.join(d.state_dir, sub))
        assert st.st_uid == nobody.pw_uid, sub
        assert stat.S_IMODE(st.st_mode) == 0o700, sub
    assert "Permission denied" not in d.log(), d.log()
    assert "warning dkim" not in d.log(), d.log()


def test_serve_refuses_sasldb_readable_by_others(postern_factory):
    """A sasldb that others may read is refused at startup and by
    check-config, naming the file."""
    d = postern_factory(start=False)
    os.chmod(d.sasldb, 0o644)
    r = run_postern(["check-config"], config=d.conf)
    assert r.returncode == 1
    assert f"auth.sasldb: {d.sasldb} is accessible by others (mode 0644)" \
        in r.stderr, r.stderr
    p = subprocess.Popen([POSTERN, "serve", "-c", d.conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("a sasldb readable by others was accepted")
    assert p.returncode != 0
    assert d.sasldb in p.stderr.read().decode()
    p.stderr.close()


def test_serve_refuses_to_run_as_root(postern_factory):
    """Started as root, the daemon needs `user`: without it it refuses
    before binding anything; with a user that is root it refuses too."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = postern_factory(start=False)
    with open(d.conf) as f:
        text = f.read()
    assert 'user = "nobody";' in text
    for replacement, why in (("", "refusing to run as root: set `user`"),
                             ('user = "root";', "user root is root")):
        with open(d.conf, "w") as f:
            f.write(text.replace('user = "nobody";', replacement))
        r = subprocess.run([POSTERN, "serve", "-c", d.conf],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert why in r.stderr, r.stderr


# -- logging under systemd ---------------------------------------------------

def _serve_logging(d, err, journal_stream):
    """Start d by hand with stderr to err, JOURNAL_STREAM set to the
    stream's DEV:INODE (journal_stream True) or to another file's; stop it
    once ready. Returns its stderr."""
    with open(err, "w") as f:
        st = os.fstat(f.fileno()) if journal_stream else os.stat(d.conf)
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        p = subprocess.Popen([POSTERN, "serve", "-c", d.conf], env=env,
                             stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + 15
        while "ready hostname=" not in open(err).read():
            assert p.poll() is None, open(err).read()
            assert time.monotonic() < deadline, open(err).read()
            time.sleep(0.05)
    finally:
        p.terminate()
        assert p.wait(timeout=15) == 0, open(err).read()
    return open(err).read()


def test_journal_stream_lines(postern_factory, tmp_path):
    """Under systemd (stderr is the journal's stream, JOURNAL_STREAM)
    each line carries its syslog priority as "<N>" and no "postern[pid]: "
    (the journal adds that); elsewhere lines keep the prefix."""
    d = postern_factory(start=False, extra=(
        f'local_socket = "{tmp_path}/sendmail.sock";\n'
        'local_senders = ( { user = "no-such-user-zq"; '
        'addresses = [ "cron@example.test" ]; } );'))
    d.give_to_user()
    text = _serve_logging(d, tmp_path / "journal", True)
    lines = [l for l in text.splitlines() if l]
    assert lines and all(re.match(r"<[2-7]>(info|warning|debug|fatal) ", l)
                         for l in lines), text
    assert "postern[" not in text, text
    assert re.search(r"^<4>warning local_senders: there is no local user "
                     r"no-such-user-zq", text, re.M), text
    assert re.search(r"^<6>info ready hostname=", text, re.M), text
    assert re.search(r"^<6>info stopped$", text, re.M), text
    # JOURNAL_STREAM inherited from elsewhere (another stream): plain lines
    text = _serve_logging(d, tmp_path / "plain", False)
    assert re.search(r"^postern\[\d+\]: warning local_senders: there is no "
                     r"local user no-such-user-zq", text, re.M), text
    assert "<6>" not in text, text
