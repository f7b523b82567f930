/*
 * test_dns - common/dns: the TXT and MX rdata parsers as got/want tables,
 * address literals and argument checks against a resolver that nobody
 * answers (so any DNS query would show), then real lookups, synchronous
 * and asynchronous (a real event_base), against dnsmasq started here on
 * 127.0.0.1 with a free port and killed by PID at the end. Without
 * /usr/sbin/dnsmasq the live tests are skipped loudly.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/dns.h"
#include "dns_server.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define ROOT_KEY	"/usr/share/dns/root.key"	/* dns-root-data */

static pid_t	 dnsmasq_pid = -1;
static char	 resolver[64];		/* "127.0.0.1@PORT" */
static char	 long_value[301];	/* 300 bytes, served as 255 + 45 */

/* ---- the parser ---- */

static const struct {
	const char	*what;
	const char	*rdata;
	size_t		 len;
	int		 rc;
	const char	*want;
} parse_cases[] = {
	{ "one string", "\005hello", 6, 0, "hello" },
	{ "two strings", "\003abc\003def", 8, 0, "abcdef" },
	{ "three with space", "\002v=\005DKIM1\001;", 11, 0, "v=DKIM1;" },
	{ "empty string", "\000", 1, 0, "" },
	{ "empty between", "\001a\000\001b", 5, 0, "ab" },
	{ "zero-length rdata", "", 0, -1, NULL },
	{ "length past end", "\006hello", 6, -1, NULL },
	{ "second length past end", "\001a\002b", 4, -1, NULL },
	{ "length byte alone at end", "\001a\001", 3, -1, NULL },
	{ "max length 255 over 1", "\377x", 2, -1, NULL },
	{ "NUL inside", "\003a\000b", 4, -1, NULL },
};

/* test_parse_table - every row: return code and value */
static void
test_parse_table(void **state)
{
	size_t i;
	char *out;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		out = (char *)0x1;
		rc = dns_txt_parse((const unsigned char *)parse_cases[i].rdata,
		    parse_cases[i].len, &out);
		if (rc != parse_cases[i].rc)
			fail_msg("%s: rc got %d want %d", parse_cases[i].what,
			    rc, parse_cases[i].rc);
		if (parse_cases[i].want == NULL) {
			if (out != NULL)
				fail_msg("%s: out not NULL", parse_cases[i].what);
			continue;
		}
		if (out == NULL || strcmp(out, parse_cases[i].want) != 0)
			fail_msg("%s: got \"%s\" want \"%s\"",
			    parse_cases[i].what, out ? out : "(null)",
			    parse_cases[i].want);
		free(out);
	}
}

/* test_parse_long - 255 + 255 + 2 bytes concatenate to 512 */
static void
test_parse_long(void **state)
{
	unsigned char rdata[3 + 512];
	char *out;

	(void)state;
	rdata[0] = 255;
	memset(rdata + 1, 'a', 255);
	rdata[256] = 255;
	memset(rdata + 257, 'b', 255);
	rdata[512] = 2;
	rdata[513] = 'c';
	rdata[514] = 'c';
	assert_int_equal(dns_txt_parse(rdata, sizeof(rdata), &out), 0);
	assert_int_equal(strlen(out), 512);
	assert_int_equal(out[0], 'a');
	assert_int_equal(out[255], 'b');
	assert_string_equal(out + 510, "cc");
	free(out);
	/* Every shorter prefix but the string boundaries is malformed. */
	assert_int_equal(dns_txt_parse(rdata, 256, &out), 0);
	free(out);
	assert_int_equal(dns_txt_parse(rdata, 255, &out), -1);
	assert_int_equal(dns_txt_parse(rdata, 257, &out), -1);
}

/* ---- the MX parser ---- */

static const struct {
	const char	*what;
	const char	*rdata;
	size_t		 len;
	int		 rc;
	unsigned	 pref;
	const char	*want;
} mx_parse_cases[] = {
	{ "simple", "\000\012\002mx\007example\003org\000", 18, 0, 10,
	    "mx.example.org" },
	{ "uppercase lowered", "\000\005\002MX\003Org\000", 10, 0, 5,
	    "mx.org" },
	{ "root: null MX", "\000\000\000", 3, 0, 0, "." },
	{ "root, preference 10", "\000\012\000", 3, 0, 10, "." },
	{ "max preference", "\377\377\001a\000", 5, 0, 65535, "a" },
	{ "preference 256", "\001\000\001a\000", 5, 0, 256, "a" },
	{ "digits hyphen underscore", "\000\001\006_a-1Z9\000", 10, 0, 1,
	    "_a-1z9" },
	{ "empty rdata", "", 0, -1, 0, NULL },
	{ "one byte", "\000", 1, -1, 0, NULL },
	{ "preference only", "\000\012", 2, -1, 0, NULL },
	{ "no root label", "\000\012\001a", 4, -1, 0, NULL },
	{ "label past end", "\000\012\005ab\000", 6, -1, 0, NULL },
	{ "length byte is last", "\000\012\001a\001", 5, -1, 0, NULL },
	{ "compression pointer", "\000\012\300\014", 4, -1, 0, NULL },
	{ "pointer after a label", "\000\012\001a\300\014", 6, -1, 0,
	    NULL },
	{ "label type 0x40", "\000\012\100\000", 4, -1, 0, NULL },
	{ "label type 0x80", "\000\012\200\000", 4, -1, 0, NULL },
	{ "bytes after the name", "\000\012\001a\000x", 6, -1, 0, NULL },
	{ "root then a byte", "\000\012\000\000", 4, -1, 0, NULL },
	{ "space", "\000\012\003a b\000", 7, -1, 0, NULL },
	{ "dot inside a label", "\000\012\003a.b\000", 7, -1, 0, NULL },
	{ "NUL inside a label", "\000\012\003a\000b\000", 7, -1, 0, NULL },
	{ "UTF-8", "\000\012\002\303\251\000", 6, -1, 0, NULL },
	{ "star", "\000\012\001*\000", 5, -1, 0, NULL },
	{ "slash", "\000\012\003a/b\000", 7, -1, 0, NULL },
	{ "newline", "\000\012\002a\n\000", 6, -1, 0, NULL },
	{ "DEL", "\000\012\001\177\000", 5, -1, 0, NULL },
};

