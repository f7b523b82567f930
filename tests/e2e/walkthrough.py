"""
INSTALL, followed: the commands of INSTALL run as written, in its order,
as root on a host of their own, the way a new admin would run them.

Run by test_walkthrough.py inside new mount, network and PID namespaces
(unshare(1)), never directly: it mounts overlays on /etc, /usr/local and
/var/lib and a tmpfs on /run, so `make install`, `adduser`, the state
directory and the local socket land in WORK (argv[1]) and vanish with the
namespaces; the host's files are not touched. The network namespace has
only its loopback: the listeners bind the real ports 587 and 465, and
nothing can leave the machine.

What INSTALL leaves to the admin, this script does in the admin's place:
the edits of postern.conf (certbot paths, the dkim line `keys generate`
prints, relay.port 2525 and a 1 s retry so that a deferred message goes
out within the test, DNSSEC validation off for its unsigned test DNS, a
grant added before the reload), a self-signed
certificate where certbot would put one (made trusted system-wide in the
overlay, so swaks --tls-verify checks it for real), DNS (dnsmasq on
127.0.0.1:53, /etc/resolv.conf pointing at it, serving the DKIM records
`keys dns` printed and an MX for example.net) and the recipient's mail
server (an aiosmtpd sink on 127.0.0.1:2525). systemd is not PID 1 here:
its commands become what the installed unit does (ExecStart in the
background, ExecReload's kill -HUP, SIGTERM for stop).

Every INSTALL command it runs goes through install_cmd(), which fails
unless the command is in INSTALL word for word (continuation lines
joined). The delivered messages are checked with dkimpy against the
records in DNS. Prints a transcript; exits 0 only if every step passed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from email import message_from_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WORK = os.path.abspath(sys.argv[1]) if __name__ == "__main__" else None
CONF = "/etc/postern/postern.conf"
LOG = os.path.join(WORK, "journal.log") if WORK else None
PASSWORD = "walk-through-Pass-1"
SINK_PORT = 2525
CERT_DIR = "/etc/letsencrypt/live/relay.example.org"
ENV = dict(os.environ,
           PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                "/sbin:/bin",
           PASSWORD=PASSWORD, LC_ALL="C")
for _v in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR",
           "PREFIX", "SYSCONFDIR"):
    ENV.pop(_v, None)


def install_text():
    """INSTALL's indented lines, continuation lines joined, comments
    after them dropped, one string of single-spaced words per line."""
    with open(os.path.join(ROOT, "INSTALL")) as f:
        lines = f.read().split("\n")
    cmds, cur = [], ""
    for line in lines:
        if not line.startswith("    ") and not cur:
            continue
        text = line.strip()
        cur = (cur + " " + text).strip() if cur else text
        if text.endswith("\\"):
            cur = cur[:-1].strip()
            continue
        if text.endswith("|"):
            continue
        cur = re.sub(r"\s+#.*$", "", cur)    # a comment after a command
        cmds.append(" ".join(cur.split()))
        cur = ""
    return cmds


INSTALL_CMDS = install_text()
RAN = []


def step(title):
    print(f"\n== {title}", flush=True)


def run(cmd, input=None, check=True, cwd=ROOT, timeout=120):
    """Run cmd with bash as root; print it and what it printed."""
    print(f"$ {cmd}", flush=True)
    p = subprocess.run(["bash", "-c", cmd], input=input, cwd=cwd, env=ENV,
                       text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout
    if len(out) > 3000:
        out = out[:1500] + "\n[...]\n" + out[-1500:]
    if out:
        print(out.rstrip("\n"), flush=True)
    if check and p.returncode != 0:
        fail(f"exit status {p.returncode}: {cmd}")
    return p


def install_cmd(cmd, ID=None, **kw):
    """Run a command that INSTALL gives, word for word (with the word ID
    replaced by the queue id ID, if given)."""
    norm = " ".join(cmd.split())
    if norm not in INSTALL_CMDS:
        fail(f"not in INSTALL as written: {cmd}")
    RAN.append(norm)
    if ID is not None:
        cmd = re.sub(r"\bID\b", ID, cmd)
    return run(cmd, **kw)


def fail(why):
    print(f"\nWALKTHROUGH FAILED: {why}", flush=True)
    if os.path.exists(LOG):
        print("--- the daemon's log (last 60 lines) ---")
        with open(LOG) as f:
            print("".join(f.readlines()[-60:]))
    raise SystemExit(1)


def expect(cond, why):
    if not cond:
        fail(why)


def wait_until(pred, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    fail(f"timed out waiting for {what}")


def journal():
    with open(LOG, errors="replace") as f:
        return f.read()


# ---------------------------------------------------------------- host

def make_host():
    """The namespaces' view: overlays, loopback, names, a trusted CA."""
    for d in ("/etc", "/usr/local", "/var/lib"):
        tag = d.strip("/").replace("/", "-")
        up, wk = f"{WORK}/ov/{tag}", f"{WORK}/ov/{tag}.work"
        os.makedirs(up)
        os.makedirs(wk)
        run(f"mount -t overlay overlay -o lowerdir={d},upperdir={up},"
            f"workdir={wk} {d}")
    run("mount -t tmpfs -o mode=0755 tmpfs /run")
    run("ip link set lo up")
    with open("/etc/hosts", "a") as f:
        f.write("127.0.0.1 relay.example.org mx.example.net\n")
    # resolv.conf may be a symlink into /run: replace it
    if os.path.lexists("/etc/resolv.conf"):
        os.unlink("/etc/resolv.conf")
    with open("/etc/resolv.conf", "w") as f:
        f.write("nameserver 127.0.0.1\n")


