"""
Real clients nobody here wrote submit mail through the real daemon:
Python's smtplib exactly as Trac drives it, smtplib.SMTP_SSL, swaks and
msmtp over both STARTTLS and implicit TLS, GNU SASL's gsasl for
SCRAM-SHA-256. Each test checks the reply and what landed in the queue.
"""
import os
import re
import shutil
import smtplib
import subprocess

import pytest

from conftest import Listener, default_listeners, ipv6_available
from helpers import (USERS, assert_queued, ehlo_keywords, queued_id,
                     submission)

ALICE = "alice@example.test"


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that remembers the reply to the end of DATA, which
    sendmail() otherwise throws away (so we can learn the queue id). The
    calls a client makes are unchanged."""
    last_data_reply = None

    def data(self, msg):
        r = super().data(msg)
        self.last_data_reply = r
        return r


class RecordingSMTP_SSL(smtplib.SMTP_SSL):
    last_data_reply = None

    def data(self, msg):
        r = super().data(msg)
        self.last_data_reply = r
        return r


def data_reply_id(server):
    code, resp = server.last_data_reply
    assert code == 250, server.last_data_reply
    text = resp.decode()
    assert text.startswith("2.0.0 Ok: queued as "), text
    return queued_id(text)


def trac_message(subject, with_ids):
    """A message the way Trac builds one: str with \\n line ends (smtplib
    turns them into CRLF). Includes a line starting with a dot to check
    dot-stuffing survives the trip."""
    hdr = [f"From: Trac <{ALICE}>", "To: bob@example.com, carol@example.net",
           f"Subject: {subject}", "MIME-Version: 1.0",
           "Content-Type: text/plain; charset=utf-8",
           "Content-Transfer-Encoding: 8bit",
           "X-Trac-Version: 1.6"]
    if with_ids:
        hdr += ["Date: Mon, 23 Nov 2026 10:00:00 -0000",
                f"Message-ID: <{subject.replace(' ', '.')}@trac.example.test>"]
    body = ["Ticket #42 was changed.", "", ".a line that starts with a dot",
            "..two dots", "Ünïcödé body line", "", "-- ", "Trac"]
    return "\n".join(hdr) + "\n\n" + "\n".join(body) + "\n"


@pytest.mark.parametrize("with_ids", [False, True],
                         ids=["adds-message-id-date", "keeps-message-id-date"])
def test_smtplib_like_trac(postern, ssl_ctx, with_ids):
    rcpts = ["bob@example.com", "carol@example.net"]
    msg = trac_message(f"Ticket 42 changed {with_ids}", with_ids)
    # Trac renders the MIME message with CRLF line ends (smtplib would
    # convert a str, but not bytes; this message has UTF-8 in it)
    client_bytes = msg.replace("\n", "\r\n").encode("utf-8")
    # Exactly Trac's SmtpEmailSender sequence (use_tls = true).
    server = RecordingSMTP("127.0.0.1", postern.port("submission"), timeout=15)
    code, _ = server.ehlo()
    assert code == 250
    assert not server.has_extn("auth"), "AUTH offered before STARTTLS"
    code, resp = server.starttls(context=ssl_ctx)
    assert code == 220 and resp.startswith(b"2.0.0"), (code, resp)
    server.ehlo()
    assert server.has_extn("auth")
    code, resp = server.login(ALICE, USERS[ALICE])
    assert code == 235 and resp.startswith(b"2.7.0"), (code, resp)
    refused = server.sendmail(ALICE, rcpts, client_bytes)
    assert refused == {}
    qid = data_reply_id(server)
    code, resp = server.quit()
    assert code == 221 and resp.startswith(b"2.0.0"), (code, resp)

    assert postern.queue_ids() == [qid]
    env = assert_queued(postern, qid, ALICE, rcpts, ALICE, client_bytes,
                        added_message_id=not with_ids, added_date=not with_ids)
    if env.get("client") is not None:
        assert env.get("client") == "127.0.0.1", env
    assert postern.wait_tmp_empty() == []


def test_smtplib_ssl_implicit_tls(postern, ssl_ctx):
    msg = ("From: alice@example.test\r\nTo: bob@example.com\r\n"
           "Subject: implicit tls\r\n\r\nbody\r\n").encode()
    with RecordingSMTP_SSL("127.0.0.1", postern.port("smtps"),
                           context=ssl_ctx, timeout=15) as s:
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS offered inside TLS"
        assert "PLAIN" in s.esmtp_features.get("auth", "").split()
        s.login(ALICE, USERS[ALICE])
        assert s.sendmail(ALICE, ["bob@example.com"], msg) == {}
        qid = data_reply_id(s)
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, msg,
                  added_message_id=True, added_date=True)


def test_smtplib_tagged_sender_and_several_messages_per_session(postern, ssl_ctx):
    """alice may send as alice+tag@; several messages on one session."""
    ids = []
    with RecordingSMTP_SSL("127.0.0.1", postern.port("smtps"),
                           context=ssl_ctx, timeout=15) as s:
        s.login(ALICE, USERS[ALICE])
        for i in range(3):
            sender = "alice+lists@example.test" if i == 1 else ALICE
            msg = (f"From: {sender}\r\nTo: bob@example.com\r\n"
                   f"Subject: n{i}\r\nMessage-ID: <n{i}@x.test>\r\n"
                   f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody {i}\r\n").encode()
            s.sendmail(sender, ["bob@example.com"], msg)
            ids.append((data_reply_id(s), sender, msg))
    assert len({i for i, _, _ in ids}) == 3, "queue ids not unique"
    for qid, sender, msg in ids:
        assert_queued(postern, qid, sender, ["bob@example.com"], ALICE, msg)


# -- swaks ---------------------------------------------------------------

def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (contrib/install-deps.sh "
                    f"installs it)")


SWAKS_CASES = [("submission", "--tls", "PLAIN"), ("submission", "--tls", "LOGIN"),
               ("smtps", "--tlsc", "PLAIN"), ("smtps", "--tlsc", "LOGIN")]


@pytest.mark.parametrize("listener,tlsopt,mech", SWAKS_CASES,
                         ids=[f"{a}-{c}" for a, _, c in SWAKS_CASES])
def test_swaks(postern, tls_files, listener, tlsopt, mech):
    need("swaks")
    marker = f"swaks-{listener}-{mech}"
    cmd = ["swaks", "--server", "127.0.0.1", "--port",
           str(postern.port(listener)), tlsopt,
           "--tls-verify", "--tls-ca-path", tls_files[0],
           "--auth", mech, "--auth-user", ALICE,
           "--auth-password", USERS[ALICE],
           "--ehlo", "client.example.test",
           "--from", ALICE, "--to", "bob@example.com",
           "--header", f"Subject: {marker}", "--body", f"body {marker}"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout
    m = re.search(r"^<~ +250 2\.0\.0 Ok: queued as (\S+)", p.stdout, re.M)
    assert m, f"no '250 2.0.0 Ok: queued as' in the TLS transcript:\n{p.stdout}"
    assert re.search(r"^<~ +235 2\.7\.0", p.stdout, re.M), p.stdout
    qid = m.group(1)
    assert postern.queue_ids() == [qid]
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE)
    stored = postern.message(qid)
    assert stored.startswith(b"Received:"), stored[:200]
    assert f"Subject: {marker}".encode() in stored
    assert f"body {marker}".encode() in stored
    # swaks writes its own Date and Message-Id: we must not add a second
    assert stored.lower().count(b"\nmessage-id:") == 1, stored[:2000]
    assert stored.lower().count(b"\ndate:") == 1, stored[:2000]


# -- msmtp ---------------------------------------------------------------

@pytest.mark.parametrize("listener,starttls", [("submission", "on"),
                                               ("smtps", "off")])
def test_msmtp(postern, tls_files, workdir, listener, starttls):
    need("msmtp")
    rc = os.path.join(workdir, f"msmtprc-{listener}")
    log = os.path.join(workdir, f"msmtp-{listener}.log")
    with open(rc, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(f"""defaults