/* test_mx_parse_table - every row: return code, preference and name */
static void
test_mx_parse_table(void **state)
{
	unsigned pref;
	size_t i;
	char *name;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(mx_parse_cases) / sizeof(mx_parse_cases[0]);
	    i++) {
		name = (char *)0x1;
		rc = dns_mx_parse((const unsigned char *)
		    mx_parse_cases[i].rdata, mx_parse_cases[i].len, &pref,
		    &name);
		if (rc != mx_parse_cases[i].rc)
			fail_msg("%s: rc got %d want %d",
			    mx_parse_cases[i].what, rc, mx_parse_cases[i].rc);
		if (mx_parse_cases[i].want == NULL) {
			if (name != NULL)
				fail_msg("%s: name not NULL",
				    mx_parse_cases[i].what);
			continue;
		}
		if (name == NULL || strcmp(name, mx_parse_cases[i].want) != 0)
			fail_msg("%s: got \"%s\" want \"%s\"",
			    mx_parse_cases[i].what, name ? name : "(null)",
			    mx_parse_cases[i].want);
		if (pref != mx_parse_cases[i].pref)
			fail_msg("%s: preference got %u want %u",
			    mx_parse_cases[i].what, pref,
			    mx_parse_cases[i].pref);
		free(name);
	}
}

/*
 * mx_rdata - build MX rdata (preference 7) from label lengths, each label
 * of 'a'..; returns its length. rdata must hold 2 + 256 + 64 bytes.
 */
static size_t
mx_rdata(unsigned char *rdata, const size_t *labels, size_t nlabels)
{
	size_t off = 2, i;

	rdata[0] = 0;
	rdata[1] = 7;
	for (i = 0; i < nlabels; i++) {
		rdata[off++] = (unsigned char)labels[i];
		memset(rdata + off, 'a' + (int)(i % 26), labels[i]);
		off += labels[i];
	}
	rdata[off++] = 0;
	return off;
}

/* mx_parse_rc - dns_mx_parse's return code; frees the name */
static int
mx_parse_rc(const unsigned char *rdata, size_t len, size_t *namelen)
{
	unsigned pref;
	char *name;
	int rc;

	rc = dns_mx_parse(rdata, len, &pref, &name);
	if (rc == 0) {
		assert_int_equal(pref, 7);
		if (namelen != NULL)
			*namelen = strlen(name);
		free(name);
	} else
		assert_null(name);
	return rc;
}

/* test_mx_parse_limits - 63-byte labels, 255-byte names, truncations */
static void
test_mx_parse_limits(void **state)
{
	static const size_t l63[] = { 63 }, l64[] = { 64 };
	static const size_t w255[] = { 63, 63, 63, 61 };	/* wire: 255 */
	static const size_t w256[] = { 63, 63, 63, 62 };
	unsigned char rdata[2 + 256 + 64];
	size_t ones[128], len, namelen, i;

	(void)state;
	len = mx_rdata(rdata, l63, 1);
	assert_int_equal(mx_parse_rc(rdata, len, &namelen), 0);
	assert_int_equal(namelen, 63);
	len = mx_rdata(rdata, l64, 1);
	assert_int_equal(mx_parse_rc(rdata, len, NULL), -1);

	len = mx_rdata(rdata, w255, 4);
	assert_int_equal(len, 2 + 255);
	assert_int_equal(mx_parse_rc(rdata, len, &namelen), 0);
	assert_int_equal(namelen, 253);
	/* Every truncation of it runs past the end. */
	for (i = 0; i < len; i++)
		if (mx_parse_rc(rdata, i, NULL) != -1)
			fail_msg("prefix of %zu bytes accepted", i);
	len = mx_rdata(rdata, w256, 4);
	assert_int_equal(mx_parse_rc(rdata, len, NULL), -1);

	/* 127 one-byte labels are 255 bytes on the wire; 128 are 257. */
	for (i = 0; i < 128; i++)
		ones[i] = 1;
	len = mx_rdata(rdata, ones, 127);
	assert_int_equal(mx_parse_rc(rdata, len, &namelen), 0);
	assert_int_equal(namelen, 253);
	len = mx_rdata(rdata, ones, 128);
	assert_int_equal(mx_parse_rc(rdata, len, NULL), -1);
}

/* ---- dnsmasq ---- */

