"""
End-to-end test fixtures: the real ./postern on real sockets.

Every test that needs a daemon gets its own: a fresh temporary directory
with a configuration written from a template (free ports on 127.0.0.1), a
copy of a SASL database whose users were created with `postern users add`,
and the session's self-signed certificate. The daemon runs in the
foreground with its stderr captured to a file; readiness is polled (every
listening port accepts TCP), never waited for with a fixed sleep.

On failure the test's directory is kept and its path, the daemon's stderr
and the queue's contents are added to the pytest report; on success the
directory is removed. A daemon that died during a test (crash) fails the
test even if every assertion passed.

Every hosted domain signs its mail with DKIM, so every configuration
written here gives each domain a `dkim` list (by default one rsa-sha256
selector "r1" and one ed25519-sha256 selector "e1") and puts the keys where
the daemon looks for them by default, STATE_DIR/keys/DOMAIN/SELECTOR.key,
mode 0600. The keys are made once per session with `openssl genpkey` (one
RSA 2048 and one Ed25519 pair) and copied into each test's state dir; their
DNS TXT records are in Postern.dkim_records for the verifiers.

Helpers for the tests themselves live in helpers.py.
"""
import atexit
import base64
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The binary under test: ./postern, or POSTERN_BIN (tests/run-all --san
# sets it to build-san/postern, built with AddressSanitizer + UBSan).
POSTERN = os.environ.get("POSTERN_BIN") or os.path.join(ROOT, "postern")
# Set with POSTERN_BIN by tests/run-all --san: the directory where every
# sanitized postern process writes its reports (ASAN_OPTIONS log_path,
# files report.PID) instead of its stderr.
SAN_LOGDIR = os.environ.get("POSTERN_SAN_LOGDIR")
# What a sanitizer report that went to stderr starts with.
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

from helpers import (DNSMASQ, HOSTNAME, USERS, Dnsmasq, client_context,
                     free_udp_port, queue_file_envelope, split_queue_file)

# The selectors every hosted domain gets unless a test says otherwise.
# The refusing DNS server (refusing_dns); the discard port, where nothing
# answers (every lookup then waits for its timeout), if dnsmasq is missing.
_NO_DNS = {"port": 9}
DEFAULT_DKIM = (("r1", "rsa-sha256"), ("e1", "ed25519-sha256"))
ALG_KEYTYPE = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}

# The daemon refuses to run its event loop as root; run as root (CI),
# every test daemon is told to become this user unless its config says
# otherwise.
DAEMON_USER = "nobody" if os.geteuid() == 0 else None

DEFAULT_LIMITS = {
    "message_size": 1048576,
    "recipients": 5,
    "line_length": 4096,
    "header_size": 65536,
    "errors_per_session": 10,
    "command_timeout": '"10s"',
    "data_timeout": '"10s"',
    "session_lifetime": '"1h"',
    "connections": 1000,
    "connections_per_ip": 20,
    # rate limits off unless a test sets them (tests send many messages
    # to one address); test_rates.py checks them
    "user_messages_per_hour": 0,
    "user_messages_per_day": 0,
    "user_recipients_per_hour": 0,
    "user_recipients_per_day": 0,
    "recipient_messages_per_hour": 0,
    # a nearly full disk on a shared test machine must not fail every test
    "queue_min_free": 1048576,
}


# Every daemon process a test started, so that an interrupted run (Ctrl-C,
# a crash of pytest itself) leaves none behind.
_LIVE = set()


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()
            p.wait()


