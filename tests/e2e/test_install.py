"""
The install kit: `make install` and `make uninstall` (the Makefile's
"Installation" section) and the systemd unit they make from
contrib/postern.service.in.

Every layout is installed into its own temporary DESTDIR, by the real
Makefile in the source tree, with MAKEFLAGS and the layout variables
removed from the environment (this file may run under `make check`). The
tree under DESTDIR must be exactly the expected files, with their modes,
and their directories; the host's own copies of those paths must not have
been created or changed, and the commands `make -n install` would run
name no absolute path outside DESTDIR.

systemd-analyze verify: it checks that ExecStart's binary exists and is
executable. Run on the installed unit file with the host as root, it
would look for /usr/local/sbin/postern on the host, which a DESTDIR
install does not create; installing with DESTDIR=/ into a scratch PREFIX
would verify a unit with other paths than the real one. So verify runs
with --root=VROOT, where VROOT is a copy of the DESTDIR tree plus a copy
of the host's /usr/lib/systemd/system (the targets the unit names and
the default dependencies, such as sysinit.target): the unit that was
installed is checked with its own paths, resolved inside that root. A
second run with the binary removed from VROOT must fail, which shows that
verify really looked at the installed binary. verify reports unknown
settings as warnings with exit status 0, so its output must be empty
too. systemd-analyze needs no running systemd (containers have none);
contrib/install-deps.sh installs it (Debian package systemd).

The capability tests run the daemon as root the way the unit starts it:
under setpriv(1) with the unit's CapabilityBoundingSet as bounding set
and no-new-privs, a state_dir that already belongs to the daemon's user
(mode 0700, as after a first run), on a port below 1024. It must start,
recover the queue (remove a stale tmp/ file), become the user and accept
mail; without any one of the capabilities it must refuse to start.
"""
import filecmp
import os
import re
import shutil
import socket
import stat
import subprocess

import pytest

from conftest import POSTERN, ROOT, Listener, _LIVE
from helpers import assert_queued, make_message, smtps, wait_until

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
SYSTEMCTL = shutil.which("systemctl") or "/usr/bin/systemctl"
HOST_UNITS = "/usr/lib/systemd/system"
TEMPLATE = os.path.join(ROOT, "contrib", "postern.service.in")

# (PREFIX, SYSCONFDIR or None for the Makefile's default $(PREFIX)/etc)
LAYOUTS = [
    ("/usr/local", None),        # the default
    ("/usr/local", "/etc"),      # what INSTALL uses
    ("/usr", "/etc"),            # the Debian package layout
]
LAYOUT_IDS = ["default", "install-doc", "debian"]

DOCS = ["README.md", "INSTALL"]
EXAMPLES = ["contrib/trac-smtp.ini", "contrib/trac-sendmail.ini",
            "contrib/mail-clients.md"]


def make_env():
    env = dict(os.environ)
    for var in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                "DESTDIR", "PREFIX", "SYSCONFDIR"):
        env.pop(var, None)
    return env


def make(target, destdir, prefix, sysconfdir, *flags):
    cmd = ["make", *flags, target, f"DESTDIR={destdir}", f"PREFIX={prefix}"]
    if sysconfdir is not None:
        cmd.append(f"SYSCONFDIR={sysconfdir}")
    return subprocess.run(cmd, cwd=ROOT, env=make_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=600)


def expected_files(prefix, sysconfdir):
    """{path under DESTDIR: (mode, source file or None)}"""
    etc = sysconfdir or prefix + "/etc"
    doc = prefix + "/share/doc/postern"
    files = {
        prefix + "/sbin/postern": (0o755, os.path.join(ROOT, "postern")),
        etc + "/postern/postern.conf.example":
            (0o644, os.path.join(ROOT, "config", "postern.conf.example")),
        prefix + "/lib/systemd/system/postern.service": (0o644, None),
    }
    for f in DOCS:
        files[f"{doc}/{f}"] = (0o644, os.path.join(ROOT, f))
    # the man pages: postern(8) as written, postern.conf(5) as make built
    # it (tests/e2e/test_man.py checks what they say)
    files[prefix + "/share/man/man8/postern.8"] = \
        (0o644, os.path.join(ROOT, "man", "postern.8"))
    files[prefix + "/share/man/man5/postern.conf.5"] = \
        (0o644, os.path.join(ROOT, "build", "man", "postern.conf.5"))
    for f in EXAMPLES:
        files[f"{doc}/examples/{os.path.basename(f)}"] = \
            (0o644, os.path.join(ROOT, f))
    return files


