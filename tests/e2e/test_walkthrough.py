"""
INSTALL's promise is that every command in it works as written. Two
tests keep it:

test_install_walkthrough runs walkthrough.py (read it first) as root in
new mount, network and PID namespaces: INSTALL's commands, word for word
and in order, from `make install` to the first message, sendmail, reload,
a refused reload and stop, with the messages checked at a real SMTP sink
and their signatures by dkimpy against DNS. It needs root, unshare(1) and
overlayfs; without them it is skipped (CI runs as root). It tests the
documentation with the normal build that `make install` installs, so the
sanitized pass skips it.

test_every_install_command_is_run reads INSTALL alone: each command in
it must be one the walk-through runs or one listed in ELSEWHERE with what
runs it instead. A command added to INSTALL without either fails here.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import walkthrough  # noqa: E402  (its module level only reads INSTALL)

WALK = os.path.join(ROOT, "tests", "e2e", "walkthrough.py")

# The programs INSTALL's commands start with: an indented line starting
# with another word is a configuration or log excerpt, not a command.
PROGRAMS = ("contrib/install-deps.sh", "make", "adduser", "install",
            "postern", "printf", "systemctl", "journalctl", "nft", "swaks",
            "runuser", "chgrp", "chmod")

# INSTALL commands the walk-through does not run, and what runs them.
ELSEWHERE = {
    "contrib/install-deps.sh": ".ci/run (CI starts with it)",
    "make": ".ci/run, before make check",
    "make check": ".ci/run",
    "postern keys rotate example.org -c /etc/postern/postern.conf":
        "test_rotation.py (a rotation waits for DNS, then for days)",
    "postern keys remove example.org r202611 -c /etc/postern/postern.conf":
        "test_rotation.py (removes a retired selector)",
    "systemctl enable --now postern":
        "systemd is not PID 1 in CI: run by hand in a systemd-nspawn "
        "container (2026-11-24); walkthrough.py runs the unit's ExecStart",
    "systemctl status postern": "by hand in the container",
    "journalctl -u postern":
        "by hand in the container; walkthrough.py reads the daemon's "
        "stderr, which is what the journal holds",
    "systemctl reload postern":
        "by hand in the container; walkthrough.py runs the unit's "
        "ExecReload lines",
}


def commands():
    """INSTALL's commands (normalized), in order."""
    out = []
    for c in walkthrough.INSTALL_CMDS:
        if c.split(" ", 1)[0] in PROGRAMS:
            out.append(c)
    return out


def test_every_install_command_is_run():
    ran = set(walkthrough_commands())
    cmds = commands()
    assert len(cmds) >= 20, cmds
    missing = [c for c in cmds if c not in ran and c not in ELSEWHERE]
    assert not missing, ("INSTALL commands that nothing runs (run them in "
                         "walkthrough.py or say in ELSEWHERE what does): "
                         f"{missing}")
    stale = [c for c in ELSEWHERE if c not in cmds]
    assert not stale, f"ELSEWHERE names commands INSTALL lacks: {stale}"


def walkthrough_commands():
    """The INSTALL commands walkthrough.py runs: the literal strings it
    hands to install_cmd (Python's own parser reads them)."""
    import ast
    with open(WALK) as f:
        tree = ast.parse(f.read())
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and
                getattr(node.func, "id", None) == "install_cmd"):
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                out.append(" ".join(arg.value.split()))
            elif isinstance(arg, ast.Name) and arg.id == "SWAKS":
                out.append(" ".join(walkthrough.SWAKS.split()))
    return out


def _can_walk():
    if os.environ.get("POSTERN_BIN"):
        return "the sanitized pass: the walk-through installs the normal build"
    if os.geteuid() != 0:
        return "needs root (namespaces, overlays, adduser)"
    for prog in ("unshare", "adduser", "runuser", "dnsmasq", "swaks",
                 "update-ca-certificates", "ip"):
        if shutil.which(prog) is None and not os.path.exists(
                f"/usr/sbin/{prog}"):
            return f"{prog} is missing"
    p = subprocess.run(["unshare", "--mount", "--fork", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        return "unshare --mount does not work here"
    return None


@pytest.mark.skipif(_can_walk() is not None, reason=str(_can_walk()))
def test_install_walkthrough():
    work = tempfile.mkdtemp(prefix="postern-walk-")
    try:
        p = subprocess.run(
            ["unshare", "--mount", "--net", "--pid", "--fork",
             "--mount-proc", "/usr/bin/python3", WALK, work],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=600)
        print(p.stdout)
        assert p.returncode == 0, p.stdout[-6000:]
        assert "WALKTHROUGH PASSED" in p.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
