"""
Per-client defences (submit/guard.c): AUTH lockouts per client address and
per login, the delay after a failed AUTH, new connections per address per
minute, and limits.exempt_networks.

Loopback is exempt by default, so these tests set exempt_networks
themselves and connect from other 127.x addresses (helpers.SMTP's source)
to be different clients.
"""
import socket
import time

from helpers import (SMTP, USERS, ConnectionClosed, expect, make_message,
                     plain_response, submission)

ALICE = "alice@example.test"
BOB = "bob@example.test"
NOBODY = "[ ]"


def limits(**kw):
    kw.setdefault("exempt_networks", NOBODY)
    kw.setdefault("auth_failure_window", '"1d"')
    return kw


def wrong(c, login=ALICE):
    return c.auth_plain(login, "not-the-password")


def connect(d, ctx, source):
    """A submission connection from source, or the reply that refused it
    at the greeting."""
    c = SMTP(d.address("submission"), d.port("submission"), ctx,
             source=source)
    r = c.reply()
    if r.code != 220:
        return None, r, c
    c.ehlo()
    c.starttls()
    c.ehlo()
    return c, r, c


def test_auth_brute_force(postern_factory, ssl_ctx):
    """50 wrong passwords from one address: the first 5 get 535 (each
    after limits.auth_failure_delay), the 6th 454 4.7.0 and the connection
    is closed, every later connection from that address 421 4.7.0 at the
    greeting, even with the right password; the right password from
    another address still works and its mail is accepted."""
    d = postern_factory(limits=limits(auth_failures_per_ip=5,
                                      auth_failure_delay='"1s"',
                                      auth_lockout='"1h"'))
    attacker = "127.0.0.5"
    tries = 0
    c = submission(d, ssl_ctx, source=attacker)
    for i in range(5):
        t0 = time.monotonic()
        expect(wrong(c), 535, "5.7.8", "authentication failed", conn=c)
        # the tarpit: the answer waited (a lower bound, not a speed test)
        assert time.monotonic() - t0 >= 0.9, "535 came without the delay"
        tries += 1
    r = wrong(c)
    tries += 1
    expect(r, 454, "4.7.0", "Too many failed authentications from your "
           "address", "try again after", conn=c)
    assert c.closed(), c.dump()
    c.close()
    refused = 0
    while tries < 50:
        conn, r, raw = connect(d, ssl_ctx, attacker)
        if conn is None:
            expect(r, 421, "4.7.0", "Too many failed authentications from "
                   "your address", conn=raw)
            assert raw.closed(), raw.dump()
            refused += 1
        else:
            expect(wrong(conn), 454, "4.7.0", conn=conn)
        raw.close()
        tries += 1
    assert refused == 44
    # the right password from the locked address: still refused
    conn, r, raw = connect(d, ssl_ctx, attacker)
    assert conn is None
    expect(r, 421, "4.7.0", conn=raw)
    raw.close()
    # another address logs in and sends
    good = submission(d, ssl_ctx, login=ALICE, source="127.0.0.6")
    expect(good.cmd(f"MAIL FROM:<{ALICE}>"), 250, "2.1.0", conn=good)
    expect(good.cmd("RCPT TO:<someone@example.com>"), 250, "2.1.5",
           conn=good)
    expect(good.data(make_message(ALICE, ["someone@example.com"])), 250,
           "2.0.0", conn=good)
    good.cmd("QUIT")
    log = d.log()
    assert log.count("auth lockout: ip 127.0.0.5 locked out") == 1, log
    # 5 failures reached the password check: alice (10 per login) is
    # not locked
    assert "auth lockout: login" not in log


