"""
DKIM signing in the daemon: every message accepted for a hosted domain is
signed before it is queued, and the signatures are checked here by
verifiers this project did not write: dkimpy (python3-dkim; each signature
on its own, DKIM(msg).verify(idx=i)) and Perl's Mail::DKIM (which cannot do
Ed25519 here, so only its rsa-sha256 verdict is asserted). Public keys come
from a dnsfunc / a Mail::DKIM::DNS override serving the TXT records of the
session's test keys.

The signed message is what `postern queue show ID --message` prints: the
DKIM-Signature fields (kept in the envelope's `prepend` records, not in
ID.msg), then our Received field, then the client's message.

Also: the daemon (`check-config` and `serve`) refuses to start, exit 1 and
a message naming the file, on every bad key setup.
"""
import base64
import os
import shutil
import smtplib
import socket
import stat
import subprocess
import time

import pytest

from conftest import POSTERN, ROOT, DkimSelector, genkey, run_postern
from helpers import (USERS, assert_queued, dkim_signatures, dkimpy_results,
                     final_message, header_section, mail_dkim_results,
                     queued_id)
from helpers import submit_smtplib as submit

ALICE = "alice@example.test"
RSA_ONLY = {"example.test": [("r1", "rsa-sha256")]}
ALG_OF = {"r1": "rsa-sha256", "e1": "ed25519-sha256"}

try:
    import dkim  # noqa: F401
    HAVE_DKIMPY = True
except ImportError:
    HAVE_DKIMPY = False

