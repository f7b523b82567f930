"""
Helpers for the end-to-end tests: a raw SMTP client (for exact replies,
pipelining and abuse), message builders, the envelope parser and queue
assertions. Real clients (smtplib, swaks, msmtp, gsasl) are used directly
in the tests; this raw client exists for what they cannot do.
"""
import base64
import smtplib
import errno
import os
import re
import socket
import ssl
import subprocess
import time

HOSTNAME = "relay.example.test"

# Users every test daemon's sasldb holds (created with `postern users add`).
# Logins are addresses in the hosted domain example.test.
USERS = {
    "alice@example.test": "alice-secret-1",
    "admin@example.test": "admin-secret-2",
    "bob@example.test": "bob-secret-3",
}

ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
QUEUED_RE = re.compile(r"Ok: queued as ([0-9A-Za-z]+)")


def client_context(cafile):
    """A client SSL context that trusts only the test certificate and checks
    the host name (the certificate covers 127.0.0.1, ::1 and localhost)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def plain_response(login, password):
    return b64(b"\0" + login.encode() + b"\0" + password.encode())


class ConnectionClosed(Exception):
    pass


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines            # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        first = self.lines[0].split(" ", 1)[0] if self.lines else ""
        return first if ENH_RE.match(first) else None

    def __repr__(self):
        return "\n".join(f"{self.code} {l}" for l in self.lines) or f"{self.code}"


class SMTP:
    """A raw SMTP connection: send exactly the bytes a test wants, read
    replies one at a time, keep a transcript for failure messages."""

    def __init__(self, host, port, ctx=None, implicit=False, timeout=15,
                 source=None):
        """source: the local address to connect from (another 127.x
        address, so that per-address limits see another client)."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.ctx = ctx
        self.tls = False
        if implicit:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
            self.tls = True
        self.buf = b""
        self.eof = False
        self.transcript = []

    # -- low level ------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        shown = data if len(data) < 300 else data[:200] + b"...(%d bytes)" % len(data)
        self.transcript.append("C: " + shown.decode("utf-8", "replace").rstrip("\r\n"))
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError,
                BrokenPipeError):
            chunk = b""
        except ssl.SSLError as e:
            # unexpected EOF or a TLS alert after the server closed
            self.transcript.append(f"S: (TLS error {e})")
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by server\n" +
                                   self.dump())
        self.buf += chunk

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self.readline()
            self.transcript.append("S: " + line)
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError(f"malformed reply line {line!r}\n" +
                                     self.dump())
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(int(line[:3]), lines)
            if line[3] != "-":
                raise AssertionError(f"malformed reply line {line!r}\n" +
                                     self.dump())

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True if the server closes the connection (EOF) within timeout,
        with nothing else to say."""
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
                if self.buf:
                    self.transcript.append(
                        "S: (unexpected) " + self.buf.decode("utf-8", "replace"))
                    return False
        except ConnectionClosed:
            return True
        except (socket.timeout, TimeoutError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def dump(self):
        return "transcript:\n  " + "\n  ".join(self.transcript[-60:])

    # -- protocol steps -------------------------------------------------
    def greeting(self):
        r = self.reply()
        expect(r, 220, None, "ESMTP", conn=self)
        assert r.lines[0].startswith(HOSTNAME), r
        return r

    def ehlo(self, name="client.example.test"):
        r = self.cmd("EHLO " + name)
        expect(r, 250, conn=self)
        return r

    def starttls(self):
        r = self.cmd("STARTTLS")
        expect(r, 220, "2.0.0", conn=self)
        assert not self.buf, "server sent data after 220 to STARTTLS"
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=self.host)
        self.tls = True
        return r

    def auth_plain(self, login, password=None):
        if password is None:
            password = USERS[login]
        r = self.cmd("AUTH PLAIN " + plain_response(login, password))
        return r

    def login(self, login, password=None):
        r = self.auth_plain(login, password)
        expect(r, 235, "2.7.0", conn=self)
        return r

    def data(self, message, expect_354=True):
        """DATA, then the message (bytes with CRLF, dot-stuffed here) and
        the final dot; returns the reply to the final dot."""
        r = self.cmd("DATA")
        if expect_354:
            expect(r, 354, None, conn=self)
        elif r.code != 354:
            return r
        self.send(dot_stuff(message) + b".\r\n")
        return self.reply()

    def send_message(self, sender, rcpts, message):
        expect(self.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", conn=self)
        for rc in rcpts:
            expect(self.cmd(f"RCPT TO:<{rc}>"), 250, "2.1.5", conn=self)
        r = self.data(message)
        expect(r, 250, "2.0.0", "queued as", conn=self)
        return queued_id(r.text)


def expect(reply, code, enh=None, *words, conn=None):
    """Assert a reply's code, enhanced status code and key words of its
    text (case-insensitive)."""
    where = ("\n" + conn.dump()) if conn is not None else ""
    assert reply is not None, "no reply" + where
    assert reply.code == code, \
        f"expected {code} {enh or ''} {' '.join(words)}, got:\n{reply!r}{where}"
    if enh is not None:
        assert reply.enh == enh, \
            f"expected enhanced status {enh}, got:\n{reply!r}{where}"
    for w in words:
        assert w.lower() in reply.text.lower(), \
            f"expected {w!r} in reply text, got:\n{reply!r}{where}"
    return reply


def queued_id(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    m = QUEUED_RE.search(text)
    assert m, f"no queue id in {text!r}"
    return m.group(1)


def dot_stuff(message):
    if isinstance(message, str):
        message = message.encode()
    lines = message.split(b"\r\n")
    out = [b"." + l if l.startswith(b".") else l for l in lines]
    data = b"\r\n".join(out)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def make_message(sender, rcpts, subject="test", body="Hello.\r\n",
                 message_id=True, date=True, extra_headers=(), from_header=None):
    """A client's message as bytes with CRLF line ends."""
    hdrs = []
    hdrs.append(f"From: {from_header if from_header is not None else sender}")
    hdrs.append("To: " + ", ".join(rcpts))
    hdrs.append(f"Subject: {subject}")
    if date:
        hdrs.append("Date: Mon, 23 Nov 2026 10:00:00 +0000")
    if message_id:
        hdrs.append(f"Message-ID: <{abs(hash(subject))}.{time.time_ns()}@client.example.test>")
    hdrs.extend(extra_headers)
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + body


