"""
Delivery in relay.mode = "directory" (what `make run` uses), and the
scheduler's bookkeeping around it.

- A message submitted with smtplib arrives once per recipient as a file
  in DIRECTORY/new/ (written to tmp/, renamed): Return-Path and
  Delivered-To, then exactly the bytes `postern queue show --message`
  printed (signatures included, CRLF); dkimpy and `postern keys verify
  --local` accept its signatures; the queue is empty afterwards.
- In mx mode without DNS a message is deferred, and the
  envelope on disk records the attempt, the next one and each
  recipient's reply; restarted in directory mode, the daemon picks the
  queued message up at start and delivers it.
- Recipients already recorded as delivered are never delivered again.
"""
import os
import subprocess
import time

from conftest import POSTERN, ROOT
from helpers import (Dnsmasq, dkim_signatures, dkimpy_results, final_message,
                     free_udp_port, split_queue_file, submit_smtplib,
                     wait_until)

ALICE = "alice@example.test"
RCPTS = ["bob@example.com", "carol@example.net"]


def submit(d, ctx, rcpts=RCPTS, subject="directory"):
    msg = (f"From: {ALICE}\r\nTo: {', '.join(rcpts)}\r\n"
           f"Subject: {subject}\r\n"
           "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
           f"Message-ID: <{time.time_ns()}@client.example.test>\r\n"
           "\r\nDelivered to a folder.\r\n.leading dot\r\n").encode()
    return submit_smtplib(d, ctx, msg, rcpts=rcpts)


def maildir(d):
    return os.path.join(d.state_dir, "mail")


def delivered(d):
    """{Delivered-To address: file bytes} of DIRECTORY/new/."""
    out = {}
    new = os.path.join(maildir(d), "new")
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            data = f.read()
        first, second, _ = data.split(b"\r\n", 2)
        assert first.startswith(b"Return-Path: <"), data[:200]
        assert second.startswith(b"Delivered-To: "), data[:200]
        rcpt = second[len(b"Delivered-To: "):].decode()
        assert rcpt not in out, f"{rcpt} delivered twice"
        out[rcpt] = data
    return out


DIRECTORY = 'relay = { mode = "directory"; };'


def test_delivered_to_directory(postern_factory, ssl_ctx):
    d = postern_factory(start=False, extra=DIRECTORY)
    d.start()
    qid = submit(d, ssl_ctx)
    wait_until(lambda: len(os.listdir(os.path.join(maildir(d), "new"))) == 2,
             "two files in new/", d)
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    got = delivered(d)
    assert sorted(got) == sorted(RCPTS)
    assert os.listdir(os.path.join(maildir(d), "tmp")) == []
    for rcpt, data in got.items():
        head = f"Return-Path: <{ALICE}>\r\nDelivered-To: {rcpt}\r\n".encode()
        assert data.startswith(head)
        msg = data[len(head):]
        sigs = dkim_signatures(msg)
        assert [s["s"] for s in sigs] == ["r1", "e1"]
        assert dkimpy_results(msg, d.dkim_records) == [True, True]
        assert b"\r\n.leading dot\r\n" in msg     # no dot-stuffing
        mode = os.stat(os.path.join(maildir(d), "new",
                                    next(n for n in os.listdir(
                                        os.path.join(maildir(d), "new"))))).st_mode
        assert mode & 0o777 == 0o600
    # postern keys verify --local agrees (a tool a newcomer uses)
    one = next(iter(got.values()))
    p = subprocess.run([POSTERN, "keys", "verify", "--local", "-c", d.conf],
                       input=one, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(b": pass") == 2, p.stdout
    log = d.log()
    assert f"id={qid} to=<bob@example.com> relay=directory" in log
    assert "status=sent (250 2.0.0 delivered to the directory)" in log
    assert f"id={qid} removed: every recipient is final" in log


def test_deferred_then_delivered_after_restart(postern_factory, ssl_ctx,
                                               workdir):
    # mx mode, and the DNS server refuses: the attempt is recorded as
    # deferred
    port = free_udp_port()
    dns = Dnsmasq(port, workdir)
    dns.start({}, local=False)
    d = postern_factory(start=False,
                        extra=f'resolver = "127.0.0.1@{port}";\n'
                              'relay = { retry = { first = "2s"; }; };')
    try:
        d.start()
        deferred_attempt(d, ssl_ctx)
    finally:
        dns.stop()


def deferred_attempt(d, ssl_ctx):
    before = int(time.time())
    qid = submit(d, ssl_ctx)
    wait_until(lambda: d.envelope(qid).get("attempts") == "1",
             "the first attempt recorded", d)
    env = d.envelope(qid)
    assert [s for s, _ in env.rcpts] == ["pending", "pending"]
    next_at = int(env.get("next"))
    assert before + 2 <= next_at <= int(time.time()) + 2, next_at
    replies = env.replies
    assert sorted(replies) == sorted(RCPTS)
    for r in replies.values():
        assert r.startswith("000 4.4.3 MX lookup of "), r
    final = final_message(d, qid)
    d.stop()

    # directory mode: picked up at start, delivered, removed
    d.extra = DIRECTORY
    d.write_config()
    d.start()
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    got = delivered(d)
    assert sorted(got) == sorted(RCPTS)
    for rcpt, data in got.items():
        assert data.endswith(final)
    assert "messages=1" in d.log()


def test_delivered_recipients_not_sent_again(postern_factory, ssl_ctx):
    # mx mode without DNS: accepted and queued, not delivered
    d = postern_factory(start=False)
    d.start()
    qid = submit(d, ssl_ctx)
    d.stop()
    # as if an earlier attempt had delivered bob, and retry now
    # (an envelope update appended to the queue file, as queue_update
    # writes one: the last envelope in the file is the one that counts)
    _, texts, _ = split_queue_file(d.queue_file(qid))
    lines = texts[-1].decode().split("\n")
    lines = ["rcpt delivered bob@example.com"
             if l == "rcpt pending bob@example.com" else l
             for l in lines
             if not l.startswith("next ") and not l.startswith("prepend ")]
    d.append_envelope(qid, "\n".join(lines))
    d.extra = DIRECTORY
    d.write_config()
    d.start()
    wait_until(lambda: d.queue_ids() == [], "the queue to empty", d)
    assert sorted(delivered(d)) == ["carol@example.net"]