/* start_dnsmasq - serve the test records; 0, or -1 to skip */
static int
start_dnsmasq(void **state)
{
	char portarg[32], longarg[400];
	int port;

	(void)state;
	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "# SKIP: %s is missing (apt-get install "
		    "dnsmasq-base): live DNS tests skipped\n", DNSMASQ);
		return 0;
	}
	memset(long_value, 'x', 255);
	memset(long_value + 255, 'y', 45);
	long_value[300] = '\0';
	snprintf(longarg, sizeof(longarg), "--txt-record=long.example.test,"
	    "%.255s,%s", long_value, long_value + 255);
	port = free_udp_port();
	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", port);
	if ((dnsmasq_pid = fork()) == -1)
		return -1;
	if (dnsmasq_pid == 0) {
		execl(DNSMASQ, DNSMASQ, "--no-daemon", "--conf-file=/dev/null",
		    "--pid-file=", "--no-resolv", "--no-hosts", portarg,
		    "--listen-address=127.0.0.1", "--bind-interfaces",
		    "--local=/test/",
		    "--txt-record=one.example.test,hello world",
		    "--txt-record=multi.example.test,v=spf1 ,-all",
		    "--txt-record=two.example.test,first",
		    "--txt-record=two.example.test,second",
		    "--host-record=host.example.test,127.0.0.2",
		    /* MX, given out of order */
		    "--mx-host=mx.example.test,c.example.test,30",
		    "--mx-host=mx.example.test,a.example.test,10",
		    "--mx-host=mx.example.test,b.example.test,20",
		    "--mx-host=eq.example.test,x.example.test,10",
		    "--mx-host=eq.example.test,y.example.test,10",
		    "--mx-host=eq.example.test,z.example.test,5",
		    "--mx-host=nullmx.example.test,.,0",
		    "--mx-host=mixed.example.test,.,0",
		    "--mx-host=mixed.example.test,real.example.test,5",
		    "--mx-host=dup.example.test,a.example.test,20",
		    "--mx-host=dup.example.test,a.example.test,10",
		    "--mx-host=dup.example.test,b.example.test,15",
		    /* raw MX rdata: 10 MX.Upper.Test, 10 "a b", 0 . */
		    "--dns-rr=upper.example.test,15,000a024d5805557070657204"
		    "5465737400",
		    "--dns-rr=badmx.example.test,15,000a0361206200",
		    "--dns-rr=somebad.example.test,15,000a0361206200",
		    "--mx-host=somebad.example.test,good.example.test,20",
		    "--dns-rr=halfnull.example.test,15,000000",
		    "--dns-rr=halfnull.example.test,15,000a0361206200",
		    /* addresses */
		    "--host-record=both.example.test,127.0.0.3,::3",
		    "--host-record=v4.example.test,127.0.0.4",
		    "--host-record=v6.example.test,::6",
		    "--host-record=pair.example.test,127.0.0.5,::5",
		    "--host-record=pair.example.test,127.0.0.6,::6",
		    longarg, (char *)NULL);
		_exit(127);
	}
	/* Ready once it holds the port (poll, no sleep of fixed length). */
	return server_wait(&dnsmasq_pid, port, "dnsmasq");
}

/* stop_dnsmasq - kill our dnsmasq by its PID */
static int
stop_dnsmasq(void **state)
{
	(void)state;
	server_stop(&dnsmasq_pid);
	return 0;
}

/* ---- synchronous ---- */

/* test_new_bad_resolver - a bad address is refused with a reason */
static void
test_new_bad_resolver(void **state)
{
	struct dns *d;
	char *err = NULL;

	(void)state;
	d = dns_new("not-an-address@x", NULL, &err);
	assert_null(d);
	assert_non_null(err);
	assert_non_null(strstr(err, "not-an-address@x"));
	free(err);
}

/* sync_one - dns_txt_sync name: status, and the values joined by "|" */
static enum dns_status
sync_one(const char *name, char *joined, size_t size)
{
	struct dns *d;
	enum dns_status st;
	char *err = NULL, **txts;
	size_t n, i;

	d = dns_new(resolver, NULL, &err);
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	assert_int_equal(dns_txt_sync(d, name, &txts, &n, &st, NULL), 0);
	joined[0] = '\0';
	if (st == DNS_OK)
		assert_true(n >= 1);
	else {
		assert_null(txts);
		assert_int_equal(n, 0);
	}
	for (i = 0; i < n; i++) {
		if (i > 0)
			strncat(joined, "|", size - strlen(joined) - 1);
		strncat(joined, txts[i], size - strlen(joined) - 1);
	}
	dns_txts_free(txts, n);
	dns_free(d);
	return st;
}

/* test_sync - found, split strings, several records, NXDOMAIN, no data */
static void
test_sync(void **state)
{
	char got[1024];

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	assert_int_equal(sync_one("one.example.test", got, sizeof(got)),
	    DNS_OK);
	assert_string_equal(got, "hello world");
	assert_int_equal(sync_one("multi.example.test", got, sizeof(got)),
	    DNS_OK);
	assert_string_equal(got, "v=spf1 -all");
	assert_int_equal(sync_one("long.example.test", got, sizeof(got)),
	    DNS_OK);
	assert_int_equal(strlen(got), 300);
	assert_string_equal(got, long_value);
	assert_int_equal(sync_one("two.example.test", got, sizeof(got)),
	    DNS_OK);
	assert_true(strcmp(got, "first|second") == 0 ||
	    strcmp(got, "second|first") == 0);
	assert_int_equal(sync_one("nx.example.test", got, sizeof(got)),
	    DNS_NXDOMAIN);
	assert_int_equal(sync_one("host.example.test", got, sizeof(got)),
	    DNS_NODATA);
	/* dnsmasq has no upstream for other names: REFUSED. */
	assert_int_equal(sync_one("postern.example", got, sizeof(got)),
	    DNS_TEMPFAIL);
}