# -- the queue on disk -----------------------------------------------------

class Envelope:
    def __init__(self, records):
        self.records = records          # [(key, value)]

    def all(self, key):
        return [v for k, v in self.records if k == key]

    def get(self, key):
        v = self.all(key)
        return v[0] if v else None

    @property
    def sender(self):
        return self.get("sender")

    @property
    def login(self):
        return self.get("login")

    @property
    def rcpts(self):
        """[(status, address)]"""
        out = []
        for v in self.all("rcpt"):
            status, _, addr = v.partition(" ")
            out.append((status, addr))
        return out

    @property
    def replies(self):
        """{address: "CODE ENH TEXT"} from the reply record that follows
        a recipient's rcpt record (its last delivery attempt)."""
        out = {}
        addr = None
        for k, v in self.records:
            if k == "rcpt":
                addr = v.partition(" ")[2]
            elif k == "reply":
                assert addr is not None and addr not in out, self.records
                out[addr] = v
        return out

    def __repr__(self):
        return "Envelope(%r)" % (self.records,)


def parse_envelope(data):
    """Parse an envelope's text as the contract describes it: first line
    "postern-envelope 2" (the version Postern writes), or 3 with a hold
    record (a message on hold), "key value" records, last line "end"."""
    text = data.decode("utf-8")
    assert text.endswith("\n"), f"envelope does not end in a newline: {text!r}"
    lines = text[:-1].split("\n")
    held = any(l.startswith("hold ") for l in lines)
    assert lines[0] == f"postern-envelope {3 if held else 2}", \
        f"bad first line: {text!r}"
    assert lines[-1] == "end", f"envelope lacks the end marker: {text!r}"
    records = []
    for line in lines[1:-1]:
        key, _, value = line.partition(" ")
        assert key and key.isascii() and key.replace("_", "").replace("-", "").isalnum(), \
            f"bad record {line!r} in {text!r}"
        records.append((key, value))
    return Envelope(records)


