"""
The man pages (man/, and build/man/postern.conf.5 that `make` generates):

- every page lints clean with mandoc and with groff;
- postern.conf(5) has one entry per row of the settings table, each with
  its kind, bounds, default (or "Required") as the table says. The table is
  read here from config/config.c's source text, not through the generator,
  so a generator that dropped or garbled a row fails;
- postern(8) names every subcommand and every option that `postern` and
  `postern keys` print in their usage, so a new subcommand or option
  without documentation fails;
- the sendmail, mailq and newaliases pages point to postern(8).
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import POSTERN, ROOT

MAN = os.path.join(ROOT, "man")
CONF5 = os.path.join(ROOT, "build", "man", "postern.conf.5")
PAGES = [os.path.join(MAN, p) for p in
         ("postern.8", "sendmail.8", "mailq.8", "newaliases.8")] + [CONF5]
MANDOC = shutil.which("mandoc")

# mandoc -T lint messages that say something about this host, not about
# the page: cross references to pages that are not installed here (postern
# and postern.conf are not installed while the tests run; systemd.service
# may be missing), and the state of the host's mandoc.db.
HOST_NOISE = re.compile(r"referenced manual not found|mandoc\.db")


def need_mandoc():
    if MANDOC is None:
        pytest.skip("mandoc is not installed (contrib/install-deps.sh "
                    "installs it)")


def need_conf5():
    assert os.path.isfile(CONF5), f"{CONF5} is missing: run make"


def render(path):
    """The page as text (mandoc -T ascii, overstrikes removed)."""
    need_mandoc()
    r = subprocess.run([MANDOC, "-T", "ascii", path], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return re.sub(r".\x08", "", r.stdout)


# -- lint --------------------------------------------------------------------

def test_mandoc_lint():
    """Clean at mandoc's strictest level (style) but for HOST_NOISE; at
    warning level and above, clean without exception."""
    need_mandoc()
    need_conf5()
    r = subprocess.run([MANDOC, "-T", "lint", "-W", "warning"] + PAGES,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", \
        r.stdout + r.stderr
    r = subprocess.run([MANDOC, "-T", "lint", "-W", "style"] + PAGES,
                       capture_output=True, text=True, timeout=60)
    left = [l for l in (r.stdout + r.stderr).splitlines()
            if not HOST_NOISE.search(l)]
    assert left == [], "\n".join(left)


def test_groff_lint():
    """What man-db renders with: groff with every warning, no output."""
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    need_conf5()
    for page in PAGES:
        r = subprocess.run([groff, "-ww", "-mandoc", "-z", "-Tutf8", page],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout + r.stderr == "", \
            f"{page}: {r.stdout}{r.stderr}"


# -- postern.conf(5) against the table ---------------------------------------

# A default may be written as adjacent literals ("a:" "b"), joined by C.
ROW = re.compile(r'''\{\s*"([^"]+)",\s*K_(\w+),\s*([^,]+?),\s*
                     (NULL|"(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*),\s*
                     (-?\d+)(?:LL)?,\s*(-?\d+)(?:LL)?,\s*
                     (NULL|"(?:[^"\\]|\\.)*")''', re.X)


def table_rows():
    """[(name, type, flags, default or None, min, max, choices or None)]
    from the keys[] table in config/config.c."""
    with open(os.path.join(ROOT, "config", "config.c")) as f:
        src = f.read()
    m = re.search(r"static const struct config_key keys\[\] = \{\n(.*?)\n\};",
                  src, re.S)
    assert m, "the keys[] table is not in config/config.c"
    body = m.group(1)
    rows = []
    for r in ROW.finditer(body):
        name, typ, flags, dflt, lo, hi, choices = r.groups()
        unq = (lambda s: None if s == "NULL" else
               re.sub(r'"\s*"', "", s)[1:-1])
        rows.append((name, typ, flags, unq(dflt), int(lo), int(hi),
                     unq(choices)))
    # every row was understood: one per entry that opens with a name
    assert len(rows) == len(re.findall(r'(?m)^\s*\{ "', body)), rows
    assert len(rows) > 50, rows
    return rows


def duration(s):
    """As config_format_duration writes it: the largest exact unit."""
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s != 0 and s % n == 0:
            return f"{s // n}{unit}"
    return f"{s}s"


def as_written(typ, value):
    """A default as a file writes it."""
    if typ == "STRINGS":
        return "[ " + ", ".join(f'"{v}"' for v in value.split(" ")) + " ]"
    if typ in ("STRING", "ENUM") or (typ == "DURATION" and
                                     not value.isdigit()):
        return f'"{value}"'
    return value


def unroff(s):
    return (s.replace("\\(dq", '"').replace("\\(oq", "'")
            .replace("\\(cq", "'").replace("\\&", "").replace("\\:", "")
            .replace("\\e", "\\"))


def entries():
    """{name: the entry's text, macros taken out} of postern.conf.5, and
    the names in page order."""
    need_conf5()
    with open(CONF5) as f:
        lines = f.read().split("\n")
    out, order, cur = {}, [], None
    for line in lines:
        m = re.match(r"\.It Ic (\S+)$", line)
        if m:
            cur = m.group(1)
            assert cur not in out, f"{cur}: two entries"
            out[cur], order = [], order + [cur]
            continue
        if re.match(r"\.(Ss|Sh|El|Bl)\b", line):
            cur = None
            continue
        if cur is None:
            continue
        m = re.match(r'\.Ql "(.*)"(?: (\S))?$', line)
        if m:
            out[cur].append(unroff(m.group(1)) + (m.group(2) or ""))
        elif line.startswith("."):
            out[cur].append(unroff(re.sub(r"^\.\w+ ?", "", line)))
        else:
            out[cur].append(unroff(line))
    return {k: re.sub(r"\s+", " ", " ".join(v)) for k, v in out.items()}, \
        order


def test_every_setting_in_postern_conf_5():
    rows = table_rows()
    text, order = entries()
    assert sorted(text) == sorted(r[0] for r in rows), \
        set(text) ^ {r[0] for r in rows}
    assert len(order) == len(rows)
    for name, typ, flags, dflt, lo, hi, choices in rows:
        e = text[name]
        want = []
        if typ == "INT":
            want.append(f"An integer from {lo} to {hi}.")
        elif typ == "DURATION":
            want.append(f"A duration from {duration(lo)} to "
                        f"{duration(hi)}.")
        elif typ == "ENUM":
            want += choices.split("|")
            want.append("One of")
        elif typ == "BOOL":
            want.append("A boolean")
        elif typ == "STRING":
            want.append("A string.")
        elif typ == "STRINGS":
            want.append("An array of strings")
        elif typ == "GROUP":
            want.append(f"A group, {name.rsplit('.', 1)[-1]} = {{ ... }}.")
        elif typ == "LIST":
            want.append(f"{name.rsplit('.', 1)[-1]} = ( {{ ... }}, ... ).")
        if "NONEMPTY" in flags:
            want.append("at least one")
        if "REQ" in flags:
            want.append("Required")
        elif dflt is not None:
            want.append(f"Default: {as_written(typ, dflt)}.")
        elif typ not in ("GROUP", "LIST"):
            assert ("No fixed default" in e) != ("Not set by default" in e), \
                f"{name}: {e}"
        if "REQ" not in flags:
            assert "Required" not in e, f"{name}: {e}"
        for w in want:
            assert w in e, f"{name}: {w!r} not in: {e}"


def test_conf5_groups_and_order():
    """A subsection "Top level", then one per group or list, opening with
    the group's own entry; the settings that are not groups in the
    table's order within each."""
    rows = table_rows()
    names = [r[0] for r in rows]
    groups = [r[0] for r in rows if r[1] in ("GROUP", "LIST")]
    _, order = entries()
    with open(CONF5) as f:
        src = f.read()
    heads = re.findall(r"(?m)^\.Ss (.*)$", src)
    assert heads[0] == "Top level" and sorted(heads[1:]) == sorted(groups)
    for g in groups:
        assert re.search(rf"(?m)^\.Ss {re.escape(g)}\n\.Bl -tag -width Ds\n"
                         rf"\.It Ic {re.escape(g)}$", src), g
    for g in [None] + groups:
        members = [n for n in order if n not in groups and
                   (n.rsplit(".", 1)[0] if "." in n else None) == g]
        assert members == [n for n in names if n in members], g


# -- postern(8) against the usage --------------------------------------------

def usage(*args):
    r = subprocess.run([POSTERN, *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r
    assert r.stderr.startswith("usage: "), r.stderr
    return r.stderr


def synopsis(page_text):
    """The SYNOPSIS of a rendered page: one string per command (its
    continuation lines joined)."""
    m = re.search(r"\nSYNOPSIS\n(.*?)\n\n[A-Z]", page_text, re.S)
    assert m, page_text[:500]
    out = []
    for line in m.group(1).split("\n"):
        if re.match(r"\s{8,}\S", line) and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line.strip())
    return out


def usage_commands(text):
    """[(first words)] of the usage lines: ("serve",), ("users", "add"),
    ("keys", "generate"), ("mailq",) ..."""
    found = []
    for line in text.split("\n"):
        m = re.match(r"(?:usage:)?\s*(postern|mailq|newaliases)\b"
                     r"(?: +([a-z][a-z|-]*))?(?: +([a-z][a-z|]*))?\b", line)
        if not m:
            continue
        if m.group(1) != "postern":
            found.append((m.group(1),))
            continue
        cmd, sub = m.group(2), m.group(3)
        if cmd is None:
            continue
        for c in cmd.split("|"):
            if sub is None:
                found.append((c,))
            for s in (sub or "").split("|"):
                if s:
                    found.append((c, s))
    return found


def options(text):
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def test_postern_8_names_every_subcommand():
    main = usage()
    keys = usage("keys")
    cmds = usage_commands(main) + usage_commands(keys)
    # the parse itself: what we know is there
    for c in [("serve",), ("check-config",), ("users", "add"),
              ("queue", "show"), ("keys", "rotate"), ("sendmail",),
              ("mailq",), ("newaliases",)]:
        assert c in cmds, (c, cmds)
    syn = synopsis(render(os.path.join(MAN, "postern.8")))
    for c in cmds:
        if c[0] in ("mailq", "newaliases"):
            assert any(s.split()[0] == c[0] for s in syn), (c, syn)
            continue
        assert any(s.startswith(f"postern {c[0]}") and
                   (len(c) == 1 or c[1] in s.split()) for s in syn), \
            (c, syn)


def test_postern_8_names_every_option():
    page = render(os.path.join(MAN, "postern.8"))
    words = options(page)
    missing = sorted(o for o in options(usage()) | options(usage("keys"))
                     if o not in words)
    assert missing == [], missing


@pytest.mark.parametrize("name", ["sendmail", "mailq", "newaliases"])
def test_mta_names_point_to_postern_8(name):
    page = render(os.path.join(MAN, f"{name}.8"))
    assert page.startswith(name.upper() + "(8)"), page[:80]
    assert "postern(8)" in page, page
    # and postern(8) covers the name
    assert re.search(rf"(?m)^     {name}\b",
                     render(os.path.join(MAN, "postern.8")))
