/*
 * test_dns - relay/dns: the TXT rdata parser as a got/want table, then
 * real lookups, synchronous and asynchronous (a real event_base), against
 * dnsmasq started here on 127.0.0.1 with a free port and killed by PID at
 * the end. Without /usr/sbin/dnsmasq the live tests are skipped loudly.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
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

#include "relay/dns.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"

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

/* ---- dnsmasq ---- */

/* free_udp_port - a port nothing listens on now (UDP and TCP) */
static int
free_udp_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* port_taken - 1 if something is bound to 127.0.0.1:port over UDP */
static int
port_taken(int port)
{
	struct sockaddr_in sin;
	int fd, rc;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	rc = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return rc == -1 && errno == EADDRINUSE;
}

/* start_dnsmasq - serve the test records; 0, or -1 to skip */
static int
start_dnsmasq(void **state)
{
	char portarg[32], longarg[400];
	int port, i, status;

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
		    longarg, (char *)NULL);
		_exit(127);
	}
	/* Ready once it holds the port (poll, no sleep of fixed length). */
	for (i = 0; i < 500; i++) {
		if (port_taken(port))
			return 0;
		if (waitpid(dnsmasq_pid, &status, WNOHANG) == dnsmasq_pid) {
			dnsmasq_pid = -1;
			fprintf(stderr, "# dnsmasq exited at startup\n");
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "# dnsmasq never bound port %d\n", port);
	return -1;
}

/* stop_dnsmasq - kill our dnsmasq by its PID */
static int
stop_dnsmasq(void **state)
{
	(void)state;
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
	return 0;
}

/* need_dnsmasq - skip the test when the group setup found no dnsmasq */
static void
need_dnsmasq(void)
{
	if (dnsmasq_pid <= 0) {
		fprintf(stderr, "# SKIP: no dnsmasq\n");
		skip();
	}
}

/* ---- synchronous ---- */

/* test_new_bad_resolver - a bad address is refused with a reason */
static void
test_new_bad_resolver(void **state)
{
	struct dns *d;
	char *err = NULL;

	(void)state;
	d = dns_new("not-an-address@x", &err);
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

	d = dns_new(resolver, &err);
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	assert_int_equal(dns_txt_sync(d, name, &txts, &n, &st), 0);
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
	need_dnsmasq();
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
async_cb(void *arg, enum dns_status st, char **txts, size_t n)
{
	struct want *w = arg;
	const char *want;

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

/* timeout_cb - the answers never came */
static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopexit(base, NULL);
}

/* test_async - lookups on a real event_base; a cancelled one never calls */
static void
test_async(void **state)
{
	struct timeval tv = { 10, 0 };
	struct event *timer;
	struct dns *d;
	char *err = NULL;
	size_t i;
	int id;

	(void)state;
	need_dnsmasq();
	assert_non_null(base = event_base_new());
	assert_non_null(d = dns_new(resolver, &err));
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
	timer = evtimer_new(base, timeout_cb, NULL);
	evtimer_add(timer, &tv);
	event_base_dispatch(base);
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
	event_free(timer);
	event_base_free(base);
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
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_new_bad_resolver),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_sync),
		cmocka_unit_test(test_async),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("dns parser", pure, NULL, NULL);
	rc += cmocka_run_group_tests_name("dns live (dnsmasq)", live,
	    start_dnsmasq, stop_dnsmasq);
	return rc;
}