QUEUE_MAGIC = b"postern-queue 3 "
QUEUE_HDR_LEN = len(QUEUE_MAGIC) + 20 + 1


def split_queue_file(data):
    """A queue file as QUEUE.md describes it: the header (magic, the
    envelope's offset in 20 digits, LF), the message, then the envelope
    as committed and each update appended after it. Returns (message
    bytes, [envelope texts], bytes after the last whole envelope)."""
    assert data[:len(QUEUE_MAGIC)] == QUEUE_MAGIC, \
        f"bad queue file header: {data[:QUEUE_HDR_LEN]!r}"
    digits = data[len(QUEUE_MAGIC):QUEUE_HDR_LEN - 1]
    assert len(digits) == 20 and digits.isdigit() and \
        data[QUEUE_HDR_LEN - 1:QUEUE_HDR_LEN] == b"\n", data[:QUEUE_HDR_LEN]
    off = int(digits)
    assert QUEUE_HDR_LEN <= off <= len(data), (off, len(data))
    tail = data[off:]
    envelopes, pos = [], 0
    while True:
        end = tail.find(b"\nend\n", pos)
        if end == -1:
            break
        envelopes.append(tail[pos:end + 5])
        pos = end + 5
    return data[QUEUE_HDR_LEN:off], envelopes, tail[pos:]


def queue_file_envelope(data):
    """The envelope a queue file holds: the last one appended, with the
    prepend records of the first (updates leave them out)."""
    _, texts, _ = split_queue_file(data)
    assert texts, "queue file without an envelope"
    first, last = parse_envelope(texts[0]), parse_envelope(texts[-1])
    assert last.get("id") == first.get("id"), (first, last)
    assert last.get("size") == first.get("size"), (first, last)
    records = [r for r in last.records if r[0] != "prepend"]
    prepend = [r for r in first.records if r[0] == "prepend"]
    return Envelope(records[:1] + prepend + records[1:]) if prepend else \
        Envelope(records)


def header_fields(header_text):
    """[(name, value)] of an RFC 5322 header section (CRLF, unfolded)."""
    fields = []
    for line in header_text.split("\r\n"):
        if not line:
            continue
        if line[0] in " \t":
            assert fields, f"continuation first in {header_text!r}"
            name, value = fields[-1]
            fields[-1] = (name, value + "\r\n" + line)
            continue
        name, sep, value = line.partition(":")
        assert sep, f"not a header field: {line!r}"
        fields.append((name, value))
    return fields


def split_message(msg):
    """(header section incl. its final CRLF, rest from the empty line on)"""
    if msg.startswith(b"\r\n"):
        return b"", msg
    k = msg.find(b"\r\n\r\n")
    if k < 0:
        return msg, b""
    return msg[:k + 2], msg[k + 2:]


def check_stored_message(d, qid, client_msg, added_message_id, added_date):
    """The stored message is our Received field first, then the client's
    message byte for byte, except that Message-ID and Date are added when
    the client's message lacked them (and only then) - either right after
    Received or at the end of the client's header section, where Postfix
    puts them."""
    stored = d.message(qid)
    where = f"\nstored: {stored[:3000]!r}\nclient: {client_msg[:3000]!r}"
    assert stored.startswith(b"Received:"), "Received not first" + where
    # our Received field: the first line and its continuation lines
    lines = stored.split(b"\r\n")
    n = 1
    while n < len(lines) and lines[n][:1] in (b" ", b"\t"):
        n += 1
    received = b"\r\n".join(lines[:n]).decode("utf-8", "replace")
    rest = b"\r\n".join(lines[n:])
    assert f"by {HOSTNAME}" in received, f"Received lacks 'by {HOSTNAME}': {received!r}"
    assert qid in received, f"Received lacks the queue id: {received!r}"

    hs, body = split_message(rest)
    hc, bodyc = split_message(client_msg)
    assert body == bodyc, "client's body changed" + where
    if hs.startswith(hc):
        added = hs[len(hc):]
    elif hs.endswith(hc):
        added = hs[:len(hs) - len(hc)]
    else:
        raise AssertionError("client's header section not intact" + where)
    fields = header_fields(added.decode("utf-8", "replace"))
    names = [n.lower() for n, _ in fields]
    assert ("message-id" in names) == added_message_id, \
        f"Message-ID added={added_message_id} expected; added: {added!r}" + where
    assert ("date" in names) == added_date, \
        f"Date added={added_date} expected; added: {added!r}" + where
    assert sorted(names) == sorted(set(names)) and \
        set(names) <= {"message-id", "date"}, \
        f"unexpected added fields: {added!r}" + where
    for name, v in fields:
        if name.lower() == "message-id":
            assert re.match(r"^\s*<[^<>\s]+@[^<>\s]+>\s*$", v), f"bad Message-ID {v!r}"
        if name.lower() == "date":
            assert re.match(r"^ ?(\w{3}, )?\d{1,2} \w{3} \d{4} \d\d:\d\d(:\d\d)? [+-]\d{4}", v), \
                f"bad Date {v!r}"
    # no line in the stored message longer than 998 octets
    for line in stored.split(b"\r\n"):
        assert len(line) <= 998
    return stored


