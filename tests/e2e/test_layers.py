"""
tests/check-layers, the include-order check, on small planted trees: each
test copies the real ARCHITECTURE.md (so the order under test is the
documented one) next to a few .c/.h files in a temporary directory and
asserts the exact lines the check prints, so the check cannot pass by
being broken. The real tree is checked by tests/run-all ("layers") and
`make check-layers`.

Also: every test that ARCHITECTURE.md names as proof of a promise exists.
"""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "tests", "check-layers")
ARCH = os.path.join(ROOT, "ARCHITECTURE.md")
ORDER = ("common <- config <- keys <- queue <- {submit, relay} <- daemon "
         "<- main.c")


def against(where, folder, include):
    """The line for an include against the order."""
    return (f"{where}: folder {folder} may not include {include} "
            f"(order: {ORDER})")


@pytest.fixture
def tree(tmp_path):
    """plant(files) writes {path: text} under a fresh root that has the
    real ARCHITECTURE.md; run() returns (exit status, stdout lines,
    stderr)."""
    shutil.copy(ARCH, tmp_path / "ARCHITECTURE.md")

    def plant(files):
        for rel, text in files.items():
            p = tmp_path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)

    def run():
        p = subprocess.run([CHECK, str(tmp_path)], capture_output=True,
                           text=True, timeout=60)
        return p.returncode, p.stdout.splitlines(), p.stderr

    plant.run = run
    plant.root = tmp_path
    return plant


CLEAN = {
    "common/log.h": "#include <stdio.h>\n",
    "common/log.c": '#include "common/log.h"\n#include "log.h"\n',
    "config/config.h": '#include "common/log.h"\n',
    "keys/dkim.c": '#include "config/config.h"\n#include <openssl/evp.h>\n',
    "queue/queue.h": '#include "keys/dkim.h"\n#include <sys/queue.h>\n',
    "queue/inject.c": ('#include "queue/queue.h"\n'
                       '#include "keys/dkim.h"\n#include "common/log.h"\n'),
    "submit/session.c": ('#include "queue/queue.h"\n'
                         '#include "config/config.h"\n'
                         '#include "submit/reply.h"\n'),
    "submit/reply.h": "",
    "relay/sched.c": '#include "queue/queue.h"\n#include "relay/dsn.h"\n',
    "relay/dsn.h": "",
    "relay/deep/transport.h": '#include "relay/dsn.h"\n',
    "daemon/daemon.c": ('#include "submit/reply.h"\n'
                        '#include "relay/dsn.h"\n'),
    "main.c": ('#include "daemon/daemon.h"\n#include "submit/reply.h"\n'
               '#include "common/log.h"\n'),
    # outside the rule: tests include whatever they test
    "tests/unit/test_x.c": '#include "main.c"\n#include "relay/dsn.h"\n',
    "tests/fuzz/fuzz.h": '#include "submit/session.c"\n',
    # not sources
    "contrib/notes.txt": '#include "tests/unit/test_x.c"\n',
    "build/relay/sched.d": "relay/sched.o: submit/session.h\n",
}


def test_clean_tree(tree):
    """Every level including itself and what lies below; peers through
    a lower level; main.c and tests/ anything: no output, exit 0."""
    tree(CLEAN)
    assert tree.run() == (0, [], "")


def test_upward_includes(tree):
    """An include of a higher folder, by every spelling the compiler
    accepts: "X/..", <X/..> and a relative "../X/..", with spaces after
    the #."""
    tree(CLEAN)
    tree({"keys/keyring.c": ('#include "common/log.h"\n'
                             '#include "queue/queue.h"\n'),
          "common/counter.c": ('#include <stdlib.h>\n'
                               '# include <config/config.h>\n'),
          "queue/envelope.h": '#include "../submit/reply.h"\n',
          "relay/budget.c": '  #  include "daemon/daemon.h"\n'})
    rc, out, err = tree.run()
    assert out == [
        against("common/counter.c:2", "common", "config/config.h"),
        against("keys/keyring.c:2", "keys", "queue/queue.h"),
        against("queue/envelope.h:1", "queue", "../submit/reply.h"),
        against("relay/budget.c:1", "relay", "daemon/daemon.h"),
        # each closes a loop with CLEAN's includes the other way (the
        # example is the first such include in file order)
        "cycle between folders: common -> config -> common "
        "(common/counter.c:2, config/config.h:1)",
        "cycle between folders: daemon -> relay -> daemon "
        "(daemon/daemon.c:2, relay/budget.c:1)",
        "cycle between folders: keys -> queue -> keys "
        "(keys/keyring.c:2, queue/inject.c:2)",
        "cycle between folders: submit -> queue -> submit "
        "(submit/session.c:1, queue/envelope.h:1)",
    ], out
    assert rc == 1 and err == "check-layers: 8 violations\n"