def free_port(family=socket.AF_INET, addr="127.0.0.1"):
    """A port nobody listens on right now (bind to port 0, then release)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def genkey(path, kind, bits=2048):
    """A PEM private key as `openssl genpkey` writes it, mode 0600.
    kind: "rsa" or "ed25519"."""
    if kind == "rsa":
        cmd = ["openssl", "genpkey", "-algorithm", "RSA",
               "-pkeyopt", f"rsa_keygen_bits:{bits}"]
    else:
        cmd = ["openssl", "genpkey", "-algorithm", "ed25519"]
    old = os.umask(0o077)
    try:
        p = subprocess.run(cmd + ["-out", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stdout
    os.chmod(path, 0o600)
    return path


def dkim_txt(keyfile, kind):
    """The DKIM TXT record of a private key: RSA p= is the base64 of the
    DER SubjectPublicKeyInfo, Ed25519 p= the base64 of the raw 32 bytes."""
    p = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout",
                        "-outform", "DER"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    der = p.stdout
    if kind == "ed25519":
        der = der[-32:]
    return f"v=DKIM1; k={kind}; p={base64.b64encode(der).decode()}"


class KeySource:
    """The session's key pairs: {"rsa": path, "ed25519": path} and their
    TXT records."""

    def __init__(self, directory):
        self.paths = {}
        self.txt = {}
        for kind in ("rsa", "ed25519"):
            path = os.path.join(directory, f"dkim-{kind}.key")
            if not os.path.exists(path):
                genkey(path, kind)
            self.paths[kind] = path
            self.txt[kind] = dkim_txt(path, kind)


_KEYS = {}


def session_keys(directory):
    """The KeySource for this pytest session (made on first use)."""
    if "k" not in _KEYS:
        _KEYS["k"] = KeySource(directory)
    return _KEYS["k"]


class DkimSelector:
    """One entry of a domain's `dkim` list. key: the `key` member to
    write (None: none, the daemon's default path); install: copy the
    session key of this algorithm to where the daemon will look; source:
    a key file to install instead of the session's."""

    def __init__(self, selector, algorithm, key=None, install=True,
                 source=None):
        self.selector = selector
        self.algorithm = algorithm
        self.key = key
        self.install = install
        self.source = source

    def render(self):
        parts = [f"selector = {_q(self.selector)};",
                 f"algorithm = {_q(self.algorithm)};"]
        if self.key is not None:
            parts.append(f"key = {_q(self.key)};")
        return "{ " + " ".join(parts) + " }"


def _selectors(spec):
    out = []
    for x in spec:
        if isinstance(x, DkimSelector):
            out.append(x)
        elif isinstance(x, dict):
            out.append(DkimSelector(**x))
        else:
            out.append(DkimSelector(*x))
    return out


def run_postern(args, config=None, stdin=None, timeout=30, cwd=None):
    """Run a `postern` subcommand; returns CompletedProcess (text)."""
    cmd = [POSTERN] + list(args)
    if config is not None:
        cmd += ["-c", config]
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout,
                       cwd=cwd or ROOT)
    # a sanitizer report fails the test even if the command was meant
    # to fail (under run-all --san, the sanitizer_reports fixture does)
    for bad in SANITIZER_MARKS:
        assert bad not in r.stderr, (
            f"sanitizer report from {cmd}:\n{r.stderr}")
    return r


def _q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Listener:
    def __init__(self, name, tls, address="127.0.0.1", trusted=False,
                 senders=None, allow_plaintext_auth=False, port=None):
        self.name = name
        self.tls = tls
        self.address = address
        self.trusted = trusted
        self.senders = senders or []
        self.allow_plaintext_auth = allow_plaintext_auth
        self.port = port

    def render(self):
        parts = [f"address = {_q(self.address)};", f"port = {self.port};",
                 f"tls = {_q(self.tls)};"]
        if self.trusted:
            parts.append("trusted = true;")
            parts.append("senders = [ " +
                         ", ".join(_q(s) for s in self.senders) + " ];")
        if self.allow_plaintext_auth:
            parts.append("allow_plaintext_auth = true;")
        return "{ " + " ".join(parts) + " }"


def default_listeners():
    return [
        Listener("submission", "starttls"),
        Listener("smtps", "implicit"),
        Listener("trusted", "none", trusted=True,
                 senders=["app@example.test"]),
    ]


def render_domain(name, selectors, options=""):
    parts = [f"name = {_q(name)};"]
    if selectors:
        parts.append("dkim = ( " + ", ".join(s.render() for s in selectors) +
                     " );")
    if options:
        parts.append(options)
    return "{ " + " ".join(parts) + " }"