def assert_queued(d, qid, sender, rcpts, login, client_msg=None,
                  added_message_id=False, added_date=False):
    assert qid in d.queue_ids(), f"{qid} not in queue/: {d.queue_files()}"
    env = d.envelope(qid)
    assert env.get("id") == qid, env
    assert env.get("size") == str(len(d.message(qid))), \
        f"size record {env.get('size')} != {len(d.message(qid))} bytes: {env}"
    assert env.sender == sender, f"sender {env.sender!r} != {sender!r}: {env}"
    assert env.rcpts == [("pending", r) for r in rcpts], \
        f"rcpts {env.rcpts} != {rcpts}: {env}"
    assert env.login == login, f"login {env.login!r} != {login!r}: {env}"
    if client_msg is not None:
        check_stored_message(d, qid, client_msg, added_message_id, added_date)
    return env


def assert_nothing_queued(d, before=(), conns=()):
    """After the session(s): no new envelope or message in queue/, and
    tmp/ empty (given a moment for the daemon to clean up after a close)."""
    for c in conns:
        c.close()
    left = d.wait_tmp_empty()
    assert not left, f"tmp/ not empty after the session: {left}"
    new = [f for f in d.queue_files()
           if f.rsplit(".", 1)[0] not in set(before)]
    assert not new, f"unexpected files in queue/: {new}"


def smtps(d, ctx, login=None, listener="smtps"):
    """A raw connection on an implicit-TLS listener, after EHLO (and AUTH
    PLAIN when login is given)."""
    c = SMTP(d.address(listener), d.port(listener), ctx, implicit=True)
    c.greeting()
    c.ehlo()
    if login:
        c.login(login)
    return c


def submission(d, ctx, login=None, listener="submission", source=None):
    """A raw connection on a STARTTLS listener, after EHLO, STARTTLS, EHLO
    (and AUTH PLAIN when login is given), from source if given."""
    c = SMTP(d.address(listener), d.port(listener), ctx, source=source)
    c.greeting()
    c.ehlo()
    c.starttls()
    c.ehlo()
    if login:
        c.login(login)
    return c


def plain(d, listener="trusted", ehlo=True):
    c = SMTP(d.address(listener), d.port(listener))
    c.greeting()
    if ehlo:
        c.ehlo()
    return c


def ehlo_keywords(reply):
    """{KEYWORD: params} from an EHLO reply (first line is the hostname)."""
    out = {}
    for line in reply.lines[1:]:
        kw, _, params = line.partition(" ")
        out[kw.upper()] = params
    return out


# -- DKIM: the final message and independent verifiers -----------------------

def envelope_prepend(env):
    """The bytes the envelope's `prepend BASE64` records put before the
    message's bytes (the DKIM-Signature fields); b"" if none."""
    return b"".join(base64.b64decode(v) for v in env.all("prepend"))


