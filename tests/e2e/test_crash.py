"""
Promise 3 (ARCHITECTURE.md): nothing is lost after 250. Several smtplib
clients submit as fast as they can (persistent sessions and one message
per connection); at a random moment the daemon gets SIGKILL. Every queue
id a client was given with 250 must then have its envelope and its message
in queue/, with the client's unique marker in it, before and after a
restart on the same state directory; the restart must leave tmp/ empty and
the queue consistent (no message without envelope, no envelope without
message).
"""
import os
import random
import smtplib
import threading
import time

import pytest

from helpers import (USERS, assert_queued, make_message,
                     queued_id, smtps)

ALICE = "alice@example.test"
RCPTS = ["bob@example.com", "carol@example.net"]


class Clients:
    def __init__(self, d, ctx, seed):
        self.d = d
        self.ctx = ctx
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = {}          # qid -> (marker, client message bytes)
        self.errors = []            # unexpected non-network failures
        self.attempts = 0

    def message(self, tag, i):
        marker = f"crash-{self.seed}-{tag}-{i}-{os.urandom(6).hex()}"
        body = (f"marker {marker}\r\n" + "x" * 70 + "\r\n") * \
            random.Random(marker).randint(1, 60)
        return marker, make_message(ALICE, RCPTS, subject=marker, body=body)

    def submit(self, s, tag, i):
        marker, msg = self.message(tag, i)
        with self.lock:
            self.attempts += 1
        code, resp = s.mail(ALICE)
        if code != 250:
            raise smtplib.SMTPResponseException(code, resp)
        for r in RCPTS:
            code, resp = s.rcpt(r)
            if code != 250:
                raise smtplib.SMTPResponseException(code, resp)
        code, resp = s.data(msg)
        if code == 250:
            qid = queued_id(resp.decode())
            with self.lock:
                assert qid not in self.accepted, f"queue id {qid} given twice"
                self.accepted[qid] = (marker, msg)
        elif code < 400 or code >= 500:
            with self.lock:
                self.errors.append(f"{tag}/{i}: DATA answered {code} {resp!r}")

    def persistent(self, n):
        tag = f"p{n}"
        i = 0
        try:
            with smtplib.SMTP_SSL("127.0.0.1", self.d.port("smtps"),
                                  context=self.ctx, timeout=10) as s:
                s.login(ALICE, USERS[ALICE])
                while not self.stop.is_set():
                    self.submit(s, tag, i)
                    i += 1
        except (OSError, smtplib.SMTPException):
            pass          # the daemon died under us: expected
        except Exception as e:               # noqa: BLE001
            with self.lock:
                self.errors.append(f"{tag}: {e!r}")

    def per_connection(self, n):
        tag = f"c{n}"
        i = 0
        while not self.stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.d.port("submission"),
                                  timeout=10) as s:
                    s.starttls(context=self.ctx)
                    s.login(ALICE, USERS[ALICE])
                    self.submit(s, tag, i)
            except (OSError, smtplib.SMTPException):
                if self.stop.is_set():
                    return
                # refused while dying, or connection reset: stop this client
                return
            except Exception as e:           # noqa: BLE001
                with self.lock:
                    self.errors.append(f"{tag}: {e!r}")
                return
            i += 1


def check_queue(d, accepted, when):
    files = set(d.queue_files())
    missing = []
    for qid, (marker, msg) in accepted.items():
        if qid not in files:
            missing.append(qid)
            continue
        env = d.envelope(qid)
        assert env.get("id") == qid, env
        assert env.sender == ALICE and env.login == ALICE, env
        assert env.rcpts == [("pending", r) for r in RCPTS], env
        stored = d.message(qid)
        assert env.get("size") == str(len(stored)), (env, len(stored))
        assert marker.encode() in stored, f"{qid}: marker {marker} missing"
        assert stored.endswith(msg.split(b"\r\n\r\n", 1)[1]), \
            f"{qid}: body not intact"
    assert not missing, (f"{when}: {len(missing)} of {len(accepted)} "
                         f"accepted messages lost: {missing[:10]}")


@pytest.mark.parametrize("seed", [11, 22, 33])
def test_kill9_loses_no_accepted_message(postern_factory, ssl_ctx, seed):
    rng = random.Random(seed)
    delay = rng.uniform(0.3, 1.5)
    print(f"crash test: seed={seed} kill after {delay:.3f}s")
    d = postern_factory()
    cl = Clients(d, ssl_ctx, seed)
    threads = [threading.Thread(target=cl.persistent, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=cl.per_connection, args=(n,))
                for n in range(2)]
    for t in threads:
        t.start()
    time.sleep(delay)
    d.kill9()
    cl.stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    assert not cl.errors, cl.errors
    print(f"crash test: {cl.attempts} attempts, {len(cl.accepted)} accepted "
          f"before the kill")
    assert cl.accepted, "no message was accepted before the kill"

    # on disk right after the kill, before any recovery
    check_queue(d, cl.accepted, "after kill -9")

    # restart on the same state directory
    d.start()
    # recovery empties tmp/
    left = d.wait_tmp_empty()
    assert left == [], f"tmp/ not empty after restart: {left}"
    check_queue(d, cl.accepted, "after restart")
    names = d.queue_files()
    ids = set(d.queue_ids())
    assert set(names) == ids, f"not queue files: {sorted(set(names) - ids)}"
    for qid in ids:           # every committed queue file parses
        d.envelope(qid)
    # messages committed but not acknowledged may be there too (a
    # duplicate at worst); nothing else
    assert set(cl.accepted) <= ids

    # and the restarted daemon works
    c = smtps(d, ssl_ctx, login=ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="after restart")
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
    assert "queued=" in d.log()


def test_restart_keeps_queue_and_cleans_stale_tmp(postern_factory, ssl_ctx):
    """A clean stop and start keeps the queue; a stale tmp/ file (a message
    that was never acknowledged) is removed at startup."""
    d = postern_factory()
    c = smtps(d, ssl_ctx, login=ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="survives restart")
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    rc = d.stop()
    assert rc == 0, f"SIGTERM exit status {rc}"
    stale = os.path.join(d.tmp_dir, "0000000000STALE00000")
    with open(stale, "wb") as f:
        f.write(b"half a message")
    d.start()
    assert not os.path.exists(stale), "stale tmp/ file survived the restart"
    assert d.queue_ids() == [qid]
    assert_queued(d, qid, ALICE, ["bob@example.com"], ALICE, msg)