def render_config(d, listeners, limits, mechanisms, senders, domains,
                  extra=""):
    lines = []
    lines.append(f"# written by tests/e2e/conftest.py for {d.name}")
    lines.append(f"hostname = {_q(HOSTNAME)};")
    lines.append(f"state_dir = {_q(d.state_dir)};")
    lines.append("listen = (")
    lines.append(",\n".join("  " + l.render() for l in listeners))
    lines.append(");")
    lines.append(f"tls = {{ certificate = {_q(d.cert)}; key = {_q(d.key)};"
                 + (f" {d.tls_options}" if d.tls_options else "") + " };")
    lines.append("auth = { mechanisms = [ " +
                 ", ".join(_q(m) for m in mechanisms) +
                 f" ]; sasldb = {_q(d.sasldb)}; }};")
    lines.append("domains = (")
    lines.append(",\n".join(
        "  " + render_domain(n, d.dkim.get(n, ()), d.domain_options.get(n, ""))
        for n in domains))
    lines.append(");")
    if senders:
        lines.append("senders = (")
        lines.append(",\n".join(
            "  { login = %s; addresses = [ %s ]; }" %
            (_q(login), ", ".join(_q(a) for a in addrs))
            for login, addrs in senders))
        lines.append(");")
    lines.append("limits = { " +
                 " ".join(f"{k} = {v};" for k, v in limits.items()) + " };")
    if "resolver" not in extra:
        # RCPT and delivery (relay.mode mx) look recipients' domains up:
        # never through the machine's resolv.conf. The session's
        # refusing DNS server answers every query with REFUSED at once:
        # RCPT accepts, delivery defers, mail stays queued. Tests that
        # deliver bring their own DNS.
        lines.append(f'resolver = "127.0.0.1@{_NO_DNS["port"]}";')
    if DAEMON_USER and not re.search(r"(?m)^user\s*=", extra or ""):
        # the daemon refuses to run as root: as INSTALL says, it binds
        # as root, then becomes this user (Postern.start gives it the
        # state directory and the sasldb first)
        lines.append(f"user = {_q(DAEMON_USER)};")
    if "stop_timeout" not in extra:
        # a test that ends with a transaction or a delivery still open
        # must not wait the default 30 s for it at teardown
        lines.append('stop_timeout = "3s";')
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