def certbot_stand_in(n):
    """What certbot leaves after issuing (n 1) or renewing (2, ...): the
    files in archive/, links to them in live/, both folders 0700 and the
    key 0600, root's. The certificate comes from a CA made here, trusted
    system-wide in the overlay (so swaks --tls-verify checks it)."""
    ca = f"{WORK}/ca"
    if n == 1:
        run(f"openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
            f"-subj '/CN=Walkthrough CA' -keyout {ca}.key -out {ca}.pem "
            f"2>/dev/null")
        os.makedirs("/usr/local/share/ca-certificates", exist_ok=True)
        shutil.copy(f"{ca}.pem",
                    "/usr/local/share/ca-certificates/walkthrough.crt")
        run("update-ca-certificates >/dev/null 2>&1")
    le = "/etc/letsencrypt"
    arch = f"{le}/archive/relay.example.org"
    os.makedirs(arch, exist_ok=True)
    os.makedirs(CERT_DIR, exist_ok=True)
    run(f"openssl req -new -newkey rsa:2048 -nodes -subj /CN=relay.example.org "
        f"-addext subjectAltName=DNS:relay.example.org "
        f"-keyout {arch}/privkey{n}.pem 2>/dev/null | "
        f"openssl x509 -req -CA {ca}.pem -CAkey {ca}.key -days 2 "
        f"-copy_extensions copy -out {arch}/cert{n}.pem 2>/dev/null && "
        f"cat {arch}/cert{n}.pem {ca}.pem > {arch}/fullchain{n}.pem && "
        f"chmod 0600 {arch}/privkey{n}.pem && "
        f"chmod 0700 {le}/live {le}/archive")
    for f in ("privkey", "fullchain"):
        link = f"{CERT_DIR}/{f}.pem"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(f"../../archive/relay.example.org/{f}{n}.pem", link)
    with open(f"{arch}/cert{n}.pem") as f:
        return f.read()