/* ---- asynchronous ---- */

struct want {
	const char	*name;
	enum dns_status	 st;
	const char	*value;		/* the single value, or NULL */
	int		 done;
};

static struct want wants[] = {
	{ "one.example.test", DNS_OK, "hello world", 0 },
	{ "long.example.test", DNS_OK, NULL /* long_value */, 0 },
	{ "nx.example.test", DNS_NXDOMAIN, NULL, 0 },
	{ "host.example.test", DNS_NODATA, NULL, 0 },
	{ "multi.example.test", DNS_OK, "v=spf1 -all", 0 },	/* cancelled */
};
#define NWANTS		(sizeof(wants) / sizeof(wants[0]))
#define CANCELLED	(NWANTS - 1)

static struct event_base *base;
static int	 outstanding;

/* async_cb - check one answer against its want row; stop when all done */
static void
async_cb(void *arg, enum dns_status st, char **txts, size_t n,
    const struct dns_sec *sec)
{
	struct want *w = arg;
	const char *want;

	assert_int_equal(sec->level, DNS_INSECURE);	/* no anchor */
	w->done++;
	if (st != w->st)
		fail_msg("%s: status %s want %s", w->name,
		    dns_status_name(st), dns_status_name(w->st));
	if (st == DNS_OK) {
		want = w->value != NULL ? w->value : long_value;
		assert_int_equal(n, 1);
		assert_string_equal(txts[0], want);
	} else
		assert_int_equal(n, 0);
	if (--outstanding == 0)
		event_base_loopexit(base, NULL);
}

/* test_async - lookups on a real event_base; a cancelled one never calls */
static void
test_async(void **state)
{
	struct dns *d;
	char *err = NULL;
	size_t i;
	int id;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	assert_non_null(base = event_base_new());
	assert_non_null(d = dns_new(resolver, NULL, &err));
	assert_int_equal(dns_txt(d, "one.example.test", async_cb, &wants[0]),
	    -1);			/* not attached yet */
	assert_int_equal(dns_attach(d, base), 0);
	outstanding = 0;
	for (i = 0; i < NWANTS; i++) {
		id = dns_txt(d, wants[i].name, async_cb, &wants[i]);
		assert_true(id > 0);
		if (i == CANCELLED)
			dns_cancel(d, id);
		else
			outstanding++;
	}
	dns_cancel(d, 999999);		/* unknown: ignored */
	/* Never called back from inside dns_txt. */
	for (i = 0; i < NWANTS; i++)
		assert_int_equal(wants[i].done, 0);
	loop_for(base, 10);
	for (i = 0; i < NWANTS; i++)
		if (wants[i].done != (i == CANCELLED ? 0 : 1))
			fail_msg("%s: called back %d times", wants[i].name,
			    wants[i].done);

	/* A lookup left pending is dropped by dns_free without a call. */
	wants[0].done = 0;
	assert_true(dns_txt(d, "one.example.test", async_cb, &wants[0]) > 0);
	dns_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(wants[0].done, 0);
	event_base_free(base);
}

/* ---- MX and addresses ---- */

/* One lookup's answer as the callback saw it. */
struct got {
	int		 done;		/* callbacks so far */
	enum dns_status	 st;
	size_t		 n;
	char		 text[512];	/* "10 a.example.test,20 b..." */
};

/*
 * got_done - one more answer in; stop the loop after the last. The live
 * resolver validates from the root key (as the daemon does by default):
 * names under test. stay insecure, never bogus.
 */
static void
got_done(struct got *g, enum dns_status st, size_t n,
    const struct dns_sec *sec)
{
	if (sec->level != DNS_INSECURE)
		fail_msg("answer %s (%s), want insecure",
		    dns_security_name(sec->level), sec->why);
	g->done++;
	g->st = st;
	g->n = n;
	if (--outstanding == 0)
		event_base_loopexit(base, NULL);
}

/* mx_cb - record an MX answer as "pref name" joined by "," */
static void
mx_cb(void *arg, enum dns_status st, const struct dns_mx *hosts, size_t n,
    const struct dns_sec *sec)
{
	struct got *g = arg;
	size_t i, len;

	g->text[0] = '\0';
	for (i = 0; i < n; i++) {
		len = strlen(g->text);
		snprintf(g->text + len, sizeof(g->text) - len, "%s%u %s%s",
		    i > 0 ? "," : "", hosts[i].pref, hosts[i].name,
		    hosts[i].implicit ? " implicit" : "");
	}
	got_done(g, st, n, sec);
}

/*
 * addrs_cb - record addresses joined by ","; a nonzero port or a family
 * that does not match the address shows as "BAD" in the text.
 */
