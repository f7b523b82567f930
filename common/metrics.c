/*
 * metrics - counters, gauges and histograms, their Prometheus text
 * exposition and its HTTP listener; see metrics.h.
 */
#include <sys/time.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"

#define METRICS_MAX_OUTPUT	(1024 * 1024)	/* far more than we render */
#define HTTP_MAX_HEADERS	8192		/* bytes of request headers */
#define HTTP_MAX_BODY		1024		/* bytes of request body */
#define HTTP_TIMEOUT		10		/* seconds per request */
#define HIST_MAX_BUCKETS	16

/* One metric family: HELP and TYPE once, then its series. */
struct family {
	const char	*name;
	const char	*type;		/* "counter", "gauge", "histogram" */
	const char	*label;		/* label name, or NULL */
	const char	*help;
};

enum {
	F_CONNECTIONS,
	F_REFUSED,
	F_TLS,
	F_AUTH,
	F_ACCEPTED,
	F_REJECTED,
	F_RECIPIENTS,
	F_BOUNCES,
	F_DKIM,
	F_LIMITS,
	F_NFAMILIES
};

static const struct family families[F_NFAMILIES] = {
	[F_CONNECTIONS] = { "postern_connections_total", "counter", NULL,
	    "Client connections accepted (network listeners and the local "
	    "socket)." },
	[F_REFUSED] = { "postern_connections_refused_total", "counter",
	    "reason", "Connections refused before a session started, by "
	    "reason." },
	[F_TLS] = { "postern_tls_handshakes_total", "counter", "result",
	    "Server TLS handshakes (STARTTLS and implicit TLS): completed, "
	    "or the session ended during the handshake." },
	[F_AUTH] = { "postern_auth_total", "counter", "result",
	    "SMTP AUTH outcomes: success, failure (wrong credentials) and "
	    "locked (refused during a lockout)." },
	[F_ACCEPTED] = { "postern_messages_accepted_total", "counter", NULL,
	    "Messages committed to the queue (250 after DATA)." },
	[F_REJECTED] = { "postern_messages_rejected_total", "counter",
	    "reason", "MAIL, RCPT or message data refused, by reason (one "
	    "per refusal reply)." },
	[F_RECIPIENTS] = { "postern_recipients_total", "counter", "outcome",
	    "Delivery outcomes per recipient: delivered, deferred (each "
	    "attempt) and bounced (failed for good)." },
	[F_BOUNCES] = { "postern_bounces_sent_total", "counter", NULL,
	    "Delivery status notifications queued for senders." },
	[F_DKIM] = { "postern_dkim_signatures_total", "counter", "algorithm",
	    "DKIM signatures made, by algorithm." },
	[F_LIMITS] = { "postern_limit_hits_total", "counter", "limit",
	    "Times a configured limit refused or held something back (for "
	    "auth_lockout: lockouts started)." },
};

/* One series: a counter under a family with a fixed label value. A
   counter may appear under two families (a refusal that is also a limit
   hit). */
struct series {
	int		 family;
	const char	*value;		/* label value, NULL if no label */
	enum metric	 counter;
};

