"""
`postern sendmail`, the client: the real binary against a stand-in for
the daemon on a unix socket in the test's directory.

The stand-in is aiosmtpd (UnixSocketController) with a handler that
records each transaction and answers MAIL, RCPT and the final dot as a
test tells it; a few tests need what aiosmtpd cannot do (refuse at the
greeting, answer garbage, drop the connection during DATA) and use a raw
socket server in a thread instead. The configuration file the client
reads names the socket (local_socket) and maps local users to addresses
(local_senders). These tests do not need the daemon side.

Every run checks the exit status (sysexits.h) and that stderr is empty
(status 0) or exactly one line "sendmail: ...".
"""
import os
import pwd
import socket
import subprocess
import sys
import threading

import pytest

from conftest import POSTERN, SANITIZER_MARKS

from aiosmtpd.controller import UnixSocketController

EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOHOST = 0, 64, 65, 67, 68
EX_UNAVAILABLE, EX_IOERR, EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM = 69, 74, 75, 76, 77

CONF = """\
hostname = "relay.example.test";
state_dir = "var";
domains = ( {{ name = "example.test"; }} );
listen = ( {{ address = "127.0.0.1"; port = 2; tls = "none"; }} );
local_socket = "{socket}";
local_senders = (
  {{ user = "root"; addresses = [ "*@example.test", "root@example.test",
                                  "other@example.test" ]; }},
  {{ user = "nobody"; addresses = [ "nobody@example.test" ]; }}
);
{extra}
"""

SANITIZED = bool(os.environ.get("POSTERN_BIN"))


class Message:
    def __init__(self, sender, rcpts, content, options):
        self.sender = sender
        self.rcpts = rcpts
        self.content = content          # bytes as sent, dot-unstuffed
        self.options = options          # MAIL parameters

    @property
    def header(self):
        return self.content.split(b"\r\n\r\n", 1)[0] + b"\r\n"

    @property
    def body(self):
        parts = self.content.split(b"\r\n\r\n", 1)
        return parts[1] if len(parts) == 2 else b""


class Recorder:
    """aiosmtpd handler: records each transaction that reached the final
    dot; replies can be set per step."""

    def __init__(self):
        self.messages = []
        self.mail_reply = None
        self.rcpt_replies = {}
        self.data_reply = None
        self.transactions = 0

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        self.transactions += 1
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(Message(envelope.mail_from,
                                     list(envelope.rcpt_tos),
                                     bytes(envelope.original_content),
                                     list(envelope.mail_options)))
        return self.data_reply or "250 2.0.0 Ok: queued as 4XyzAbc"


class Env:
    """The test's directory: socket path, config file, stand-in server."""

    def __init__(self, workdir):
        self.dir = workdir
        os.chmod(workdir, 0o755)        # `nobody` must reach the socket
        self.socket = os.path.join(workdir, "s.sock")
        self.conf = os.path.join(workdir, "postern.conf")
        self.handler = Recorder()
        self.controller = None
        self.write_conf()

    def write_conf(self, extra="", socket_path=None):
        with open(self.conf, "w") as f:
            f.write(CONF.format(socket=socket_path or self.socket,
                                extra=extra))
        os.chmod(self.conf, 0o644)

    def start(self, **kw):
        kw.setdefault("enable_SMTPUTF8", True)
        self.controller = UnixSocketController(self.handler,
                                               unix_socket=self.socket,
                                               **kw)
        self.controller.start()
        os.chmod(self.socket, 0o777)
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.handler.messages

    def run(self, args, stdin=b"", user=None, argv0=None, conf=True):
        """./postern sendmail [-C conf] ARGS < stdin; CompletedProcess
        with bytes, after checking the stderr contract."""
        cmd = [argv0] if argv0 else [POSTERN, "sendmail"]
        if conf:
            cmd += ["-C", self.conf]
        cmd += list(args)
        if isinstance(stdin, str):
            stdin = stdin.encode()
        r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, user=user,
                           cwd=self.dir)
        err = r.stderr.decode("utf-8", "replace")
        for bad in SANITIZER_MARKS:
            assert bad not in err, f"sanitizer report from {cmd}:\n{err}"
        assert r.stdout == b"", r.stdout
        if r.returncode == 0:
            assert err == "", f"exit 0 with stderr {err!r}"
        else:
            assert err.startswith("sendmail: ") and err.endswith("\n") \
                and err.count("\n") == 1, \
                f"exit {r.returncode}: stderr is not one line: {err!r}"
        r.err = err
        return r


