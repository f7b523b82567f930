"""
Load shedding: when the queue's filesystem runs low, MAIL gets 452 4.3.1
until space is freed, while everything already accepted stays safe and
the session stays usable (limits.queue_min_free). The state directory is
put on a small tmpfs of its own so the test can fill and free it; that
needs root (CI runs as root), else the test is skipped.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from helpers import expect, make_message, submission

ALICE = "alice@example.test"
MiB = 1024 * 1024


def send(c, subject, size=None):
    mail = f"MAIL FROM:<{ALICE}>" + (f" SIZE={size}" if size else "")
    r = c.cmd(mail)
    if r.code != 250:
        return r
    expect(c.cmd("RCPT TO:<someone@example.com>"), 250, "2.1.5", conn=c)
    return c.data(make_message(ALICE, ["someone@example.com"],
                               subject=subject))


@pytest.fixture
def small_state_dir(postern_factory):
    """A daemon (not started) whose state_dir is a 48 MiB tmpfs."""
    d = postern_factory(start=False, limits={
        "queue_min_free": 16 * MiB, "message_size": 8 * MiB})
    saved = tempfile.mkdtemp(prefix="postern-state-")
    shutil.copytree(d.state_dir, saved, dirs_exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700",
                        "tmpfs", d.state_dir], capture_output=True)
    if r.returncode != 0:
        shutil.rmtree(saved)
        pytest.skip("cannot mount a tmpfs: " + r.stderr.decode().strip())
    try:
        shutil.copytree(saved, d.state_dir, dirs_exist_ok=True)
        yield d
    finally:
        d.stop()
        subprocess.run(["umount", d.state_dir], check=False)
        shutil.rmtree(saved)


def test_queue_space_low(small_state_dir, ssl_ctx):
    """Below limits.queue_min_free MAIL gets 452 4.3.1 (logged once), the
    connection stays usable, mail accepted before is still queued; once
    space is freed MAIL is accepted again; SIZE= counts against what is
    free."""
    d = small_state_dir
    d.start()
    c = submission(d, ssl_ctx, login=ALICE)
    first = expect(send(c, "before"), 250, "2.0.0", conn=c)
    filler = os.path.join(d.state_dir, "filler")
    free = os.statvfs(d.state_dir)
    left = free.f_bavail * free.f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * (left - 12 * MiB))     # leaves ~12 MiB < 16 MiB
    try:
        expect(send(c, "full"), 452, "4.3.1", "Insufficient system storage",
               conn=c)
        expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
        other = submission(d, ssl_ctx, login=ALICE)
        expect(send(other, "full too"), 452, "4.3.1", conn=other)
        other.close()
        assert d.log().count("queue filesystem low") == 1, d.log()
    finally:
        os.remove(filler)
    expect(send(c, "after"), 250, "2.0.0", conn=c)
    # ~48 MiB free: SIZE= of 8 MiB fits above 16 MiB, after a 28 MiB
    # filler it does not
    with open(filler, "wb") as f:
        f.write(b"\0" * (28 * MiB))
    try:
        r = c.cmd(f"MAIL FROM:<{ALICE}> SIZE={8 * MiB}")
        expect(r, 452, "4.3.1", conn=c)
        r = c.cmd(f"MAIL FROM:<{ALICE}> SIZE=1000")
        expect(r, 250, "2.1.0", conn=c)
        expect(c.cmd("RSET"), 250, "2.0.0", conn=c)
    finally:
        os.remove(filler)
    c.cmd("QUIT")
    c.close()
    # nothing accepted was lost: both messages wait in the queue (the
    # test resolver refuses every lookup, so delivery defers them)
    assert first.code == 250
    assert len(d.queue_ids()) == 2
