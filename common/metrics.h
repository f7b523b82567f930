/*
 * metrics - what the daemon counts, and the HTTP listener that serves it
 * to Prometheus (the `metrics` group of the configuration)
 *
 * A fixed set: the counters are an enum (no registration at run time),
 * each rendered under one or more metric families with a fixed label
 * value (metrics.c's table); the gauges are set just before rendering by
 * the caller's refresh callback (sessions, queue size and age, asked from
 * their owners at scrape time), except the DNS drift gauge, one series
 * per hosted domain and record, set by the watcher as its answers come;
 * the two histograms have fixed buckets.
 * Counters only grow and start at zero when the daemon starts.
 *
 * Threads: the counters may be counted from any thread (relaxed atomic
 * adds: DKIM signatures are counted where they are made, which may be a
 * signing worker); gauges and histograms only on the event loop thread
 * (their completions run there), so nothing here locks.
 *
 * The listener (metrics_http_start) answers GET /metrics with the
 * Prometheus text format 0.0.4, 404 for any other path and 405 for any
 * other method on /metrics; requests are bounded (header and body sizes,
 * a timeout). It is bound before the daemon drops privileges. It has no
 * authentication: keep it on loopback, or firewall it.
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stdint.h>
#include <time.h>

struct buf;
struct event_base;
struct metrics_http;

enum metric {
	/* connections, TLS, AUTH */
	M_CONNECTIONS,			/* sessions started */
	M_REFUSED_CONNECTIONS,		/* limits.connections */
	M_REFUSED_CONNECTIONS_PER_IP,	/* limits.connections_per_ip */
	M_REFUSED_CONNECTION_RATE,	/* limits.connection_rate_per_ip */
	M_REFUSED_AUTH_LOCKOUT,		/* address locked after failed AUTH */
	M_REFUSED_LOCAL_USER,		/* local socket: no local_senders */
	M_TLS_HANDSHAKES,		/* completed (STARTTLS or implicit) */
	M_TLS_HANDSHAKE_FAILURES,	/* session ended in the handshake */
	M_AUTH_SUCCESS,
	M_AUTH_FAILURE,			/* wrong credentials */
	M_AUTH_LOCKED,			/* refused: locked out */

	/* messages: accepted, and MAIL, RCPT or data refused, by reason
	   (which refusal counts under which reason: the reply table,
	   submit/reply.c; nothing here knows the replies) */
	M_ACCEPTED,
	M_REJECT_AUTH_REQUIRED,		/* MAIL without AUTH */
	M_REJECT_SENDER,		/* sender or From: not allowed, the
					   null sender */
	M_REJECT_RATE_LIMIT,		/* the login's messages or
					   recipients per hour or day */
	M_REJECT_RECIPIENT_FLOOD,	/* limits.recipient_messages_per_hour */
	M_REJECT_TOO_MANY_RECIPIENTS,	/* limits.recipients */
	M_REJECT_SIZE,			/* limits.message_size */
	M_REJECT_HEADER,		/* header section too large or
					   malformed, From: count or syntax */
	M_REJECT_CONTENT,		/* line over 998, bare CR or LF */
	M_REJECT_SYNTAX,		/* MAIL or RCPT parameters */
	M_REJECT_DNS_DOMAIN,		/* RCPT domain: NXDOMAIN, null MX */
	M_REJECT_QUEUE_SPACE,		/* limits.queue_min_free */
	M_REJECT_INTERNAL,		/* queue write, commit or signing
					   failed */
	M_REJECT_OTHER,			/* none today: kept so the series
					   stays in the exposition */

	/* delivery */
	M_RCPT_DELIVERED,
	M_RCPT_DEFERRED,		/* each deferred attempt */
	M_RCPT_BOUNCED,			/* failed for good (5xx, expired) */
	M_BOUNCES_SENT,			/* DSNs queued */

	/* DKIM signatures made (submissions and bounces) */
	M_DKIM_RSA_SHA256,
	M_DKIM_ED25519_SHA256,

	/* limits hit that have no counter above */
	M_LIMIT_USER_MESSAGES,		/* a MAIL refused */
	M_LIMIT_USER_RECIPIENTS,	/* a RCPT refused */
	M_LIMIT_RECIPIENT_FLOOD,	/* a RCPT refused */
	M_LIMIT_BOUNCES,		/* a bounce held for the next hour */
	M_LIMIT_AUTH_LOCKOUT,		/* an address or login locked out */

	M_NCOUNTERS
};

enum metric_gauge {
	MG_SESSIONS,			/* open connections */
	MG_QUEUE_MESSAGES,		/* messages in the queue */
	MG_QUEUE_OLDEST_AGE,		/* seconds since the oldest was
					   accepted; 0 when empty */
	MG_NGAUGES
};

enum metric_histogram {
	MH_ACCEPT_LATENCY,		/* end of DATA to 250, seconds */
	MH_DELIVERY_LATENCY,		/* accepted to delivered, seconds,
					   per recipient */
	MH_NHISTOGRAMS
};

#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

void		 metrics_inc(enum metric);
void		 metrics_add(enum metric, uint64_t);
uint64_t	 metrics_get(enum metric);
void		 metrics_gauge_set(enum metric_gauge, double);
void		 metrics_observe(enum metric_histogram, double seconds);

/*
 * The DNS drift watch's gauge (keys/dnswatch.h):
 * postern_dns_record_ok{domain="D",record="spf|dkim|dmarc"}, 1 when the
 * published record matches, 0 when it drifted. A series exists from its
 * first set on; metrics_dns_record_clear() removes every series (a new
 * watcher after a reload sets its own again). Loop thread only. The
 * strings are copied.
 */
void		 metrics_dns_record_set(const char *domain, const char *record,
		    int ok);
void		 metrics_dns_record_clear(void);

/* metrics_now - a monotonic clock in seconds, for latencies */
double		 metrics_now(void);

/* metrics_age - wall-clock seconds since t (never negative) */
double		 metrics_age(time_t t);

/* metrics_reset - every counter, gauge and histogram back to zero */
void		 metrics_reset(void);

/*
 * metrics_render - append the Prometheus text exposition of everything
 * to out. 0, or -1 if out's limit was reached (out is then incomplete).
 */
int		 metrics_render(struct buf *out);

/* metrics_escape - append s to out escaped for the text format: a
   label value (quoted: \\, \" and \n) or HELP text (\\ and \n) */
int		 metrics_escape(struct buf *out, const char *s, int label);

/*
 * metrics_http_start - listen on address (numeric) and port; each GET
 * /metrics calls refresh(arg) first, then renders. NULL with *err (newly
 * allocated) if the address cannot be bound.
 */
struct metrics_http *metrics_http_start(struct event_base *,
		    const char *address, unsigned port,
		    void (*refresh)(void *), void *arg, char **err);
void		 metrics_http_free(struct metrics_http *);

#endif