@pytest.fixture
def env(workdir, postern_bin):
    e = Env(workdir)
    yield e
    e.stop()


def _serve_raw(path, script):
    """A one-connection server on unix socket path running
    script(conn, rfile) in a thread; returns (thread, listener)."""
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    os.chmod(path, 0o777)
    lsock.listen(1)
    lsock.settimeout(30)

    def run():
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            rfile = conn.makefile("rb")
            try:
                script(conn, rfile)
            except OSError:
                pass
            rfile.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, lsock


def _dialogue_until_data(conn, rfile):
    """Answer the client like a daemon up to 354 (included)."""
    conn.sendall(b"220 relay.example.test ESMTP Postern\r\n")
    while True:
        line = rfile.readline()
        if not line:
            return False
        verb = line[:4].upper()
        if verb == b"EHLO":
            conn.sendall(b"250-relay.example.test\r\n250-PIPELINING\r\n"
                         b"250 ENHANCEDSTATUSCODES\r\n")
        elif verb in (b"MAIL", b"RCPT"):
            conn.sendall(b"250 2.0.0 Ok\r\n")
        elif verb == b"DATA":
            conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            return True
        else:
            conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")


LF_MESSAGE = (
    "From: Root <root@example.test>\n"
    "To: bob@example.com, Carol <carol@example.net>\n"
    "Cc: dave@example.org\n"
    "Bcc: eve@example.com,\n"
    "\tfrank@example.com\n"
    "Subject: a test\n"
    "  folded subject\n"
    "\n"
    "First line.\n"
    ".leading dot\n"
    "..two dots\n"
    "\n"
    "Last line.\n")


# -- what arrives ----------------------------------------------------------

def test_t_recipients_bcc_removed_crlf(env):
    env.start()
    r = env.run(["-t", "-i", "extra@example.com"], LF_MESSAGE)
    assert r.returncode == EX_OK, r.err
    assert len(env.messages) == 1
    m = env.messages[0]
    assert m.sender == "root@example.test"
    assert m.rcpts == ["extra@example.com", "bob@example.com",
                       "carol@example.net", "dave@example.org",
                       "eve@example.com", "frank@example.com"]
    # Bcc: gone with its continuation line, the folded Subject kept
    assert b"bcc" not in m.header.lower()
    assert b"frank" not in m.content
    assert m.header == (
        b"From: Root <root@example.test>\r\n"
        b"To: bob@example.com, Carol <carol@example.net>\r\n"
        b"Cc: dave@example.org\r\n"
        b"Subject: a test\r\n"
        b"  folded subject\r\n")
    # CRLF only, and the dot-stuffing round trip gives the body back
    assert b"\n" not in m.content.replace(b"\r\n", b"")
    assert m.body == (b"First line.\r\n.leading dot\r\n..two dots\r\n"
                      b"\r\nLast line.\r\n")


def test_bcc_removed_without_t(env):
    env.start()
    msg = ("From: root@example.test\nBcc: secret@example.com\n"
           "To: bob@example.com\n\nhi\n")
    r = env.run(["bob@example.com"], msg)
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.rcpts == ["bob@example.com"]
    assert b"secret" not in m.content


def test_crlf_input_unchanged(env):
    env.start()
    msg = (b"From: root@example.test\r\nTo: bob@example.com\r\n"
           b"Subject: crlf\r\n\r\nline 1\r\n.\r\n..\r\nline 3\r\n")
    r = env.run(["-i", "bob@example.com"], msg)
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].content == msg


def test_lone_dot_ends_input_without_i(env):
    env.start()
    msg = ("From: root@example.test\nSubject: dot\n\nbefore\n.\n"
           "after the dot\n")
    r = env.run(["bob@example.com"], msg)
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.body == b"before\r\n"
    assert b"after the dot" not in m.content


@pytest.mark.parametrize("flag", ["-i", "-oi"])
def test_lone_dot_kept_with_i(env, flag):
    env.start()
    msg = "From: root@example.test\nSubject: dot\n\nbefore\n.\nafter\n"
    r = env.run([flag, "bob@example.com"], msg)
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].body == b"before\r\n.\r\nafter\r\n"