HAVE_MAIL_DKIM = subprocess.run(
    ["perl", "-MMail::DKIM::Verifier", "-MNet::DNS", "-e", "1"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

needs_verifiers = pytest.mark.skipif(
    not (HAVE_DKIMPY and HAVE_MAIL_DKIM),
    reason="needs python3-dkim and libmail-dkim-perl")


# -- submitting like Trac ------------------------------------------------------

def message(from_addr=ALICE, subject="DKIM test", body=b"Hello.\r\n",
            headers=(), to="bob@example.com", date=True, message_id=True):
    """A client's message: bytes, CRLF line ends."""
    h = [f"From: {from_addr}", f"To: {to}", f"Subject: {subject}"]
    if date:
        h.append("Date: Mon, 23 Nov 2026 10:00:00 +0000")
    if message_id:
        h.append(f"Message-ID: <{time.time_ns()}@client.example.test>")
    h.extend(headers)
    if isinstance(body, str):
        body = body.encode()
    return "\r\n".join(h).encode("utf-8") + b"\r\n\r\n" + body


# -- what a signed message must look like ---------------------------------------

def check_signed(d, qid, workdir, domain="example.test",
                 selectors=("r1", "e1")):
    """The final message carries one DKIM-Signature per configured
    selector of `domain`, first (before our Received); each has the tags
    the issue asks for; dkimpy passes every one, Mail::DKIM the RSA one.
    Returns (final message, {selector: tags})."""
    final = final_message(d, qid)
    assert d.message(qid).startswith(b"Received:"), \
        "ID.msg does not start with our Received field"
    names = [n.strip().lower() for n, _ in header_section(final)]
    n = len(selectors)
    assert names[:n] == ["dkim-signature"] * n and names[n] == "received", \
        f"want {n} DKIM-Signature fields, then Received; got {names[:n + 2]}"
    assert names.count("dkim-signature") == n, names

    sigs = dkim_signatures(final)
    by_sel = {}
    now = time.time()
    for tags in sigs:
        assert tags.get("v") == "1", tags
        assert tags.get("d") == domain, f"d= {tags.get('d')!r}, want {domain}"
        s = tags.get("s")
        assert s in selectors, f"s= {s!r} not one of {selectors}"
        assert s not in by_sel, f"two signatures with s={s}"
        by_sel[s] = tags
        assert tags.get("a") == ALG_OF.get(s, tags.get("a")), tags
        assert tags.get("c") == "relaxed/relaxed", tags
        assert "l" not in tags, f"l= present: {tags}"
        assert "t" in tags and abs(int(tags["t"]) - now) < 600, tags
        assert tags.get("bh") and tags.get("b"), tags
        if "i" in tags:
            assert tags["i"].split("@")[-1].endswith(domain), tags
        h = [x.strip().lower() for x in tags["h"].split(":")]
        assert "sender" not in h, f"h= signs Sender: {tags['h']}"
        assert not any(x.startswith("list-") for x in h if h.count(x) > 1), \
            f"h= oversigns a List-* header: {tags['h']}"
        # From and Subject are present once and oversigned
        assert h.count("from") >= 2, f"From not oversigned: {tags['h']}"
        assert h.count("subject") >= 2, f"Subject not oversigned: {tags['h']}"
        assert "received" not in h and "dkim-signature" not in h, tags["h"]
    assert set(by_sel) == set(selectors), (by_sel.keys(), selectors)

    ok = dkimpy_results(final, d.dkim_records)
    assert all(ok), f"dkimpy: {ok} for s={[t['s'] for t in sigs]}\n" \
        f"{final[:3000]!r}"

    res = mail_dkim_results(final, d.dkim_records, workdir)
    rsa = [r for r in res if r[0] == "rsa-sha256"]
    assert len(rsa) == 1, f"Mail::DKIM saw {res}"
    assert rsa[0][1] == domain and rsa[0][3] == "pass", \
        f"Mail::DKIM rsa-sha256: {rsa[0]}"
    return final, by_sel


# -- signing -----------------------------------------------------------------------

@needs_verifiers
def test_rsa_only(postern_factory, ssl_ctx, workdir):
    d = postern_factory(dkim=RSA_ONLY)
    msg = message(subject="rsa only")
    qid = submit(d, ssl_ctx, msg)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    check_signed(d, qid, workdir, selectors=("r1",))


@needs_verifiers
def test_rsa_and_ed25519(postern_factory, ssl_ctx, workdir):
    d = postern_factory()
    msg = message(subject="dual signed",
                  headers=["MIME-Version: 1.0",
                           "Content-Type: text/plain; charset=us-ascii"])
    qid = submit(d, ssl_ctx, msg)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    final, sigs = check_signed(d, qid, workdir)
    assert sigs["r1"]["a"] == "rsa-sha256"
    assert sigs["e1"]["a"] == "ed25519-sha256"
    # both sign the same header fields and body
    assert sigs["r1"]["bh"] == sigs["e1"]["bh"]


@needs_verifiers
def test_added_message_id_and_date_are_signed(postern_factory, ssl_ctx, workdir):
    """Message-ID and Date that the daemon adds are in the signed
    message: signing comes after the header fix-ups."""
    d = postern_factory()
    msg = message(subject="no ids", date=False, message_id=False)
    qid = submit(d, ssl_ctx, msg)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg,
                  added_message_id=True, added_date=True)
    _, sigs = check_signed(d, qid, workdir)
    h = sigs["r1"]["h"].lower().split(":")
    assert h.count("message-id") >= 2 and h.count("date") >= 2, sigs["r1"]["h"]


@needs_verifiers
def test_every_listener_signs(postern_factory, ssl_ctx, workdir):
    """Implicit TLS and the trusted port (no AUTH) sign as well; a From:
    domain in another case still gives the hosted domain's d=."""
    d = postern_factory()
    s = smtplib.SMTP_SSL("127.0.0.1", d.port("smtps"), context=ssl_ctx,
                         timeout=60)
    s.login(ALICE, USERS[ALICE])
    s.mail(ALICE)
    s.rcpt("bob@example.com")
    code, resp = s.data(message(from_addr="Alice <alice@Example.TEST>",
                                subject="implicit tls"))
    assert code == 250, resp
    q1 = queued_id(resp)
    s.quit()
    s = smtplib.SMTP("127.0.0.1", d.port("trusted"), timeout=60)
    s.ehlo()
    s.mail("app@example.test")
    s.rcpt("bob@example.com")
    code, resp = s.data(message(from_addr="App <app@example.test>",
                                subject="trusted port"))
    assert code == 250, resp
    q2 = queued_id(resp)
    s.quit()
    check_signed(d, q1, workdir)
    check_signed(d, q2, workdir)


@needs_verifiers
def test_d_is_the_from_domain(postern_factory, ssl_ctx, workdir):
    """With two hosted domains, each message is signed by the domain of
    its From: with that domain's selector."""
    d = postern_factory(
        domains=("example.test", "other.test"),
        dkim={"other.test": [("r7", "rsa-sha256"), ("e7", "ed25519-sha256")]},
        senders=(("admin@example.test", ["*@example.test"]),
                 (ALICE, ["*@other.test"])))
    q1 = submit(d, ssl_ctx, message(subject="from example.test"))
    q2 = submit(d, ssl_ctx, message(from_addr="Alice <news@other.test>",
                                    subject="from other.test"),
                sender="news@other.test")
    check_signed(d, q1, workdir, "example.test", ("r1", "e1"))
    _, sigs = check_signed(d, q2, workdir, "other.test", ("r7", "e7"))
    assert sigs["r7"]["a"] == "rsa-sha256" and sigs["e7"]["a"] == "ed25519-sha256"


@needs_verifiers
@pytest.mark.parametrize("options", [(), ("BODY=8BITMIME",),
                                     ("BODY=8BITMIME", "SMTPUTF8")],
                         ids=["no-params", "8bitmime", "8bitmime-smtputf8"])
def test_utf8_body(postern_factory, ssl_ctx, workdir, options):
    d = postern_factory()
    body = ("Grüße aus Köln — ünïcödé, 日本語のテキスト, emoji 📬\r\n"
            "zweite Zeile: ÄÖÜß\r\n").encode("utf-8")
    hdrs = ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit"]
    subject = "utf-8 body"
    if "SMTPUTF8" in options:
        subject = "Grüße, raw UTF-8 in a header (SMTPUTF8)"
    msg = message(subject=subject, body=body, headers=hdrs)
    qid = submit(d, ssl_ctx, msg, mail_options=options)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    final, _ = check_signed(d, qid, workdir)
    assert body in final


@needs_verifiers
def test_long_folded_headers(postern_factory, ssl_ctx, workdir):
    d = postern_factory()
    subject = " ".join(f"word{i}" for i in range(120))       # ~800 chars
    folded_subject = "\r\n\t".join(
        subject[i:i + 70] for i in range(0, len(subject), 70))
    rcpts = [f"user{i}@example.com" for i in range(5)]
    to = ",\r\n    ".join(f"User Number {i} <{r}>" for i, r in enumerate(rcpts))
    refs = "\r\n ".join(f"<ref{i}.{'x' * 40}@client.example.test>"
                        for i in range(30))
    msg = message(subject=folded_subject, to=to,
                  headers=[f"References: {refs}",
                           "X-Long:   spaced   \t value \r\n   continued   ",
                           "Content-Type: text/plain;\r\n\tcharset=us-ascii;"
                           "\r\n\tformat=flowed"])
    qid = submit(d, ssl_ctx, msg, rcpts=rcpts)
    assert_queued(d, qid, ALICE, rcpts, ALICE, msg)
    _, sigs = check_signed(d, qid, workdir)
    h = sigs["r1"]["h"].lower().split(":")
    for name in ("to", "references", "content-type"):
        assert name in h, f"{name} not signed: {sigs['r1']['h']}"


@needs_verifiers
def test_body_lines_starting_with_a_dot(postern_factory, ssl_ctx, workdir):
    d = postern_factory()
    body = (b".\r\n..\r\n. a dot and a space\r\n.leading dot\r\n"
            b"...three\r\nnormal line\r\n.\r\n")
    msg = message(subject="dots", body=body)
    qid = submit(d, ssl_ctx, msg)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    final, _ = check_signed(d, qid, workdir)
    assert final.endswith(b"\r\n\r\n" + body), final[-200:]


@needs_verifiers
def test_body_without_final_crlf(postern_factory, ssl_ctx, workdir):
    """The client's message ends without CRLF. On the wire SMTP needs a
    CRLF before the final dot (smtplib adds it), so the stored body ends
    with exactly one CRLF; it must sign and verify."""
    d = postern_factory()
    msg = message(subject="no final crlf", body=b"line one\r\nlast line, no CRLF")
    qid = submit(d, ssl_ctx, msg)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg + b"\r\n")
    final, _ = check_signed(d, qid, workdir)
    assert final.endswith(b"last line, no CRLF\r\n")


