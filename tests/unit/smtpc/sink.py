#!/usr/bin/python3
"""sink.py - the SMTP server test_smtpc talks to.

A real server (aiosmtpd, Debian's python3-aiosmtpd) on 127.0.0.1, port
chosen by the kernel and written to DIR/port once listening. Every event
goes to DIR/events, one line each, flushed at once; every accepted message
is written as DIR/msg.N (the exact bytes after dot-unstuffing).

Behaviour is chosen per test by options; the few things aiosmtpd cannot be
told to do (a 4xx greeting, a stalled greeting) are done by overriding its
client handler, everything else through its documented handler hooks.

    --pipelining           advertise PIPELINING (aiosmtpd reads commands
                           one by one, so pipelined input works)
    --no-8bitmime          do not advertise 8BITMIME
    --smtputf8             advertise SMTPUTF8
    --size N               advertise SIZE N (default: no SIZE)
    --tls CERT KEY         offer STARTTLS with this certificate
    --implicit-tls CERT KEY  TLS from the first byte (port 465 style)
    --auth LOGIN:PASSWORD  require AUTH (PLAIN, LOGIN; only over TLS)
    --auth-only MECH       offer only this mechanism (PLAIN or LOGIN)
    --refuse-rcpt ADDR     550 5.1.1 for this recipient (repeatable)
    --refuse-mail ADDR     553 5.7.1 for this sender
    --data-reply TEXT      reply to the final "." (default 250)
    --greeting TEXT        send this greeting, then close
    --stall WHERE          greeting | data: never answer there
    --drop-after-data      close the connection instead of answering "."
    --no-ehlo              answer EHLO with 502 (the client must use HELO)
    --hostile KIND         longline | manylines: an EHLO reply of one
                           8 KiB line, or of 150 lines
"""
import argparse
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Recorder:
    """events and messages under one directory"""

    def __init__(self, directory):
        self.dir = directory
        self.nmsg = 0
        self.ev = open(os.path.join(directory, "events"), "a")

    def event(self, line):
        self.ev.write(line + "\n")
        self.ev.flush()

    def message(self, envelope):
        self.nmsg += 1
        path = os.path.join(self.dir, "msg.%d" % self.nmsg)
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return self.nmsg


class Handler:
    def __init__(self, opts, rec):
        self.o = opts
        self.rec = rec

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        tls = 1 if server.transport.get_extra_info("ssl_object") else 0
        self.rec.event("ehlo %s tls=%d" % (hostname, tls))
        if self.o.no_ehlo:
            return ["502 5.5.1 EHLO not implemented"]
        session.host_name = hostname  # aiosmtpd leaves it to the hook
        if self.o.hostile == "longline":
            return ["250-" + "x" * 8192, "250 HELP"]
        if self.o.hostile == "manylines":
            return ["250-line%d" % i for i in range(150)] + ["250 HELP"]
        out = []
        for r in responses:
            if self.o.no_8bitmime and r[4:] == "8BITMIME":
                continue
            out.append(r)
        if self.o.pipelining:
            out.insert(1, "250-PIPELINING")
        out.insert(1, "250-ENHANCEDSTATUSCODES")
        return out

    async def handle_HELO(self, server, session, envelope, hostname):
        self.rec.event("helo %s" % hostname)
        session.host_name = hostname
        return "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        # Pipelined: the rest of the group already waits in the reader.
        pipelined = 1 if len(server._reader._buffer) > 0 else 0
        self.rec.event("mail <%s> %s pipelined=%d" %
                       (address, " ".join(mail_options), pipelined))
        if address == self.o.refuse_mail:
            return "553 5.7.1 <%s>: sender refused" % address
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        self.rec.event("rcpt <%s>" % address)
        if address in (self.o.refuse_rcpt or []):
            return "550 5.1.1 <%s>: user unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_RSET(self, server, session, envelope):
        self.rec.event("rset")
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.rec.event("quit")
        return "221 2.0.0 Bye"

    async def handle_DATA(self, server, session, envelope):
        if self.o.stall == "data":
            self.rec.event("data stalled")
            await asyncio.sleep(3600)
        if self.o.drop_after_data:
            self.rec.event("data dropped")
            server.transport.close()
            return "250 2.0.0 never sent"
        n = self.rec.message(envelope)
        self.rec.event("data %d from=<%s> to=%s size=%d" %
                       (n, envelope.mail_from, ",".join(envelope.rcpt_tos),
                        len(envelope.original_content)))
        return self.o.data_reply or "250 2.0.0 Ok: queued as %d" % n


class Sink(SMTP):
    """aiosmtpd's server with the greeting made configurable"""

    opts = None
    rec = None

    async def _handle_client(self):
        self.rec.event("connect %s" % self.session.peer[0])
        if self.opts.greeting:
            await self.push(self.opts.greeting)
            self.transport.close()
            return
        if self.opts.stall == "greeting":
            await asyncio.sleep(3600)
        await super()._handle_client()


def server_context(pair, rec):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pair[0], pair[1])

    def sni(sslobj, name, context):
        rec.event("sni %s" % name)
    ctx.sni_callback = sni
    return ctx


def authenticator_for(opts, rec):
    login, password = opts.auth.split(":", 1)

    def check(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode() == login and
              auth_data.password.decode() == password)
        rec.event("auth %s %s %s" % (mechanism, auth_data.login.decode(),
                                     "ok" if ok else "bad"))
        # handled=False: aiosmtpd sends the 535 itself
        return AuthResult(success=ok, handled=False)
    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--no-8bitmime", action="store_true")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--auth-only", choices=["PLAIN", "LOGIN"])
    p.add_argument("--refuse-rcpt", action="append")
    p.add_argument("--refuse-mail")
    p.add_argument("--data-reply")
    p.add_argument("--greeting")
    p.add_argument("--stall", choices=["greeting", "data"])
    p.add_argument("--drop-after-data", action="store_true")
    p.add_argument("--no-ehlo", action="store_true")
    p.add_argument("--hostile", choices=["longline", "manylines"])
    o = p.parse_args()

    rec = Recorder(o.dir)
    Sink.opts = o
    Sink.rec = rec
    kw = dict(hostname="sink.test", decode_data=False,
              enable_SMTPUTF8=o.smtputf8,
              data_size_limit=o.size or None)
    if o.tls:
        kw["tls_context"] = server_context(o.tls, rec)
    implicit = server_context(o.implicit_tls, rec) if o.implicit_tls else None
    if o.auth:
        kw["auth_required"] = True
        kw["authenticator"] = authenticator_for(o, rec)
        if o.implicit_tls:
            kw["auth_require_tls"] = False  # aiosmtpd sees no STARTTLS
        if o.auth_only:
            kw["auth_exclude_mechanism"] = [
                m for m in ("PLAIN", "LOGIN") if m != o.auth_only]
    handler = Handler(o, rec)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Sink(handler, **kw),
                                      host="127.0.0.1", port=0,
                                      ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    tmp = os.path.join(o.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, os.path.join(o.dir, "port"))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
