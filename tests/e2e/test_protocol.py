"""
The SMTP dialogue on the wire: EHLO contents, STARTTLS, pipelining and every
refusal of submit/REPLIES.md that a client can provoke by protocol alone.
Each test asserts the code, the enhanced status code and key words of the
text, and what was (or was not) queued.
"""
import time

from helpers import (HOSTNAME, SMTP, USERS, assert_nothing_queued,
                     assert_queued, dot_stuff, ehlo_keywords, expect,
                     make_message, plain, plain_response, queued_id, smtps,
                     submission)

ALICE = "alice@example.test"
MSG = make_message(ALICE, ["bob@example.com"], subject="protocol")


# -- EHLO and STARTTLS ---------------------------------------------------

def test_ehlo_before_and_after_starttls(postern, ssl_ctx):
    c = SMTP("127.0.0.1", postern.port("submission"), ssl_ctx)
    c.greeting()
    r = c.ehlo()
    assert r.lines[0].split()[0] == HOSTNAME, r
    kw = ehlo_keywords(r)
    for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
              "SMTPUTF8", "STARTTLS"):
        assert k in kw, f"{k} missing before TLS: {r!r}"
    assert kw["SIZE"] == str(postern.limits["message_size"]), r
    assert "AUTH" not in kw, f"AUTH advertised before TLS: {r!r}"
    c.starttls()
    kw = ehlo_keywords(c.ehlo())
    assert "STARTTLS" not in kw, kw
    assert "AUTH" in kw and "PLAIN" in kw["AUTH"].split(), kw
    assert "CRAM-MD5" not in kw["AUTH"].split(), kw
    expect(c.cmd("QUIT"), 221, "2.0.0", conn=c)
    assert c.closed()
    assert_nothing_queued(postern)