class Postern:
    """One daemon instance in its own directory."""

    def __init__(self, workdir, name, cert, key, sasldb_template,
                 listeners=None, limits=None,
                 mechanisms=("PLAIN", "LOGIN", "SCRAM-SHA-256"),
                 senders=(("admin@example.test", ["*@example.test"]),),
                 domains=("example.test",), extra="", dkim=None,
                 domain_options=None, keysrc=None, tls_options=""):
        """dkim: {domain: [(selector, algorithm) | dict | DkimSelector]}
        for the domains it names (an empty list: no dkim member at all);
        the others get DEFAULT_DKIM. domain_options: {domain: text} added
        inside that domain's entry (sign_headers = [...]; ...).
        tls_options: text added inside the tls group (ciphers = "...";
        min_version = "1.3"; ...)."""
        self.name = name
        self.dir = workdir
        self.state_dir = os.path.join(workdir, "state")
        self.queue_dir = os.path.join(self.state_dir, "queue")
        self.tmp_dir = os.path.join(self.state_dir, "tmp")
        self.cert = cert
        self.key = key
        self.sasldb = os.path.join(workdir, "sasldb2")
        self.conf = os.path.join(workdir, "postern.conf")
        self.log_path = os.path.join(workdir, "postern.log")
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        if sasldb_template:
            shutil.copy(sasldb_template, self.sasldb)
            os.chmod(self.sasldb, 0o600)
        self.listeners = listeners if listeners is not None else default_listeners()
        taken = {l.port for l in self.listeners if l.port is not None}
        for l in self.listeners:
            if l.port is None:
                # free_port may hand out the same port twice in a row
                fam = socket.AF_INET6 if ":" in l.address else socket.AF_INET
                while True:
                    l.port = free_port(fam, l.address)
                    if l.port not in taken:
                        break
                taken.add(l.port)
        self.limits = dict(DEFAULT_LIMITS)
        self.limits.update(limits or {})
        self.mechanisms = list(mechanisms)
        self.senders = list(senders)
        self.domains = list(domains)
        self.extra = extra
        self.tls_options = tls_options
        self.keysrc = keysrc or session_keys(os.path.dirname(cert))
        dkim = dict(dkim or {})
        self.dkim = {n: _selectors(dkim.get(n, DEFAULT_DKIM))
                     for n in self.domains}
        self.domain_options = dict(domain_options or {})
        self.dkim_records = {}       # "sel._domainkey.dom" -> TXT value
        self.install_dkim_keys()
        self.proc = None
        self.log_file = None
        self.starts = 0
        self.exits = []          # return codes of earlier runs
        self.write_config()

    # -- configuration --------------------------------------------------
    def dkim_key_path(self, domain, sel):
        """Where the daemon looks for this selector's key."""
        if sel.key is not None:
            return os.path.join(self.state_dir, sel.key)
        return os.path.join(self.state_dir, "keys", domain,
                            sel.selector + ".key")

    def install_dkim_keys(self):
        for domain, sels in self.dkim.items():
            for sel in sels:
                kind = ALG_KEYTYPE.get(sel.algorithm)
                name = f"{sel.selector}._domainkey.{domain}"
                if sel.source is None and kind is not None:
                    self.dkim_records[name] = self.keysrc.txt[kind]
                elif sel.source is not None:
                    try:      # a deliberately broken key has no record
                        self.dkim_records[name] = dkim_txt(sel.source,
                                                           kind or "rsa")
                    except AssertionError:
                        pass
                if not sel.install:
                    continue
                src = sel.source or self.keysrc.paths[kind]
                dst = self.dkim_key_path(domain, sel)
                os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
                keys = os.path.join(self.state_dir, "keys")
                if os.path.isdir(keys):
                    os.chmod(keys, 0o700)
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o600)

    def write_config(self):
        text = render_config(self, self.listeners, self.limits,
                             self.mechanisms, self.senders, self.domains,
                             self.extra)
        with open(self.conf, "w") as f:
            f.write(text)

    def port(self, name):
        for l in self.listeners:
            if l.name == name:
                return l.port
        raise KeyError(name)

    def address(self, name):
        for l in self.listeners:
            if l.name == name:
                return l.address
        raise KeyError(name)

    @property
    def ports(self):
        return {l.name: l.port for l in self.listeners}

    # -- process --------------------------------------------------------
    def give_to_user(self):
        """What INSTALL has the admin do: state_dir (the queue, DKIM keys
        and their state) and the sasldb belong to the daemon's user."""
        m = re.search(r'(?m)^user\s*=\s*"([^"]+)"', self.config_text())
        if m is None or os.geteuid() != 0:
            return
        pw = pwd.getpwnam(m.group(1))
        for root, dirs, files in os.walk(self.state_dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
        os.chown(self.state_dir, pw.pw_uid, pw.pw_gid)
        if os.path.exists(self.sasldb):
            os.chown(self.sasldb, pw.pw_uid, pw.pw_gid)

    def config_text(self):
        with open(self.conf) as f:
            return f.read()

    def start(self, timeout=15):
        assert self.proc is None or self.proc.poll() is not None
        self.give_to_user()
        self.log_file = open(self.log_path, "ab")
        self.log_file.write(f"==== start #{self.starts + 1} ====\n".encode())
        self.log_file.flush()
        self.proc = subprocess.Popen(
            [POSTERN, "serve", "-c", self.conf], cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=self.log_file)
        _LIVE.add(self.proc)
        self.starts += 1
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        pending = list(self.listeners)
        while pending:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"postern serve exited with {rc} before listening; "
                    f"stderr:\n{self.log()}")
            l = pending[0]
            fam = socket.AF_INET6 if ":" in l.address else socket.AF_INET
            try:
                with socket.socket(fam, socket.SOCK_STREAM) as s:
                    s.settimeout(1)
                    s.connect((l.address, l.port))
                pending.pop(0)
                continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"postern not listening on {l.address}:{l.port} after "
                    f"{timeout}s; stderr:\n{self.log()}")
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL; returns the exit status (None if it was
        not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.exits.append(rc)
        _LIVE.discard(self.proc)
        self.proc = None
        if self.log_file:
            self.log_file.close()
            self.log_file = None
        return rc

    def kill9(self):
        assert self.alive(), "daemon not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.exits.append(self.proc.returncode)
        _LIVE.discard(self.proc)
        self.proc = None
        self.log_file.close()
        self.log_file = None

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- queue ------------------------------------------------------------
    def queue_files(self):
        try:
            return sorted(os.listdir(self.queue_dir))
        except FileNotFoundError:
            return []

    def tmp_files(self):
        try:
            return sorted(os.listdir(self.tmp_dir))
        except FileNotFoundError:
            return []

    def queue_ids(self):
        """Ids of committed messages: queue/ID (the rename is the commit
        point)."""
        return sorted(f for f in self.queue_files()
                      if len(f) == 20 and f.isalnum() and f.isascii())

    def queue_file(self, qid):
        with open(os.path.join(self.queue_dir, qid), "rb") as f:
            return f.read()

    def envelope(self, qid):
        return queue_file_envelope(self.queue_file(qid))

    def message(self, qid):
        return split_queue_file(self.queue_file(qid))[0]

    def append_envelope(self, qid, text):
        """Append an envelope update to queue/ID, as queue_update does."""
        with open(os.path.join(self.queue_dir, qid), "ab") as f:
            f.write(text.encode() if isinstance(text, str) else text)

    def wait_tmp_empty(self, timeout=5):
        deadline = time.monotonic() + timeout
        while self.tmp_files() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.tmp_files()

    def wait_queued(self, n, timeout=5):
        deadline = time.monotonic() + timeout
        while len(self.queue_ids()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.queue_ids()

    def describe(self):
        out = [f"directory: {self.dir}", f"config: {self.conf}",
               f"ports: {self.ports}", f"queue/: {self.queue_files()}",
               f"tmp/: {self.tmp_files()}"]
        return "\n".join(out)


# -- pytest plumbing ---------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for d in getattr(item, "posterns", []):
            rep.sections.append((f"postern {d.name}", d.describe()))
            log = d.log()
            if len(log) > 20000:
                log = "...\n" + log[-20000:]
            rep.sections.append((f"postern {d.name} stderr", log))
        wd = getattr(item, "workdir", None)
        if wd:
            rep.sections.append(("kept test directory", wd))


@pytest.fixture(scope="session")
def postern_bin():
    if not (os.path.isfile(POSTERN) and os.access(POSTERN, os.X_OK)):
        pytest.fail(f"{POSTERN} is missing: run `make` first", pytrace=False)
    return POSTERN


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="postern-e2e-session-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def self_signed(directory, days=2, prefix=""):
    """A self-signed certificate for relay.example.test (also valid for
    localhost, 127.0.0.1 and ::1, so clients can verify it by address),
    valid for days: (cert, key) in directory, the key mode 0600."""
    cert = os.path.join(directory, f"{prefix}cert.pem")
    key = os.path.join(directory, f"{prefix}key.pem")
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", str(days),
         "-subj", f"/CN={HOSTNAME}",
         "-addext",
         f"subjectAltName=DNS:{HOSTNAME},DNS:localhost,IP:127.0.0.1,IP:::1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.returncode == 0, p.stdout
    os.chmod(key, 0o600)
    return cert, key


@pytest.fixture(scope="session")
def tls_files(session_dir):
    """The session's self-signed certificate (self_signed), for 2 days."""
    return self_signed(session_dir)


@pytest.fixture(scope="session")
def dkim_keys(session_dir):
    """The session's DKIM key pairs (KeySource): one RSA 2048, one
    Ed25519, made with openssl genpkey, mode 0600."""
    return session_keys(session_dir)


@pytest.fixture(scope="session")
def sasldb_template(postern_bin, session_dir, tls_files, dkim_keys):
    """A sasldb with USERS, created through `postern users add` with the
    password on stdin."""
    d = os.path.join(session_dir, "template")
    os.makedirs(d)
    cert, key = tls_files
    p = Postern(d, "template", cert, key, None, keysrc=dkim_keys)
    for login, password in USERS.items():
        r = run_postern(["users", "add", login], config=p.conf,
                        stdin=password + "\n")
        assert r.returncode == 0, (
            f"postern users add {login} failed ({r.returncode}):\n"
            f"{r.stdout}{r.stderr}")
    assert os.path.exists(p.sasldb), "users add did not create the sasldb"
    return p.sasldb


@pytest.fixture
def workdir(request):
    d = tempfile.mkdtemp(prefix="postern-e2e-")
    os.chmod(d, 0o755)      # the daemon's user reaches its state_dir
    request.node.workdir = d
    yield d
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"\nkept test directory: {d}")


@pytest.fixture(scope="session")
def refusing_dns(session_dir):
    """One dnsmasq for the whole session, with no zone and no upstream:
    it answers REFUSED to everything, the default resolver of every test
    daemon."""
    if not os.access(DNSMASQ, os.X_OK):
        yield None
        return
    server = Dnsmasq(free_udp_port(), session_dir)
    server.start({}, local=False)
    _NO_DNS["port"] = server.port
    yield server
    server.stop()


@pytest.fixture(scope="session")
def signed_zone(session_dir, tls_files):
    """One NSD for the whole session serving the DNSSEC test zones
    (tests/e2e/dnssec.py): dane.test. signed, with the TLSA of tls_files'
    certificate at _25._tcp.mx.dane.test.; bogus.dane.test. badly
    signed; plain.test. unsigned. Skips when nsd or ldnsutils is
    missing."""
    import dnssec
    why = dnssec.missing()
    if why:
        pytest.skip(why)
    zdir = os.path.join(session_dir, "dnssec")
    os.makedirs(zdir)
    zone = dnssec.SignedZone(zdir, dnssec.spki_sha256(tls_files[0]))
    zone.start()
    yield zone
    zone.stop()


@pytest.fixture
def postern_factory(request, workdir, tls_files, sasldb_template, dkim_keys,
                    refusing_dns):
    """make(**kw) -> a started Postern in its own subdirectory; kw go to
    Postern() (listeners, limits, mechanisms, senders, domains, extra,
    dkim, domain_options, tls_options).
    start=False returns it unstarted."""
    made = []
    request.node.posterns = made
    cert, key = tls_files

    def make(name=None, start=True, **kw):
        name = name or f"d{len(made)}"
        wd = os.path.join(workdir, name)
        os.makedirs(wd)
        kw.setdefault("keysrc", dkim_keys)
        d = Postern(wd, name, cert, key, sasldb_template, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    died = []
    sanitizer = []
    for d in made:
        if d.proc is not None and d.proc.poll() is not None:
            died.append(f"{d.name}: exited with {d.proc.returncode} during "
                        f"the test")
        d.stop()
        log = d.log()
        for bad in SANITIZER_MARKS:
            if bad in log:
                sanitizer.append(f"{d.name}: '{bad}' in its stderr")
        if "]: panic " in log:
            died.append(f"{d.name}: ']: panic ' in its stderr")
    # a sanitizer finding fails the test even where exits are expected
    if sanitizer:
        pytest.fail("sanitizer report: " + "; ".join(sanitizer + died),
                    pytrace=False)
    if died and not getattr(request.node, "allow_daemon_exit", False):
        pytest.fail("daemon trouble: " + "; ".join(died), pytrace=False)


def _san_reports():
    try:
        return {f for f in os.listdir(SAN_LOGDIR) if f.startswith("report")}
    except OSError:
        return set()


@pytest.fixture(autouse=True)
def sanitizer_reports():
    """Under tests/run-all --san: fail the test during which a sanitized
    postern (daemon or command, whatever its exit status) wrote a report.
    Torn down after the test's other fixtures, so a leak reported when
    postern_factory stops a daemon counts too. The reports are moved to
    claimed/ so that run-all only counts the unclaimed ones."""
    if not SAN_LOGDIR:
        yield
        return
    before = _san_reports()
    yield
    # the daemons postern_factory stopped have exited (and written any
    # report at exit) by now
    new = sorted(_san_reports() - before)
    if not new:
        return
    claimed = os.path.join(SAN_LOGDIR, "claimed")
    os.makedirs(claimed, exist_ok=True)
    texts = []
    for name in new:
        path = os.path.join(SAN_LOGDIR, name)
        with open(path, errors="replace") as f:
            texts.append(f"--- {name}\n{f.read()}")
        os.replace(path, os.path.join(claimed, name))
    pytest.fail("sanitizer report(s) during this test:\n" + "\n".join(texts),
                pytrace=False)


@pytest.fixture
def postern(postern_factory):
    """A started daemon with the default configuration."""
    return postern_factory()


@pytest.fixture
def ssl_ctx(tls_files):
    return client_context(tls_files[0])
