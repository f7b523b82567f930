/*
 * smtpc - the outbound SMTP client: one connection to one host, any
 * number of transactions over it, entirely on the libevent loop.
 *
 * The delivery layer (relay/deliver.c, later) picks the host and address
 * (MX order, routes, smarthost), opens a connection with smtpc_open(),
 * and once it is ready sends transactions with smtpc_send(), one at a
 * time, reusing the connection for further messages to the same host.
 * It never sees SMTP text: every outcome arrives as struct smtpc_reply.
 *
 * The protocol (RFC 5321, 3207, 2920, 1870, 6152, 6531, 4954):
 *   - greeting, EHLO (HELO when EHLO is refused with 5xx), STARTTLS when
 *     offered (SMTPC_TLS_OPPORTUNISTIC) or required (SMTPC_TLS_REQUIRE:
 *     no STARTTLS, or a failed handshake or verification, fails the
 *     connection), or TLS from the first byte (SMTPC_TLS_IMPLICIT, port
 *     465), then EHLO again over TLS;
 *   - AUTH PLAIN or LOGIN through Cyrus SASL's client side when
 *     credentials are given (smarthosts), only over TLS;
 *   - MAIL FROM with SIZE= (prepend_len + size) when the peer offers
 *     SIZE, BODY=8BITMIME when the message is 8-bit and the peer offers
 *     8BITMIME (without it the message is sent as it is, as Postfix
 *     does: converting it would break the DKIM signatures), SMTPUTF8
 *     when the message needs it;
 *   - with PIPELINING, MAIL, every RCPT and DATA go in one write and the
 *     replies are matched in order (RFC 2920); without it, lock-step;
 *   - the message is streamed from its file (never read whole), dot-
 *     stuffed, after the prepend bytes, ending with CRLF "." CRLF;
 *   - RSET between transactions only when one failed half-way.
 *
 * Decided here, before anything is sent, as local replies (local = true):
 *   - a message that needs SMTPUTF8 to a peer without it: 553 5.6.7
 *     (every recipient; permanent);
 *   - a message larger than the peer's SIZE: 552 5.3.4 (permanent);
 *   - a sender or recipient with control characters or angle brackets
 *     (it would inject commands): 553 5.1.7 for every recipient, or
 *     553 5.1.3 for that recipient and 451 4.3.0 (not sent) for the
 *     others.
 *
 * Timeouts (RFC 5321 section 4.5.3.2) are per step: connect, greeting
 * (5 min), EHLO/STARTTLS/AUTH/MAIL/RCPT (5 min), DATA initiation (2 min),
 * each data block written (3 min), the reply to the final "." (10 min).
 * A timeout or a lost connection is a local temporary failure (code 0).
 *
 * Lifetimes: the caller owns nothing of the connection but the pointer;
 * every callback gets the arg it was registered with. After the ready
 * callback reported a failure, or after a done callback reported that the
 * connection is no longer usable, the connection is already freed (it
 * may still be sending QUIT on its own: keep the event base running
 * until it is done, as after smtpc_quit()). The process must ignore
 * SIGPIPE (daemon/daemon.c does). As STYLE.md lesson 7 says, arg should be an id
 * the caller looks up, not a pointer to an object that may be gone.
 */
#ifndef POSTERN_SMTPC_H
#define POSTERN_SMTPC_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct event_base;
struct smtpc;

enum smtpc_tls {
	SMTPC_TLS_NONE,		/* never STARTTLS (tests, trusted routes) */
	SMTPC_TLS_OPPORTUNISTIC,/* STARTTLS when offered, certificate not
				   required to verify (logged) */
	SMTPC_TLS_REQUIRE,	/* STARTTLS required, certificate verified */
	SMTPC_TLS_IMPLICIT,	/* TLS from connect (465), verified */
};

/* A reply, the server's or our own. */
struct smtpc_reply {
	int	 code;		/* 250, 451, 550...; 0 when there was no reply
				   (connect failure, timeout, lost connection,
				   TLS failure): temporary */
	char	 enhanced[12];	/* "5.1.1", or "" when the server gave none */
	char	*text;		/* one line, printable ASCII: the server's lines
				   joined with " ", or our explanation */
	bool	 local;		/* true: generated here, not the server's */
};

/* smtpc_reply_temporary - true for 4xx and code 0 */
bool	smtpc_reply_temporary(const struct smtpc_reply *);

/* Timeouts in milliseconds; 0 in a field means the RFC 5321 default. */
struct smtpc_timeouts {
	unsigned	connect;	/* default 30 s */
	unsigned	greeting;	/* 300 s */
	unsigned	command;	/* EHLO, STARTTLS, AUTH, MAIL, RCPT: 300 s */
	unsigned	data_init;	/* reply to DATA: 120 s */
	unsigned	data_block;	/* progress while writing: 180 s */
	unsigned	data_term;	/* reply to the final ".": 600 s */
};