static void
addrs_cb(void *arg, enum dns_status st, const struct sockaddr_storage *addrs,
    size_t n, const struct dns_sec *sec)
{
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	struct got *g = arg;
	char ip[INET6_ADDRSTRLEN];
	size_t i, len;

	g->text[0] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(ip, sizeof(ip), "BAD");
		if (addrs[i].ss_family == AF_INET6) {
			sin6 = (const struct sockaddr_in6 *)&addrs[i];
			if (sin6->sin6_port == 0)
				inet_ntop(AF_INET6, &sin6->sin6_addr, ip,
				    sizeof(ip));
		} else if (addrs[i].ss_family == AF_INET) {
			sin = (const struct sockaddr_in *)&addrs[i];
			if (sin->sin_port == 0)
				inet_ntop(AF_INET, &sin->sin_addr, ip,
				    sizeof(ip));
		}
		len = strlen(g->text);
		snprintf(g->text + len, sizeof(g->text) - len, "%s%s",
		    i > 0 ? "," : "", ip);
	}
	got_done(g, st, n, sec);
}

/* never_mx_cb - a cancelled or freed lookup must not call back */
static void
never_mx_cb(void *arg, enum dns_status st, const struct dns_mx *hosts,
    size_t n, const struct dns_sec *sec)
{
	(void)sec;
	(void)st;
	(void)hosts;
	(void)n;
	((struct got *)arg)->done++;
}

/* never_addrs_cb - the same for address lookups */
static void
never_addrs_cb(void *arg, enum dns_status st,
    const struct sockaddr_storage *addrs, size_t n,
    const struct dns_sec *sec)
{
	(void)sec;
	(void)st;
	(void)addrs;
	(void)n;
	((struct got *)arg)->done++;
}

/* never_txt_cb - the same for TXT lookups */
static void
never_txt_cb(void *arg, enum dns_status st, char **txts, size_t n,
    const struct dns_sec *sec)
{
	(void)sec;
	(void)st;
	(void)txts;
	(void)n;
	((struct got *)arg)->done++;
}

/* check_got - one answer, with the wanted status and text (or alt) */
static void
check_got(const char *what, const struct got *g, enum dns_status st,
    const char *want, const char *alt)
{
	if (g->done != 1)
		fail_msg("%s: called back %d times", what, g->done);
	if (g->st != st)
		fail_msg("%s: status %s want %s", what, dns_status_name(g->st),
		    dns_status_name(st));
	if (st != DNS_OK && g->n != 0)
		fail_msg("%s: %zu results with status %s", what, g->n,
		    dns_status_name(st));
	if (strcmp(g->text, want) != 0 &&
	    (alt == NULL || strcmp(g->text, alt) != 0))
		fail_msg("%s: got \"%s\" want \"%s\"", what, g->text, want);
}

/* live_dns - a resolver on dnsmasq, attached to a new base */
static struct dns *
live_dns(void)
{
	struct dns *d;
	char *err = NULL;

	assert_non_null(base = event_base_new());
	if ((d = dns_new(resolver, ROOT_KEY, &err)) == NULL)
		fail_msg("dns_new: %s", err);
	assert_int_equal(dns_attach(d, base), 0);
	return d;
}

static const struct {
	const char	*domain;
	enum dns_status	 st;
	const char	*want;
} mx_cases[] = {
	{ "mx.example.test", DNS_OK,
	    "10 a.example.test,20 b.example.test,30 c.example.test" },
	{ "MX.Example.TEST.", DNS_OK,
	    "10 a.example.test,20 b.example.test,30 c.example.test" },
	{ "upper.example.test", DNS_OK, "10 mx.upper.test" },
	{ "nullmx.example.test", DNS_NULL_MX, "" },
	{ "mixed.example.test", DNS_OK, "5 real.example.test" },
	{ "dup.example.test", DNS_OK, "10 a.example.test,15 b.example.test" },
	{ "host.example.test", DNS_OK, "0 host.example.test implicit" },
	{ "Host.Example.Test.", DNS_OK, "0 host.example.test implicit" },
	{ "nx.example.test", DNS_NXDOMAIN, "" },
	{ "badmx.example.test", DNS_TEMPFAIL, "" },
	{ "somebad.example.test", DNS_OK, "20 good.example.test" },
	{ "halfnull.example.test", DNS_TEMPFAIL, "" },
	/* dnsmasq has no upstream for other names: REFUSED. */
	{ "postern.example", DNS_TEMPFAIL, "" },
};
#define NMX	(sizeof(mx_cases) / sizeof(mx_cases[0]))

/* test_mx - every MX case at once on a real loop */
static void
test_mx(void **state)
{
	struct got got[NMX];
	struct dns *d;
	size_t i;
	int id;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	d = live_dns();
	memset(got, 0, sizeof(got));
	outstanding = 0;
	for (i = 0; i < NMX; i++) {
		id = dns_mx(d, mx_cases[i].domain, mx_cb, &got[i]);
		if (id <= 0)
			fail_msg("%s: dns_mx returned %d", mx_cases[i].domain,
			    id);
		outstanding++;
	}
	for (i = 0; i < NMX; i++)
		assert_int_equal(got[i].done, 0);	/* not from inside */
	loop_for(base, 10);
	for (i = 0; i < NMX; i++)
		check_got(mx_cases[i].domain, &got[i], mx_cases[i].st,
		    mx_cases[i].want, NULL);
	dns_free(d);
	event_base_free(base);
}

#define NEQ	64

