"""
`postern keys`: generate, dns, sign and verify, run as the real binary.

Each test gets its own directory with a configuration (hostname,
state_dir, one trusted plaintext listener on a free loopback port, the
hosted domain example.test), first without dkim entries (what a fresh
setup has when the admin runs `keys generate`), then with the `dkim`
setting that `keys generate` printed pasted in. Nothing here starts the
daemon or touches the network.

Signatures made by `keys sign` are graded by verifiers the project did
not write: dkimpy (python3-dkim) and Perl's Mail::DKIM, both given the TXT
values that `keys dns --plain` printed instead of DNS. `keys verify
--local` (our own verifier) is only checked against them, never used to
grade our signer.
"""
import base64
import os
import re
import socket
import stat
import subprocess
import time

import pytest

import dkim

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# POSTERN_BIN: a binary to test instead of ./postern (a developer's build).
POSTERN = os.environ.get("POSTERN_BIN", os.path.join(ROOT, "postern"))
DOMAIN = "example.test"
HOSTNAME = "relay.example.test"
ZONE_RE = re.compile(r'^(\S+)\. IN TXT (?:\( ((?:"[^"]*" )+)\)|("[^"]*"))$')


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Setup:
    """One test's directory and configuration file."""

    def __init__(self, path):
        self.dir = path
        self.state_dir = os.path.join(path, "state")
        self.conf = os.path.join(path, "postern.conf")
        self.port = free_port()
        self.write()

    def write(self, dkim_setting="", user=None):
        lines = [
            f'hostname = "{HOSTNAME}";',
            f'state_dir = "{self.state_dir}";',
        ]
        if user:
            lines.append(f'user = "{user}";')
        lines += [
            "listen = (",
            f'  {{ address = "127.0.0.1"; port = {self.port}; tls = "none";'
            ' trusted = true; senders = [ "app@example.test" ]; }',
            ");",
            f'domains = ( {{ name = "{DOMAIN}"; {dkim_setting} }} );',
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def keys(self, *args, stdin=None):
        """Run `postern keys ARGS -c CONF`; stdin and output are bytes."""
        return subprocess.run([POSTERN, "keys"] + list(args) + ["-c", self.conf],
                              input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60, cwd=ROOT)

    def key_path(self, selector):
        return os.path.join(self.state_dir, "keys", DOMAIN, selector + ".key")


@pytest.fixture
def setup(tmp_path):
    """A fresh directory and configuration (pytest keeps the last few
    tmp_path directories, so a failed test's files can be looked at)."""
    return Setup(str(tmp_path))


def out(r):
    return r.stdout.decode() + r.stderr.decode()


def generated(setup, *args):
    """Run `keys generate example.test ARGS`, check it worked and return
    (stdout text, {selector: algorithm}, dkim setting line)."""
    r = setup.keys("generate", DOMAIN, *args)
    assert r.returncode == 0, out(r)
    text = r.stdout.decode()
    snippet = [l for l in text.splitlines() if l.startswith("dkim = (")]
    assert len(snippet) == 1, text
    sels = dict(re.findall(r'selector = "([^"]+)"; algorithm = "([^"]+)";',
                           snippet[0]))
    return text, sels, snippet[0]


def zone_records(text):
    """{name: value} of the zone-file TXT lines in text; every quoted
    string must be at most 255 bytes."""
    recs = {}
    for line in text.splitlines():
        if " IN TXT " not in line:
            continue
        m = ZONE_RE.match(line)
        assert m, f"not a zone-file TXT line: {line!r}"
        strings = re.findall(r'"([^"]*)"', m.group(2) or m.group(3))
        for s in strings:
            assert len(s.encode()) <= 255, f"string of {len(s)} bytes: {line}"
        if m.group(2):
            assert len(strings) > 1, line
        recs[m.group(1)] = "".join(strings)
    return recs


def plain_records(setup, *args):
    """{name: value} from `keys dns --plain`, which must be nothing but
    "NAME TXT VALUE" lines."""
    r = setup.keys("dns", "--plain", *args)
    assert r.returncode == 0, out(r)
    recs = {}
    for line in r.stdout.decode().splitlines():
        name, typ, value = line.split(" ", 2)
        assert typ == "TXT", line
        assert not name.endswith(".") and "." in name, line
        assert not value.startswith('"'), line
        recs[name] = value
    return recs


def configured(setup):
    """Generate both keys, paste the printed setting into the config;
    returns {selector: algorithm} and the --plain records."""
    _, sels, snippet = generated(setup)
    setup.write(snippet)
    return sels, plain_records(setup)


def dkimpy_verify(msg, recs):
    """dkimpy's verdict per DKIM-Signature, keys from recs (no DNS)."""
    def dnsfunc(name, timeout=5):
        v = recs.get(name.decode().rstrip("."))
        return v.encode() if v is not None else None

    head = msg.split(b"\r\n\r\n", 1)[0]
    n = len(re.findall(rb"(?im)^dkim-signature:", head))
    return [dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]


def sig_tags(msg):
    """[{tag: value}] of the DKIM-Signature fields, unfolded."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = re.findall(r"(?ims)^dkim-signature:(.*?)(?=\r\n\S|\Z)", head)
    sigs = []
    for f in fields:
        f = re.sub(r"\s+", "", f)
        sigs.append(dict(t.split("=", 1) for t in f.split(";") if t))
    return sigs


def pubkey_der_b64(keyfile):
    der = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout",
                          "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return der


# -- keys generate ------------------------------------------------------------

def test_generate_makes_a_private_pair(setup):
    text, sels, snippet = generated(setup)
    month = time.strftime("%Y%m", time.gmtime())
    assert sels == {f"r{month}": "rsa-sha256", f"e{month}": "ed25519-sha256"}
    # rsa first: the signature receivers that check only one will see
    assert snippet.index("rsa-sha256") < snippet.index("ed25519-sha256")
    for sel in sels:
        st = os.stat(setup.key_path(sel))
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        assert f"Created {setup.key_path(sel)}" in text
    for d in (setup.state_dir, os.path.join(setup.state_dir, "keys"),
              os.path.dirname(setup.key_path("x"))):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    rsa = subprocess.run(["openssl", "pkey", "-in", setup.key_path(f"r{month}"),
                          "-noout", "-text"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    assert "2048 bit" in rsa, rsa
    # the printed setting is accepted as it is
    setup.write(snippet)
    r = subprocess.run([POSTERN, "check-config",
                        "-c", setup.conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, r.stdout


def test_generate_refuses_to_overwrite(setup):
    _, sels, _ = generated(setup)
    before = {s: open(setup.key_path(s), "rb").read() for s in sels}
    r = setup.keys("generate", DOMAIN)
    assert r.returncode == 1, out(r)
    rsa = [s for s, a in sels.items() if a == "rsa-sha256"][0]
    assert f"{setup.key_path(rsa)}: already exists" in r.stderr.decode()
    assert r.stdout == b""
    for s, data in before.items():
        assert open(setup.key_path(s), "rb").read() == data
    # an explicit selector that is taken: the same refusal
    r = setup.keys("generate", DOMAIN, "-a", "rsa-sha256", "-s", rsa)
    assert r.returncode == 1 and b"already exists" in r.stderr, out(r)


def test_generate_refuses_1024_bits(setup):
    r = setup.keys("generate", DOMAIN, "-b", "1024")
    assert r.returncode == 1, out(r)
    assert "1024-bit RSA keys are refused" in r.stderr.decode()
    assert not os.path.exists(os.path.join(setup.state_dir, "keys"))
    r = setup.keys("generate", DOMAIN, "-a", "rsa-sha256", "-b", "8192")
    assert r.returncode == 1 and b"8192-bit RSA keys are refused" in r.stderr


def test_generate_refuses_unhosted_domain(setup):
    r = setup.keys("generate", "other.test")
    assert r.returncode == 1, out(r)
    assert "other.test: not a hosted domain" in r.stderr.decode()
    assert not os.path.exists(os.path.join(setup.state_dir, "keys"))


def test_generate_usage_errors(setup):
    for args in (["-s", "sel"], ["-a", "rsa-sha1"], ["-a", "ed25519-sha256", "-b", "2048"],
                 ["-b", "lots"], ["--plain"]):
        r = setup.keys("generate", DOMAIN, *args)
        assert r.returncode == 2, (args, out(r))
        assert b"usage: postern keys" in r.stderr, out(r)
    r = setup.keys("generate", DOMAIN, "-s", "sel")
    assert b"-s names one key, so it needs -a" in r.stderr


def test_generate_one_key(setup):
    text, sels, _ = generated(setup, "-a", "ed25519-sha256", "-s", "ed1")
    assert sels == {"ed1": "ed25519-sha256"}
    assert os.listdir(os.path.dirname(setup.key_path("ed1"))) == ["ed1.key"]
    assert "also needs an rsa-sha256 key" in text
    text, sels, _ = generated(setup, "-b", "3072", "-s", "big",
                              "-a", "rsa-sha256")
    assert sels == {"big": "rsa-sha256"}
    assert "3072 bits" in text
    rsa = subprocess.run(["openssl", "pkey", "-in", setup.key_path("big"),
                          "-noout", "-text"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    assert "3072 bit" in rsa


def test_generate_keeps_the_other_algorithm_in_the_setting(setup):
    _, sels, snippet = generated(setup)
    setup.write(snippet)
    ed = [s for s, a in sels.items() if a == "ed25519-sha256"][0]
    _, new, _ = generated(setup, "-a", "rsa-sha256", "-s", "next")
    assert new == {"next": "rsa-sha256", ed: "ed25519-sha256"}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_generate_gives_keys_to_the_service_user(setup):
    import pwd
    nobody = pwd.getpwnam("nobody")
    setup.write(user="nobody")
    _, sels, _ = generated(setup)
    for sel in sels:
        assert os.stat(setup.key_path(sel)).st_uid == nobody.pw_uid
    for d in (os.path.join(setup.state_dir, "keys"),
              os.path.dirname(setup.key_path("x"))):
        assert os.stat(d).st_uid == nobody.pw_uid, d


# -- keys dns -----------------------------------------------------------------

def test_generate_records_match_the_keys(setup):
    text, sels, _ = generated(setup)
    recs = zone_records(text)
    assert set(recs) == {f"{s}._domainkey.{DOMAIN}" for s in sels}
    for sel, alg in sels.items():
        value = recs[f"{sel}._domainkey.{DOMAIN}"]
        der = pubkey_der_b64(setup.key_path(sel))
        if alg == "rsa-sha256":
            want = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        else:   # RFC 8463: the raw 32-byte key, not the SPKI
            want = "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
        assert value == want


def test_dns_zone_and_plain_agree(setup):
    sels, plain = configured(setup)
    r = setup.keys("dns")
    assert r.returncode == 0, out(r)
    text = r.stdout.decode()
    zone = zone_records(text)
    assert zone == plain
    rsa = [s for s, a in sels.items() if a == "rsa-sha256"][0]
    # a 2048-bit key's record is longer than one string: parentheses
    assert re.search(rf'(?m)^{rsa}\._domainkey\.{DOMAIN}\. IN TXT \( "', text)
    assert plain[DOMAIN] == f"v=spf1 a:{HOSTNAME} -all"
    assert plain[f"_dmarc.{DOMAIN}"] == \
        f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"
    assert set(plain) == {DOMAIN, f"_dmarc.{DOMAIN}"} | \
        {f"{s}._domainkey.{DOMAIN}" for s in sels}
    # each record has its comment; the admin is told to set rua=
    assert re.search(r"(?m)^; SPF: authorises the relay host "
                     + re.escape(HOSTNAME) + " by name", text)
    assert re.search(r"(?m)^; DMARC: set rua= to a mailbox you read", text)
    assert plain_records(setup, DOMAIN) == plain


def test_dns_spf_from_relay_settings(setup):
    """The SPF suggestion names relay.addresses (ip4:/ip6:) instead of the
    host name, and in smarthost mode adds the provider's mechanism."""
    _, _, snippet = generated(setup)
    setup.write(snippet)
    with open(setup.conf, "a") as f:
        f.write('relay = { addresses = [ "192.0.2.7", "2001:db8::7" ]; };\n')
    assert plain_records(setup)[DOMAIN] == \
        "v=spf1 ip4:192.0.2.7 ip6:2001:db8::7 -all"
    setup.write(snippet)
    with open(setup.conf, "a") as f:
        f.write('relay = { mode = "smarthost"; smarthost = { host = '
                '"smtp.provider.test"; spf = "include:_spf.provider.test"; '
                '}; };\n')
    assert plain_records(setup)[DOMAIN] == \
        f"v=spf1 a:{HOSTNAME} include:_spf.provider.test -all"
    text = setup.keys("dns").stdout.decode()
    assert "leaves through the smarthost smtp.provider.test" in text
    # without relay.smarthost.spf the admin is told to set it
    setup.write(snippet)
    with open(setup.conf, "a") as f:
        f.write('relay = { mode = "smarthost"; smarthost = { host = '
                '"smtp.provider.test"; }; };\n')
    assert "set relay.smarthost.spf to the provider's mechanism" in \
        setup.keys("dns").stdout.decode()


def test_dns_errors(setup):
    r = setup.keys("dns", "other.test")
    assert r.returncode == 1 and b"other.test: not a hosted domain" in r.stderr
    # --check without keys: nothing to compare, the domain is named
    r = setup.keys("dns", "--check")
    assert r.returncode == 1, out(r)
    assert f"{DOMAIN} has no dkim keys".encode() in r.stderr
    # no keys yet: SPF and DMARC still printed, the missing keys named
    r = setup.keys("dns")
    assert r.returncode == 1, out(r)
    assert f"{DOMAIN} has no dkim keys".encode() in r.stderr
    assert b"v=spf1" in r.stdout
    sels, _ = configured(setup)
    sel = sorted(sels)[0]
    os.unlink(setup.key_path(sel))
    r = setup.keys("dns")
    assert r.returncode == 1, out(r)
    assert setup.key_path(sel).encode() in r.stderr


# -- keys sign ----------------------------------------------------------------

MESSAGES = {
    "8bit": b"From: App <app@example.test>\nTo: someone@example.org\n"
            b"Subject: =?utf-8?q?caf=C3=A9?=\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
            b"Message-ID: <1@example.test>\nMIME-Version: 1.0\n"
            b"Content-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: 8bit\n\n" +
            "Grüße, ça va? 日本語\n".encode() * 50,
    "dots": b"From: app@example.test\r\nTo: x@example.org\r\nSubject: dots\r\n\r\n"
            b".\r\n..two\r\n.leading dot\r\n \r\n\r\n",
    "no-final-newline": b"From: app@example.test\nSubject: open end\n"
                        b"To: x@example.org\n\nlast line has no end",
    "folded": b"From: app@example.test\nTo: a@example.org,\n  b@example.org,\n"
              b"\tc@example.org\nSubject: a long\n folded subject\n\nbody\n",
    "empty-body": b"From: app@example.test\nSubject: nothing\n\n",
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_sign_verified_by_dkimpy(setup, kind):
    sels, recs = configured(setup)
    r = setup.keys("sign", DOMAIN, stdin=MESSAGES[kind])
    assert r.returncode == 0, out(r)
    signed = r.stdout
    sigs = sig_tags(signed)
    assert [s["a"] for s in sigs] == ["rsa-sha256", "ed25519-sha256"]
    assert {s["s"]: s["a"] for s in sigs} == sels
    assert all(s["d"] == DOMAIN and s["c"] == "relaxed/relaxed" and
               "l" not in s for s in sigs)
    assert dkimpy_verify(signed, recs) == [True, True]
    # the message follows the signatures, with CRLF line ends, unchanged
    body = MESSAGES[kind].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert signed.endswith(body)
    assert b"\n" not in signed.replace(b"\r\n", b"")


def test_sign_oversigning_stops_added_headers(setup):
    _, recs = configured(setup)
    signed = setup.keys("sign", DOMAIN, stdin=MESSAGES["8bit"]).stdout
    assert dkimpy_verify(signed, recs) == [True, True]
    head, body = signed.split(b"\r\n\r\n", 1)
    forged = head + b"\r\nSubject: added later\r\n\r\n" + body
    assert dkimpy_verify(forged, recs) == [False, False]


def test_sign_one_selector_and_options(setup):
    sels, recs = configured(setup)
    rsa = [s for s, a in sels.items() if a == "rsa-sha256"][0]
    ed = [s for s, a in sels.items() if a == "ed25519-sha256"][0]
    msg = MESSAGES["folded"]
    r = setup.keys("sign", DOMAIN, "-s", ed, "--time", "1528637909",
                   "--headers", "from:to:subject:from", stdin=msg)
    assert r.returncode == 0, out(r)
    sigs = sig_tags(r.stdout)
    assert len(sigs) == 1 and sigs[0]["s"] == ed
    assert sigs[0]["t"] == "1528637909"
    # exactly the listed fields; "from" given twice is oversigned
    assert sigs[0]["h"].lower() == "from:to:subject:from"
    assert dkimpy_verify(r.stdout, recs) == [True]
    r = setup.keys("sign", DOMAIN, "-s", rsa, stdin=msg)
    assert r.returncode == 0, out(r)
    assert [s["a"] for s in sig_tags(r.stdout)] == ["rsa-sha256"]
    assert dkimpy_verify(r.stdout, recs) == [True]

    r = setup.keys("sign", DOMAIN, "-s", "nosuch", stdin=msg)
    assert r.returncode == 1, out(r)
    assert b"selector nosuch is not configured" in r.stderr
    r = setup.keys("sign", "other.test", stdin=msg)
    assert r.returncode == 1 and b"other.test: not a hosted domain" in r.stderr
    r = setup.keys("sign", DOMAIN, "--headers", "to:subject", stdin=msg)
    assert r.returncode == 1 and b"must sign From" in r.stderr, out(r)
    r = setup.keys("sign", DOMAIN, stdin=b"To: x@example.org\n\nno From\n")
    assert r.returncode == 1 and b"From" in r.stderr, out(r)
    for args in (["--time", "soon"], ["-k", "/nonexistent"], ["--local"],
                 ["-a", "rsa-sha256"]):
        r = setup.keys("sign", DOMAIN, *args, stdin=msg)
        assert r.returncode == 2, (args, out(r))


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_sign_with_a_new_key_file(setup, kind):
    """-k: try a key that is not configured yet (its record computed here
    with openssl, as the admin's DNS would serve it)."""
    configured(setup)
    key = os.path.join(setup.dir, "new.key")
    gen = ["openssl", "genpkey", "-algorithm", kind.upper(), "-out", key]
    if kind == "rsa":
        gen += ["-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(gen, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    der = pubkey_der_b64(key)
    p = base64.b64encode(der[-32:] if kind == "ed25519" else der).decode()
    recs = {f"trial._domainkey.{DOMAIN}": f"v=DKIM1; k={kind}; p={p}"}
    r = setup.keys("sign", DOMAIN, "-k", key, "-s", "trial",
                   stdin=MESSAGES["8bit"])
    assert r.returncode == 0, out(r)
    sigs = sig_tags(r.stdout)
    assert [(s["s"], s["a"]) for s in sigs] == [("trial", f"{kind}-sha256")]
    assert dkimpy_verify(r.stdout, recs) == [True]
    # -a that does not match the key names the file
    other = "rsa-sha256" if kind == "ed25519" else "ed25519-sha256"
    r = setup.keys("sign", DOMAIN, "-k", key, "-s", "trial", "-a", other,
                   stdin=MESSAGES["8bit"])
    assert r.returncode == 1 and key.encode() in r.stderr, out(r)
    # a key others may read is refused, naming the file
    os.chmod(key, 0o644)
    r = setup.keys("sign", DOMAIN, "-k", key, "-s", "trial",
                   stdin=MESSAGES["8bit"])
    assert r.returncode == 1 and key.encode() in r.stderr, out(r)
    r = setup.keys("sign", DOMAIN, "-k", key, stdin=MESSAGES["8bit"])
    assert r.returncode == 2 and b"-k KEYFILE needs -s" in r.stderr


# RFC 8463 appendix A's Ed25519 key pair (football.example.com, brisbane)
RFC8463_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
RFC8463_PUB = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
RFC8463_MSG = (b"From: Joe SixPack <joe@football.example.com>\n"
               b"To: Suzie Q <suzie@shopping.example.net>\n"
               b"Subject: Is dinner ready?\n"
               b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
               b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\n"
               b"\nHi.\n\nWe lost the game.  Are you hungry yet?\n\nJoe.\n")


def test_sign_with_a_key_file_for_a_domain_not_hosted(setup):
    """-k: any valid domain signs (RFC 8463's example, a domain being
    prepared); without -k an unhosted domain is still refused."""
    configured(setup)
    # PKCS#8 wrapping of the RFC's raw 32-byte seed
    der = bytes.fromhex("302e020100300506032b657004220420") + \
        base64.b64decode(RFC8463_SEED)
    key = os.path.join(setup.dir, "brisbane.key")
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\n" +
                base64.b64encode(der).decode() +
                "\n-----END PRIVATE KEY-----\n")
    os.chmod(key, 0o600)
    recs = {"brisbane._domainkey.football.example.com":
            f"v=DKIM1; k=ed25519; p={RFC8463_PUB}"}
    for name in ("football.example.com", "Football.Example.COM."):
        r = setup.keys("sign", name, "-k", key, "-s", "brisbane",
                       "--time", "1528637909", "--headers",
                       "from:to:subject:date:message-id:from:subject:date",
                       stdin=RFC8463_MSG)
        assert r.returncode == 0, out(r)
        sigs = sig_tags(r.stdout)
        assert [(s["d"].lower(), s["s"], s["a"], s["t"]) for s in sigs] == \
            [("football.example.com", "brisbane", "ed25519-sha256",
              "1528637909")], sigs
        assert dkimpy_verify(r.stdout, recs) == [True]
    # the RFC's body hash: same canonical body, same bh=
    assert sigs[0]["bh"] == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
    # a name that cannot be a d= is refused, naming it
    r = setup.keys("sign", "not_a..domain", "-k", key, "-s", "brisbane",
                   stdin=RFC8463_MSG)
    assert r.returncode == 1, out(r)
    assert r.stderr == b'postern: "not_a..domain" is not a valid domain name\n'
    # without -k the key comes from the configuration: refused, saying how
    r = setup.keys("sign", "football.example.com", stdin=RFC8463_MSG)
    assert r.returncode == 1 and r.stdout == b"", out(r)
    assert r.stderr == (b"postern: football.example.com: not a hosted domain"
                        b" in " + setup.conf.encode() +
                        b" (add it to domains first, or sign with a key"
                        b" file: -k KEYFILE -s SELECTOR)\n")


def test_sign_large_message_streams(setup):
    """A 10 MB body: signed, verified, and the signer does not hold it."""
    _, recs = configured(setup)
    line = b"x" * 76 + b"\n"
    msg = b"From: app@example.test\nSubject: big\n\n" + line * (10 * 1024 * 1024 // 77)
    r = setup.keys("sign", DOMAIN, stdin=msg)
    assert r.returncode == 0, out(r)
    assert dkimpy_verify(r.stdout, recs) == [True, True]


PERL_VERIFY = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Net::DNS;
my %txt;
open(my $r, '<', $ARGV[1]) or die;
while (<$r>) { chomp; my ($n, $v) = split(/ TXT /, $_, 2); $txt{lc $n} = $v; }
{ no warnings 'redefine';
  *Mail::DKIM::DNS::query = sub {
    my ($d, $t) = @_; my $v = $txt{lc $d};
    if (!defined $v) { $@ = 'NXDOMAIN'; return (); }
    return (Net::DNS::RR->new(name => $d, type => 'TXT',
        txtdata => [unpack('(a255)*', $v)]));
  }; }
my $dkim = Mail::DKIM::Verifier->new();
open(my $m, '<', $ARGV[0]) or die; binmode $m;
while (<$m>) { $dkim->PRINT($_); }
$dkim->CLOSE;
my @r = map { $_->result } $dkim->signatures;
print @r ? join(' ', @r) : 'none', "\n";
"""


def test_sign_verified_by_mail_dkim(setup):
    if subprocess.run(["perl", "-MMail::DKIM::Verifier", "-MNet::DNS", "-e1"],
                      stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("Perl Mail::DKIM (libmail-dkim-perl) is not installed")
    # Debian 12's Mail::DKIM (1.20230212) has no Ed25519 code at all
    # ("unsupported algorithm"); later versions add this module for it.
    ed25519 = subprocess.run(["perl", "-MCrypt::PK::Ed25519",
                              "-MMail::DKIM::Algorithm::ed25519_sha256",
                              "-e1"],
                             stderr=subprocess.DEVNULL).returncode == 0
    configured(setup)
    plain = setup.keys("dns", "--plain")
    assert plain.returncode == 0, out(plain)
    recs = os.path.join(setup.dir, "records")
    with open(recs, "wb") as f:
        f.write(plain.stdout)
    script = os.path.join(setup.dir, "verify.pl")
    with open(script, "w") as f:
        f.write(PERL_VERIFY)
    for kind in ("8bit", "no-final-newline"):
        signed = os.path.join(setup.dir, "signed.eml")
        r = setup.keys("sign", DOMAIN, stdin=MESSAGES[kind])
        assert r.returncode == 0, out(r)
        with open(signed, "wb") as f:
            f.write(r.stdout)
        v = subprocess.run(["perl", script, signed, recs],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        verdicts = v.stdout.decode().split()
        assert len(verdicts) == 2 and verdicts[0] == "pass", (kind, v.stdout)
        if ed25519:
            assert verdicts[1] == "pass", (kind, v.stdout)


# -- keys verify --------------------------------------------------------------

def test_verify_local(setup):
    sels, _ = configured(setup)
    signed = setup.keys("sign", DOMAIN, stdin=MESSAGES["8bit"]).stdout
    r = setup.keys("verify", "--local", stdin=signed)
    assert r.returncode == 0, out(r)
    lines = r.stdout.decode().splitlines()
    want = [f"d={DOMAIN} s={s} a={a}: pass" for s, a in
            sorted(sels.items(), key=lambda x: x[1] != "rsa-sha256")]
    assert [l.split(" (")[0] for l in lines] == want, lines

    altered = signed.replace(b"Subject: =?utf-8?q?caf=C3=A9?=",
                             b"Subject: =?utf-8?q?cafe?=")
    assert altered != signed
    r = setup.keys("verify", "--local", stdin=altered)
    assert r.returncode == 1, out(r)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2 and all(": fail (" in l for l in lines), lines

    r = setup.keys("verify", "--local", stdin=MESSAGES["dots"])
    assert r.returncode == 1 and b"no DKIM-Signature" in r.stderr, out(r)
    # LF line ends are fine too
    r = setup.keys("verify", "--local", stdin=signed.replace(b"\r\n", b"\n"))
    assert r.returncode == 0, out(r)


def test_usage(setup):
    for args in ([], ["frobnicate"], ["verify", "extra"], ["dns", "-z"]):
        r = subprocess.run([POSTERN, "keys"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert r.returncode == 2, (args, out(r))
        assert b"usage: postern keys generate" in r.stderr