def test_from_added_with_F(env):
    env.start()
    msg = "To: bob@example.com\nSubject: no from\n\nbody\n"
    r = env.run(["-F", "Trac Bot", "-f", "other@example.test",
                 "bob@example.com"], msg)
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.sender == "other@example.test"
    assert m.content.startswith(
        b"From: Trac Bot <other@example.test>\r\nTo: bob@example.com\r\n")


def test_from_added_quoted_and_encoded(env):
    env.start()
    r = env.run(["-FJ. Smith", "-fother@example.test", "bob@example.com"],
                "Subject: s\n\nbody\n")
    assert r.returncode == EX_OK, r.err
    r = env.run(["-F", "J\u00f6rg", "-r", "other@example.test",
                 "bob@example.com"], "Subject: s\n\nbody\n")
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].content.startswith(
        b'From: "J. Smith" <other@example.test>\r\nSubject: s\r\n')
    assert env.messages[1].content.startswith(
        b"From: =?UTF-8?B?SsO2cmc=?= <other@example.test>\r\n")


def test_default_sender_from_local_senders(env):
    """No -f and no From:: the first exact local_senders address of the
    caller (root here; "*@example.test" is skipped)."""
    env.start()
    r = env.run(["-F", "Cron Daemon", "bob@example.com"],
                "Subject: cron\n\nout\n")
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.sender == "root@example.test"
    assert m.content.startswith(b"From: Cron Daemon <root@example.test>\r\n")


def test_from_header_gives_sender_and_stays(env):
    env.start()
    r = env.run(["-F", "ignored", "bob@example.com"],
                "From: Other <other@example.test>\nSubject: s\n\nb\n")
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.sender == "other@example.test"
    assert m.content.startswith(b"From: Other <other@example.test>\r\n")
    assert m.content.count(b"From:") == 1


def test_comma_separated_recipients(env):
    env.start()
    r = env.run(["-i", "a@example.com, B <b@example.net>", "c@example.org",
                 "a@example.com"], "From: root@example.test\n\nx\n")
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].rcpts == ["a@example.com", "b@example.net",
                                     "c@example.org"]


def test_headerless_message_sent_as_is(env):
    env.start()
    r = env.run(["bob@example.com"], "Hello, this is no header\nline 2\n")
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.sender == "root@example.test"
    assert m.content == b"Hello, this is no header\r\nline 2\r\n"


def test_body_without_empty_line(env):
    """A line that is no field ends the header section; the empty line
    is put in before it."""
    env.start()
    r = env.run(["bob@example.com"],
                "From: root@example.test\nSubject: s\nHello there.\n")
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].content == (b"From: root@example.test\r\n"
                                       b"Subject: s\r\n\r\nHello there.\r\n")


def test_mbox_from_line_dropped(env):
    env.start()
    r = env.run(["bob@example.com"],
                "From root@example.test Mon Nov 23 20:07:29 2026\n"
                "From: root@example.test\nSubject: s\n\nb\n")
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].content == (b"From: root@example.test\r\n"
                                       b"Subject: s\r\n\r\nb\r\n")


def test_smtputf8_and_body(env):
    env.start()
    r = env.run(["-B8BITMIME", "bob@example.com"],
                "From: root@example.test\nSubject: caf\u00e9\n\nd\u00e9j\u00e0\n")
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert "SMTPUTF8" in m.options and "BODY=8BITMIME" in m.options
    assert m.body == "d\u00e9j\u00e0\r\n".encode()
    r = env.run(["bob@example.com"], "From: root@example.test\n\nascii\n")
    assert r.returncode == EX_OK, r.err
    assert env.messages[1].options == []


def test_symlink_named_sendmail(env):
    env.start()
    link = os.path.join(env.dir, "sendmail")
    os.symlink(os.path.abspath(POSTERN), link)
    r = env.run(["-t"], "From: root@example.test\nTo: bob@example.com\n\nx\n",
                argv0=link)
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].rcpts == ["bob@example.com"]