static const struct series series[] = {
	{ F_CONNECTIONS,	NULL,			M_CONNECTIONS },
	{ F_REFUSED,	"connections",		M_REFUSED_CONNECTIONS },
	{ F_REFUSED,	"connections_per_ip",	M_REFUSED_CONNECTIONS_PER_IP },
	{ F_REFUSED,	"connection_rate",	M_REFUSED_CONNECTION_RATE },
	{ F_REFUSED,	"auth_lockout",		M_REFUSED_AUTH_LOCKOUT },
	{ F_REFUSED,	"local_user",		M_REFUSED_LOCAL_USER },
	{ F_TLS,	"success",		M_TLS_HANDSHAKES },
	{ F_TLS,	"failure",		M_TLS_HANDSHAKE_FAILURES },
	{ F_AUTH,	"success",		M_AUTH_SUCCESS },
	{ F_AUTH,	"failure",		M_AUTH_FAILURE },
	{ F_AUTH,	"locked",		M_AUTH_LOCKED },
	{ F_ACCEPTED,	NULL,			M_ACCEPTED },
	{ F_REJECTED,	"auth_required",	M_REJECT_AUTH_REQUIRED },
	{ F_REJECTED,	"sender_not_owned",	M_REJECT_SENDER },
	{ F_REJECTED,	"rate_limit",		M_REJECT_RATE_LIMIT },
	{ F_REJECTED,	"recipient_flood",	M_REJECT_RECIPIENT_FLOOD },
	{ F_REJECTED,	"too_many_recipients",	M_REJECT_TOO_MANY_RECIPIENTS },
	{ F_REJECTED,	"size",			M_REJECT_SIZE },
	{ F_REJECTED,	"header",		M_REJECT_HEADER },
	{ F_REJECTED,	"content",		M_REJECT_CONTENT },
	{ F_REJECTED,	"syntax",		M_REJECT_SYNTAX },
	{ F_REJECTED,	"dns_domain",		M_REJECT_DNS_DOMAIN },
	{ F_REJECTED,	"queue_space",		M_REJECT_QUEUE_SPACE },
	{ F_REJECTED,	"internal_error",	M_REJECT_INTERNAL },
	{ F_REJECTED,	"other",		M_REJECT_OTHER },
	{ F_RECIPIENTS,	"delivered",		M_RCPT_DELIVERED },
	{ F_RECIPIENTS,	"deferred",		M_RCPT_DEFERRED },
	{ F_RECIPIENTS,	"bounced",		M_RCPT_BOUNCED },
	{ F_BOUNCES,	NULL,			M_BOUNCES_SENT },
	{ F_DKIM,	"rsa-sha256",		M_DKIM_RSA_SHA256 },
	{ F_DKIM,	"ed25519-sha256",	M_DKIM_ED25519_SHA256 },
	{ F_LIMITS,	"connections",		M_REFUSED_CONNECTIONS },
	{ F_LIMITS,	"connections_per_ip",	M_REFUSED_CONNECTIONS_PER_IP },
	{ F_LIMITS,	"connection_rate",	M_REFUSED_CONNECTION_RATE },
	{ F_LIMITS,	"auth_lockout",		M_LIMIT_AUTH_LOCKOUT },
	{ F_LIMITS,	"user_messages",	M_LIMIT_USER_MESSAGES },
	{ F_LIMITS,	"user_recipients",	M_LIMIT_USER_RECIPIENTS },
	{ F_LIMITS,	"recipient_flood",	M_LIMIT_RECIPIENT_FLOOD },
	{ F_LIMITS,	"bounces",		M_LIMIT_BOUNCES },
	{ F_LIMITS,	"queue_space",		M_REJECT_QUEUE_SPACE },
	{ F_LIMITS,	"message_size",		M_REJECT_SIZE },
	{ F_LIMITS,	"recipients",		M_REJECT_TOO_MANY_RECIPIENTS },
};

#define NSERIES	(sizeof(series) / sizeof(series[0]))

static const struct {
	const char	*name;
	const char	*help;
} gauges[MG_NGAUGES] = {
	[MG_SESSIONS] = { "postern_sessions",
	    "Client sessions open now." },
	[MG_QUEUE_MESSAGES] = { "postern_queue_messages",
	    "Messages in the queue (bounces included)." },
	[MG_QUEUE_OLDEST_AGE] = { "postern_queue_oldest_age_seconds",
	    "Seconds since the oldest queued message was accepted; 0 when "
	    "the queue is empty." },
};

static const double accept_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
static const double delivery_bounds[] = {
	1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400, 432000,
};

