"""
`postern sendmail` against the real daemon, as local users: the way
Trac, cron and PHP's mail() hand over mail. The daemon tells callers apart
by their uid on the local socket (test_local.py drives that socket by
hand; test_sendmail_client.py checks the client against a stand-in
server).
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import POSTERN
from helpers import dkimpy_results, mail_dkim_results, wait_until
from test_relay_mx import RECORDS, mxnet  # noqa: F401

WWW = "www-data"


def _can_run_as(user):
    if os.geteuid() != 0:
        return "needs root to run as other users"
    try:
        pwd.getpwnam(user)
    except KeyError:
        return f"no user {user}"
    r = subprocess.run([POSTERN, "sendmail", "-bs"], user=user,
                       capture_output=True, timeout=30)
    if r.returncode != 64:
        return f"{user} cannot run {POSTERN}: {r.returncode} {r.stderr!r}"
    return None


pytestmark = pytest.mark.skipif(_can_run_as(WWW) is not None,
                                reason=str(_can_run_as(WWW)))


@pytest.fixture
def local(mxnet, workdir):
    """(daemon, sink, run) with local_senders for www-data, delivering to
    an MX sink; run(args, stdin, user) runs postern sendmail -C conf."""
    make, server, sinks, start_sink = mxnet
    sink = start_sink("127.0.0.2")
    server.start({}, extra=RECORDS)
    public = tempfile.mkdtemp(prefix="postern-sendmail-")
    os.chmod(public, 0o755)
    sock = os.path.join(public, "sendmail.sock")
    d = make()
    d.extra += (f'\nlocal_socket = "{sock}";\n'
                'local_senders = ( { user = "www-data"; addresses = '
                '[ "trac@example.test" ]; } );')
    d.write_config()
    # the callers read the configuration (not the TLS key it names)
    conf = os.path.join(public, "postern.conf")
    shutil.copy(d.conf, conf)
    os.chmod(conf, 0o644)
    d.start()

    def run(args, stdin, user=WWW):
        return subprocess.run([POSTERN, "sendmail", "-C", conf, *args],
                              input=stdin, capture_output=True, user=user,
                              timeout=60)

    yield d, sink, run
    shutil.rmtree(public, ignore_errors=True)


TICKET = (b"From: Trac <trac@example.test>\n"
          b"To: dev@mx-a.test\n"
          b"Bcc: secret@mx-a.test\n"
          b"Subject: [project] #42: crash on save\n"
          b"\n"
          b"Ticket #42 was changed.\n"
          b".\n"
          b"A line with a dot, then more.\n")


def test_sendmail_t_i_reaches_sink_signed(local):
    """`postern sendmail -t -i` as www-data with a Trac ticket mail on
    stdin (LF line ends, a lone dot inside): exit 0 only once queued; the
    sink gets it for To: and Bcc:, without the Bcc: field, the dot line
    intact, DKIM-signed so that dkimpy and Mail::DKIM verify it."""
    d, sink, run = local
    r = run(["-t", "-i"], TICKET)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    wait_until(lambda: len(sink.got) == 1 and d.queue_ids() == [],
               "the delivery", d)
    sender, rcpts, data = sink.got[0]
    assert sender == "trac@example.test"
    assert sorted(rcpts) == ["dev@mx-a.test", "secret@mx-a.test"]
    assert b"\r\nBcc:" not in data and not data.startswith(b"Bcc:")
    assert b"\r\n.\r\nA line with a dot, then more.\r\n" in data
    assert dkimpy_results(data, d.dkim_records) == [True, True]
    log = d.log()
    assert "connect client=local user=www-data" in log


def test_sendmail_mail_dkim_verifies(local, workdir):
    """The RSA signature of a sendmail-submitted message also verifies
    with Mail::DKIM (a verifier nobody here wrote, in Perl)."""
    d, sink, run = local
    r = run(["-i", "dev@mx-a.test"], TICKET.replace(b"Bcc: secret@mx-a.test\n",
                                                   b""))
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len(sink.got) == 1, "the delivery", d)
    res = mail_dkim_results(sink.got[0][2], d.dkim_records, workdir)
    # (Debian 12's Mail::DKIM has no Ed25519: the RSA signature only)
    rsa = [r for r in res if r[0] == "rsa-sha256"]
    assert [r[3] for r in rsa] == ["pass"], res


def test_unmapped_user_refused(local):
    """A local user without a local_senders entry: non-zero exit
    (EX_NOPERM), one clear line, nothing queued."""
    d, sink, run = local
    r = run(["-t", "-i"], TICKET, user="nobody")
    assert r.returncode == 77, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("sendmail: ")
    assert "Local user nobody" in err and "may not send mail" in err
    assert d.queue_ids() == [] and d.tmp_files() == []


def test_forged_sender_refused(local):
    """www-data with -f or a From: outside its mapping: refused
    (EX_NOPERM), nothing queued."""
    d, sink, run = local
    r = run(["-t", "-i", "-f", "ceo@example.test"], TICKET)
    assert r.returncode == 77, (r.returncode, r.stderr)
    assert b"not allowed for local user www-data" in r.stderr
    forged = TICKET.replace(b"From: Trac <trac@example.test>",
                            b"From: CEO <ceo@example.test>")
    r = run(["-t", "-i", "-f", "trac@example.test"], forged)
    assert r.returncode == 77, (r.returncode, r.stderr)
    assert b"From: address <ceo@example.test> not allowed" in r.stderr
    assert d.queue_ids() == [] and d.tmp_files() == []


def test_daemon_down(local):
    """With the daemon stopped the exit status is EX_UNAVAILABLE, with the
    socket's path in the message: never a silent loss."""
    d, sink, run = local
    d.stop()
    r = run(["-t", "-i"], TICKET)
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert b"cannot reach the postern daemon" in r.stderr