tls on
tls_trust_file {tls_files[0]}
logfile {log}

account relay
host 127.0.0.1
port {postern.port(listener)}
tls_starttls {starttls}
auth on
user {ALICE}
password {USERS[ALICE]}
from {ALICE}
domain client.example.test

account default : relay
""")
    marker = f"msmtp-{listener}"
    msg = (f"From: Alice <{ALICE}>\nTo: bob@example.com\nSubject: {marker}\n"
           f"\nbody {marker}\n").encode()
    p = subprocess.run(["msmtp", "-C", rc, "--", "bob@example.com"],
                       input=msg, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    logtext = open(log).read() if os.path.exists(log) else ""
    assert p.returncode == 0, out + logtext
    m = re.search(r"queued as ([0-9A-Za-z]+)", logtext)
    assert m, logtext
    qid = m.group(1)
    assert postern.queue_ids() == [qid]
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE,
                  msg.replace(b"\n", b"\r\n"), added_message_id=True,
                  added_date=True)


# -- SCRAM-SHA-256 -------------------------------------------------------

def test_scram_advertised_after_tls_only(postern, ssl_ctx):
    c = submission(postern, ssl_ctx)
    kw = ehlo_keywords(c.ehlo())
    mechs = kw.get("AUTH", "").split()
    assert "SCRAM-SHA-256" in mechs, kw
    assert "PLAIN" in mechs and "LOGIN" in mechs, kw
    for weak in ("CRAM-MD5", "DIGEST-MD5"):
        assert weak not in mechs, kw
    c.close()
    assert postern.queue_ids() == []


def gsasl(postern, tls_files, password, listener="submission"):
    need("gsasl")
    args = ["gsasl", "--smtp", f"--connect=127.0.0.1:{postern.port(listener)}",
            "--mechanism=SCRAM-SHA-256", f"--authentication-id={ALICE}",
            f"--password={password}", f"--x509-ca-file={tls_files[0]}",
            "--no-cb", "--verbose"]
    if listener == "submission":
        args.append("--starttls")
    return subprocess.run(args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)


def test_scram_sha256_with_gsasl(postern, tls_files):
    """GNU SASL's command-line client authenticates with SCRAM-SHA-256
    (it cannot send a message; that part is covered by PLAIN/LOGIN)."""
    p = gsasl(postern, tls_files, USERS[ALICE])
    assert p.returncode == 0, p.stdout
    assert re.search(r"^235 2\.7\.0", p.stdout, re.M), p.stdout
    bad = gsasl(postern, tls_files, "wrong-password")
    assert bad.returncode != 0, bad.stdout
    assert re.search(r"^535 5\.7\.8", bad.stdout, re.M), bad.stdout
    assert postern.queue_ids() == []


# -- IPv6 ----------------------------------------------------------------

def test_ipv6_listener(postern_factory, ssl_ctx):
    if not ipv6_available():
        pytest.skip("::1 is not available on this machine")
    ls = default_listeners() + [Listener("v6", "implicit", address="::1")]
    d = postern_factory(listeners=ls)
    msg = b"From: alice@example.test\r\nTo: bob@example.com\r\nSubject: v6\r\n\r\nhi\r\n"
    with RecordingSMTP_SSL("::1", d.port("v6"), context=ssl_ctx,
                           timeout=15) as s:
        s.login(ALICE, USERS[ALICE])
        s.sendmail(ALICE, ["bob@example.com"], msg)
        qid = data_reply_id(s)
    env = assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg,
                        added_message_id=True, added_date=True)
    if env.get("client") is not None:
        assert env.get("client") == "::1", env
