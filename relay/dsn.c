/*
 * dsn - delivery status notifications; see dsn.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "keys/dkim.h"
#include "keys/keyring.h"
#include "relay/dsn.h"
#include "common/msghdr.h"

#define DSN_MAX		(8 * 1024 * 1024)	/* bytes of notification */

/*
 * dsn_original_headers - the original message's header section as it
 * was sent (the signatures, then the message file's header section), at
 * most max bytes and cut at a line end, appended to b
 */
static int
dsn_original_headers(struct queue *q, const struct envelope *e, size_t max,
    struct buf *b)
{
	char *text;
	size_t len = 0, end, cut;
	ssize_t n;
	int fd;

	if ((fd = queue_open_message(q, e->id)) == -1)
		return -1;
	text = xmalloc(max + 1);
	while (len < max && (n = pread(fd, text + len, max - len,
	    (off_t)len)) > 0)
		len += (size_t)n;
	close(fd);
	if ((end = msghdr_end(text, len)) > 0)
		cut = end - 2;		/* keep one CRLF of the CRLFCRLF */
	else {
		/* Cut at the last line end we have. */
		for (cut = len; cut > 0 && text[cut - 1] != '\n'; cut--)
			;
	}
	if (e->prepend != NULL)
		(void)buf_append(b, e->prepend, e->prepend_len);
	(void)buf_append(b, text, cut);
	free(text);
	return 0;
}

/* dsn_domain - the hosted domain that signs for the sender's domain */
static const struct domain_config *
dsn_domain(const struct config *cfg, const char *sender)
{
	const char *at = strrchr(sender, '@');

	return at ? config_signing_domain(cfg, at + 1) : NULL;
}

/* dsn_header - the notification's header section */
static void
dsn_header(const struct config *cfg, const struct envelope *e,
    const char *domain, const char *boundary, time_t now, struct buf *b)
{
	char date[64];

	(void)buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n"
	    "Date: %s\r\n", domain, e->sender, msghdr_date(now, date));
	(void)msghdr_add_message_id(b, e->id, cfg->hostname);
	(void)buf_printf(b, "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "\r\n", boundary);
}

/* dsn_body - the three parts of the report */
static void
dsn_body(const struct config *cfg, struct queue *q,
    const struct envelope *e, const char *boundary, struct buf *b)
{
	const struct envelope_rcpt *r;
	char date[64];
	size_t i;

	(void)buf_printf(b, "This is a MIME-encapsulated message.\r\n\r\n"
	    "--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is the mail system at host %s.\r\n\r\n"
	    "Your message could not be delivered to one or more recipients.\r\n"
	    "It was given up on for good, so it will not be tried again.\r\n"
	    "The reasons are below; the headers of your message are "
	    "attached.\r\n\r\n", boundary, cfg->hostname);
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		if (r->status == RCPT_FAILED)
			(void)buf_printf(b, "<%s>: %03d %s %s\r\n", r->addr,
			    r->code, r->enhanced[0] ? r->enhanced : "-",
			    r->text ? r->text : "no reason recorded");
	}
	(void)buf_printf(b, "\r\n--%s\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\n"
	    "X-Postern-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n", boundary, cfg->hostname, e->id,
	    msghdr_date(e->time, date));
	for (i = 0; i < e->nrcpts; i++) {
		r = &e->rcpts[i];
		if (r->status != RCPT_FAILED)
			continue;
		(void)buf_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n"
		    "Action: failed\r\n"
		    "Status: %s\r\n", r->addr, r->enhanced[0] == '5' ?
		    r->enhanced : "5.0.0");
		if (r->code >= 200)
			(void)buf_printf(b, "Diagnostic-Code: smtp; %03d %s%s"
			    "%s\r\n", r->code, r->enhanced, r->enhanced[0] ?
			    " " : "", r->text ? r->text : "");
		else if (r->text != NULL)
			(void)buf_printf(b, "Diagnostic-Code: X-Postern; %s\r\n",
			    r->text);
	}
	(void)buf_printf(b, "\r\n--%s\r\n"
	    "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n\r\n", boundary);
	if (dsn_original_headers(q, e, cfg->limits.header_size, b) == -1)
		(void)buf_printf(b, "X-Postern-Note: the original message "
		    "could not be read\r\n");
	(void)buf_printf(b, "\r\n--%s--\r\n", boundary);
}