def final_message(d, qid):
    """`postern queue show ID --message`: the message as it will leave
    (DKIM-Signature fields, our Received, the client's message). Checked
    to be exactly the envelope's prepend records plus the message bytes
    of the queue file."""
    from conftest import POSTERN, ROOT
    p = subprocess.run([POSTERN, "queue", "show", qid, "--message",
                        "-c", d.conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, cwd=ROOT)
    assert p.returncode == 0, \
        f"queue show {qid} --message: exit {p.returncode}\n{p.stderr!r}"
    out = p.stdout
    want = envelope_prepend(d.envelope(qid)) + d.message(qid)
    assert out == want, (
        "queue show --message is not the envelope's prepend + message:\n"
        f"got  {out[:1500]!r}\nwant {want[:1500]!r}")
    return out


def header_section(msg):
    """The header section of a message (bytes), unfolded fields as
    [(name, value)] (value as text, folding kept)."""
    hs, _ = split_message(msg)
    return header_fields(hs.decode("utf-8", "replace"))


def dkim_signatures(msg):
    """[{tag: value}] of the DKIM-Signature fields, in order, white space
    removed from the values (as verifiers do for these tags)."""
    out = []
    for name, value in header_section(msg):
        if name.strip().lower() != "dkim-signature":
            continue
        tags = {}
        for part in value.split(";"):
            k, sep, v = part.partition("=")
            if not sep:
                continue
            tags[k.strip()] = re.sub(r"\s+", "", v)
        out.append(tags)
    return out


def dnsfunc_for(records):
    """A dkimpy dnsfunc serving {"sel._domainkey.dom": "v=DKIM1; ..."}."""
    recs = {(n.rstrip(".") + ".").lower().encode(): v.encode()
            for n, v in records.items()}

    def dnsfunc(name, timeout=5):
        if isinstance(name, str):
            name = name.encode()
        return recs.get(name.lower())
    return dnsfunc


def dkimpy_results(msg, records):
    """[True/False] per DKIM-Signature (dkimpy, each verified on its own
    with DKIM(msg).verify(idx=i)), plus the log of failures."""
    import dkim
    n = len(dkim_signatures(msg))
    out = []
    for i in range(n):
        try:
            ok = bool(dkim.DKIM(msg).verify(idx=i,
                                             dnsfunc=dnsfunc_for(records)))
        except Exception:
            ok = False
        out.append(ok)
    return out


MAIL_DKIM_SCRIPT = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Net::DNS;
my %txt;
open(my $r, '<', $ARGV[1]) or die "records: $!";
while (<$r>) { chomp; my ($n, $v) = split(/\t/, $_, 2); $txt{lc $n} = $v; }
{ no warnings 'redefine';
  *Mail::DKIM::DNS::query = sub {
    my ($d, $t) = @_; my $v = $txt{lc $d};
    if (!defined $v) { $@ = 'NXDOMAIN'; return (); }
    return (Net::DNS::RR->new(name => $d, type => 'TXT',
        txtdata => [unpack('(a255)*', $v)]));
  }; }
my $dkim = Mail::DKIM::Verifier->new();
open(my $m, '<', $ARGV[0]) or die "message: $!"; binmode $m;
while (<$m>) { $dkim->PRINT($_); }
$dkim->CLOSE;
for my $s ($dkim->signatures) {
  print join("\t", $s->algorithm || '', $s->domain || '', $s->selector || '',
             $s->result, $s->result_detail || ''), "\n";
}
"""


def mail_dkim_results(msg, records, workdir):
    """Perl Mail::DKIM's verdict per signature: [(algorithm, domain,
    selector, result, detail)], with DNS answered from records."""
    script = os.path.join(workdir, "maildkim-verify.pl")
    with open(script, "w") as f:
        f.write(MAIL_DKIM_SCRIPT)
    mfile = os.path.join(workdir, "maildkim-msg.eml")
    with open(mfile, "wb") as f:
        f.write(msg)
    rfile = os.path.join(workdir, "maildkim-records.txt")
    with open(rfile, "w") as f:
        for n, v in records.items():
            f.write(f"{n}\t{v}\n")
    p = subprocess.run(["perl", script, mfile, rfile], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, f"Mail::DKIM script failed:\n{p.stderr}"
    return [tuple(l.split("\t")) for l in p.stdout.splitlines() if l]


# -- a real DNS server on loopback ---------------------------------------

DNSMASQ = "/usr/sbin/dnsmasq"


def free_udp_port():
    """A loopback port free for both UDP and TCP (dnsmasq binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def udp_port_taken(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


class Dnsmasq:
    """dnsmasq answering for *.test from records only (anything else in
    .test is NXDOMAIN); local=False leaves it without the zone, so every
    query is REFUSED (no upstream)."""

    def __init__(self, port, workdir):
        self.port = port
        self.workdir = workdir
        self.proc = None

    def start(self, records, local=True, extra=()):
        """Serve records ({name: TXT value}) and dnsmasq options extra
        (e.g. "--mx-host=...", "--host-record=...")."""
        self.stop()
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null",
                "--pid-file=", "--no-resolv", "--no-hosts",
                f"--port={self.port}", "--listen-address=127.0.0.1",
                "--bind-interfaces"]
        if local:
            args.append("--local=/test/")
        for name, value in records.items():
            assert "," not in value, value     # dnsmasq's separator
            chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
            args.append("--txt-record=" + ",".join([name] + chunks))
        args += list(extra)
        self.log = open(os.path.join(self.workdir, "dnsmasq.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not udp_port_taken(self.port):
            assert self.proc.poll() is None, "dnsmasq exited at startup"
            assert time.time() < deadline, "dnsmasq never bound its port"
            time.sleep(0.02)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()


def plain_records(d):
    """{name: value} of what `postern keys dns --plain` prints for d's
    configuration (the records a test's DNS server should serve)."""
    from conftest import run_postern    # conftest imports this module
    r = run_postern(["keys", "dns", "--plain"], config=d.conf)
    assert r.returncode == 0, r.stdout + r.stderr
    out = {}
    for line in r.stdout.splitlines():
        name, typ, value = line.split(" ", 2)
        assert typ == "TXT", line
        out[name] = value
    return out


def plant_retiring(d, domain, selector="r0", source="r1"):
    """Give domain a retiring rsa-sha256 selector known only to the
    rotation state file (as after `keys rotate` and the switch), its key a
    copy of source's; returns the key's path."""
    keydir = os.path.join(d.state_dir, "keys", domain)
    path = os.path.join(keydir, f"{selector}.key")
    with open(os.path.join(keydir, f"{source}.key"), "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    with open(os.path.join(keydir, "state"), "w") as f:
        f.write("postern-dkim-state 1\n"
                f"selector {selector} rsa-sha256 retiring 1700000000 "
                f"{path}\nend\n")
    return path


# -- submitting and waiting ----------------------------------------------

def smtplib_session(d, ctx, login="alice@example.test"):
    """smtplib on the submission listener after EHLO, STARTTLS, EHLO and
    AUTH as login (the caller sends, then closes it)."""
    s = smtplib.SMTP("127.0.0.1", d.port("submission"), timeout=60)
    try:
        s.ehlo()
        s.starttls(context=ctx)
        s.ehlo()
        s.login(login, USERS[login])
    except BaseException:
        s.close()
        raise
    return s


def submit_smtplib(d, ctx, msg, sender="alice@example.test", rcpts=("bob@example.com",),
           login="alice@example.test", mail_options=()):
    """smtplib over STARTTLS with AUTH, as Trac does; returns the queue
    id from the reply to the end of DATA. msg: bytes with CRLF (smtplib
    dot-stuffs, and adds a final CRLF when the message lacks one)."""
    s = smtplib_session(d, ctx, login)
    try:
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (r, code, resp)
        code, resp = s.data(msg)
        assert code == 250, (code, resp)
        qid = queued_id(resp)
        s.quit()
    finally:
        s.close()
    return qid


def wait_until(cond, what, d, timeout=20):
    """Poll cond() until true; fail with the daemon's log tail if it
    takes longer than timeout seconds or the daemon dies."""
    deadline = time.time() + timeout
    while not cond():
        assert d.alive(), d.describe()
        assert time.time() < deadline, f"timed out: {what}\n" + \
            d.log()[-4000:]
        time.sleep(0.05)