@needs_verifiers
def test_body_trailing_blank_lines_and_spaces(postern_factory, ssl_ctx, workdir):
    """relaxed body canonicalization: trailing white space and empty lines
    at the end are where signers and verifiers disagree when one is off."""
    d = postern_factory()
    msg = message(subject="trailing", body=b"text  \t\r\n  indented\r\n\r\n\r\n\r\n")
    qid = submit(d, ssl_ctx, msg)
    check_signed(d, qid, workdir)


@needs_verifiers
@pytest.mark.parametrize("shape", ["empty-body", "no-separator"])
def test_empty_body(postern_factory, ssl_ctx, workdir, shape):
    d = postern_factory()
    msg = message(subject="empty body", body=b"")
    if shape == "no-separator":
        msg = msg[:-2]              # header section only, no empty line
    qid = submit(d, ssl_ctx, msg)
    _, sigs = check_signed(d, qid, workdir)
    # the relaxed hash of an empty body is that of no bytes at all (RFC
    # 6376 3.4.4; "simple" would hash a lone CRLF)
    import hashlib
    assert sigs["r1"]["bh"] == base64.b64encode(
        hashlib.sha256(b"").digest()).decode(), sigs["r1"]


@needs_verifiers
def test_ten_megabyte_attachment(postern_factory, ssl_ctx, workdir):
    d = postern_factory(limits={"message_size": 16 * 1024 * 1024,
                                "data_timeout": '"60s"'})
    raw = os.urandom(10 * 1024 * 1024)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    body = (b"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n"
            b"--BOUNDARY\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"big.bin\"\r\n\r\n" +
            b64 + b"--BOUNDARY--\r\n")
    msg = message(subject="10 MB attachment", body=body,
                  headers=["MIME-Version: 1.0",
                           'Content-Type: multipart/mixed; boundary="BOUNDARY"'])
    assert len(msg) > 10 * 1024 * 1024
    qid = submit(d, ssl_ctx, msg)
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    final, _ = check_signed(d, qid, workdir)
    assert final.endswith(body)