def test_lockout_doubles_and_ends(postern_factory, ssl_ctx):
    """A lockout ends after limits.auth_lockout and the right password
    works again; the next lockout is twice as long (logged), and also
    ends."""
    d = postern_factory(limits=limits(auth_failures_per_ip=2,
                                      auth_failure_delay='"0"',
                                      auth_lockout='"2s"',
                                      auth_lockout_max='"1h"'))
    src = "127.0.0.7"
    for strike, length in ((1, 2), (2, 4)):
        c = submission(d, ssl_ctx, source=src)
        expect(wrong(c), 535, "5.7.8", conn=c)
        expect(wrong(c), 535, "5.7.8", conn=c)
        expect(c.auth_plain(ALICE), 454, "4.7.0", conn=c)
        assert c.closed(), c.dump()
        c.close()
        assert (f"auth lockout: ip {src} locked out for {length}s" in
                d.log()), d.log()
        assert f"lockout {strike} in a row" in d.log()
        deadline = time.monotonic() + length + 10
        while True:
            conn, r, raw = connect(d, ssl_ctx, src)
            if conn is not None:
                break
            expect(r, 421, "4.7.0", conn=raw)
            raw.close()
            assert time.monotonic() < deadline, "the lockout never ended"
            time.sleep(0.2)
        expect(conn.auth_plain(ALICE), 235, "2.7.0", conn=conn)
        conn.cmd("QUIT")
        conn.close()


def test_login_lockout(postern_factory, ssl_ctx):
    """Failures for one login spread over addresses lock the login: from
    a fresh address its right password gets 454 4.7.0, and so does a wrong
    one (the answer does not tell which); other logins work; an exempt
    address still logs in as it; when the lockout ends the login works
    from anywhere again."""
    d = postern_factory(limits=limits(auth_failures_per_ip=100,
                                      auth_failures_per_login=3,
                                      auth_failure_delay='"0"',
                                      auth_lockout='"8s"',
                                      exempt_networks='[ "127.0.0.1/32" ]'))
    for i in range(3):
        c = submission(d, ssl_ctx, source=f"127.0.0.{11 + i}")
        expect(wrong(c), 535, "5.7.8", conn=c)
        c.close()
    assert "auth lockout: login alice@example.test locked out" in d.log()
    c = submission(d, ssl_ctx, source="127.0.0.14")
    expect(c.auth_plain(ALICE), 454, "4.7.0", "Too many failed "
           "authentications for this login", conn=c)
    assert c.closed()
    c.close()
    c = submission(d, ssl_ctx, source="127.0.0.15")
    expect(wrong(c), 454, "4.7.0", "for this login", conn=c)
    c.close()
    # the login's case does not dodge it
    c = submission(d, ssl_ctx, source="127.0.0.16")
    expect(c.auth_plain(ALICE.upper(), "x"), 454, "4.7.0", conn=c)
    c.close()
    c = submission(d, ssl_ctx, source="127.0.0.14")
    expect(c.auth_plain(BOB), 235, "2.7.0", conn=c)
    c.close()
    c = submission(d, ssl_ctx, source="127.0.0.1")
    expect(c.auth_plain(ALICE), 235, "2.7.0", conn=c)
    c.close()
    deadline = time.monotonic() + 20
    while True:
        c = submission(d, ssl_ctx, source="127.0.0.17")
        r = c.auth_plain(ALICE)
        c.close()
        if r.code == 235:
            break
        expect(r, 454, "4.7.0", conn=c)
        assert time.monotonic() < deadline, "the login lockout never ended"
        time.sleep(0.3)


def test_tarpit_keeps_serving_others(postern_factory, ssl_ctx):
    """While one client waits out the delay after its failed AUTH, another
    is served in full; the delayed client's pipelined command is answered
    after its 535, in order."""
    d = postern_factory(limits=limits(auth_failures_per_ip=100,
                                      auth_failure_delay='"8s"'))
    slow = submission(d, ssl_ctx, source="127.0.0.21")
    t0 = time.monotonic()
    slow.send("AUTH PLAIN " + plain_response(ALICE, "wrong") +
              "\r\nNOOP\r\n")
    other = submission(d, ssl_ctx, login=BOB, source="127.0.0.22")
    expect(other.cmd("NOOP"), 250, "2.0.0", conn=other)
    expect(other.cmd("QUIT"), 221, "2.0.0", conn=other)
    other.close()
    # nothing for the slow client yet: its answer is still held
    slow.sock.settimeout(0.1)
    try:
        got = slow.sock.recv(1)
    except (socket.timeout, TimeoutError, BlockingIOError):
        got = None
    except OSError as e:   # ssl.SSLWantReadError
        got = None if "read" in str(e).lower() else e
    assert got is None, f"the 535 was not held: {got!r}"
    assert time.monotonic() - t0 < 7.5, "too slow to tell; rerun"
    slow.sock.settimeout(30)
    expect(slow.reply(), 535, "5.7.8", conn=slow)
    assert time.monotonic() - t0 >= 7.5
    expect(slow.reply(), 250, "2.0.0", conn=slow)
    slow.close()


