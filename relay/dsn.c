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
#include "common/msghdr.h"
#include "config/principal.h"
#include "relay/dsn.h"

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
	off_t start;
	ssize_t n;
	int fd;

	if ((fd = queue_open_message(q, e->id, &start)) == -1)
		return -1;
	if (max > e->size)
		max = (size_t)e->size;	/* the envelope follows the message */
	text = xmalloc(max + 1);
	while (len < max && (n = pread(fd, text + len, max - len,
	    start + (off_t)len)) > 0)
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

/* dsn_queue - write the notification and inject it */
int
dsn_queue(const struct config *cfg, const struct keyring *kr,
    struct inject *inj, struct queue *q, const struct envelope *e,
    time_t now, inject_done_fn *cb, uint64_t cookie, char **err)
{
	const struct domain_config *d;
	struct inject_params p;
	struct principal relay;
	struct inject_msg *m;
	struct buf hdr, body;
	char *boundary, *rcpt;
	const char *detail;
	size_t i, nfailed = 0;
	bool body_8bit = false;
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
	dsn_header(cfg, e, d->name, boundary, now, &hdr);
	dsn_body(cfg, q, e, boundary, &body);
	for (i = 0; i < body.len && !body_8bit; i++)
		if ((unsigned char)body.data[i] >= 0x80)
			body_8bit = true;

	/* From the relay itself, to the sender only; signed by the domain
	   of its From: (MAILER-DAEMON@ the sender's hosted domain). */
	principal_relay(&relay);
	rcpt = e->sender;
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	p.keys = kr;
	p.who = &relay;
	p.sender = "";
	p.rcpts = &rcpt;
	p.nrcpts = 1;
	p.client = "127.0.0.1";
	p.helo = cfg->hostname;
	p.body_8bit = body_8bit;
	p.time = now;
	if ((m = inject_begin(inj, &p)) == NULL) {
		*err = xasprintf("queue: %s", strerror(errno));
		goto out;
	}
	(void)inject_write(m, hdr.data, hdr.len);
	(void)inject_write(m, body.data, body.len);
	if (inject_end(m, cb, cookie, &detail) != INJECT_OK)
		*err = xasprintf("%s", detail);
	else
		rc = 0;
out:
	buf_free(&hdr);
	buf_free(&body);
	free(boundary);
	return rc;
}