@needs_verifiers
def test_sender_not_signed(postern_factory, ssl_ctx, workdir):
    """Sender (and List-*) are for mailing lists to add: a Sender in the
    message is not in h=, and a Sender added later does not break the
    signatures."""
    d = postern_factory()
    msg = message(subject="with sender",
                  headers=[f"Sender: {ALICE}",
                           "List-Id: <test.lists.example.test>"])
    qid = submit(d, ssl_ctx, msg)
    final, sigs = check_signed(d, qid, workdir)
    for tags in sigs.values():
        assert "sender" not in tags["h"].lower().split(":"), tags["h"]
    later = b"Sender: list-bounces@lists.example.net\r\n" + final
    assert all(dkimpy_results(later, d.dkim_records))


@needs_verifiers
@pytest.mark.parametrize("added", [
    b"From: Mallory <mallory@attacker.example>\r\n",
    b"Subject: URGENT: reset your password\r\n",
    b"To: victim@example.com\r\n",
    b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n",
    b"Message-ID: <forged@attacker.example>\r\n",
], ids=["from", "subject", "to", "date", "message-id"])
@pytest.mark.parametrize("where", ["top", "after-signatures", "bottom"])
def test_header_added_after_signing_fails(postern_factory, ssl_ctx, workdir,
                                          added, where):
    """Oversigning: a second From/Subject/To/Date/Message-ID added
    anywhere in the header section after signing makes every signature
    fail, for dkimpy and (rsa-sha256) Mail::DKIM."""
    d = postern_factory()
    msg = message(subject="oversign")
    qid = submit(d, ssl_ctx, msg)
    final, _ = check_signed(d, qid, workdir)
    if where == "top":
        tampered = added + final
    elif where == "after-signatures":
        k = final.find(b"\r\nReceived:") + 2
        tampered = final[:k] + added + final[k:]
    else:
        k = final.find(b"\r\n\r\n") + 2
        tampered = final[:k] + added + final[k:]
    res = dkimpy_results(tampered, d.dkim_records)
    assert res == [False, False], f"dkimpy still passes after adding {added!r}: {res}"
    rsa = [r for r in mail_dkim_results(tampered, d.dkim_records, workdir)
           if r[0] == "rsa-sha256"]
    assert rsa and rsa[0][3] != "pass", rsa
    # and an unsigned header added the same way does not break them
    harmless = tampered.replace(added, b"X-Added-Later: yes\r\n", 1)
    assert dkimpy_results(harmless, d.dkim_records) == [True, True]


@needs_verifiers
def test_body_changed_after_signing_fails(postern_factory, ssl_ctx, workdir):
    d = postern_factory()
    qid = submit(d, ssl_ctx, message(subject="body", body=b"pay 10 EUR\r\n"))
    final, _ = check_signed(d, qid, workdir)
    assert dkimpy_results(final.replace(b"pay 10 EUR", b"pay 99 EUR"),
                          d.dkim_records) == [False, False]