def ancestors(paths):
    out = set()
    for p in paths:
        p = os.path.dirname(p)
        while p not in ("/", ""):
            out.add(p)
            p = os.path.dirname(p)
    return out


def tree(destdir):
    """{"/path/inside": "dir" | "file" | "other"} of everything in destdir."""
    out = {}
    for root, dirs, files in os.walk(destdir):
        for n in dirs + files:
            full = os.path.join(root, n)
            rel = "/" + os.path.relpath(full, destdir)
            st = os.lstat(full)
            out[rel] = ("dir" if stat.S_ISDIR(st.st_mode) else
                        "file" if stat.S_ISREG(st.st_mode) else "other")
    return out


def host_state(paths):
    """What the host has at these paths (to see that install did not touch
    them): (inode, mtime, size) or None."""
    out = {}
    for p in paths:
        try:
            st = os.lstat(p)
            out[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            out[p] = None
    return out


def unit_values(text, key):
    return [l.split("=", 1)[1] for l in text.splitlines()
            if l.startswith(key + "=")]


def template_caps():
    with open(TEMPLATE) as f:
        v = unit_values(f.read(), "CapabilityBoundingSet")
    assert len(v) == 1, v
    return v[0].split()


def postern_up_to_date():
    """make -q postern: is ./postern built and current?"""
    return subprocess.run(["make", "-q", "postern"], cwd=ROOT, env=make_env(),
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


@pytest.fixture(params=LAYOUTS, ids=LAYOUT_IDS)
def installed(request, tmp_path):
    """make install into tmp_path/dest; returns (destdir, prefix,
    sysconfdir, make output)."""
    prefix, sysconfdir = request.param
    dest = str(tmp_path / "dest")
    binary = os.path.join(ROOT, "postern")
    current = postern_up_to_date()
    before = os.stat(binary).st_mtime_ns if current else None
    host = host_state(expected_files(prefix, sysconfdir))
    r = make("install", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    if current:
        assert os.stat(binary).st_mtime_ns == before, (
            "make install rebuilt an up-to-date ./postern:\n" + r.stdout)
        assert not re.search(r"(?m)^(cc|gcc|ar) ", r.stdout), r.stdout
    assert host_state(expected_files(prefix, sysconfdir)) == host, (
        "make install with DESTDIR touched the host's own paths")
    return dest, prefix, sysconfdir, r.stdout


def test_install_tree(installed):
    dest, prefix, sysconfdir, _ = installed
    files = expected_files(prefix, sysconfdir)
    want = {p: "file" for p in files}
    want.update({d: "dir" for d in ancestors(files)})
    assert tree(dest) == want
    for path, (mode, source) in files.items():
        st = os.stat(dest + path)
        assert stat.S_IMODE(st.st_mode) == mode, f"{path}: {oct(st.st_mode)}"
        if source is not None:
            assert filecmp.cmp(dest + path, source, shallow=False), path
    assert os.access(dest + prefix + "/sbin/postern", os.X_OK)


def test_unit_paths(installed):
    dest, prefix, sysconfdir, _ = installed
    etc = sysconfdir or prefix + "/etc"
    with open(dest + prefix + "/lib/systemd/system/postern.service") as f:
        unit = f.read()
    with open(TEMPLATE) as f:
        template = f.read()
    assert unit == (template.replace("@SBINDIR@", prefix + "/sbin")
                    .replace("@SYSCONFDIR@", etc)
                    .replace("@DOCDIR@", prefix + "/share/doc/postern"))
    assert not re.search(r"@[A-Z]+@", unit), "placeholder left in the unit"
    assert unit_values(unit, "ExecStart") == [
        f"{prefix}/sbin/postern serve -c {etc}/postern/postern.conf"]
    # the binary and the example config are where the unit says
    binary = unit_values(unit, "ExecStart")[0].split()[0]
    conf = unit_values(unit, "ExecStart")[0].split()[-1]
    assert os.access(dest + binary, os.X_OK)
    assert os.path.isfile(dest + conf + ".example")
    doc = unit_values(unit, "Documentation")
    assert doc == [f"file://{prefix}/share/doc/postern/INSTALL"]
    assert os.path.isfile(dest + doc[0][len("file://"):])
    # what the brief of the unit promises: foreground, reload by SIGHUP
    assert unit_values(unit, "Type") == ["simple"]
    # reload: check the configuration, then SIGHUP, both privileged
    # (the daemon runs as its user; the unit's bounding set lacks
    # CAP_KILL, so an unprivileged kill would get EPERM)
    assert unit_values(unit, "ExecReload") == [
        f"+{binary} check-config -c {conf}", "+/bin/kill -HUP $MAINPID"]
    assert unit_values(unit, "Restart") == ["on-failure"]
    assert unit_values(unit, "ReadWritePaths") == ["/var/lib/postern"]
    assert unit_values(unit, "StateDirectory") == []
    assert unit_values(unit, "User") == []


def test_make_install_writes_only_under_destdir(installed):
    """Every absolute path in the commands of make -n install/uninstall
    is under DESTDIR."""
    dest, prefix, sysconfdir, _ = installed
    for target in ("install", "uninstall"):
        r = make(target, dest, prefix, sysconfdir, "-n")
        assert r.returncode == 0, r.stdout
        text = r.stdout.replace("\\\n", " ")
        lines = [l for l in text.splitlines()
                 if re.match(r"\s*(install|sed|chmod|rm|for) ", l)]
        assert lines, r.stdout
        for line in lines:
            # sed's substitutions name the installed paths, not files
            line = re.sub(r"'s\|[^']*'", "", line)
            for word in re.findall(r"""(?:^|[\s"'>])(/[^\s"';]*)""", line):
                assert word.startswith(dest + "/"), (
                    f"make {target}: {word} is outside DESTDIR:\n{line}")
    # make install never installs a sendmail, mailq or newaliases (make
    # install-sendmail does)
    assert not any(p.endswith(("/sendmail", "/mailq", "/newaliases"))
                   for p in tree(dest)), tree(dest)


def verify_root(dest, tmp_path):
    """A root for systemd-analyze --root: the installed tree, the host's
    system units and its /bin/kill."""
    if not os.access(SYSTEMD_ANALYZE, os.X_OK) or \
            not os.path.isdir(HOST_UNITS):
        pytest.skip("systemd-analyze is not installed "
                    "(contrib/install-deps.sh installs package systemd)")
    vroot = str(tmp_path / "vroot")
    shutil.copytree(dest, vroot, symlinks=True)
    os.makedirs(vroot + "/usr/lib/systemd", exist_ok=True)
    shutil.copytree(HOST_UNITS, vroot + HOST_UNITS, symlinks=True,
                    dirs_exist_ok=True)
    # ExecReload's /bin/kill is the host's, not ours
    os.makedirs(vroot + "/bin", exist_ok=True)
    shutil.copy2("/bin/kill", vroot + "/bin/kill")
    return vroot


def analyze_verify(vroot, unit):
    return subprocess.run([SYSTEMD_ANALYZE, "verify", f"--root={vroot}",
                           unit], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


def test_unit_verifies(installed, tmp_path):
    dest, prefix, sysconfdir, _ = installed
    vroot = verify_root(dest, tmp_path)
    unit = prefix + "/lib/systemd/system/postern.service"
    r = analyze_verify(vroot, unit)
    assert r.returncode == 0 and r.stdout == "", r.stdout
    # verify checked the installed binary, inside vroot
    os.unlink(vroot + prefix + "/sbin/postern")
    r = analyze_verify(vroot, unit)
    assert r.returncode != 0, r.stdout
    assert f"{prefix}/sbin/postern is not executable" in r.stdout, r.stdout


def test_unit_enables(installed, tmp_path):
    """[Install]: systemctl --root enable makes the multi-user.target
    link (offline: no running systemd needed)."""
    dest, prefix, sysconfdir, _ = installed
    vroot = verify_root(dest, tmp_path)
    if not os.access(SYSTEMCTL, os.X_OK):
        pytest.skip("systemctl is not installed")
    r = subprocess.run([SYSTEMCTL, f"--root={vroot}", "enable",
                        "postern.service"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    link = vroot + "/etc/systemd/system/multi-user.target.wants/postern.service"
    assert os.readlink(link) == prefix + "/lib/systemd/system/postern.service"


def test_uninstall_removes_everything(installed):
    dest, prefix, sysconfdir, _ = installed
    files = expected_files(prefix, sysconfdir)
    host = host_state(files)
    r = make("uninstall", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    left = tree(dest)
    assert {p for p, kind in left.items() if kind != "dir"} == set()
    etc = sysconfdir or prefix + "/etc"
    # its own directories are gone, the shared ones stay
    for gone in (prefix + "/share/doc/postern", etc + "/postern"):
        assert gone not in left, gone
    assert set(left) <= ancestors(files)
    assert host_state(files) == host
    # again: nothing to do, no error
    r = make("uninstall", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout


def test_install_sendmail(installed):
    """make install-sendmail (opt-in) links PREFIX/sbin/sendmail, mailq
    and newaliases to postern, which then behaves as each, and installs
    their man pages; it refuses to replace one that is not ours (linking
    none); make uninstall removes the links and the pages."""
    dest, prefix, sysconfdir, _ = installed
    link = dest + prefix + "/sbin/sendmail"
    links = [dest + prefix + "/sbin/" + n
             for n in ("sendmail", "mailq", "newaliases")]
    pages = {dest + prefix + f"/share/man/man8/{n}.8":
             os.path.join(ROOT, "man", f"{n}.8")
             for n in ("sendmail", "mailq", "newaliases")}
    for l in links + list(pages):
        assert not os.path.lexists(l)       # not by make install
    r = make("install-sendmail", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    for l in links:
        assert os.readlink(l) == "postern", l
    for page, source in pages.items():
        assert stat.S_IMODE(os.stat(page).st_mode) == 0o644, page
        assert filecmp.cmp(page, source, shallow=False), page
    r = subprocess.run([link, "-bs"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 64 and r.stderr.startswith("sendmail: "), r
    r = subprocess.run([links[2]], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "no aliases file" in r.stdout, r
    r = subprocess.run([links[1], "-x"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "usage: mailq" in r.stderr, r
    r = make("install-sendmail", dest, prefix, sysconfdir)   # again: fine
    assert r.returncode == 0, r.stdout
    r = make("uninstall", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    for l in links + list(pages):
        assert not os.path.lexists(l), l
    # another MTA's sendmail.8: refused, and uninstall leaves it
    page = dest + prefix + "/share/man/man8/sendmail.8"
    r = make("install", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    with open(page, "w") as f:
        f.write(".TH SENDMAIL 8\n")
    r = make("install-sendmail", dest, prefix, sysconfdir)
    assert r.returncode != 0 and page + " exists and is not Postern's" \
        in r.stdout, r.stdout
    assert not os.path.lexists(link)
    r = make("uninstall", dest, prefix, sysconfdir)
    with open(page) as f:
        assert f.read() == ".TH SENDMAIL 8\n"
    os.unlink(page)
    # another MTA's mailq: nothing is linked, and uninstall leaves it
    os.makedirs(os.path.dirname(link), exist_ok=True)
    with open(links[1], "w") as f:
        f.write("#!/bin/sh\n")
    r = make("install", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    r = make("install-sendmail", dest, prefix, sysconfdir)
    assert r.returncode != 0 and links[1] + " exists and is not Postern's" \
        in r.stdout, r.stdout
    assert not os.path.lexists(link) and not os.path.lexists(links[2])
    r = make("uninstall", dest, prefix, sysconfdir)
    assert os.path.isfile(links[1]) and not os.path.islink(links[1])
    os.unlink(links[1])
    r = make("install", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    # someone else's sendmail is left alone
    os.makedirs(os.path.dirname(link), exist_ok=True)
    with open(link, "w") as f:
        f.write("#!/bin/sh\n")
    r = make("install-sendmail", dest, prefix, sysconfdir)
    assert r.returncode != 0 and "is not Postern's" in r.stdout, r.stdout
    r = make("uninstall", dest, prefix, sysconfdir)
    assert os.path.isfile(link) and not os.path.islink(link)
    # it links to an installed postern only (and installs nothing itself)
    os.unlink(link)
    r = make("install-sendmail", dest, prefix, sysconfdir)
    assert r.returncode != 0 and "make install first" in r.stdout, r.stdout
    assert not os.path.lexists(link)


def test_existing_config_kept(installed):
    """make install never writes postern.conf; make uninstall leaves it,
    and the directory holding it."""
    dest, prefix, sysconfdir, _ = installed
    etc = dest + (sysconfdir or prefix + "/etc") + "/postern"
    conf = etc + "/postern.conf"
    with open(conf, "w") as f:
        f.write('hostname = "mine.example.org";\n')
    os.chmod(conf, 0o640)
    before = os.stat(conf)
    r = make("install", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    r = make("uninstall", dest, prefix, sysconfdir)
    assert r.returncode == 0, r.stdout
    after = os.stat(conf)
    assert (after.st_ino, after.st_mtime_ns, after.st_mode) == \
        (before.st_ino, before.st_mtime_ns, before.st_mode)
    with open(conf) as f:
        assert f.read() == 'hostname = "mine.example.org";\n'
    assert sorted(os.listdir(etc)) == ["postern.conf"]
    assert [p for p, k in tree(dest).items() if k != "dir"] == \
        [conf[len(dest):]]


# -- the unit's capabilities -------------------------------------------------

CAPS = template_caps()


def free_privileged_port():
    for port in range(600, 1024):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024 on 127.0.0.1")


def as_service(postern_factory, workdir):
    """A daemon set up as the unit runs it, not started: user = nobody,
    state_dir (and everything in it) owned by nobody, mode 0700, a stale
    file in tmp/, the sasldb given to nobody, one implicit-TLS listener on
    a port below 1024."""
    import pwd
    if os.geteuid() != 0:
        pytest.skip("needs root: the unit starts the daemon as root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    os.chmod(workdir, 0o755)
    d = postern_factory(start=False, extra='user = "nobody";', listeners=[
        Listener("smtps", "implicit", port=free_privileged_port())])
    os.chmod(d.dir, 0o755)
    for sub in ("tmp", "queue", "corrupt"):
        os.makedirs(os.path.join(d.state_dir, sub), mode=0o700,
                    exist_ok=True)
    with open(os.path.join(d.tmp_dir, "STALE.msg"), "w") as f:
        f.write("left by a crash\n")
    for root, dirs, files in os.walk(d.state_dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), nobody.pw_uid, nobody.pw_gid)
    os.chown(d.state_dir, nobody.pw_uid, nobody.pw_gid)
    os.chmod(d.state_dir, 0o700)
    os.chown(d.sasldb, nobody.pw_uid, nobody.pw_gid)
    return d, nobody


def setpriv_cmd(d, caps):
    names = ",".join("+" + c.lower()[len("cap_"):] for c in caps)
    return ["setpriv", f"--bounding-set=-all{',' if names else ''}{names}",
            "--inh-caps=-all", "--no-new-privs",
            POSTERN, "serve", "-c", d.conf]


def test_unit_capabilities_suffice(postern_factory, workdir, ssl_ctx):
    d, nobody = as_service(postern_factory, workdir)
    d.log_file = open(d.log_path, "ab")
    d.proc = subprocess.Popen(setpriv_cmd(d, CAPS), cwd=d.dir,
                              stdin=subprocess.DEVNULL, stdout=d.log_file,
                              stderr=d.log_file)
    _LIVE.add(d.proc)
    d.starts += 1
    d.wait_ready()
    wait_until(lambda: "ready hostname=" in d.log(), "the daemon ready", d)
    log = d.log()
    assert "running as user=nobody" in log, log
    assert "removed stale tmp/STALE.msg" in log, log
    assert d.tmp_files() == []
    with open(f"/proc/{d.proc.pid}/status") as f:
        status = dict(l.rstrip("\n").split(":\t", 1) for l in f)
    assert set(status["Uid"].split()) == {str(nobody.pw_uid)}, status
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    c = smtps(d, ssl_ctx, login="alice@example.test")
    msg = make_message("alice@example.test", ["bob@example.com"])
    qid = c.send_message("alice@example.test", ["bob@example.com"], msg)
    c.close()
    assert_queued(d, qid, "alice@example.test", ["bob@example.com"],
                  "alice@example.test", msg)
    for name in (qid,):
        assert os.stat(os.path.join(d.queue_dir, name)).st_uid == \
            nobody.pw_uid


@pytest.mark.parametrize("cap", CAPS)
def test_unit_capability_needed(postern_factory, workdir, cap):
    """Without any one capability of the unit's set, start-up as root
    fails: none is there for nothing."""
    d, _ = as_service(postern_factory, workdir)
    with open(d.log_path, "ab") as log:
        p = subprocess.Popen(setpriv_cmd(d, [c for c in CAPS if c != cap]),
                             cwd=d.dir, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log)
        _LIVE.add(p)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        _LIVE.discard(p)
    assert rc not in (None, 0), (
        f"the daemon started without {cap}; is it still needed?\n{d.log()}")
    assert "fatal" in d.log() or "Permission denied" in d.log(), d.log()