/* test_mx_equal_random - equal preferences come in both orders */
static void
test_mx_equal_random(void **state)
{
	static const char xy[] = "5 z.example.test,10 x.example.test,"
	    "10 y.example.test";
	static const char yx[] = "5 z.example.test,10 y.example.test,"
	    "10 x.example.test";
	struct got got[NEQ];
	struct dns *d;
	size_t i, nxy = 0, nyx = 0;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	d = live_dns();
	memset(got, 0, sizeof(got));
	outstanding = 0;
	for (i = 0; i < NEQ; i++) {
		assert_true(dns_mx(d, "eq.example.test", mx_cb, &got[i]) > 0);
		outstanding++;
	}
	loop_for(base, 10);
	for (i = 0; i < NEQ; i++) {
		check_got("eq.example.test", &got[i], DNS_OK, xy, yx);
		if (strcmp(got[i].text, xy) == 0)
			nxy++;
		else
			nyx++;
	}
	/* Each order is missing by chance with probability 2^-64. */
	if (nxy == 0 || nyx == 0)
		fail_msg("orders: x first %zu, y first %zu of %d", nxy, nyx,
		    NEQ);
	dns_free(d);
	event_base_free(base);
}

#define BOTH	(DNS_INET4 | DNS_INET6)

static const struct {
	const char	*host;
	int		 families;
	enum dns_status	 st;
	const char	*want;
	const char	*alt;	/* the other order within a family */
} addrs_cases[] = {
	{ "both.example.test", BOTH, DNS_OK, "::3,127.0.0.3", NULL },
	{ "Both.Example.Test.", BOTH, DNS_OK, "::3,127.0.0.3", NULL },
	{ "both.example.test", DNS_INET4, DNS_OK, "127.0.0.3", NULL },
	{ "both.example.test", DNS_INET6, DNS_OK, "::3", NULL },
	{ "v4.example.test", BOTH, DNS_OK, "127.0.0.4", NULL },
	{ "v4.example.test", DNS_INET4, DNS_OK, "127.0.0.4", NULL },
	{ "v4.example.test", DNS_INET6, DNS_NODATA, "", NULL },
	{ "v6.example.test", BOTH, DNS_OK, "::6", NULL },
	{ "v6.example.test", DNS_INET6, DNS_OK, "::6", NULL },
	{ "v6.example.test", DNS_INET4, DNS_NODATA, "", NULL },
	{ "pair.example.test", DNS_INET6, DNS_OK, "::5,::6", "::6,::5" },
	{ "pair.example.test", DNS_INET4, DNS_OK, "127.0.0.5,127.0.0.6",
	    "127.0.0.6,127.0.0.5" },
	{ "mx.example.test", BOTH, DNS_NODATA, "", NULL },
	{ "nx.example.test", BOTH, DNS_NXDOMAIN, "", NULL },
	{ "nx.example.test", DNS_INET4, DNS_NXDOMAIN, "", NULL },
	{ "postern.example", BOTH, DNS_TEMPFAIL, "", NULL },
	{ "postern.example", DNS_INET6, DNS_TEMPFAIL, "", NULL },
	/* literals: answered without DNS (dnsmasq would refuse them) */
	{ "127.0.0.9", BOTH, DNS_OK, "127.0.0.9", NULL },
	{ "::9", BOTH, DNS_OK, "::9", NULL },
};
#define NADDRS	(sizeof(addrs_cases) / sizeof(addrs_cases[0]))

/* test_addrs - every address case at once on a real loop */
static void
test_addrs(void **state)
{
	struct got got[NADDRS];
	struct dns *d;
	size_t i;
	int id;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	d = live_dns();
	memset(got, 0, sizeof(got));
	outstanding = 0;
	for (i = 0; i < NADDRS; i++) {
		id = dns_addrs(d, addrs_cases[i].host,
		    addrs_cases[i].families, addrs_cb, &got[i]);
		if (id <= 0)
			fail_msg("%s: dns_addrs returned %d",
			    addrs_cases[i].host, id);
		outstanding++;
	}
	for (i = 0; i < NADDRS; i++)
		assert_int_equal(got[i].done, 0);	/* not from inside */
	loop_for(base, 10);
	for (i = 0; i < NADDRS; i++)
		check_got(addrs_cases[i].host, &got[i], addrs_cases[i].st,
		    addrs_cases[i].want, addrs_cases[i].alt);
	dns_free(d);
	event_base_free(base);
}

/* test_addrs_pair - two of each family: IPv6 first, each family whole */
static void
test_addrs_pair(void **state)
{
	struct got got;
	struct dns *d;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	d = live_dns();
	memset(&got, 0, sizeof(got));
	outstanding = 1;
	assert_true(dns_addrs(d, "pair.example.test", BOTH, addrs_cb,
	    &got) > 0);
	loop_for(base, 10);
	assert_int_equal(got.done, 1);
	assert_int_equal(got.st, DNS_OK);
	assert_int_equal(got.n, 4);
	if (strcmp(got.text, "::5,::6,127.0.0.5,127.0.0.6") != 0 &&
	    strcmp(got.text, "::6,::5,127.0.0.5,127.0.0.6") != 0 &&
	    strcmp(got.text, "::5,::6,127.0.0.6,127.0.0.5") != 0 &&
	    strcmp(got.text, "::6,::5,127.0.0.6,127.0.0.5") != 0)
		fail_msg("got \"%s\"", got.text);
	dns_free(d);
	event_base_free(base);
}