@needs_verifiers
def test_configured_sign_headers(postern_factory, ssl_ctx, workdir):
    """domains.sign_headers / oversign_headers replace the built-in
    lists."""
    d = postern_factory(domain_options={"example.test":
                        'sign_headers = [ "From", "To", "Subject", "Date", '
                        '"Message-ID", "X-Ticket" ]; '
                        'oversign_headers = [ "From", "Subject", "X-Ticket" ];'})
    qid = submit(d, ssl_ctx, message(subject="custom list",
                                     headers=["X-Ticket: #42",
                                              "X-Not-Signed: 1"]))
    final, sigs = check_signed(d, qid, workdir)
    h = sigs["r1"]["h"].lower().split(":")
    assert h.count("x-ticket") == 2, sigs["r1"]["h"]
    assert "x-not-signed" not in h, sigs["r1"]["h"]
    tampered = b"X-Ticket: #666\r\n" + final
    assert dkimpy_results(tampered, d.dkim_records) == [False, False]


@needs_verifiers
def test_many_messages_one_session(postern_factory, ssl_ctx, workdir):
    """Several messages over one authenticated session each get their own
    correct signatures (no state leaks from one message to the next)."""
    d = postern_factory()
    s = smtplib.SMTP("127.0.0.1", d.port("submission"), timeout=60)
    s.ehlo()
    s.starttls(context=ssl_ctx)
    s.ehlo()
    s.login(ALICE, USERS[ALICE])
    ids = []
    for i in range(5):
        s.mail(ALICE)
        s.rcpt("bob@example.com")
        code, resp = s.data(message(subject=f"msg {i}",
                                    body=f"body {i}\r\n" * (i * 50 + 1)))
        assert code == 250, resp
        ids.append(queued_id(resp))
    s.quit()
    bhs = set()
    for qid in ids:
        _, sigs = check_signed(d, qid, workdir)
        bhs.add(sigs["r1"]["bh"])
    assert len(bhs) == 5


@needs_verifiers
def test_signed_after_restart(postern_factory, ssl_ctx, workdir):
    """Keys are loaded again at a restart; a message queued before the
    restart still verifies afterwards (the signatures are in the
    envelope)."""
    d = postern_factory()
    q1 = submit(d, ssl_ctx, message(subject="before restart"))
    d.restart()
    q2 = submit(d, ssl_ctx, message(subject="after restart"))
    check_signed(d, q1, workdir)
    check_signed(d, q2, workdir)


def test_key_path_override(postern_factory, ssl_ctx, workdir):
    """`key = "path"` relative to state_dir."""
    d = postern_factory(dkim={"example.test": [
        DkimSelector("r1", "rsa-sha256", key="elsewhere/rsa.pem"),
        DkimSelector("e1", "ed25519-sha256", key="elsewhere/ed.pem")]})
    assert os.path.exists(os.path.join(d.state_dir, "elsewhere", "rsa.pem"))
    assert not os.path.exists(os.path.join(d.state_dir, "keys"))
    qid = submit(d, ssl_ctx, message(subject="override"))
    if HAVE_DKIMPY and HAVE_MAIL_DKIM:
        check_signed(d, qid, workdir)


# -- startup refusals ------------------------------------------------------------

def check_config_refuses(d, *words, run_as=None):
    r = subprocess.run([POSTERN, "check-config", "-c", d.conf],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30, cwd=d.dir, **run_as_kw(run_as))
    assert r.returncode == 1, \
        f"check-config exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert "configuration OK" not in r.stdout, r.stdout
    for w in words:
        assert w in r.stderr, f"{w!r} not in check-config's stderr:\n{r.stderr}"
    return r.stderr


def serve_refuses(d, *words, run_as=None):
    p = subprocess.Popen([POSTERN, "serve", "-c", d.conf], cwd=d.dir,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, **run_as_kw(run_as))
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"serve kept running:\n{err}")
    assert p.returncode == 1, f"serve exit {p.returncode}\n{out}{err}"
    for w in words:
        assert w in err, f"{w!r} not in serve's stderr:\n{err}"
    for port in d.ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, \
                f"something listens on {port}"
    return err


def run_as_kw(ids):
    """ids: None, or (uid, gid) to run the command as (we are root)."""
    if ids is None:
        return {}
    return {"user": ids[0], "group": ids[1], "extra_groups": []}


def refuses(d, *words, run_as=None):
    a = check_config_refuses(d, *words, run_as=run_as)
    b = serve_refuses(d, *words, run_as=run_as)
    return a, b


def key_of(d, domain="example.test", selector="r1"):
    return os.path.join(d.state_dir, "keys", domain, selector + ".key")


def test_refuses_missing_key(postern_factory):
    d = postern_factory(start=False, dkim={"example.test": [
        ("r1", "rsa-sha256"), DkimSelector("e1", "ed25519-sha256", install=False)]})
    key = key_of(d, selector="e1")
    assert not os.path.exists(key)
    refuses(d, key, "does not exist")


