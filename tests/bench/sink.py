#!/usr/bin/python3
"""sink.py - the next hop of tests/bench/sessions.sh and bigmsg.sh.

    sink.py --port P [--dir DIR] [--count-file FILE]

An SMTP server on 127.0.0.1:P (Debian's python3-aiosmtpd, no TLS, no
AUTH) that accepts every message. Each message is written whole, as
received, to DIR/N.eml (N counting from 1) when --dir is given; after
each, the number received so far goes into FILE (written to FILE.tmp and
renamed, so a reader never sees half a number). Runs until SIGTERM or
SIGINT. Messages up to 64 MiB (aiosmtpd holds a message in memory: fine
for a sink, and what this one is for).
"""
import argparse
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, outdir, count_file):
        self.outdir = outdir
        self.count_file = count_file
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        if self.outdir:
            path = os.path.join(self.outdir, f"{self.n}.eml")
            with open(path + ".tmp", "wb") as f:
                f.write(envelope.original_content)
            os.rename(path + ".tmp", path)
        if self.count_file:
            with open(self.count_file + ".tmp", "w") as f:
                f.write(f"{self.n}\n")
            os.rename(self.count_file + ".tmp", self.count_file)
        return "250 2.0.0 Ok: stored"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir")
    p.add_argument("--count-file")
    args = p.parse_args()
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    c = Controller(Handler(args.dir, args.count_file), hostname="127.0.0.1",
                   port=args.port, data_size_limit=64 * 1024 * 1024)
    c.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"sink: listening on 127.0.0.1:{args.port}", file=sys.stderr,
          flush=True)
    stop.wait()
    c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