static const struct {
	const char	*name;
	const char	*help;
	const double	*bounds;
	size_t		 nbounds;
} histograms[MH_NHISTOGRAMS] = {
	[MH_ACCEPT_LATENCY] = { "postern_accept_latency_seconds",
	    "From the end of a message's data to its 250 (signing and the "
	    "queue commit).", accept_bounds,
	    sizeof(accept_bounds) / sizeof(accept_bounds[0]) },
	[MH_DELIVERY_LATENCY] = { "postern_delivery_latency_seconds",
	    "From acceptance to delivery, per delivered recipient.",
	    delivery_bounds,
	    sizeof(delivery_bounds) / sizeof(delivery_bounds[0]) },
};

/* What the histograms hold: counts per bucket (not cumulative; the last
   one is past every bound), the sum and the count. */
struct hist {
	uint64_t	 buckets[HIST_MAX_BUCKETS + 1];
	double		 sum;
	uint64_t	 count;
};

static _Atomic uint64_t	counters[M_NCOUNTERS];	/* any thread */
static double		gauge_values[MG_NGAUGES];

/* postern_dns_record_ok's series, in the order first set */
#define DNS_RECORD_GAUGE	"postern_dns_record_ok"
struct dns_record_series {
	char	*domain;
	char	*record;
	int	 ok;
};
static struct dns_record_series	*dns_records;
static size_t			 ndns_records;
static struct hist	hists[MH_NHISTOGRAMS];

struct metrics_http {
	struct evhttp	*http;
	void		(*refresh)(void *);
	void		*arg;
};

/* metrics_inc, metrics_add, metrics_get - the counters */
void
metrics_inc(enum metric m)
{
	if ((unsigned)m < M_NCOUNTERS)
		atomic_fetch_add_explicit(&counters[m], 1,
		    memory_order_relaxed);
}

void
metrics_add(enum metric m, uint64_t n)
{
	if ((unsigned)m < M_NCOUNTERS)
		atomic_fetch_add_explicit(&counters[m], n,
		    memory_order_relaxed);
}

uint64_t
metrics_get(enum metric m)
{
	return (unsigned)m < M_NCOUNTERS ? atomic_load_explicit(&counters[m],
	    memory_order_relaxed) : 0;
}

/* metrics_gauge_set - a gauge's current value */
void
metrics_gauge_set(enum metric_gauge g, double v)
{
	if ((unsigned)g < MG_NGAUGES)
		gauge_values[g] = v;
}

/* metrics_observe - one value into a histogram (negative: 0) */
void
metrics_observe(enum metric_histogram h, double v)
{
	struct hist *st;
	size_t i, n;

	if ((unsigned)h >= MH_NHISTOGRAMS)
		return;
	st = &hists[h];
	n = histograms[h].nbounds;
	if (!(v > 0))
		v = 0;		/* and NaN */
	for (i = 0; i < n && v > histograms[h].bounds[i]; i++)
		;
	st->buckets[i]++;
	st->sum += v;
	st->count++;
}

/* metrics_now - CLOCK_MONOTONIC in seconds */
double
metrics_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* metrics_age - seconds since t, by the wall clock */
double
metrics_age(time_t t)
{
	struct timeval tv;
	double d;

	gettimeofday(&tv, NULL);
	d = (double)(tv.tv_sec - t) + (double)tv.tv_usec / 1e6;
	return d > 0 ? d : 0;
}

/* metrics_dns_record_set - one series of the drift gauge */
void
metrics_dns_record_set(const char *domain, const char *record, int ok)
{
	struct dns_record_series *e;
	size_t i;

	for (i = 0; i < ndns_records; i++) {
		e = &dns_records[i];
		if (strcmp(e->domain, domain) == 0 &&
		    strcmp(e->record, record) == 0) {
			e->ok = ok != 0;
			return;
		}
	}
	dns_records = xreallocarray(dns_records, ndns_records + 1,
	    sizeof(*dns_records));
	e = &dns_records[ndns_records++];
	e->domain = xstrdup(domain);
	e->record = xstrdup(record);
	e->ok = ok != 0;
}