/*
 * test_cancel_live - cancelled MX, address (both families, one family,
 * a literal) and TXT lookups never call back, while a lookup started
 * after them is answered; ids are distinct across kinds.
 */
static void
test_cancel_live(void **state)
{
	struct timeval grace = { 0, 200000 };
	struct got never, sentinel;
	struct dns *d;
	int ids[6], i, j;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	d = live_dns();
	memset(&never, 0, sizeof(never));
	memset(&sentinel, 0, sizeof(sentinel));
	ids[0] = dns_mx(d, "mx.example.test", never_mx_cb, &never);
	ids[1] = dns_addrs(d, "both.example.test", BOTH, never_addrs_cb,
	    &never);
	ids[2] = dns_addrs(d, "both.example.test", DNS_INET4,
	    never_addrs_cb, &never);
	ids[3] = dns_addrs(d, "127.0.0.1", BOTH, never_addrs_cb, &never);
	ids[4] = dns_txt(d, "one.example.test", never_txt_cb, &never);
	ids[5] = dns_mx(d, "host.example.test", never_mx_cb, &never);
	for (i = 0; i < 6; i++) {
		assert_true(ids[i] > 0);
		for (j = 0; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
		dns_cancel(d, ids[i]);
		dns_cancel(d, ids[i]);		/* twice: ignored */
	}
	outstanding = 1;
	assert_true(dns_mx(d, "mx.example.test", mx_cb, &sentinel) > 0);
	loop_for(base, 10);
	check_got("sentinel", &sentinel, DNS_OK,
	    "10 a.example.test,20 b.example.test,30 c.example.test", NULL);
	/* Leave the cancelled answers time to arrive, and be dropped. */
	event_base_loopexit(base, &grace);
	event_base_dispatch(base);
	assert_int_equal(never.done, 0);
	dns_cancel(d, ids[0]);			/* finished: ignored */
	dns_free(d);
	event_base_free(base);
}

/* test_free_pending - dns_free drops every kind of pending lookup */
static void
test_free_pending(void **state)
{
	struct got never;
	struct dns *d;

	(void)state;
	server_need(dnsmasq_pid, "dnsmasq");
	d = live_dns();
	memset(&never, 0, sizeof(never));
	assert_true(dns_mx(d, "mx.example.test", never_mx_cb, &never) > 0);
	assert_true(dns_addrs(d, "both.example.test", BOTH, never_addrs_cb,
	    &never) > 0);
	assert_true(dns_addrs(d, "::1", BOTH, never_addrs_cb, &never) > 0);
	assert_true(dns_txt(d, "one.example.test", never_txt_cb,
	    &never) > 0);
	dns_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(never.done, 0);
	event_base_free(base);
}

/* ---- without DNS: a resolver that never answers ---- */

static int	 silent_fd = -1;	/* bound, never read by the server */

/*
 * silent_dns - a resolver forwarding to a UDP socket of ours on loopback
 * that never answers: queries sit there (the test can see them) and
 * lookups stay pending until cancelled or freed.
 */
static struct dns *
silent_dns(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char addr[64];
	struct dns *d;
	char *err = NULL;

	assert_true((silent_fd = socket(AF_INET, SOCK_DGRAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(silent_fd, (struct sockaddr *)&sin,
	    sizeof(sin)), 0);
	assert_int_equal(getsockname(silent_fd, (struct sockaddr *)&sin,
	    &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1@%d", ntohs(sin.sin_port));
	assert_non_null(base = event_base_new());
	if ((d = dns_new(addr, NULL, &err)) == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

/* silent_queries - 1 if a DNS query reaches the silent server in ms */
static int
silent_queries(int ms)
{
	struct pollfd pfd;
	char pkt[512];

	pfd.fd = silent_fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, ms) != 1)
		return 0;
	return recv(silent_fd, pkt, sizeof(pkt), MSG_DONTWAIT) >= 0;
}

/* silent_close - close the silent server's socket */
static void
silent_close(void)
{
	close(silent_fd);
	silent_fd = -1;
}

/* test_bad_args - what never starts a lookup, and never calls back */
static void
test_bad_args(void **state)
{
	static const char *bad[] = { "", ".", "..", "a..b", ".a", "a b",
	    "a/b", "*.example.test", "caf\303\251.test", "a.b..", "[::1]",
	    "IPv6:::1", "127.0.0.1:25" };
	char long_label[80], long_name[300];
	struct got never;
	struct dns *d;
	size_t i;

	(void)state;
	memset(&never, 0, sizeof(never));
	d = silent_dns();
	/* Not attached yet. */
	assert_int_equal(dns_mx(d, "example.test", never_mx_cb, &never), -1);
	assert_int_equal(dns_addrs(d, "127.0.0.1", BOTH, never_addrs_cb,
	    &never), -1);
	assert_int_equal(dns_attach(d, base), 0);
	assert_int_equal(dns_attach(d, base), -1);	/* only once */
	assert_int_equal(dns_addrs(d, "127.0.0.1", 0, never_addrs_cb,
	    &never), -1);
	assert_int_equal(dns_addrs(d, "127.0.0.1", 0x04, never_addrs_cb,
	    &never), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dns_mx(d, bad[i], never_mx_cb, &never) != -1)
			fail_msg("dns_mx accepted \"%s\"", bad[i]);
		if (dns_addrs(d, bad[i], BOTH, never_addrs_cb, &never) != -1)
			fail_msg("dns_addrs accepted \"%s\"", bad[i]);
	}
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_false(silent_queries(100));
	/* A 64-byte label; a 254-character name. */
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".test");
	assert_int_equal(dns_mx(d, long_label, never_mx_cb, &never), -1);
	memset(long_name, 'a', sizeof(long_name));
	for (i = 63; i < 254; i += 64)
		long_name[i] = '.';
	long_name[254] = '\0';
	assert_int_equal(dns_mx(d, long_name, never_mx_cb, &never), -1);
	long_name[253] = '\0';		/* 253: fine, with or without dot */
	assert_true(dns_mx(d, long_name, never_mx_cb, &never) > 0);
	long_name[253] = '.';
	long_name[254] = '\0';
	assert_true(dns_mx(d, long_name, never_mx_cb, &never) > 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	dns_free(d);			/* both still pending: dropped */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(never.done, 0);
	event_base_free(base);
	silent_close();
}

static struct dns	*cancel_from_cb_dns;
static int		 cancel_from_cb_id;

/* cancel_addrs_cb - record, then cancel the lookup waiting on DNS */
static void
cancel_addrs_cb(void *arg, enum dns_status st,
    const struct sockaddr_storage *addrs, size_t n,
    const struct dns_sec *sec)
{
	addrs_cb(arg, st, addrs, n, sec);
	dns_cancel(cancel_from_cb_dns, cancel_from_cb_id);
}

static const struct {
	const char	*host;
	int		 families;
	enum dns_status	 st;
	const char	*want;
} literal_cases[] = {
	{ "127.0.0.9", BOTH, DNS_OK, "127.0.0.9" },
	{ "127.0.0.9", DNS_INET4, DNS_OK, "127.0.0.9" },
	{ "127.0.0.9", DNS_INET6, DNS_NODATA, "" },
	{ "::1", BOTH, DNS_OK, "::1" },
	{ "::FFFF:127.0.0.1", BOTH, DNS_OK, "::ffff:127.0.0.1" },
	{ "fe80::1:2", DNS_INET6, DNS_OK, "fe80::1:2" },
	{ "::1", DNS_INET4, DNS_NODATA, "" },
};
#define NLITERAL	(sizeof(literal_cases) / sizeof(literal_cases[0]))

/*
 * test_literal - address literals are answered from the loop, never from
 * inside dns_addrs, without DNS (the silent server sees no query); a
 * cancelled literal never calls back, and a callback may cancel another
 * lookup.
 */
static void
test_literal(void **state)
{
	struct got got[NLITERAL], never, first;
	struct dns *d;
	size_t i;
	int id;

	(void)state;
	memset(got, 0, sizeof(got));
	memset(&never, 0, sizeof(never));
	memset(&first, 0, sizeof(first));
	d = silent_dns();
	assert_int_equal(dns_attach(d, base), 0);
	outstanding = 0;
	for (i = 0; i < NLITERAL; i++) {
		assert_true(dns_addrs(d, literal_cases[i].host,
		    literal_cases[i].families, addrs_cb, &got[i]) > 0);
		outstanding++;
	}
	id = dns_addrs(d, "127.0.0.10", BOTH, never_addrs_cb, &never);
	assert_true(id > 0);
	dns_cancel(d, id);
	for (i = 0; i < NLITERAL; i++)
		assert_int_equal(got[i].done, 0);	/* not from inside */
	loop_for(base, 5);
	for (i = 0; i < NLITERAL; i++)
		check_got(literal_cases[i].host, &got[i],
		    literal_cases[i].st, literal_cases[i].want, NULL);
	assert_false(silent_queries(100));

	/* A literal's callback cancels a lookup stuck on the silent server. */
	cancel_from_cb_dns = d;
	cancel_from_cb_id = dns_mx(d, "stuck.example.test", never_mx_cb,
	    &never);
	assert_true(cancel_from_cb_id > 0);
	outstanding = 1;
	assert_true(dns_addrs(d, "127.0.0.11", BOTH, cancel_addrs_cb,
	    &first) > 0);
	loop_for(base, 5);
	check_got("cancelling callback", &first, DNS_OK, "127.0.0.11", NULL);
	assert_int_equal(never.done, 0);
	assert_true(silent_queries(2000));	/* the stuck one asked */
	dns_free(d);
	event_base_free(base);
	silent_close();
}

/* test_status_names - every status has a word */
static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(dns_status_name(DNS_OK), "ok");
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "NXDOMAIN");
	assert_string_equal(dns_status_name(DNS_NODATA), "no data");
	assert_string_equal(dns_status_name(DNS_TEMPFAIL),
	    "temporary failure");
	assert_string_equal(dns_status_name(DNS_NULL_MX), "null MX");
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_mx_parse_table),
		cmocka_unit_test(test_mx_parse_limits),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_new_bad_resolver),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_literal),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_sync),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_mx),
		cmocka_unit_test(test_mx_equal_random),
		cmocka_unit_test(test_addrs),
		cmocka_unit_test(test_addrs_pair),
		cmocka_unit_test(test_cancel_live),
		cmocka_unit_test(test_free_pending),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("dns without a server", pure, NULL,
	    NULL);
	rc += cmocka_run_group_tests_name("dns live (dnsmasq)", live,
	    start_dnsmasq, stop_dnsmasq);
	return rc;
}
