"""
`make run`: contrib/dev-run.sh prepares ./var, prints how to send a first
message, and runs the daemon with config/dev.conf. Run here in a copy of
the repository layout (config/, contrib/, ./postern) in a temporary
directory, with dev.conf's ports swapped for free ones so a developer's
own `make run` on 5587/5465/5525 is not disturbed. The swaks commands the
script prints are then run as printed (ports swapped the same way).
"""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import ROOT, dkim_txt, free_port
from helpers import dkim_signatures, dkimpy_results

DEV_PORTS = (5587, 5465, 5525)


@pytest.fixture
def devtree(workdir, postern_bin):
    conf = os.path.join(ROOT, "config", "dev.conf")
    if not os.path.exists(conf):
        pytest.skip("config/dev.conf not written yet")
    t = os.path.join(workdir, "repo")
    os.makedirs(os.path.join(t, "config"))
    os.makedirs(os.path.join(t, "contrib"))
    ports = {p: free_port() for p in DEV_PORTS}
    text = open(conf).read()
    for old, new in ports.items():
        assert f"port = {old};" in text, f"dev.conf has no port {old}"
        text = text.replace(f"port = {old};", f"port = {new};")
    with open(os.path.join(t, "config", "dev.conf"), "w") as f:
        f.write(text)
    for s in ("dev-run.sh", "dev-setup.sh"):
        shutil.copy(os.path.join(ROOT, "contrib", s), os.path.join(t, "contrib", s))
    os.symlink(postern_bin, os.path.join(t, "postern"))
    return t, ports


def wait_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "dev-run.sh exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def printed_swaks(out):
    """The swaks commands in dev-run.sh's text, joined across '\\' lines."""
    cmds = []
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip().startswith("swaks "):
            cmd = lines[i].strip()
            while cmd.endswith("\\"):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            cmds.append(cmd)
        i += 1
    return cmds


VERIFY_CMD = "./postern keys verify --local -c config/dev.conf < var/mail/new/FILE"


def check_dev_signatures(t, names, text):
    """The delivered files carry the dev keys' two signatures (dkimpy,
    keys from var/keys/), and the verify command dev-run.sh prints
    accepts them."""
    keys = os.path.join(t, "var", "keys", "example.test")
    records = {
        "dev-rsa._domainkey.example.test":
            dkim_txt(os.path.join(keys, "dev-rsa.key"), "rsa"),
        "dev-ed._domainkey.example.test":
            dkim_txt(os.path.join(keys, "dev-ed.key"), "ed25519"),
    }
    assert VERIFY_CMD in text, text
    for name in names:
        with open(os.path.join(t, "var", "mail", "new", name), "rb") as f:
            msg = f.read()
        assert msg.startswith(b"Return-Path: <admin@example.test>\r\n"
                              b"Delivered-To: someone@example.com\r\n")
        sigs = dkim_signatures(msg)
        assert sorted(x["s"] for x in sigs) == ["dev-ed", "dev-rsa"], sigs
        assert all(x["d"] == "example.test" for x in sigs), sigs
        assert dkimpy_results(msg, records) == [True, True]
        r = subprocess.run(["sh", "-c", VERIFY_CMD.replace("FILE", name)],
                           cwd=t, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        assert r.returncode == 0, r.stdout


def test_make_run_script(devtree):
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed")
    t, ports = devtree
    out_path = os.path.join(t, "dev-run.out")
    with open(out_path, "wb") as out:
        p = subprocess.Popen([os.path.join(t, "contrib", "dev-run.sh")], cwd=t,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        for port in ports.values():
            wait_port(port, p)
        text = open(out_path).read()
        var = os.path.join(t, "var")
        assert stat.S_IMODE(os.stat(var).st_mode) == 0o700
        for f, mode in (("tls/key.pem", 0o600), ("dev-password", 0o600),
                        ("keys/example.test/dev-rsa.key", 0o600),
                        ("keys/example.test/dev-ed.key", 0o600)):
            assert stat.S_IMODE(os.stat(os.path.join(var, f)).st_mode) == mode, f
        assert os.path.exists(os.path.join(var, "tls", "cert.pem"))
        password = open(os.path.join(var, "dev-password")).read().strip()
        assert len(password) >= 16
        assert password not in text, "the password was printed"

        cmds = printed_swaks(text)
        assert len(cmds) == 2, text
        assert "--tls " in cmds[0] and "--tlsc " in cmds[1], cmds
        for cmd in cmds:
            assert '--auth-password "$(cat var/dev-password)"' in cmd, cmd
            for old, new in ports.items():
                cmd = cmd.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
            r = subprocess.run(["sh", "-c", cmd], cwd=t, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=60)
            assert r.returncode == 0, r.stdout
            assert re.search(r"250 2\.0\.0 Ok: queued as", r.stdout), r.stdout

        assert "./postern queue list -c config/dev.conf" in text
        # the development instance starts clean: no warning at all (run as
        # root it drops to `nobody`, which must still read what setup made)
        log = open(out_path).read()
        assert not re.search(r"(?m)^\S*\s*(warning|error|fatal)\b", log) \
            and "Permission denied" not in log, log
        # records nobody reads (nothing leaves in directory mode) are not
        # watched for drift
        assert 'dns: no drift watch: relay.mode is "directory"' in log, log
        new = os.path.join(var, "mail", "new")
        deadline = time.time() + 15
        while len(os.listdir(new)) < 2:
            assert time.time() < deadline, os.listdir(new)
            time.sleep(0.05)
        check_dev_signatures(t, sorted(os.listdir(new)), text)
        r = subprocess.run(["./postern", "queue", "list", "-c", "config/dev.conf"],
                           cwd=t, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 15
        while r.stdout.strip():
            assert time.time() < deadline, r.stdout
            time.sleep(0.1)
            r = subprocess.run(["./postern", "queue", "list", "-c",
                                "config/dev.conf"], cwd=t,
                               stdout=subprocess.PIPE, text=True, timeout=30)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # running the setup again changes nothing
    before = {f: open(os.path.join(t, "var", f), "rb").read()
              for f in ("dev-password", "tls/cert.pem", "tls/key.pem",
                        "keys/example.test/dev-rsa.key",
                        "keys/example.test/dev-ed.key")}
    r = subprocess.run([os.path.join(t, "contrib", "dev-setup.sh")], cwd=t,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    for f, data in before.items():
        assert open(os.path.join(t, "var", f), "rb").read() == data, f
