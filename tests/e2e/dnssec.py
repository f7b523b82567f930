"""A DNSSEC-signed test zone on a real authoritative server (NSD).

SignedZone runs tests/unit/dnssec/make-zone.sh into its own directory
(fresh key, ldns-signzone) and serves the result with `nsd -d` on
127.0.0.1 and a free port, stopped by PID. What it serves:

  dane.test.       signed: MX 10 mx.dane.test., TXT "v=spf1 -all"
  mx.dane.test.    A 127.0.0.1, AAAA ::1, and _25._tcp.mx.dane.test.
                   TLSA 3 1 1 <tlsa_hex>
  bogus.dane.test. MX 20 mx.dane.test., A, TXT, and its TLSA: changed
                   after signing, so a validating resolver calls them
                   bogus
  plain.test.      unsigned (insecure): MX 10 mx.plain.test., mx A
                   127.0.0.1 and the same TLSA

zone.anchor is the DS file to give Postern as dnssec_trust_anchor;
zone.resolver ("127.0.0.1@PORT") its `resolver`: Postern forwards to NSD
and validates the answers itself. conftest.py starts one per session
(fixture signed_zone), with the TLSA of the session's test certificate.
"""
import os
import subprocess
import time

from helpers import free_udp_port, udp_port_taken

NSD = "/usr/sbin/nsd"
SIGNZONE = "/usr/bin/ldns-signzone"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MAKE_ZONE = os.path.join(ROOT, "tests", "unit", "dnssec", "make-zone.sh")


def missing():
    """What is missing to run a signed zone, or None."""
    for path, pkg in ((NSD, "nsd"), (SIGNZONE, "ldnsutils")):
        if not os.access(path, os.X_OK):
            return f"{path} missing (apt-get install {pkg})"
    return None


def spki_sha256(cert):
    """The TLSA 3 1 1 data of a PEM certificate: the SHA-256 of its
    public key (SubjectPublicKeyInfo, DER), as hex."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout",
                          "-pubkey"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, check=True, capture_output=True).stdout
    dgst = subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der,
                          check=True, capture_output=True).stdout
    return dgst.split()[0].decode()


class SignedZone:
    """The zones above, signed in workdir and served by NSD."""

    def __init__(self, workdir, tlsa_hex):
        self.dir = workdir
        self.tlsa_hex = tlsa_hex
        self.anchor = os.path.join(workdir, "trust-anchor")
        self.port = None
        self.resolver = None
        self.proc = None

    def start(self):
        r = subprocess.run([MAKE_ZONE, self.dir, self.tlsa_hex],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        self.port = free_udp_port()
        self.resolver = f"127.0.0.1@{self.port}"
        conf = os.path.join(self.dir, "nsd.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
	ip-address: 127.0.0.1@{self.port}
	username: ""
	chroot: ""
	zonesdir: "{self.dir}"
	pidfile: "{self.dir}/nsd.pid"
	xfrdfile: "{self.dir}/xfrd.state"
	xfrdir: "{self.dir}"
	zonelistfile: "{self.dir}/zone.list"
	database: ""
	logfile: "{self.dir}/nsd.log"
	server-count: 1
remote-control:
	control-enable: no
include: "{self.dir}/nsd.zones"
""")
        self.proc = subprocess.Popen([NSD, "-d", "-c", conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not udp_port_taken(self.port):
            assert self.proc.poll() is None, \
                "nsd exited at startup:\n" + self.log()
            assert time.monotonic() < deadline, \
                f"nsd never bound port {self.port}:\n" + self.log()
            time.sleep(0.02)
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "nsd.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