def test_big_body_streamed(env):
    """20 MB of body arrive intact; the client's memory does not grow
    with the message (measured around the process by a wrapper)."""
    env.start()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
    body = b"".join(b"." + line if i % 10 == 0 else line
                    for i in range(20 * 1024 * 1024 // len(line)))
    msg = b"From: root@example.test\nSubject: big\n\n" + body
    wrapper = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:])\n"
               "sys.stderr.write('' if r.returncode == 0 else 'failed')\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "sys.exit(r.returncode)\n")
    r = subprocess.run([sys.executable, "-c", wrapper, POSTERN, "sendmail",
                        "-C", env.conf, "-i", "bob@example.com"], input=msg,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    maxrss_kb = int(r.stdout)
    assert env.messages[0].body == body.replace(b"\n", b"\r\n")
    if not SANITIZED:
        assert maxrss_kb < 16 * 1024, f"client used {maxrss_kb} KB"


# -- exit statuses -----------------------------------------------------------

MSG = "From: root@example.test\nTo: bob@example.com\nSubject: s\n\nbody\n"


@pytest.mark.parametrize("reply, status", [
    ("550 5.7.1 From: address <root@example.test> not owned by user root",
     EX_NOPERM),
    ("451 4.3.0 Error: queue file write error", EX_TEMPFAIL),
    ("550 5.6.0 Message must have exactly one From: address", EX_DATAERR),
    ("552 5.3.4 Message size exceeds fixed limit of 1024 bytes", EX_DATAERR),
])
def test_final_reply_status(env, reply, status):
    env.handler.data_reply = reply
    env.start()
    r = env.run(["bob@example.com"], MSG)
    assert r.returncode == status, r.err
    assert r.err == f"sendmail: {reply}\n"


def test_sender_refused(env):
    env.handler.mail_reply = ("553 5.7.1 Sender address <x@example.test> "
                              "not allowed for local user root")
    env.start()
    r = env.run(["-f", "x@example.test", "bob@example.com"], MSG)
    assert r.returncode == EX_NOPERM
    assert "553 5.7.1 Sender address <x@example.test> not allowed" in r.err
    assert env.messages == []


@pytest.mark.parametrize("reply, status", [
    ("550 5.1.2 <a@nx.example>: Recipient address rejected: domain "
     "nx.example does not exist", EX_NOHOST),
    ("501 5.1.3 Bad recipient address syntax", EX_NOUSER),
    ("452 4.7.1 Error: root has sent 1000 recipients this hour", EX_TEMPFAIL),
])
def test_one_recipient_refused_fails_all(env, reply, status):
    env.handler.rcpt_replies["a@nx.example"] = reply
    env.start()
    r = env.run(["bob@example.com", "a@nx.example", "carol@example.net"], MSG)
    assert r.returncode == status, r.err
    assert r.err == (f"sendmail: recipient <a@nx.example> refused, message "
                     f"not sent: {reply}\n")
    assert env.messages == []           # no DATA: nobody got it


def test_no_daemon(env):
    # nothing at the socket path, local_senders set: the daemon is down
    r = env.run(["bob@example.com"], MSG)
    assert r.returncode == EX_UNAVAILABLE
    assert r.err == (f"sendmail: no local socket at {env.socket}: the "
                     f"postern daemon is not running (start it: postern "
                     f"serve -c {env.conf}, or its service)\n")
    # a stale socket nobody listens on
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(env.socket)
    s.close()
    r = env.run(["bob@example.com"], MSG)
    assert r.returncode == EX_UNAVAILABLE
    assert "Connection refused" in r.err


def test_no_local_senders(env):
    """local_senders empty: the daemon opens no local socket, and the
    error says so, and what to do, rather than "No such file"."""
    head = CONF.format(socket=env.socket, extra="").split("local_senders")[0]
    with open(env.conf, "w") as f:
        f.write(head + "local_senders = ();\n")
    r = env.run(["-f", "root@example.test", "bob@example.com"], MSG)
    assert r.returncode == EX_UNAVAILABLE
    assert r.err == (f"sendmail: no local socket at {env.socket}: "
                     f"local_senders in {env.conf} is empty, so the postern "
                     f"daemon opens none (add user root to local_senders "
                     f"there, then restart the daemon)\n")
    # no local_senders setting at all: the same
    with open(env.conf, "w") as f:
        f.write(head)
    r = env.run(["-f", "root@example.test", "bob@example.com"], MSG)
    assert r.returncode == EX_UNAVAILABLE
    assert f"local_senders in {env.conf} is empty" in r.err
    # a configuration that cannot be read: both causes, both remedies
    r = env.run(["-C", os.path.join(env.dir, "missing.conf"),
                 "-f", "root@example.test", "bob@example.com"], MSG,
                conf=False)
    assert r.returncode == EX_UNAVAILABLE
    assert r.err.startswith("sendmail: no local socket at "
                            "/run/postern/sendmail.sock: the postern daemon "
                            "is not running, or local_senders is empty so "
                            "it opens none (start the daemon, or add user "
                            "root to local_senders in "), r.err
    assert "(the default path: " in r.err


@pytest.mark.parametrize("args, words", [
    (["-z", "bob@example.com"], "unknown option -z"),
    (["-bs"], "-bs (SMTP on standard input) is not supported"),
    (["-q"], "-q (queue run) is not supported"),
    (["-B", "BINARYMIME", "bob@example.com"], "-B needs 7BIT or 8BITMIME"),
    (["-f"], "option -f needs an argument"),
    ([], "no recipients given"),
    (["-f", "not an address", "bob@example.com"], "-f \"not an address\""),
])
def test_usage(env, args, words):
    env.start()
    r = env.run(args, MSG)
    assert r.returncode == EX_USAGE
    assert words in r.err
    assert env.handler.transactions == 0


def test_no_recipients_with_t(env):
    env.start()
    r = env.run(["-t"], "From: root@example.test\nSubject: s\n\nb\n")
    assert r.returncode == EX_USAGE
    assert "no recipients" in r.err
    assert env.handler.transactions == 0


def test_local_recipient_refused(env):
    env.start()
    r = env.run(["root"], MSG)
    assert r.returncode == EX_NOUSER
    assert 'recipient "root": not an address' in r.err


def test_ignored_options(env):
    """What cron, cronie, mutt and git send-email pass."""
    env.start()
    r = env.run(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-odi", "-oi",
                 "-N", "never", "-R", "hdrs", "-V", "x1", "-v", "-X",
                 "/dev/null", "-h", "3", "-bm", "-om", "-oL9", "--",
                 "bob@example.com"], MSG)
    assert r.returncode == EX_OK, r.err
    assert env.messages[0].rcpts == ["bob@example.com"]