def served_certificate():
    """The certificate the implicit-TLS listener presents, PEM."""
    import socket
    import ssl
    ctx = ssl.create_default_context()
    with socket.create_connection(("relay.example.org", 465), 10) as raw:
        with ctx.wrap_socket(raw, server_hostname="relay.example.org") as t:
            return ssl.DER_cert_to_PEM_cert(t.getpeercert(True))


class Sink:
    """The recipients' mail server: every message it is given, kept."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from,
                                      list(envelope.rcpt_tos),
                                      envelope.original_content))
                return "250 2.0.0 Ok"
        self.controller = Controller(Handler(), hostname="127.0.0.1",
                                     port=SINK_PORT)

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()


class Dns:
    """dnsmasq on 127.0.0.1:53: an MX for example.net and the TXT
    records given (name -> [strings])."""

    def __init__(self, txt):
        args = ["dnsmasq", "--keep-in-foreground", "--no-resolv",
                "--no-hosts", "--bind-interfaces",
                "--listen-address=127.0.0.1", "--port=53",
                "--pid-file=", "--user=root", "--log-facility=-",
                "--mx-host=example.net,mx.example.net,10",
                "--host-record=mx.example.net,127.0.0.1",
                "--host-record=relay.example.org,127.0.0.1"]
        for name, strings in txt.items():
            # dnsmasq keeps quotes as text: the strings go bare
            args.append("--txt-record=" + name + "," + ",".join(strings))
        self.p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        expect(self.p.poll() is None, "dnsmasq did not start")

    def stop(self):
        self.p.terminate()
        self.p.wait()


def zone_txt(zone):
    """name -> [strings] from `postern keys dns` zone-file lines (a record
    may span lines inside parentheses)."""
    out, name, strings, open_ = {}, None, [], False
    for line in zone.split("\n"):
        line = line.split(";")[0] if not open_ and '"' not in line else line
        m = re.match(r'^(\S+)\s+(?:\d+\s+)?IN\s+TXT\s+(.*)$', line)
        if m:
            name, rest = m.group(1).rstrip("."), m.group(2)
            strings = re.findall(r'"((?:[^"\\]|\\.)*)"', rest)
            open_ = "(" in rest and ")" not in rest
            if not open_:
                out[name] = strings
            continue
        if open_:
            strings += re.findall(r'"((?:[^"\\]|\\.)*)"', line)
            if ")" in line:
                open_ = False
                out[name] = strings
    return out


# ---------------------------------------------------------------- daemon

class Daemon:
    """The unit's ExecStart, in the background; stderr is the journal."""

    def __init__(self):
        unit = "/usr/local/lib/systemd/system/postern.service"
        with open(unit) as f:
            text = f.read()
        self.exec_start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
        # systemd runs them in order and stops at one that fails; "+"
        # (full privileges) is what root here has anyway
        self.exec_reload = [c.lstrip("+") for c in
                            re.findall(r"^ExecReload=(.*)$", text, re.M)]
        self.p = None

    def start(self):
        step(f"start (the unit's ExecStart): {self.exec_start}")
        mark = len(journal()) if os.path.exists(LOG) else 0
        self.log = open(LOG, "a")
        self.p = subprocess.Popen(self.exec_start.split(), env=ENV,
                                  stdout=self.log, stderr=self.log)
        wait_until(lambda: "ready hostname=" in journal()[mark:] or
                   self.p.poll() is not None, "ready")
        expect(self.p.poll() is None, "the daemon exited at start")
        print(journal()[mark:].rstrip("\n"))

    def reload(self):
        """systemctl reload: True if every ExecReload command passed (what
        they or the daemon said is in self.said)."""
        step("reload (the unit's ExecReload lines)")
        mark = len(journal())
        for cmd in self.exec_reload:
            cmd = cmd.replace("$MAINPID", str(self.p.pid))
            p = run(cmd, check=False)
            if p.returncode != 0:
                self.said = p.stdout
                print("(so systemctl reload fails, and says this)")
                return False
        wait_until(lambda: re.search(r"reloaded|refused", journal()[mark:]),
                   "the reload's line")
        self.said = journal()[mark:]
        print(self.said.rstrip("\n"))
        return True

    def stop(self):
        step("stop (the unit's KillSignal=SIGTERM)")
        mark = len(journal())
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=45)
        self.log.close()
        print(journal()[mark:].rstrip("\n"))
        expect(rc == 0, f"exit status {rc} after SIGTERM")
        expect("stopped" in journal()[mark:], "no 'stopped' line")

    def uid(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            return re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)",
                             f.read(), re.M).groups()


