"""
The local socket (local_socket, local_senders): plain SMTP over a unix
socket for `postern sendmail`, where the daemon learns the caller's uid
from the kernel (SO_PEERCRED) and lets each local user send only as its
local_senders addresses. Driven here by a raw client, as root and as
other users (subprocesses that switch uid); test_sendmail.py drives it
with the real `postern sendmail`.
"""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import POSTERN
from helpers import make_message, wait_until

LOCAL_USER = "www-data"     # Debian's base-passwd has it (uid 33)
HAVE_WWW = True
try:
    pwd.getpwnam(LOCAL_USER)
except KeyError:
    HAVE_WWW = False


@pytest.fixture
def public_dir():
    """A directory every local user can reach (the e2e work directories
    are 0700): for the socket and anything a non-root client reads."""
    d = tempfile.mkdtemp(prefix="postern-local-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def local_daemon(postern_factory, public_dir, extra_senders=""):
    sock = os.path.join(public_dir, "sendmail.sock")
    d = postern_factory(extra=(
        f'local_socket = "{sock}";\n'
        'local_senders = (\n'
        '  { user = "root"; addresses = [ "cron@example.test", '
        '"*@lists.example.test" ]; }'
        f'{extra_senders}\n);'),
        domains=("example.test", "lists.example.test"))
    d.local_socket = sock
    return d


class Local:
    """A raw SMTP client on the unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(15)
        self.sock.connect(path)
        self.f = self.sock.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline().decode()
            assert line, f"connection closed after {lines}"
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return int(line[:3]), "\n".join(l[4:] for l in lines)

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        return self.f.read() == b""

    def close(self):
        self.f.close()
        self.sock.close()


def test_root_mapped(postern_factory, public_dir):
    """A mapped user: 220, EHLO without AUTH or STARTTLS, its own
    addresses accepted as sender and From:, others refused with 553 5.7.1
    at MAIL or 550 5.7.1 after the data; the message is queued with the
    user as its submitter."""
    d = local_daemon(postern_factory, public_dir)
    st = os.stat(d.local_socket)
    assert st.st_mode & 0o777 == 0o666
    c = Local(d.local_socket)
    code, text = c.reply()
    assert code == 220 and "ESMTP Postern" in text
    code, text = c.cmd("EHLO localhost")
    assert code == 250
    assert "AUTH" not in text and "STARTTLS" not in text, text
    assert c.cmd("AUTH PLAIN AGFAYgBj")[0] == 503
    code, text = c.cmd("MAIL FROM:<alice@example.test>")
    assert (code, text.split()[0]) == (553, "5.7.1"), text
    assert "not allowed for local user root" in text
    assert c.cmd("MAIL FROM:<cron@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<someone@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.sock.sendall(make_message("cron@example.test", ["someone@example.com"],
                                subject="from cron") + b".\r\n")
    code, text = c.reply()
    assert code == 250 and "queued as" in text, text
    assert c.cmd("MAIL FROM:<digest@lists.example.test>")[0] == 250
    assert c.cmd("RCPT TO:<someone@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.sock.sendall(make_message("digest@lists.example.test",
                                ["someone@example.com"],
                                from_header="alice@example.test") + b".\r\n")
    code, text = c.reply()
    assert (code, text.split()[0]) == (550, "5.7.1"), text
    assert "From: address <alice@example.test> not allowed for local " \
           "user root" in text
    assert c.cmd("QUIT")[0] == 221
    c.close()
    qids = d.queue_ids()
    assert len(qids) == 1
    env = d.envelope(qids[0])
    assert env.login == "root" and env.sender == "cron@example.test"
    log = d.log()
    assert "connect client=local user=root uid=0" in log


CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(15)
s.connect(sys.argv[1])
f = s.makefile("rb")
print(f.readline().decode().rstrip())
if len(sys.argv) > 2:
    for cmd in sys.argv[2:]:
        s.sendall(cmd.encode() + b"\r\n")
        while True:
            line = f.readline().decode()
            print(line.rstrip())
            if line[3:4] != "-":
                break
print("EOF" if f.read() == b"" else "MORE")
"""


def as_user(user, *args):
    """Run the raw client as user; its output lines."""
    r = subprocess.run(["/usr/bin/python3", "-c", CLIENT, *args],
                       user=user, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_unmapped_user_refused(postern_factory, public_dir):
    """A local user without a local_senders entry gets 554 5.7.1 naming
    it, and the connection is closed; nothing is queued."""
    d = local_daemon(postern_factory, public_dir)
    out = as_user("nobody", d.local_socket)
    assert out[0].startswith("554 5.7.1 "), out
    assert "Local user nobody (uid 65534) may not send mail" in out[0]
    assert out[-1] == "EOF"
    assert d.queue_ids() == []
    assert "refuse local user=nobody uid=65534" in d.log()


@pytest.mark.skipif(not HAVE_WWW, reason="no www-data user")
def test_other_mapped_user(postern_factory, public_dir):
    """Another local user is told apart by its uid: www-data may use its
    own address, not root's."""
    d = local_daemon(postern_factory, public_dir, extra_senders=(
        ',\n  { user = "www-data"; addresses = [ "trac@example.test" ]; }'))
    out = as_user(LOCAL_USER, d.local_socket, "EHLO web",
                  "MAIL FROM:<cron@example.test>", "RSET",
                  "MAIL FROM:<trac@example.test>", "QUIT")
    assert out[0].startswith("220 "), out
    text = "\n".join(out)
    assert "553 5.7.1 Sender address <cron@example.test> not allowed for " \
           "local user www-data" in text, text
    assert "250 2.1.0 Ok" in text
    assert out[-1] == "EOF"


def test_no_local_senders_no_socket(postern_factory, public_dir):
    """Without local_senders the daemon opens no local socket."""
    sock = os.path.join(public_dir, "sendmail.sock")
    d = postern_factory(extra=f'local_socket = "{sock}";')
    assert d.alive()
    assert not os.path.exists(sock)


def test_stale_socket_replaced_live_one_refused(postern_factory, public_dir):
    """A socket file left by a daemon that died is replaced at start; a
    second daemon on the same socket is refused, naming it."""
    d = local_daemon(postern_factory, public_dir)
    d.kill9()
    assert os.path.exists(d.local_socket)
    d.start()
    c = Local(d.local_socket)
    assert c.reply()[0] == 220
    c.close()
    d2 = postern_factory(start=False, extra=d.extra,
                         domains=("example.test", "lists.example.test"))
    # (run by hand: it may bind its TCP ports before it finds the socket
    # taken, so d2.start() could see it listening before it exits)
    r = subprocess.run([POSTERN, "serve", "-c", d2.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "in use by a running daemon" in r.stderr
    c = Local(d.local_socket)       # the first one is unharmed
    assert c.reply()[0] == 220
    c.close()


def test_unknown_local_user_warned(postern_factory, public_dir):
    """A local_senders entry for an account that does not exist is
    reported at start (a typo would otherwise match nobody silently)."""
    d = local_daemon(postern_factory, public_dir, extra_senders=(
        ',\n  { user = "no-such-user-x"; addresses = [ "x@example.test" ]; }'))
    wait_until(lambda: "ready hostname=" in d.log(), "the daemon ready", d)
    assert "local_senders: there is no local user no-such-user-x" in d.log()