def test_header_too_big(env):
    env.write_conf(extra="limits = { header_size = 1024; };")
    env.start()
    msg = "From: root@example.test\nSubject: " + "x" * 2000 + "\n\nbody\n"
    r = env.run(["bob@example.com"], msg)
    assert r.returncode == EX_DATAERR
    assert "header section is larger than 1024 bytes" in r.err
    assert env.handler.transactions == 0


def test_bad_to_with_t(env):
    env.start()
    r = env.run(["-t"], "From: root@example.test\nTo: bob\n\nb\n")
    assert r.returncode == EX_DATAERR
    assert "To: field is not an address list" in r.err


def test_no_sender_known(env):
    """A caller local_senders does not map, no -f, no From:."""
    with open(env.conf, "w") as f:
        f.write(CONF.format(socket=env.socket, extra="").replace(
            'user = "root"', 'user = "someone-else"'))
    env.start()
    r = env.run(["bob@example.com"], "Subject: s\n\nb\n")
    assert r.returncode == EX_USAGE
    assert "no sender address: give -f ADDRESS or a From: field, or map " \
        "user root to an address in local_senders" in r.err


# -- raw stand-ins: what aiosmtpd cannot do ---------------------------------

def test_refused_at_greeting(env):
    def script(conn, rfile):
        conn.sendall(b"554 5.7.1 Local user root may not send mail\r\n")

    t, lsock = _serve_raw(env.socket, script)
    try:
        r = env.run(["bob@example.com"], MSG)
    finally:
        t.join(10)
        lsock.close()
    assert r.returncode == EX_NOPERM
    assert r.err == "sendmail: 554 5.7.1 Local user root may not send mail\n"


def test_garbage_reply(env):
    def script(conn, rfile):
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n")
        rfile.readline()

    t, lsock = _serve_raw(env.socket, script)
    try:
        r = env.run(["bob@example.com"], MSG)
    finally:
        t.join(10)
        lsock.close()
    assert r.returncode == EX_PROTOCOL
    assert "not SMTP" in r.err