def edit_conf(fn):
    with open(CONF) as f:
        text = f.read()
    new = fn(text)
    expect(new != text, "a postern.conf edit changed nothing")
    with open(CONF, "w") as f:
        f.write(new)


def sub1(pattern, repl, text):
    new, n = re.subn(pattern, repl, text, count=1, flags=re.S | re.M)
    expect(n == 1, f"postern.conf: no match for {pattern!r}")
    return new


def dkim_check(raw):
    """dkimpy, every signature, keys from DNS (dnsmasq)."""
    import dkim
    n = len(re.findall(rb"^DKIM-Signature:", raw, re.M | re.I))
    expect(n == 2, f"{n} DKIM-Signature fields, want 2")
    for i in range(n):
        expect(dkim.DKIM(raw).verify(idx=i),
               f"dkimpy: signature {i} does not verify against DNS")
    print(f"dkimpy: {n} signatures verify against the records in DNS")


SWAKS = ("swaks --server relay.example.org:587 --tls --tls-verify "
         "--protect-prompt --auth PLAIN --auth-user app@example.org "
         "--from app@example.org --to you@example.net")


def main():
    os.umask(0o022)
    step("the host (namespaces, overlays)")
    make_host()
    sink = Sink()
    dns = None
    daemon = None
    try:
        step("2. Install, and create the service user")
        install_cmd("make install SYSCONFDIR=/etc")
        install_cmd("adduser --system --group --home /var/lib/postern "
                    "--no-create-home postern")

        step("3. State directory (the queue)")
        install_cmd("install -d -o postern -g postern -m 0700 "
                    "/var/lib/postern /var/lib/postern/tmp "
                    "/var/lib/postern/queue /var/lib/postern/corrupt")

        step("4. Configuration")
        install_cmd("install -m 0644 /etc/postern/postern.conf.example "
                    "/etc/postern/postern.conf")
        # the test's DNS (below): dnsmasq serves example.org and
        # example.net unsigned, with no chain from the real root, so under
        # the root trust anchor every answer would be bogus; a real
        # resolver serves the real, signed chain
        edit_conf(lambda t: sub1(r"^#dnssec_validation = true;",
                                 "dnssec_validation = false;", t))

        step("4b. DKIM keys and DNS records")
        gen = install_cmd("postern keys generate example.org -c "
                          "/etc/postern/postern.conf").stdout
        m = re.search(r"^\s*(dkim = \(.*?\);)\s*$", gen, re.M | re.S)
        expect(m, "keys generate printed no `dkim = ( ... );` line")
        dkim_line = m.group(1)
        print(f"(admin) puts into postern.conf: {dkim_line}")
        edit_conf(lambda t: sub1(r"^\s*dkim = \(.*?\);\n", "\t  " +
                                 dkim_line + "\n", t))
        zone = install_cmd("postern keys dns -c "
                           "/etc/postern/postern.conf").stdout
        install_cmd("postern keys dns --plain -c /etc/postern/postern.conf")
        txt = zone_txt(zone)
        expect(len([n for n in txt if "._domainkey." in n]) == 2,
               f"keys dns gave {sorted(txt)}")
        dns = Dns(txt)
        install_cmd("postern keys dns --check -c /etc/postern/postern.conf")

        step("5. TLS certificate (certbot's paths)")
        cert1 = certbot_stand_in(1)
        edit_conf(lambda t: sub1(
            r"^tls = \{.*?\};",
            'tls = {\n'
            f'\tcertificate = "{CERT_DIR}/fullchain.pem";\n'
            f'\tkey         = "{CERT_DIR}/privkey.pem";\n'
            '};', t))
        # the test's own edits: the sink's port, and retries within the
        # test rather than after 5 minutes
        edit_conf(lambda t: sub1(r"^\tport = 25;", f"\tport = {SINK_PORT};",
                                 t))
        edit_conf(lambda t: sub1(r'first = "5m";\s*max = "1h";',
                                 'first = "1s"; max = "1s";', t))

        step("6. Users (the sasldb)")
        install_cmd("postern users add alice@example.org -c "
                    "/etc/postern/postern.conf", input="alice-Pass-2\n")
        install_cmd("printf '%s\\n' \"$PASSWORD\" | postern users add "
                    "app@example.org -c /etc/postern/postern.conf")
        out = install_cmd("postern users list -c "
                          "/etc/postern/postern.conf").stdout
        expect("app@example.org" in out, "users list lacks the user")
        st = os.stat("/etc/postern/sasldb2")
        expect(st.st_mode & 0o077 == 0, "the sasldb is open to others")

        step("7. Check and start")
        out = install_cmd("postern check-config -c "
                          "/etc/postern/postern.conf").stdout
        expect("configuration OK" in out, "check-config did not say OK")
        daemon = Daemon()
        daemon.start()
        log = journal()
        expect("running as user=postern" in log, "no 'running as' line")
        import pwd
        uid = str(pwd.getpwnam("postern").pw_uid)
        expect(daemon.uid() == (uid,) * 4, f"uids {daemon.uid()}")
        print(f"/proc/{daemon.p.pid}/status: Uid all {uid} (postern)")

        step("10. The first message (the recipient's server is down)")
        out = install_cmd(SWAKS, input=PASSWORD + "\n").stdout
        m = re.search(r"<~\s+250 2\.0\.0 Ok: queued as (\S+)", out)
        expect(m, "swaks did not get 250 queued")
        qid = m.group(1)
        wait_until(lambda: re.search(rf"id={qid} to=<you@example.net> "
                                     r".*status=deferred", journal()),
                   "the deferral")
        out = install_cmd("postern queue list -c "
                          "/etc/postern/postern.conf").stdout
        expect(qid in out, "queue list does not show the message")
        install_cmd("postern queue show ID -c /etc/postern/postern.conf",
                    ID=qid)
        out = install_cmd("postern queue show ID --message -c "
                          "/etc/postern/postern.conf | postern keys verify "
                          "--local -c /etc/postern/postern.conf",
                          ID=qid).stdout
        expect(out.count("pass") >= 2, "keys verify --local did not pass")

        step("the recipient's server comes up: a flush delivers")
        sink.start()
        install_cmd("postern queue flush -c /etc/postern/postern.conf")
        expect("control: uid=0 (root): queue.flush (all)" in journal(),
               "the flush is not in the journal with who asked")
        wait_until(lambda: re.search(rf"id={qid} to=<you@example.net> "
                                     r".*status=sent", journal()),
                   "delivery", timeout=30)
        expect(len(sink.messages) == 1, f"{len(sink.messages)} at the sink")
        print("the journal's lines about it (INSTALL, step 10):")
        for line in journal().splitlines():
            if re.search(rf"session=1 |id={qid}", line):
                print("  " + line)
        frm, rcpts, raw = sink.messages[0]
        expect(frm == "app@example.org" and rcpts == ["you@example.net"],
               f"envelope {frm} {rcpts}")
        dkim_check(raw)

        step("8. Local applications: sendmail")
        install_cmd("make install-sendmail")
        line = ('local_senders = ( { user = "www-data"; addresses = '
                '[ "trac@example.org" ]; } );')
        expect(line in INSTALL_CMDS, "INSTALL's local_senders line changed")
        edit_conf(lambda t: sub1(r"^local_senders = \(\n.*?^\);", line, t))
        step("8. the first local_senders entry: systemctl restart postern")
        daemon.stop()
        daemon.start()
        out = install_cmd(
            "printf 'From: trac@example.org\\nTo: you@example.net\\n"
            "Subject: test\\n\\nhello\\n' | runuser -u www-data -- "
            "/usr/local/sbin/sendmail -t -i")
        wait_until(lambda: len(sink.messages) == 2, "the sendmail message")
        frm, rcpts, raw = sink.messages[1]
        expect(frm == "trac@example.org", f"sendmail envelope from {frm}")
        msg = message_from_bytes(raw)
        expect(msg["Subject"] == "test", "sendmail message subject")
        dkim_check(raw)

        step("5. certbot renews; its deploy hook lets the reload read it")
        expect(served_certificate() == cert1, "not the first certificate")
        cert2 = certbot_stand_in(2)
        ENV["RENEWED_LINEAGE"] = CERT_DIR
        install_cmd("chgrp postern /etc/letsencrypt/live "
                    "/etc/letsencrypt/archive")
        install_cmd("chmod 0750 /etc/letsencrypt/live "
                    "/etc/letsencrypt/archive")
        install_cmd('chgrp postern "$RENEWED_LINEAGE/privkey.pem"')
        install_cmd('chmod 0640 "$RENEWED_LINEAGE/privkey.pem"')
        expect(daemon.reload(), "the reload failed")
        expect("keeping the certificate" not in daemon.said,
               "the reload kept the old certificate")
        expect(served_certificate() == cert2, "the renewed certificate is "
               "not served after the reload")
        print("the renewed certificate is served")

        step("7. reload after changing postern.conf")
        edit_conf(lambda t: sub1(
            r"^senders = \(\n",
            'senders = (\n\t{ login = "app@example.org"; addresses = '
            '[ "news@example.org" ]; },\n', t))
        expect(daemon.reload(), "the reload failed")
        expect("reloaded /etc/postern/postern.conf" in daemon.said,
               "no 'reloaded' line")
        env_from = SWAKS.replace("--from app@example.org",
                                 "--from news@example.org")
        p = run(env_from, input=PASSWORD + "\n")
        expect("queued as" in p.stdout, "the new grant does not work")
        wait_until(lambda: len(sink.messages) == 3, "the third message")

        step("7. a configuration that does not load is refused")
        with open(CONF) as f:
            good = f.read()
        with open(CONF, "a") as f:
            f.write("\nthis is not a setting\n")
        expect(not daemon.reload(), "a broken configuration reloaded")
        expect(re.search(r"/etc/postern/postern\.conf:\d+", daemon.said),
               "the refusal does not name FILE:LINE")
        expect(daemon.p.poll() is None, "the daemon died on a bad reload")
        with open(CONF, "w") as f:
            f.write(good)
        p = run(SWAKS, input=PASSWORD + "\n")
        expect("queued as" in p.stdout, "mail does not flow after it")
        wait_until(lambda: len(sink.messages) == 4, "the fourth message")

        step("7. stop, and start again (systemctl restart)")
        daemon.stop()
        expect(os.listdir("/var/lib/postern/queue") == [],
               "the queue is not empty after every delivery")
        daemon.start()
        daemon.stop()
        daemon = None

        step("what ran")
        for c in RAN:
            print(f"  {c}")
        print(f"\nWALKTHROUGH PASSED: {len(RAN)} INSTALL commands, "
              f"{len(sink.messages)} messages delivered and verified")
    finally:
        if daemon is not None and daemon.p.poll() is None:
            daemon.p.kill()
        if dns is not None:
            dns.stop()
        try:
            sink.stop()
        except Exception:
            pass


if __name__ == "__main__":
    main()