/* metrics_dns_record_clear - no series of the drift gauge */
void
metrics_dns_record_clear(void)
{
	size_t i;

	for (i = 0; i < ndns_records; i++) {
		free(dns_records[i].domain);
		free(dns_records[i].record);
	}
	free(dns_records);
	dns_records = NULL;
	ndns_records = 0;
}

/* metrics_reset - back to zero */
void
metrics_reset(void)
{
	size_t i;

	for (i = 0; i < M_NCOUNTERS; i++)
		atomic_store(&counters[i], 0);
	memset(gauge_values, 0, sizeof(gauge_values));
	memset(hists, 0, sizeof(hists));
	metrics_dns_record_clear();
}

/* metrics_escape - s for a label value (label) or a HELP line */
int
metrics_escape(struct buf *out, const char *s, int label)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		const char *rep = NULL;
		char c = *p;

		if (c == '\\')
			rep = "\\\\";
		else if (c == '\n')
			rep = "\\n";
		else if (c == '"' && label)
			rep = "\\\"";
		if ((rep != NULL ? buf_puts(out, rep) :
		    buf_append(out, &c, 1)) == -1)
			return -1;
	}
	return 0;
}

/* render_head - the HELP and TYPE lines of one family */
static int
render_head(struct buf *out, const char *name, const char *type,
    const char *help)
{
	if (buf_printf(out, "# HELP %s ", name) == -1 ||
	    metrics_escape(out, help, 0) == -1 ||
	    buf_printf(out, "\n# TYPE %s %s\n", name, type) == -1)
		return -1;
	return 0;
}

/* render_value - a float as the text format writes it */
static int
render_value(struct buf *out, double v)
{
	return buf_printf(out, "%.15g\n", v);
}

/* render_family - HELP, TYPE and every series of counter family f */
static int
render_family(struct buf *out, int f)
{
	const struct family *fm = &families[f];
	size_t i;

	if (render_head(out, fm->name, fm->type, fm->help) == -1)
		return -1;
	for (i = 0; i < NSERIES; i++) {
		if (series[i].family != f)
			continue;
		if (buf_puts(out, fm->name) == -1)
			return -1;
		if (fm->label != NULL && series[i].value != NULL &&
		    (buf_printf(out, "{%s=\"", fm->label) == -1 ||
		    metrics_escape(out, series[i].value, 1) == -1 ||
		    buf_puts(out, "\"}") == -1))
			return -1;
		if (buf_printf(out, " %" PRIu64 "\n",
		    metrics_get(series[i].counter)) == -1)
			return -1;
	}
	return 0;
}

/* render_histogram - cumulative buckets, +Inf, sum and count */
static int
render_histogram(struct buf *out, enum metric_histogram h)
{
	const struct hist *st = &hists[h];
	const char *name = histograms[h].name;
	uint64_t cum = 0;
	size_t i;

	if (render_head(out, name, "histogram", histograms[h].help) == -1)
		return -1;
	for (i = 0; i < histograms[h].nbounds; i++) {
		cum += st->buckets[i];
		if (buf_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		    histograms[h].bounds[i], cum) == -1)
			return -1;
	}
	cum += st->buckets[i];
	if (buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name,
	    cum) == -1 || buf_printf(out, "%s_sum ", name) == -1 ||
	    render_value(out, st->sum) == -1 ||
	    buf_printf(out, "%s_count %" PRIu64 "\n", name, st->count) == -1)
		return -1;
	return 0;
}

/* render_dns_records - the drift gauge: HELP and TYPE always, then a
   series per domain and record checked so far */
static int
render_dns_records(struct buf *out)
{
	size_t i;

	if (render_head(out, DNS_RECORD_GAUGE, "gauge", "1 when the "
	    "domain's published record (record: spf, dkim for every active "
	    "and retiring selector, dmarc) matches what `postern keys dns` "
	    "prints, 0 when it drifted; checked every dkim_check_interval.")
	    == -1)
		return -1;
	for (i = 0; i < ndns_records; i++)
		if (buf_puts(out, DNS_RECORD_GAUGE "{domain=\"") == -1 ||
		    metrics_escape(out, dns_records[i].domain, 1) == -1 ||
		    buf_puts(out, "\",record=\"") == -1 ||
		    metrics_escape(out, dns_records[i].record, 1) == -1 ||
		    buf_printf(out, "\"} %d\n", dns_records[i].ok) == -1)
			return -1;
	return 0;
}

