#!/usr/bin/python3
"""sessions.py - the SMTP clients of tests/bench/sessions.sh, bigmsg.sh and
backlog.sh.

    sessions.py hold  --port P --n N [--conc C] [--ready FILE] [--cafile F]
        Opens N submission sessions to 127.0.0.1:P, each: banner, EHLO,
        STARTTLS, EHLO, AUTH PLAIN bench/benchpass, then keeps it open,
        with at most C sessions being set up at once (default 200: the
        daemon's listen backlog is 511). Prints progress to stderr and one
        line "HELD held=N failed=N seconds=S rate=R/s" on stdout, writes it
        to FILE too (so the caller knows they are held), then waits until
        it gets SIGTERM or SIGINT and closes them all. Exit 0 if all N were
        held, 1 otherwise (they are held anyway: the caller decides).

    sessions.py probe --port P [--count K] [--cafile F]
        A new client's latency, K times each (default 10), one after the
        other: connect -> "220" banner; and one whole message (connect,
        EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, DATA of 4 KiB, QUIT)
        with smtplib, what Trac uses. Prints "PROBE banner_ms=median/max
        message_ms=median/max" on stdout. Exit 1 if any attempt failed.

    sessions.py load  --port P --n N [--conc C] [--size S]
        Submits N messages of S bytes of body (default 4096) over C
        sessions at once (default 20), each authenticated once (STARTTLS,
        AUTH PLAIN) and sending message after message, each to its own
        recipient rcptI@sink.test: the harness's smtpload in Python, for
        when the harness is not there (and slower than it). Prints
        "RESULT accepted=N rejected=N elapsed=S rate=R p50_ms=X p99_ms=Y"
        like smtpload. Exit 1 if any message was refused.

Only the standard library; asyncio with ssl, one process, one thread.
"""
import argparse
import asyncio
import base64
import signal
import smtplib
import socket
import ssl
import statistics
import sys
import time

AUTH = base64.b64encode(b"\0bench\0benchpass").decode()


def context(cafile):
    """Trust the instance's self-signed certificate (it names 127.0.0.1)."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Refused(Exception):
    pass


async def reply(reader, want):
    """Read one (multi-line) reply; raise Refused unless its code is want."""
    while True:
        line = await reader.readline()
        if not line:
            raise Refused(f"connection closed waiting for {want}")
        if len(line) < 4 or line[3:4] != b"-":
            break
    if not line.startswith(want.encode()):
        raise Refused(line.decode(errors="replace").strip())


async def open_session(port, ctx):
    """One authenticated session: its reader and writer (the session stays
    open as long as the writer is not closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reply(reader, "220")
        writer.write(b"EHLO holder.example.test\r\n")
        await reply(reader, "250")
        writer.write(b"STARTTLS\r\n")
        await reply(reader, "220")
        await writer.start_tls(ctx, server_hostname="127.0.0.1")
        writer.write(b"EHLO holder.example.test\r\n")
        await reply(reader, "250")
        writer.write(f"AUTH PLAIN {AUTH}\r\n".encode())
        await reply(reader, "235")
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer


async def hold(args):
    ctx = context(args.cafile)
    sem = asyncio.Semaphore(args.conc or 200)
    held, errors = [], {}
    t0 = time.monotonic()

    async def one():
        async with sem:
            try:
                held.append((await open_session(args.port, ctx))[1])
            except (OSError, Refused, ssl.SSLError, asyncio.IncompleteReadError) as e:
                why = f"{type(e).__name__}: {e}"[:120]
                errors[why] = errors.get(why, 0) + 1
            done = len(held) + sum(errors.values())
            if done % 1000 == 0:
                print(f"sessions: {len(held)} held, {done - len(held)} failed, "
                      f"{time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)

    await asyncio.gather(*(one() for _ in range(args.n)))
    secs = time.monotonic() - t0
    failed = sum(errors.values())
    for why, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"sessions: {n} failed: {why}", file=sys.stderr)
    line = (f"HELD held={len(held)} failed={failed} seconds={secs:.1f} "
            f"rate={len(held) / secs:.0f}/s")
    print(line, flush=True)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write(line + "\n")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A session the daemon closes meanwhile is noticed here, not reported:
    # the caller counts the daemon's sessions from its own side.
    await stop.wait()
    for w in held:
        w.transport.abort()
    return 0 if failed == 0 else 1


async def load(args):
    ctx = context(args.cafile)
    line = "x" * 76 + "\r\n"
    body = (line * (args.size // len(line) + 1))[:args.size].encode()
    todo = list(range(args.n))
    lat, refused = [], []

    async def one():
        writer = None
        try:
            while todo:
                if writer is None:
                    reader, writer = await open_session(args.port, ctx)
                i = todo.pop()
                t = time.monotonic()
                msg = (f"From: loadgen@example.test\r\nTo: rcpt{i}@sink.test\r\n"
                       f"Subject: backlog {i}\r\n\r\n").encode() + body
                writer.write(f"MAIL FROM:<loadgen@example.test>\r\n"
                             f"RCPT TO:<rcpt{i}@sink.test>\r\nDATA\r\n".encode())
                for want in ("250", "250", "354"):
                    await reply(reader, want)
                writer.write(msg.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
                await reply(reader, "250")
                lat.append((time.monotonic() - t) * 1000)
        except (OSError, Refused, ssl.SSLError) as e:
            refused.append(f"{type(e).__name__}: {e}"[:120])
        finally:
            if writer is not None:
                writer.transport.abort()

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(args.conc or 20)))
    secs = time.monotonic() - t0
    for why in refused[:3]:
        print(f"load: {why}", file=sys.stderr)
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
    print(f"RESULT accepted={len(lat)} rejected={len(refused)} "
          f"elapsed={secs:.2f} rate={len(lat) / secs:.1f} "
          f"p50_ms={pct(0.50):.1f} p99_ms={pct(0.99):.1f}")
    return 0 if not refused and len(lat) == args.n else 1


def banner_ms(port):
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        line = f.readline()
        if not line.startswith(b"220"):
            raise Refused(f"banner: {line!r}")
    return (time.monotonic() - t) * 1000


def message_ms(port, ctx):
    body = ("From: loadgen@example.test\r\nTo: probe@sink.test\r\n"
            "Subject: probe\r\n\r\n" + ("x" * 78 + "\r\n") * 51)
    t = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("probe.example.test")
        s.starttls(context=ctx)
        s.ehlo("probe.example.test")
        s.login("bench", "benchpass")
        s.sendmail("loadgen@example.test", ["probe@sink.test"], body)
    return (time.monotonic() - t) * 1000


def probe(args):
    ctx = context(args.cafile)
    b = [banner_ms(args.port) for _ in range(args.count)]
    m = [message_ms(args.port, ctx) for _ in range(args.count)]
    print(f"PROBE banner_ms={statistics.median(b):.1f}/{max(b):.1f} "
          f"message_ms={statistics.median(m):.1f}/{max(m):.1f}")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["hold", "probe", "load"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--conc", type=int)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--ready")
    p.add_argument("--cafile")
    args = p.parse_args()
    if args.mode == "hold":
        return asyncio.run(hold(args))
    if args.mode == "load":
        return asyncio.run(load(args))
    try:
        return probe(args)
    except (OSError, Refused, smtplib.SMTPException) as e:
        print(f"probe failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