def test_connection_lost_during_data(env):
    got = []

    def script(conn, rfile):
        if _dialogue_until_data(conn, rfile):
            got.append(rfile.readline())
        # then close without a reply

    t, lsock = _serve_raw(env.socket, script)
    try:
        r = env.run(["-i", "bob@example.com"], MSG)
    finally:
        t.join(10)
        lsock.close()
    assert got, "the client never sent DATA"
    assert r.returncode == EX_TEMPFAIL
    assert "connection to the daemon" in r.err and "lost" in r.err


def test_stdin_read_error_in_header(env):
    """A directory as stdin: read() fails (EISDIR) before anything is
    sent."""
    env.start()
    fd = os.open(env.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = subprocess.run([POSTERN, "sendmail", "-C", env.conf,
                            "bob@example.com"], stdin=fd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
    finally:
        os.close(fd)
    assert r.returncode == EX_IOERR
    assert r.stderr == b"sendmail: cannot read the message: Is a directory\n"
    assert env.handler.transactions == 0


def test_stdin_read_error_in_body(env):
    """stdin fails while the body is being sent: EX_IOERR, and the final
    "." is never sent, so the daemon discards what it got. The failing
    stdin is one end of a unix socketpair: when the other end is closed
    with data it never read, Linux makes the next read() of this end fail
    with ECONNRESET (a closed pty master gives EIO or EOF, racily)."""
    body_started = threading.Event()
    lines = []

    def script(conn, rfile):
        if not _dialogue_until_data(conn, rfile):
            return
        while True:
            line = rfile.readline()
            if not line:
                return
            lines.append(line)
            if line == b"first body line\r\n":
                body_started.set()

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.sendall(b"x")        # left unread in our end
    t, lsock = _serve_raw(env.socket, script)
    p = subprocess.Popen([POSTERN, "sendmail", "-C", env.conf,
                          "bob@example.com"], stdin=theirs.fileno(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    theirs.close()
    try:
        ours.sendall(b"From: root@example.test\nSubject: s\n\n"
                     b"first body line\n")
        assert body_started.wait(20), f"body never arrived: {lines}"
    finally:
        ours.close()
        try:
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            t.join(10)
            lsock.close()
    assert p.returncode == EX_IOERR, err
    assert err == (b"sendmail: cannot read the message: Connection reset "
                   b"by peer\n")
    assert b".\r\n" not in lines
    assert lines[-1] == b"first body line\r\n"


# -- no privileges --------------------------------------------------------

def _nobody_can_run():
    if os.geteuid() != 0:
        return "needs root to switch to nobody"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "no user nobody"
    r = subprocess.run([POSTERN, "sendmail", "-bs"], user="nobody",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != EX_USAGE:
        return f"nobody cannot run {POSTERN}: {r.returncode} {r.stderr!r}"
    return None


def test_runs_as_nobody(env):
    why = _nobody_can_run()
    if why:
        pytest.skip(why)
    env.start()
    # the caller's own mapping gives sender and From:
    r = env.run(["-F", "No Body", "bob@example.com"], "Subject: s\n\nhi\n",
                user="nobody")
    assert r.returncode == EX_OK, r.err
    m = env.messages[0]
    assert m.sender == "nobody@example.test"
    assert m.content.startswith(b"From: No Body <nobody@example.test>\r\n")


def test_nobody_unreadable_config_falls_back(env):
    """A configuration nobody cannot read: the compiled default socket
    path, no default sender; the reason is quoted."""
    why = _nobody_can_run()
    if why:
        pytest.skip(why)
    if os.path.exists("/run/postern/sendmail.sock"):
        pytest.skip("a daemon socket exists at the default path")
    os.chmod(env.conf, 0o600)
    env.start()
    r = env.run(["bob@example.com"], "Subject: s\n\nhi\n", user="nobody")
    assert r.returncode == EX_USAGE
    assert "no sender address" in r.err and "Permission denied" in r.err
    r = env.run(["-f", "nobody@example.test", "bob@example.com"],
                "Subject: s\n\nhi\n", user="nobody")
    assert r.returncode == EX_UNAVAILABLE
    assert r.err.startswith("sendmail: no local socket at "
                            "/run/postern/sendmail.sock: the postern daemon "
                            "is not running, or local_senders is empty")
    assert "cannot open: Permission denied" in r.err
    assert env.messages == []