def test_exempt_networks(postern_factory, ssl_ctx):
    """By default loopback is exempt: wrong passwords from 127.0.0.1 are
    answered at once and never lock it out. An address listed in
    exempt_networks is exempt, its neighbour is not."""
    d = postern_factory(limits={"auth_failures_per_ip": 2,
                                "auth_failure_delay": '"5s"'})
    c = submission(d, ssl_ctx)
    t0 = time.monotonic()
    for i in range(6):
        expect(wrong(c), 535, "5.7.8", conn=c)
    assert time.monotonic() - t0 < 5, "an exempt client was delayed"
    expect(c.auth_plain(ALICE), 235, "2.7.0", conn=c)
    c.close()
    assert "auth lockout" not in d.log()

    d = postern_factory(name="listed", limits=limits(
        auth_failures_per_ip=2, auth_failure_delay='"0"',
        exempt_networks='[ "127.0.0.30/31" ]'))
    for src in ("127.0.0.30", "127.0.0.31"):
        c = submission(d, ssl_ctx, source=src)
        for i in range(4):
            expect(wrong(c), 535, "5.7.8", conn=c)
        expect(c.auth_plain(ALICE), 235, "2.7.0", conn=c)
        c.close()
    c = submission(d, ssl_ctx, source="127.0.0.32")
    expect(wrong(c), 535, "5.7.8", conn=c)
    expect(wrong(c), 535, "5.7.8", conn=c)
    expect(c.auth_plain(ALICE), 454, "4.7.0", conn=c)
    c.close()


def test_connection_rate_per_ip(postern_factory, ssl_ctx):
    """limits.connection_rate_per_ip new connections a minute from one
    address; the next gets 421 4.7.0 and is closed, another address is
    not affected, and the next minute the address is admitted again.
    Exempt addresses have no such limit."""
    d = postern_factory(limits=limits(connection_rate_per_ip=5,
                                      exempt_networks='[ "127.0.0.1/32" ]'))
    # all within one minute (the windows are aligned)
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.2)
    src = "127.0.0.40"
    for i in range(5):
        c = SMTP("127.0.0.1", d.port("trusted"), source=src)
        expect(c.reply(), 220, conn=c)
        c.close()
    c = SMTP("127.0.0.1", d.port("trusted"), source=src)
    expect(c.reply(), 421, "4.7.0", "Too many new connections from your "
           "address", conn=c)
    assert c.closed()
    c.close()
    c = SMTP("127.0.0.1", d.port("trusted"), source="127.0.0.41")
    expect(c.reply(), 220, conn=c)
    c.close()
    for i in range(10):
        c = SMTP("127.0.0.1", d.port("trusted"))
        expect(c.reply(), 220, conn=c)
        c.close()
    assert d.log().count("connection rate: client 127.0.0.40") == 1
    time.sleep(60 - time.time() % 60 + 0.5)
    c = SMTP("127.0.0.1", d.port("trusted"), source=src)
    expect(c.reply(), 220, conn=c)
    c.close()


def test_connections_per_ip_exempt(postern_factory):
    """limits.connections_per_ip does not apply to exempt addresses."""
    d = postern_factory(limits={"connections_per_ip": 2})
    conns = []
    try:
        for i in range(5):
            c = SMTP("127.0.0.1", d.port("trusted"))
            expect(c.reply(), 220, conn=c)
            conns.append(c)
    finally:
        for c in conns:
            c.close()