struct smtpc_params {
	const struct sockaddr *addr;	/* where to connect, port set */
	socklen_t	 addrlen;
	const struct sockaddr *source;	/* bind before connect, or NULL */
	socklen_t	 sourcelen;
	const char	*helo;		/* our EHLO name (config hostname) */
	const char	*peer_name;	/* the host's name (MX target or
					   smarthost): SNI, the name verified,
					   and the text of replies; NULL for
					   an address literal */
	enum smtpc_tls	 tls;
	bool		 no_verify;	/* REQUIRE and IMPLICIT: encrypt, but
					   only record whether the certificate
					   verifies (a smarthost configured
					   with verify = false) */
	SSL_CTX		*ssl_ctx;	/* from smtpc_tls_ctx(); caller owns;
					   unused with SMTPC_TLS_NONE */
	const char	*auth_login;	/* AUTH PLAIN/LOGIN; NULL: no AUTH */
	const char	*auth_password;	/* copied; never logged */
	struct smtpc_timeouts timeouts;
};

/* What the ready callback learns about the peer. */
struct smtpc_peer {
	bool		 esmtp;		/* EHLO accepted (else HELO) */
	bool		 tls;		/* the session is encrypted */
	bool		 verified;	/* certificate chain and name verified */
	const char	*tls_version;	/* "TLSv1.3", or NULL */
	const char	*cipher;	/* or NULL */
	bool		 pipelining, eightbitmime, smtputf8;
	uint64_t	 size;		/* SIZE limit, 0 if none advertised */
};

/*
 * smtpc_ready_cb - the connection is ready for transactions (r is NULL,
 * peer set) or has failed (r set, peer NULL; the connection is freed).
 * next_host is true when RFC 5321 section 5.1 says to try the next MX:
 * connect failure, timeout, or a 4xx/5xx greeting... and also TLS
 * failures under SMTPC_TLS_REQUIRE (the next host may do better).
 * A refused AUTH gives the server's reply as it is, with next_host only
 * for a 4xx; whether a 5xx defers or bounces (Postfix's soft_bounce) is
 * the caller's decision.
 */
typedef void (*smtpc_ready_cb)(void *arg, struct smtpc *conn,
    const struct smtpc_peer *peer, const struct smtpc_reply *r,
    bool next_host);

/*
 * smtpc_open - start connecting. The ready callback runs later, never
 * from inside this call. Returns the connection, or NULL with *err (newly
 * allocated) when nothing could be started (bad parameters, no socket).
 */
struct smtpc	*smtpc_open(struct event_base *, const struct smtpc_params *,
		    smtpc_ready_cb, void *arg, char **err);

/* One transaction: a queued message for some of its recipients. */
struct smtpc_txn {
	const char	*sender;	/* envelope sender, "" for <> */
	const char *const *rcpts;	/* nrcpts addresses, "local@domain" */
	size_t		 nrcpts;
	int		 fd;		/* the queue file (queue/queue.c's
					   queue/ID); the caller keeps it
					   open until done */
	off_t		 start;		/* where the message starts in fd */
	uint64_t	 size;		/* the message's bytes from there */
	const char	*prepend;	/* bytes sent before fd's (the DKIM
					   signatures), or NULL */
	size_t		 prepend_len;
	bool		 body_8bit;	/* the body has 8-bit bytes */
	bool		 smtputf8;	/* needs SMTPUTF8 (UTF-8 addresses or
					   headers) */
};

/*
 * smtpc_done_cb - the outcome of one transaction. rcpt[i] is the outcome
 * of txn->rcpts[i]: the reply to its RCPT if that was refused, else the
 * reply to the end of data (or to MAIL, or DATA, when those failed; or
 * the local reply). A recipient is delivered exactly when its reply's
 * code is 2xx. usable tells whether further transactions may be sent on
 * conn; when false, conn has been freed. The arrays are valid only during
 * the call.
 */
typedef void (*smtpc_done_cb)(void *arg, struct smtpc *conn,
    const struct smtpc_reply *rcpt, size_t nrcpts, bool usable);

/*
 * smtpc_send - start one transaction on a ready connection with no
 * transaction in progress; txn's strings and fd must stay valid until
 * the done callback. Returns 0, or -1 (busy or not ready: nothing sent,
 * no callback). A connection the server closed while it was idle is
 * reported here: 0, then a done callback with code 0 and usable false.
 */
int	smtpc_send(struct smtpc *, const struct smtpc_txn *txn,
	    smtpc_done_cb, void *arg);

/* smtpc_quit - send QUIT (best effort) and free the connection once it
   is answered or after a short timeout; no callback runs afterwards */
void	smtpc_quit(struct smtpc *);

/* smtpc_abort - close and free now; no callback runs afterwards */
void	smtpc_abort(struct smtpc *);

/*
 * smtpc_tls_ctx - a client SSL_CTX: TLS 1.2 or later, peer verification
 * against cafile (PEM; NULL: the system's trust store). NULL with *err
 * (newly allocated) on failure.
 */
SSL_CTX	*smtpc_tls_ctx(const char *cafile, char **err);

#endif /* POSTERN_SMTPC_H */