/* dsn_sign - DKIM signatures of hdr+body with domain's active keys */
static int
dsn_sign(const struct keyring *kr, const struct domain_config *d,
    const struct buf *hdr, const struct buf *body, struct buf *sigs,
    char **err)
{
	const struct keyfile *const *keys;
	struct dkim_signer *s;
	size_t nkeys;
	int rc;

	keys = keyring_keys(kr, d, &nkeys);
	if ((s = dkim_signer_new(keys, nkeys, keyring_headers(kr, d), 0,
	    err)) == NULL)
		return -1;
	if (dkim_signer_headers(s, hdr->data, hdr->len) == -1 ||
	    dkim_signer_body(s, body->data, body->len) == -1) {
		*err = xstrdup(dkim_signer_error(s) ? dkim_signer_error(s) :
		    "signing failed");
		dkim_signer_free(s);
		return -1;
	}
	rc = dkim_signer_finish(s, sigs, err);
	dkim_signer_free(s);
	return rc;
}

/* dsn_queue - write, sign and commit the notification */
int
dsn_queue(const struct config *cfg, const struct keyring *kr,
    struct queue *q, const struct envelope *e, queue_commit_cb *cb,
    uint64_t cookie, char **err)
{
	const struct domain_config *d;
	struct queue_msg *m;
	struct envelope de;
	struct buf hdr, body, sigs;
	char *boundary;
	size_t i, nfailed = 0;
	time_t now = time(NULL);
	int rc = -1;

	*err = NULL;
	for (i = 0; i < e->nrcpts; i++)
		if (e->rcpts[i].status == RCPT_FAILED)
			nfailed++;
	if (e->sender[0] == '\0' || nfailed == 0) {
		*err = xstrdup(e->sender[0] == '\0' ? "the null sender gets no "
		    "bounce" : "no failed recipient");
		return -1;
	}
	if ((d = dsn_domain(cfg, e->sender)) == NULL) {
		*err = xasprintf("sender <%s> is not in a hosted domain",
		    e->sender);
		return -1;
	}
	boundary = xasprintf("%s/%s", e->id, cfg->hostname);
	buf_init(&hdr, 16384);
	buf_init(&body, DSN_MAX);
	buf_init(&sigs, ENVELOPE_PREPEND_MAX);
	dsn_header(cfg, e, d->name, boundary, now, &hdr);
	dsn_body(cfg, q, e, boundary, &body);
	if (dsn_sign(kr, d, &hdr, &body, &sigs, err) == -1)
		goto out;
	if ((m = queue_msg_new(q)) == NULL) {
		*err = xasprintf("queue: %s", strerror(errno));
		goto out;
	}
	if (queue_msg_write(m, hdr.data, hdr.len) == -1 ||
	    queue_msg_write(m, body.data, body.len) == -1) {
		*err = xasprintf("queue: %s", strerror(errno));
		queue_msg_abort(m);
		goto out;
	}
	memset(&de, 0, sizeof(de));
	de.time = now;
	de.sender = xstrdup("");
	de.client = xstrdup("127.0.0.1");
	de.helo = xstrdup(cfg->hostname);
	for (i = 0; i < body.len && !de.body_8bit; i++)
		if ((unsigned char)body.data[i] >= 0x80)
			de.body_8bit = true;
	de.prepend = xmalloc(sigs.len);
	memcpy(de.prepend, sigs.data, sigs.len);
	de.prepend_len = sigs.len;
	envelope_add_rcpt(&de, e->sender);
	if (queue_msg_commit(m, &de, cb, cookie) == -1)
		*err = xasprintf("queue: %s", strerror(errno));
	else
		rc = 0;
	envelope_free(&de);
out:
	buf_free(&hdr);
	buf_free(&body);
	buf_free(&sigs);
	free(boundary);
	return rc;
}
