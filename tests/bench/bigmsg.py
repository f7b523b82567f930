#!/usr/bin/python3
"""bigmsg.py - the helpers of tests/bench/bigmsg.sh.

    bigmsg.py make   --bytes N --out FILE
        Writes a message of N bytes (CRLF lines: a few header fields, then
        76-character lines of base64 from a fixed seed, like an attachment).
    bigmsg.py send   --port P --cafile F --file FILE
        Submits FILE to 127.0.0.1:P with smtplib: EHLO, STARTTLS, EHLO,
        AUTH PLAIN bench/benchpass, MAIL FROM:<loadgen@example.test>
        (SIZE=, which smtplib adds), RCPT TO:<big@sink.test>, DATA. Prints "SENT start=T
        end=T" (time.time() values). Exit 1 if the message was refused.
    bigmsg.py sample --pid PID --out FILE [--interval S]
        Appends "TIME VmRSS_kB" lines for process PID to FILE every S
        seconds (default 0.005) until SIGTERM, or until PID is gone.
    bigmsg.py peak   --samples FILE --from T --to T
        Prints the largest VmRSS (kB) sampled between the two times.
    bigmsg.py check  --sent FILE --got FILE --keydir DIR
        Checks that GOT, what the sink received, is SENT with header
        fields added at the top only (so the message arrived whole), and
        that every DKIM-Signature in it verifies with dkimpy (python3-dkim).
        The public keys come from the private keys in DIR (SELECTOR.key),
        through `openssl pkey`, not from Postern. Prints "CHECK ..." and
        exits 1 on the first failure.
"""
import argparse
import base64
import os
import random
import signal
import smtplib
import ssl
import subprocess
import sys
import time


def make(args):
    head = (b"From: loadgen@example.test\r\n"
            b"To: big@sink.test\r\n"
            b"Subject: a big message for bigmsg.sh\r\n"
            b"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
            b"Message-ID: <bigmsg.1@example.test>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"\r\n")
    rng = random.Random(25)
    left = args.bytes - len(head)
    with open(args.out, "wb") as f:
        f.write(head)
        while left > 0:
            # 1 MB of 76-character lines at a time
            raw = base64.b64encode(rng.randbytes(57 * 13000))
            chunk = b"".join(raw[i:i + 76] + b"\r\n"
                             for i in range(0, len(raw), 76))
            if len(chunk) > left:
                chunk = chunk[:max(left - 2, 0)].rstrip(b"\r\n") + b"\r\n"
            f.write(chunk)
            left -= len(chunk)
    return 0


def send(args):
    with open(args.file, "rb") as f:
        msg = f.read()
    ctx = ssl.create_default_context(cafile=args.cafile)
    start = time.time()
    with smtplib.SMTP("127.0.0.1", args.port, timeout=300) as s:
        s.ehlo("bigmsg.example.test")
        s.starttls(context=ctx)
        s.ehlo("bigmsg.example.test")
        s.login("bench", "benchpass")
        # smtplib adds SIZE= itself when the server offers SIZE
        s.sendmail("loadgen@example.test", ["big@sink.test"], msg)
    print(f"SENT start={start:.3f} end={time.time():.3f}")
    return 0


def sample(args):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    path = f"/proc/{args.pid}/status"
    with open(args.out, "a") as out:
        while not stop:
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out.write(f"{time.time():.3f} {line.split()[1]}\n")
                            break
            except OSError:
                break
            time.sleep(args.interval)
    return 0


def peak(args):
    best = 0
    with open(args.samples) as f:
        for line in f:
            t, kb = line.split()
            if args.t_from <= float(t) <= args.t_to:
                best = max(best, int(kb))
    print(best)
    return 0


def public_txt(keyfile):
    """The DKIM TXT record of a private key file, made with openssl."""
    der = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    if len(der) == 44:   # Ed25519 SubjectPublicKeyInfo: 12 bytes + key
        return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(der[12:])
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def check(args):
    import dkim

    with open(args.sent, "rb") as f:
        sent = f.read()
    with open(args.got, "rb") as f:
        got = f.read()
    if not got.endswith(sent):
        # Say where they part, from the end (the top may have new fields).
        i = 1
        while i <= min(len(got), len(sent)) and got[-i] == sent[-i]:
            i += 1
        print(f"CHECK FAIL: the message did not arrive whole: sent "
              f"{len(sent)} bytes, got {len(got)}; they differ "
              f"{i - 1} bytes before the end")
        return 1
    added = got[:len(got) - len(sent)]
    names = [l.split(b":", 1)[0].decode() for l in added.split(b"\r\n")
             if l and not l[:1].isspace()]

    def dnsfunc(name, timeout=5):
        sel = name.decode().split("._domainkey.")[0]
        path = os.path.join(args.keydir, sel + ".key")
        return public_txt(path) if os.path.exists(path) else None

    d = dkim.DKIM(got)
    nsig = sum(1 for n in names if n.lower() == "dkim-signature")
    if nsig == 0:
        print("CHECK FAIL: no DKIM-Signature")
        return 1
    algs = []
    for i in range(nsig):
        try:
            ok, why = d.verify(idx=i, dnsfunc=dnsfunc), "verify() is False"
        except dkim.DKIMException as e:     # e.g. "body hash mismatch"
            ok, why = False, str(e)
        if not ok:
            print(f"CHECK FAIL: DKIM signature {i + 1} of {nsig} does not "
                  f"verify: {why}")
            return 1
        algs.append(d.signature_fields.get(b"a", b"?").decode())
    print(f"CHECK ok: {len(got)} bytes arrived, the {len(sent)} sent intact "
          f"after {len(added)} bytes of added fields ({', '.join(names)}); "
          f"DKIM verified: {', '.join(algs)}")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["make", "send", "sample", "peak", "check"])
    p.add_argument("--bytes", type=int)
    p.add_argument("--out")
    p.add_argument("--port", type=int)
    p.add_argument("--cafile")
    p.add_argument("--file")
    p.add_argument("--pid")
    p.add_argument("--interval", type=float, default=0.005)
    p.add_argument("--samples")
    p.add_argument("--from", dest="t_from", type=float)
    p.add_argument("--to", dest="t_to", type=float)
    p.add_argument("--sent")
    p.add_argument("--got")
    p.add_argument("--keydir")
    args = p.parse_args()
    try:
        return globals()[args.mode](args)
    except (OSError, smtplib.SMTPException, subprocess.CalledProcessError) as e:
        print(f"bigmsg.py {args.mode}: {type(e).__name__}: {e}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