def test_sibling_include_and_cycle(tree):
    """submit and relay share a level: neither may include the other, and
    both ways at once is a cycle, reported once with one include per
    step."""
    tree(CLEAN)
    tree({"submit/session.c": ('#include "queue/queue.h"\n'
                               '#include "relay/sched.h"\n'),
          "relay/dsn.c": ('#include "relay/dsn.h"\n\n'
                          '#include "submit/reply.h"\n')})
    rc, out, err = tree.run()
    assert out == [
        against("relay/dsn.c:3", "relay", "submit/reply.h"),
        against("submit/session.c:2", "submit", "relay/sched.h"),
        "cycle between folders: relay -> submit -> relay "
        "(relay/dsn.c:3, submit/session.c:2)",
    ], out
    assert rc == 1 and err == "check-layers: 3 violations\n"


def test_one_way_sibling_include(tree):
    """One direction alone is a violation but no cycle (today's
    submit/session.c -> relay/sched.h)."""
    tree(CLEAN)
    tree({"submit/session.c": '#include "relay/sched.h"\n'})
    rc, out, _ = tree.run()
    assert (rc, out) == (1, [
        against("submit/session.c:1", "submit", "relay/sched.h")])


def test_unknown_folder(tree):
    """A folder with sources that the table does not list (reported once,
    at its first file), includes of it from a listed folder, and a loop
    through it; a stray .c at the root; an include of tests/."""
    tree(CLEAN)
    tree({"policyd/batv.c": '#include "relay/dsn.h"\n',
          "policyd/batv.h": "",
          "relay/sched.c": ('#include "queue/queue.h"\n'
                            '#include "policyd/batv.h"\n'),
          "util.c": "",
          "queue/queue.c": '#include "tests/unit/helpers.h"\n',
          "tests/unit/helpers.h": ""})
    rc, out, err = tree.run()
    assert out == [
        f"policyd/batv.c: folder policyd is not in the order: {ORDER}",
        f"queue/queue.c:1: folder queue may not include "
        f"tests/unit/helpers.h (tests is outside the rule: {ORDER})",
        f"relay/sched.c:2: folder relay may not include policyd/batv.h "
        f"(policyd is not in the order: {ORDER})",
        f"util.c: file util.c is not in the order: {ORDER}",
        "cycle between folders: policyd -> relay -> policyd "
        "(policyd/batv.c:1, relay/sched.c:2)",
    ], out
    assert rc == 1 and err == "check-layers: 5 violations\n"


def test_longer_cycle_among_unknown_folders(tree):
    """Folders the table does not list can still form a loop: it is
    reported as one closed path."""
    tree(CLEAN)
    tree({"aa/a.c": '#include "bb/b.h"\n',
          "bb/b.h": '#include "cc/c.h"\n',
          "cc/c.h": '#include "aa/a.h"\n',
          "aa/a.h": ""})
    rc, out, _ = tree.run()
    assert rc == 1
    assert out[-1] == ("cycle between folders: aa -> bb -> cc -> aa "
                       "(aa/a.c:1, bb/b.h:1, cc/c.h:1)"), out
    assert len(out) == 7, out   # 3 unlisted folders, 3 includes, 1 cycle


@pytest.mark.parametrize("text,error", [
    ("no block here\n", "expected exactly one ```layers block, found 0"),
    ("```layers\ncommon\n```\n```layers\nkeys\n```\n",
     "expected exactly one ```layers block, found 2"),
    ("```layers\ncommon\nkeys common\n```\n", ":3: common listed twice"),
    ("```layers\ncommon\nke/ys\n```\n", ":3: bad name 'ke/ys'"),
    ("```layers\n# only a comment\n```\n",
     "the ```layers block lists no level"),
    ("```layers\ncommon\n", "the ```layers block is not closed"),
])
def test_broken_table(tree, text, error):
    """A table the check cannot read is exit 2 with a message, never a
    pass."""
    (tree.root / "ARCHITECTURE.md").write_text(text)
    tree({"common/log.c": ""})
    rc, out, err = tree.run()
    assert (rc, out) == (2, [])
    assert err.startswith("check-layers: ") and error in err, err


def test_real_table_order():
    """The documented block parses to exactly the agreed order (the
    planted trees above see it in every line; this says it once)."""
    text = open(ARCH).read()
    block = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M).group(1)
    lines = [l.split("#")[0].split() for l in block.splitlines()]
    assert [l for l in lines if l] == [
        ["common"], ["config"], ["keys"], ["queue"], ["submit", "relay"],
        ["daemon"], ["main.c"], ["outside:", "tests", "man"]]


def test_promise_tests_exist():
    """Every test ARCHITECTURE.md names as proof of a promise exists: a
    pytest function in that file, or a cmocka test registered in that
    unit test's list (docs naming deleted tests are how they drift)."""
    text = open(ARCH).read()
    promises = text[text.index("## The promises"):]
    refs = re.findall(r"`(tests/[\w/]+\.(?:py|c))(?:::(\w+))?`", promises)
    assert len(refs) > 40, refs
    missing = []
    for path, name in refs:
        full = os.path.join(ROOT, path)
        if not os.path.isfile(full):
            missing.append(path)
            continue
        if not name:
            continue
        src = open(full).read()
        if path.endswith(".py"):
            ok = re.search(rf"^def {name}\(", src, re.M)
        else:
            ok = (re.search(rf"^{name}\(void \*\*state\)", src, re.M) and
                  re.search(rf"cmocka_unit_test\w*\(\s*{name}\b", src))
        if not ok:
            missing.append(f"{path}::{name}")
    assert missing == []