def test_helo(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx)
    r = c.cmd("HELO client.example.test")
    expect(r, 250, conn=c)
    assert r.lines[0].startswith(HOSTNAME), r
    expect(c.cmd("EHLO"), 501, "5.5.4", conn=c)
    expect(c.cmd("HELO"), 501, "5.5.4", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_starttls_twice(postern, ssl_ctx):
    c = submission(postern, ssl_ctx)
    expect(c.cmd("STARTTLS"), 503, "5.5.1", "TLS already active", conn=c)
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    c2 = smtps(postern, ssl_ctx)
    expect(c2.cmd("STARTTLS"), 503, "5.5.1", "TLS already active", conn=c2)
    c3 = plain(postern)
    expect(c3.cmd("STARTTLS"), 454, "4.7.0", "TLS not available", conn=c3)
    expect(c3.cmd("NOOP"), 250, "2.0.0", conn=c3)
    assert_nothing_queued(postern, conns=[c, c2, c3])


def test_starttls_discards_pipelined_plaintext(postern, ssl_ctx):
    """Commands sent in the same packet as STARTTLS must not be run inside
    the TLS session (CVE-2011-0411 style command injection)."""
    c = SMTP("127.0.0.1", postern.port("submission"), ssl_ctx)
    c.greeting()
    c.ehlo()
    c.send("STARTTLS\r\nHELP\r\n")
    r = c.reply()
    if r.code == 220:
        try:
            c.sock = ssl_ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
        except OSError as e:
            raise AssertionError(f"TLS handshake failed after a pipelined "
                                 f"STARTTLS (plaintext answered?): {e}\n"
                                 + c.dump())
        assert c.buf == b"", f"plaintext after 220: {c.buf!r}"
        # the injected HELP must not be answered inside TLS: the first reply
        # we get is the one to our own NOOP
        expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
        # and the session is reset: EHLO needed again before MAIL
        r = c.cmd("MAIL FROM:<alice@example.test>")
        assert r.code in (503, 530), r
    else:
        # refusing the pipelined STARTTLS is acceptable too
        assert r.code in (501, 503, 554), r
    assert_nothing_queued(postern, conns=[c])


# -- simple commands ------------------------------------------------------

def test_noop_rset_vrfy_help_expn_quit(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx)
    expect(c.cmd("NOOP"), 250, "2.0.0", "Ok", conn=c)
    expect(c.cmd("RSET"), 250, "2.0.0", "Ok", conn=c)
    expect(c.cmd("VRFY bob@example.com"), 252, "2.5.2", "Cannot VRFY", conn=c)
    expect(c.cmd("HELP"), 214, "2.0.0", conn=c)
    expect(c.cmd("EXPN staff"), 502, "5.5.1", "not implemented", conn=c)
    expect(c.cmd("BDAT 10 LAST"), 502, "5.5.1", "not implemented", conn=c)
    expect(c.cmd("QUIT"), 221, "2.0.0", "Bye", conn=c)
    assert c.closed()
    assert_nothing_queued(postern)


def test_unknown_command(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx)
    expect(c.cmd("FROB nicate"), 502, "5.5.2", "not recognized", conn=c)
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_http_request_is_refused_and_closed(postern):
    c = SMTP("127.0.0.1", postern.port("submission"))
    c.greeting()
    c.send("GET / HTTP/1.0\r\nHost: relay.example.test\r\n\r\n")
    expect(c.reply(), 554, "5.7.0", "not HTTP", conn=c)
    assert c.closed(), c.dump()
    c = SMTP("127.0.0.1", postern.port("trusted"))
    c.greeting()
    c.send("POST /upload HTTP/1.1\r\n\r\n")
    expect(c.reply(), 554, "5.7.0", conn=c)
    assert c.closed(), c.dump()
    assert_nothing_queued(postern)


def test_overlong_command_line_then_still_works(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    limit = postern.limits["line_length"]
    c.send("NOOP " + "x" * (limit + 1000) + "\r\n")
    expect(c.reply(), 500, "5.5.2", "line too long", conn=c)
    # the rest of the long line was discarded: the session is in step
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    # and a long MAIL line is refused without starting a transaction
    c.send("MAIL FROM:<alice@example.test> " + "X" * (limit + 10) + "\r\n")
    expect(c.reply(), 500, "5.5.2", "line too long", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", "need MAIL", conn=c)
    qid = c.send_message(ALICE, ["bob@example.com"], MSG)
    c.close()
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, MSG,
                  added_message_id=False, added_date=False)
    assert postern.queue_ids() == [qid]


def test_nul_in_command(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    c.send(b"MAIL FROM:<alice@example.test>\0 SIZE=10\r\n")
    expect(c.reply(), 500, "5.5.2", "NUL", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


# -- command order ---------------------------------------------------------

def test_mail_before_ehlo(postern, ssl_ctx):
    c = SMTP("127.0.0.1", postern.port("smtps"), ssl_ctx, implicit=True)
    c.greeting()
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 503, "5.5.1",
           "HELO/EHLO first", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_mail_without_auth(postern, ssl_ctx):
    c = submission(postern, ssl_ctx)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 530, "5.7.0",
           "Authentication required", conn=c)
    r = c.cmd("RCPT TO:<bob@example.com>")
    assert r.code in (503, 530) and r.enh in ("5.5.1", "5.7.0"), r
    r = c.cmd("DATA")
    assert r.code in (503, 530), r
    c2 = smtps(postern, ssl_ctx)
    expect(c2.cmd("MAIL FROM:<alice@example.test>"), 530, "5.7.0", conn=c2)
    assert_nothing_queued(postern, conns=[c, c2])


def test_mail_without_auth_before_tls(postern):
    """An open-relay probe: plaintext, no AUTH, straight to MAIL."""
    c = SMTP("127.0.0.1", postern.port("submission"))
    c.greeting()
    c.ehlo()
    r = c.cmd("MAIL FROM:<alice@example.test>")
    expect(r, 530, "5.7.0", conn=c)
    r = c.cmd("RCPT TO:<victim@example.com>")
    assert r.code >= 500, r
    assert_nothing_queued(postern, conns=[c])


def test_rcpt_before_mail(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", "need MAIL", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_data_before_mail(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("DATA"), 503, "5.5.1", "need MAIL", conn=c)
    # nothing was read as message data: the session still takes commands
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_data_before_rcpt(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("DATA"), 554, "5.5.1", "no valid recipients", conn=c)
    # a refused RCPT does not count either
    expect(c.cmd("RCPT TO:<bad@@example.com>"), 501, "5.1.3", conn=c)
    expect(c.cmd("DATA"), 554, "5.5.1", "no valid recipients", conn=c)
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_nested_mail(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("MAIL FROM:<alice+x@example.test>"), 503, "5.5.1",
           "nested MAIL", conn=c)
    # the transaction is as it was: the first sender is kept
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    r = c.data(MSG)
    qid = queued_id(expect(r, 250, "2.0.0", conn=c).text)
    c.close()
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, MSG)


def test_rset_clears_transaction(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.cmd("RSET"), 250, "2.0.0", conn=c)
    expect(c.cmd("DATA"), 503, "5.5.1", "need MAIL", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    # a new transaction starts cleanly (no "nested MAIL"), authentication kept
    expect(c.cmd("MAIL FROM:<alice+new@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<carol@example.net>"), 250, "2.1.5", conn=c)
    qid = queued_id(expect(c.data(MSG), 250, "2.0.0", conn=c).text)
    c.close()
    assert postern.queue_ids() == [qid]
    assert_queued(postern, qid, "alice+new@example.test",
                  ["carol@example.net"], ALICE)


def test_rset_after_data_refusal_and_ehlo_resets(postern, ssl_ctx):
    """EHLO in the middle of a transaction resets it (RFC 5321 4.1.4)."""
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    c.ehlo()
    expect(c.cmd("DATA"), 503, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


# -- syntax ----------------------------------------------------------------

def test_bad_sender_syntax(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    for bad in ("MAIL FROM:<alice@>", "MAIL FROM:<@example.test>",
                "MAIL FROM:<alice@@example.test>"):
        expect(c.cmd(bad), 501, "5.1.7", conn=c)
    for bad in ("MAIL FROM:<alice@exa mple.test>", "MAIL FROM:<a<b@example.test>",
                "MAIL FROM:alice@example.test"):          # no angle brackets
        r = c.cmd(bad)
        assert r.code == 501 and r.enh in ("5.1.7", "5.5.4"), r
    expect(c.cmd("MAIL alice@example.test"), 501, "5.5.4", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 503, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_bad_recipient_syntax(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    for bad in ("RCPT TO:<bob@>", "RCPT TO:<>", "RCPT TO:<bob@@example.com>",
                "RCPT TO:<" + "x" * 65 + "@example.com>"):
        expect(c.cmd(bad), 501, "5.1.3", conn=c)
    r = c.cmd("RCPT bob@example.com")
    assert r.code == 501 and r.enh in ("5.5.4", "5.1.3"), r
    expect(c.cmd("DATA"), 554, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_unknown_mail_and_rcpt_parameters(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test> FOO=BAR"), 555, "5.5.4", conn=c)
    expect(c.cmd("MAIL FROM:<alice@example.test> BODY=BINARYMIME"), 555, "5.5.4",
           conn=c)
    expect(c.cmd("MAIL FROM:<alice@example.test> SIZE=1 SIZE=2"), 555, "5.5.4",
           conn=c)
    expect(c.cmd("MAIL FROM:<alice@example.test> SIZE=100 BODY=8BITMIME"),
           250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com> NOTIFY=NEVER"), 555, "5.5.4", conn=c)
    expect(c.cmd("DATA"), 554, "5.5.1", conn=c)
    assert_nothing_queued(postern, conns=[c])


# -- pipelining --------------------------------------------------------------

def test_pipelined_transaction(postern, ssl_ctx):
    """RFC 2920: MAIL, RCPT, RCPT, DATA in one write; replies in order; then
    the message, the dot, and QUIT in one write."""
    c = submission(postern, ssl_ctx, login=ALICE)
    c.send("MAIL FROM:<alice@example.test>\r\n"
           "RCPT TO:<bob@example.com>\r\n"
           "RCPT TO:<carol@example.net>\r\n"
           "DATA\r\n")
    expect(c.reply(), 250, "2.1.0", conn=c)
    expect(c.reply(), 250, "2.1.5", conn=c)
    expect(c.reply(), 250, "2.1.5", conn=c)
    expect(c.reply(), 354, conn=c)
    c.send(dot_stuff(MSG) + b".\r\nNOOP\r\nQUIT\r\n")
    qid = queued_id(expect(c.reply(), 250, "2.0.0", conn=c).text)
    expect(c.reply(), 250, "2.0.0", conn=c)
    expect(c.reply(), 221, "2.0.0", conn=c)
    assert c.closed()
    assert_queued(postern, qid, ALICE, ["bob@example.com", "carol@example.net"],
                  ALICE, MSG)


def test_pipelined_from_ehlo(postern, ssl_ctx):
    """The whole dialogue after TLS in one write: EHLO, AUTH PLAIN with an
    initial response, MAIL, RCPT, RCPT, DATA. Replies must come in order."""
    c = SMTP("127.0.0.1", postern.port("smtps"), ssl_ctx, implicit=True)
    c.greeting()
    c.send("EHLO client.example.test\r\n"
           "AUTH PLAIN " + plain_response(ALICE, USERS[ALICE]) + "\r\n"
           "MAIL FROM:<alice@example.test>\r\n"
           "RCPT TO:<bob@example.com>\r\n"
           "RCPT TO:<carol@example.net>\r\n"
           "DATA\r\n")
    expect(c.reply(), 250, conn=c)
    expect(c.reply(), 235, "2.7.0", conn=c)
    expect(c.reply(), 250, "2.1.0", conn=c)
    expect(c.reply(), 250, "2.1.5", conn=c)
    expect(c.reply(), 250, "2.1.5", conn=c)
    expect(c.reply(), 354, conn=c)
    c.send(dot_stuff(MSG) + b".\r\nQUIT\r\n")
    qid = queued_id(expect(c.reply(), 250, "2.0.0", conn=c).text)
    expect(c.reply(), 221, "2.0.0", conn=c)
    assert_queued(postern, qid, ALICE, ["bob@example.com", "carol@example.net"],
                  ALICE, MSG)


def test_pipelined_with_errors_in_the_middle(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    c.send("MAIL FROM:<alice@example.test>\r\n"
           "RCPT TO:<bob@@bad>\r\n"
           "RCPT TO:<carol@example.net>\r\n"
           "FROB\r\n"
           "DATA\r\n")
    expect(c.reply(), 250, "2.1.0", conn=c)
    expect(c.reply(), 501, "5.1.3", conn=c)
    expect(c.reply(), 250, "2.1.5", conn=c)
    expect(c.reply(), 502, "5.5.2", conn=c)
    expect(c.reply(), 354, conn=c)
    c.send(dot_stuff(MSG) + b".\r\n")
    qid = queued_id(expect(c.reply(), 250, "2.0.0", conn=c).text)
    c.close()
    assert_queued(postern, qid, ALICE, ["carol@example.net"], ALICE, MSG)


def test_many_messages_pipelined_on_one_session(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    msgs = []
    for i in range(10):
        m = make_message(ALICE, ["bob@example.com"], subject=f"batch {i}")
        msgs.append(m)
    ids = []
    for m in msgs:
        c.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        expect(c.reply(), 250, "2.1.0", conn=c)
        expect(c.reply(), 250, "2.1.5", conn=c)
        expect(c.reply(), 354, conn=c)
        c.send(dot_stuff(m) + b".\r\n")
        ids.append(queued_id(expect(c.reply(), 250, "2.0.0", conn=c).text))
    c.close()
    assert sorted(ids) == postern.queue_ids()
    for qid, m in zip(ids, msgs):
        assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, m)


# -- DATA content ------------------------------------------------------------

def test_bare_lf_in_data(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.cmd("DATA"), 354, conn=c)
    c.send(b"From: alice@example.test\r\nSubject: smuggle\r\n\r\nline\n.\nMAIL FROM:<x@y>\r\n.\r\n")
    expect(c.reply(), 521, "5.5.2", "bare", conn=c)
    assert c.closed(), c.dump()
    assert_nothing_queued(postern)


def test_bare_cr_in_data(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.cmd("DATA"), 354, conn=c)
    c.send(b"From: alice@example.test\r\nSubject: cr\r\n\r\nline\r.\r\n.\r\n")
    expect(c.reply(), 521, "5.5.2", conn=c)
    assert c.closed(), c.dump()
    assert_nothing_queued(postern)


def test_line_longer_than_998_in_data(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="long line",
                       body=b"short\r\n" + b"y" * 999 + b"\r\nafter\r\n")
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.data(msg), 550, "5.6.0", "998", conn=c)
    # the reply came after the final dot: the session is in step
    expect(c.cmd("NOOP"), 250, "2.0.0", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_line_of_exactly_998_is_fine(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    msg = make_message(ALICE, ["bob@example.com"], subject="998",
                       body=b"z" * 998 + b"\r\n")
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, msg)


def test_message_not_starting_with_headers(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    r = c.data(b"this is not a header\r\nFrom: alice@example.test\r\n\r\nbody\r\n")
    expect(r, 550, "5.6.0", "header", conn=c)
    assert_nothing_queued(postern, conns=[c])


def test_dot_stuffing_and_empty_lines_survive(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    body = b".\r\n..\r\n.x\r\n\r\n\r\nend\r\n"
    msg = make_message(ALICE, ["bob@example.com"], subject="dots", body=body)
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    stored = postern.message(qid)
    assert stored.endswith(msg), stored
    assert_queued(postern, qid, ALICE, ["bob@example.com"], ALICE, msg)


def test_headers_only_message(postern, ssl_ctx):
    """A message with a header section and no body at all."""
    c = smtps(postern, ssl_ctx, login=ALICE)
    msg = b"From: alice@example.test\r\nSubject: no body\r\n"
    qid = c.send_message(ALICE, ["bob@example.com"], msg)
    c.close()
    env = postern.envelope(qid)
    assert env.sender == ALICE
    stored = postern.message(qid)
    assert stored.startswith(b"Received:")
    assert b"Subject: no body\r\n" in stored


def test_8bitmime_and_smtputf8(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    msg = make_message(ALICE, ["jörg@exämple.de"], subject="utf8",
                       body="Grüße\r\n".encode())
    expect(c.cmd("MAIL FROM:<alice@example.test> BODY=8BITMIME SMTPUTF8"),
           250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<jörg@exämple.de>"), 250, "2.1.5", conn=c)
    qid = queued_id(expect(c.data(msg), 250, "2.0.0", conn=c).text)
    # without SMTPUTF8 a UTF-8 address is a syntax error
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    r = c.cmd("RCPT TO:<jörg@exämple.de>")
    assert r.code in (501, 553, 555) and (r.enh or "").startswith("5."), r
    c.close()
    assert_queued(postern, qid, ALICE, ["jörg@exämple.de"], ALICE, msg)
    assert postern.queue_ids() == [qid]


def test_quit_mid_transaction_queues_nothing(postern, ssl_ctx):
    c = smtps(postern, ssl_ctx, login=ALICE)
    expect(c.cmd("MAIL FROM:<alice@example.test>"), 250, "2.1.0", conn=c)
    expect(c.cmd("RCPT TO:<bob@example.com>"), 250, "2.1.5", conn=c)
    expect(c.cmd("DATA"), 354, conn=c)
    c.send(b"From: alice@example.test\r\nSubject: cut\r\n\r\nhalf a mess")
    time.sleep(0.2)
    assert_nothing_queued(postern, conns=[c])
    assert postern.alive()