def test_refuses_missing_overridden_key(postern_factory):
    d = postern_factory(start=False, dkim={"example.test": [
        DkimSelector("r1", "rsa-sha256", key="nowhere/r1.pem", install=False)]})
    refuses(d, os.path.join(d.state_dir, "nowhere/r1.pem"), "does not exist")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_refuses_key_readable_by_others(postern_factory, mode):
    d = postern_factory(start=False)
    key = key_of(d)
    os.chmod(key, mode)
    refuses(d, key, "(mode %04o)" % mode, "chmod 600")


def test_refuses_unreadable_key(postern_factory, workdir):
    """A key the daemon's user cannot open. As root every file is
    readable, so the daemon runs as `nobody` with everything but the key
    handed to it."""
    d = postern_factory(start=False)
    key = key_of(d, selector="e1")
    if os.geteuid() != 0:
        os.chmod(key, 0o000)
        refuses(d, key, "Permission denied")
        return
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    # the TLS files must be readable by nobody too: private copies
    for attr in ("cert", "key"):
        copy = os.path.join(d.dir, f"tls-{attr}.pem")
        shutil.copy(getattr(d, attr), copy)
        setattr(d, attr, copy)
    d.write_config()
    for p in (workdir, d.dir):
        os.chmod(p, 0o755)
    for root, dirs, files in os.walk(d.dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
    os.chown(d.dir, nobody.pw_uid, nobody.pw_gid)
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    refuses(d, key, "Permission denied",
            run_as=(nobody.pw_uid, nobody.pw_gid))


def test_refuses_rsa_selector_with_ed25519_key(postern_factory, dkim_keys):
    d = postern_factory(start=False, dkim={"example.test": [
        DkimSelector("r1", "rsa-sha256", source=dkim_keys.paths["ed25519"]),
        ("e1", "ed25519-sha256")]})
    refuses(d, key_of(d), "rsa-sha256")


def test_refuses_ed25519_selector_with_rsa_key(postern_factory, dkim_keys):
    d = postern_factory(start=False, dkim={"example.test": [
        ("r1", "rsa-sha256"),
        DkimSelector("e1", "ed25519-sha256", source=dkim_keys.paths["rsa"])]})
    refuses(d, key_of(d, selector="e1"), "ed25519-sha256")


def test_refuses_rsa_1024(postern_factory, workdir):
    small = genkey(os.path.join(workdir, "rsa1024.pem"), "rsa", bits=1024)
    d = postern_factory(start=False, dkim={"example.test": [
        DkimSelector("r1", "rsa-sha256", source=small),
        ("e1", "ed25519-sha256")]})
    refuses(d, key_of(d), "1024-bit RSA keys are refused")


def test_refuses_public_key_file(postern_factory, workdir, dkim_keys):
    pub = os.path.join(workdir, "pub.pem")
    subprocess.run(["openssl", "pkey", "-in", dkim_keys.paths["rsa"],
                    "-pubout", "-out", pub], check=True)
    os.chmod(pub, 0o600)
    d = postern_factory(start=False, dkim={"example.test": [
        DkimSelector("r1", "rsa-sha256", source=pub)]})
    refuses(d, key_of(d), "not a private key")


def test_refuses_domain_without_dkim(postern_factory):
    d = postern_factory(start=False, domains=("example.test", "other.test"),
                        dkim={"other.test": []})
    refuses(d, d.conf + ":", "other.test", "has no dkim keys")


def test_refuses_ed25519_only(postern_factory):
    d = postern_factory(start=False,
                        dkim={"example.test": [("e1", "ed25519-sha256")]})
    refuses(d, d.conf + ":", "example.test", "has no rsa-sha256 key")


def test_refuses_two_rsa_keys(postern_factory):
    d = postern_factory(start=False, dkim={"example.test": [
        ("r1", "rsa-sha256"), ("r2", "rsa-sha256")]})
    refuses(d, d.conf + ":", "example.test")


def test_good_key_setups_accepted(postern_factory):
    """The counterpart of the refusals: the default setup (and rsa alone)
    passes check-config."""
    for kw in ({}, {"dkim": RSA_ONLY}):
        d = postern_factory(start=False, **kw)
        r = run_postern(["check-config"], config=d.conf)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "configuration OK" in r.stdout
        assert stat.S_IMODE(os.stat(key_of(d)).st_mode) == 0o600