/* metrics_render - the whole exposition */
int
metrics_render(struct buf *out)
{
	int f;
	size_t g, h;

	for (f = 0; f < F_NFAMILIES; f++)
		if (render_family(out, f) == -1)
			return -1;
	for (g = 0; g < MG_NGAUGES; g++)
		if (render_head(out, gauges[g].name, "gauge",
		    gauges[g].help) == -1 ||
		    buf_printf(out, "%s ", gauges[g].name) == -1 ||
		    render_value(out, gauge_values[g]) == -1)
			return -1;
	if (render_dns_records(out) == -1)
		return -1;
	for (h = 0; h < MH_NHISTOGRAMS; h++)
		if (render_histogram(out, (enum metric_histogram)h) == -1)
			return -1;
	return 0;
}

/* ---- the HTTP listener ---- */

/* http_refuse - a short plain-text error (evhttp_send_error would drop
   the Allow header) */
static void
http_refuse(struct evhttp_request *req, int code, const char *reason,
    const char *allow)
{
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer *body;

	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, code, reason);
		return;
	}
	evbuffer_add_printf(body, "%d %s\n", code, reason);
	evhttp_add_header(hdrs, "Content-Type", "text/plain; charset=utf-8");
	if (allow != NULL)
		evhttp_add_header(hdrs, "Allow", allow);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

/* metrics_http_cb - every request: GET /metrics, or 404 / 405 */
static void
metrics_http_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_http *mh = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer *body;
	struct buf b;

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		http_refuse(req, HTTP_NOTFOUND, "Not Found", NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		http_refuse(req, HTTP_BADMETHOD, "Method Not Allowed", "GET");
		return;
	}
	if (mh->refresh != NULL)
		mh->refresh(mh->arg);
	buf_init(&b, METRICS_MAX_OUTPUT);
	if (metrics_render(&b) == -1 || (body = evbuffer_new()) == NULL) {
		log_warnx("metrics: cannot render the exposition");
		buf_free(&b);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(body, b.data, b.len);
	buf_free(&b);
	evhttp_add_header(hdrs, "Content-Type", METRICS_CONTENT_TYPE);
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

/* metrics_http_start - bind address:port and serve */
struct metrics_http *
metrics_http_start(struct event_base *base, const char *address,
    unsigned port, void (*refresh)(void *), void *arg, char **err)
{
	struct metrics_http *mh = xcalloc(1, sizeof(*mh));

	*err = NULL;
	mh->refresh = refresh;
	mh->arg = arg;
	if ((mh->http = evhttp_new(base)) == NULL) {
		*err = xstrdup("metrics: cannot create the HTTP server");
		free(mh);
		return NULL;
	}
	/* every method reaches the callback, which answers 405 */
	evhttp_set_allowed_methods(mh->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(mh->http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(mh->http, HTTP_MAX_BODY);
	evhttp_set_timeout(mh->http, HTTP_TIMEOUT);
	evhttp_set_gencb(mh->http, metrics_http_cb, mh);
	errno = 0;
	if (evhttp_bind_socket_with_handle(mh->http, address,
	    (ev_uint16_t)port) == NULL) {
		*err = xasprintf("metrics listener %s:%u: %s", address, port,
		    errno ? strerror(errno) : "cannot bind");
		evhttp_free(mh->http);
		free(mh);
		return NULL;
	}
	log_info("metrics listen address=%s port=%u path=/metrics", address,
	    port);
	return mh;
}

/* metrics_http_free - stop listening; NULL is fine */
void
metrics_http_free(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	evhttp_free(mh->http);
	free(mh);
}
