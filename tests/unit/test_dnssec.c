/*
 * test_dnssec - common/dns with DNSSEC validation: the TLSA rdata parser
 * as a got/want table, the trust anchor file's errors, then real lookups,
 * synchronous and asynchronous (a real event_base), against NSD started
 * here on 127.0.0.1 with a free port and stopped by PID at the end.
 *
 * NSD serves the committed zones of tests/unit/dnssec/ (made by its
 * make-zone.sh, signed until 2046): dane.test. signed, its DS in
 * tests/unit/dnssec/trust-anchor; bogus.dane.test. changed after signing;
 * plain.test. unsigned. The resolver forwards to NSD, as the daemon
 * forwards to its `resolver`, and validates from that anchor.
 * Without /usr/sbin/nsd the live tests are skipped loudly.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/dns.h"
#include "dns_server.h"

#define NSD		"/usr/sbin/nsd"
#define ZONES		"tests/unit/dnssec"	/* from the repository root */
#define ANCHOR		ZONES "/trust-anchor"
/* TLSA 3 1 1 of mx.dane.test, make-zone.sh's fixed value */
#define TLSA_HEX	"0123456789abcdef0123456789abcdef" \
			"0123456789abcdef0123456789abcdef"

static pid_t	 nsd_pid = -1;
static char	 resolver[64];		/* "127.0.0.1@PORT" */
static char	 rundir[] = "/tmp/test_dnssec.XXXXXX";
static struct event_base *base;
static int	 outstanding;

/* ---- the TLSA parser ---- */

static const struct {
	const char	*what;
	const char	*rdata;
	size_t		 len;
	int		 rc;
	unsigned	 usage, selector, mtype;
	size_t		 dlen;
} tlsa_cases[] = {
	{ "3 1 1, one byte", "\003\001\001\252", 4, 0, 3, 1, 1, 1 },
	{ "2 0 0, three bytes", "\002\000\000abc", 6, 0, 2, 0, 0, 3 },
	{ "unknown values kept", "\377\377\377z", 4, 0, 255, 255, 255, 1 },
	{ "no data", "\003\001\001", 3, -1, 0, 0, 0, 0 },
	{ "two bytes", "\003\001", 2, -1, 0, 0, 0, 0 },
	{ "empty", "", 0, -1, 0, 0, 0, 0 },
};

/* test_tlsa_parse - every row: return code, fields, data copied */
static void
test_tlsa_parse(void **state)
{
	struct dns_tlsa rec;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(tlsa_cases) / sizeof(tlsa_cases[0]); i++) {
		rc = dns_tlsa_parse((const unsigned char *)tlsa_cases[i].rdata,
		    tlsa_cases[i].len, &rec);
		if (rc != tlsa_cases[i].rc)
			fail_msg("%s: rc got %d want %d", tlsa_cases[i].what,
			    rc, tlsa_cases[i].rc);
		if (rc == -1) {
			assert_null(rec.data);
			continue;
		}
		assert_int_equal(rec.usage, tlsa_cases[i].usage);
		assert_int_equal(rec.selector, tlsa_cases[i].selector);
		assert_int_equal(rec.mtype, tlsa_cases[i].mtype);
		assert_int_equal(rec.len, tlsa_cases[i].dlen);
		assert_memory_equal(rec.data, tlsa_cases[i].rdata + 3,
		    rec.len);
		free(rec.data);
	}
	dns_tlsas_free(NULL, 0);
}

/* test_security_names - the words logs use */
static void
test_security_names(void **state)
{
	(void)state;
	assert_string_equal(dns_security_name(DNS_SECURE), "secure");
	assert_string_equal(dns_security_name(DNS_INSECURE), "insecure");
	assert_string_equal(dns_security_name(DNS_BOGUS), "bogus");
}

/* ---- the trust anchor file ---- */

/* new_err - dns_new must fail for anchor; its message, to free */
static char *
new_err(const char *anchor)
{
	struct dns *d;
	char *err = NULL;

	d = dns_new("127.0.0.1@9", anchor, &err);
	if (d != NULL)
		fail_msg("%s: dns_new accepted it", anchor);
	assert_non_null(err);
	return err;
}

/* test_anchor_errors - a missing or useless file is refused, named */
static void
test_anchor_errors(void **state)
{
	char path[] = "/tmp/test_dnssec_anchor.XXXXXX", *err;
	struct dns *d;
	FILE *fp;
	int fd;

	(void)state;
	err = new_err("/nonexistent/anchor");
	assert_string_equal(err, "dns: trust anchor /nonexistent/anchor: "
	    "No such file or directory");
	free(err);

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(fp = fdopen(fd, "w"));
	fputs("dane.test. IN DS not a DS record\n", fp);
	fclose(fp);
	err = new_err(path);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "no DS or DNSKEY record"));
	free(err);
	unlink(path);

	/* NULL and "": no validation, and no file read. */
	assert_non_null(d = dns_new("127.0.0.1@9", NULL, &err));
	dns_free(d);
	assert_non_null(d = dns_new("127.0.0.1@9", "", &err));
	dns_free(d);
}

/* ---- NSD ---- */

/* rm_entry - nftw: remove one entry of the run directory */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* start_nsd - serve the committed zones; 0, or -1 to fail the group */
static int
start_nsd(void **state)
{
	char cwd[PATH_MAX], conf[PATH_MAX + 64];
	FILE *fp;
	int port;

	(void)state;
	if (access(NSD, X_OK) != 0) {
		fprintf(stderr, "# SKIP: %s is missing (apt-get install nsd): "
		    "live DNSSEC tests skipped\n", NSD);
		return 0;
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL || mkdtemp(rundir) == NULL)
		return -1;
	port = free_udp_port();
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", port);
	snprintf(conf, sizeof(conf), "%s/nsd.conf", rundir);
	if ((fp = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(fp, "server:\n"
	    "\tip-address: 127.0.0.1@%d\n"
	    "\tusername: \"\"\n\tchroot: \"\"\n"
	    "\tzonesdir: \"%s/%s\"\n"
	    "\tpidfile: \"%s/nsd.pid\"\n\txfrdfile: \"%s/xfrd.state\"\n"
	    "\txfrdir: \"%s\"\n\tzonelistfile: \"%s/zone.list\"\n"
	    "\tdatabase: \"\"\n\tlogfile: \"%s/nsd.log\"\n"
	    "\tserver-count: 1\n"
	    "remote-control:\n\tcontrol-enable: no\n"
	    "include: \"%s/%s/nsd.zones\"\n",
	    port, cwd, ZONES, rundir, rundir, rundir, rundir, rundir, cwd,
	    ZONES);
	if (fclose(fp) != 0)
		return -1;
	if ((nsd_pid = fork()) == -1)
		return -1;
	if (nsd_pid == 0) {
		execl(NSD, NSD, "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	return server_wait(&nsd_pid, port, "nsd");
}

/* stop_nsd - stop our NSD by its PID, remove its run directory */
static int
stop_nsd(void **state)
{
	(void)state;
	server_stop(&nsd_pid);
	if (strchr(rundir, 'X') == NULL)
		(void)nftw(rundir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* validating - a resolver on NSD validating from anchor */
static struct dns *
validating(const char *anchor)
{
	struct dns *d;
	char *err = NULL;

	if ((d = dns_new(resolver, anchor, &err)) == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

/* ---- synchronous ---- */

/* check_sec - sec is level; a bogus one says why, the others do not */
static void
check_sec(const char *what, const struct dns_sec *sec,
    enum dns_security level)
{
	if (sec->level != level)
		fail_msg("%s: %s (%s), want %s", what,
		    dns_security_name(sec->level), sec->why,
		    dns_security_name(level));
	if (level == DNS_BOGUS)
		assert_true(sec->why[0] != '\0');
	else
		assert_string_equal(sec->why, "");
}

/* hex - data as lowercase hex, in a static buffer */
static const char *
hex(const unsigned char *data, size_t len)
{
	static char out[2 * 64 + 1];
	size_t i;

	out[0] = '\0';
	for (i = 0; i < len && i < 64; i++)
		snprintf(out + 2 * i, 3, "%02x", data[i]);
	return out;
}

static const struct {
	const char		*name;
	enum dns_status		 st;
	enum dns_security	 level;
	size_t			 n;
} tlsa_sync_cases[] = {
	{ "_25._tcp.mx.dane.test", DNS_OK, DNS_SECURE, 1 },
	{ "_25._tcp.mx.plain.test", DNS_OK, DNS_INSECURE, 1 },
	{ "_25._tcp.bogus.dane.test", DNS_TEMPFAIL, DNS_BOGUS, 0 },
	/* authenticated denial: secure NXDOMAIN and NODATA */
	{ "_25._tcp.nothere.dane.test", DNS_NXDOMAIN, DNS_SECURE, 0 },
	{ "mx.dane.test", DNS_NODATA, DNS_SECURE, 0 },
	{ "_25._tcp.nothere.plain.test", DNS_NXDOMAIN, DNS_INSECURE, 0 },
	{ "mx.plain.test", DNS_NODATA, DNS_INSECURE, 0 },
};

/* test_tlsa_sync - every row: status, security, records */
static void
test_tlsa_sync(void **state)
{
	struct dns_tlsa *recs;
	struct dns_sec sec;
	enum dns_status st;
	struct dns *d;
	size_t i, n;

	(void)state;
	server_need(nsd_pid, "nsd");
	d = validating(ANCHOR);
	for (i = 0; i < sizeof(tlsa_sync_cases) /
	    sizeof(tlsa_sync_cases[0]); i++) {
		assert_int_equal(dns_tlsa_sync(d, tlsa_sync_cases[i].name,
		    &recs, &n, &st, &sec), 0);
		if (st != tlsa_sync_cases[i].st)
			fail_msg("%s: %s, want %s", tlsa_sync_cases[i].name,
			    dns_status_name(st),
			    dns_status_name(tlsa_sync_cases[i].st));
		check_sec(tlsa_sync_cases[i].name, &sec,
		    tlsa_sync_cases[i].level);
		assert_int_equal(n, tlsa_sync_cases[i].n);
		if (n == 0) {
			assert_null(recs);
			continue;
		}
		assert_int_equal(recs[0].usage, 3);
		assert_int_equal(recs[0].selector, 1);
		assert_int_equal(recs[0].mtype, 1);
		assert_string_equal(hex(recs[0].data, recs[0].len), TLSA_HEX);
		dns_tlsas_free(recs, n);
	}
	/* the bogus answer names what failed */
	(void)dns_tlsa_sync(d, "_25._tcp.bogus.dane.test", &recs, &n, &st,
	    &sec);
	assert_non_null(strstr(sec.why, "_25._tcp.bogus.dane.test"));
	/* not a name: no query */
	assert_int_equal(dns_tlsa_sync(d, "a..b", &recs, &n, &st, &sec), -1);
	assert_int_equal(st, DNS_TEMPFAIL);
	assert_null(recs);
	dns_free(d);
}

/* test_txt_sync - TXT answers carry their security too */
static void
test_txt_sync(void **state)
{
	struct dns_sec sec;
	enum dns_status st;
	struct dns *d;
	char **txts;
	size_t n;

	(void)state;
	server_need(nsd_pid, "nsd");
	d = validating(ANCHOR);
	assert_int_equal(dns_txt_sync(d, "dane.test", &txts, &n, &st, &sec),
	    0);
	assert_int_equal(st, DNS_OK);
	check_sec("dane.test", &sec, DNS_SECURE);
	assert_int_equal(n, 1);
	assert_string_equal(txts[0], "v=spf1 -all");
	dns_txts_free(txts, n);

	assert_int_equal(dns_txt_sync(d, "plain.test", &txts, &n, &st, &sec),
	    0);
	assert_int_equal(st, DNS_OK);
	check_sec("plain.test", &sec, DNS_INSECURE);
	dns_txts_free(txts, n);

	/* NSD serves "forged": it must never reach the caller */
	assert_int_equal(dns_txt_sync(d, "bogus.dane.test", &txts, &n, &st,
	    &sec), 0);
	assert_int_equal(st, DNS_TEMPFAIL);
	check_sec("bogus.dane.test", &sec, DNS_BOGUS);
	assert_null(txts);
	assert_int_equal(n, 0);
	dns_free(d);
}

/* test_no_validation - without an anchor, everything is insecure */
static void
test_no_validation(void **state)
{
	struct dns_sec sec;
	enum dns_status st;
	struct dns *d;
	char **txts;
	size_t n;

	(void)state;
	server_need(nsd_pid, "nsd");
	d = validating(NULL);
	assert_int_equal(dns_txt_sync(d, "bogus.dane.test", &txts, &n, &st,
	    &sec), 0);
	assert_int_equal(st, DNS_OK);
	check_sec("bogus.dane.test", &sec, DNS_INSECURE);
	assert_string_equal(txts[0], "forged");
	dns_txts_free(txts, n);
	dns_free(d);
}

/*
 * test_wrong_anchor - an anchor that does not match the zone's key (the
 * DS digest changed) makes the whole zone bogus, NXDOMAIN included;
 * the unsigned zone beside it stays insecure.
 */
static void
test_wrong_anchor(void **state)
{
	char path[] = "/tmp/test_dnssec_anchor.XXXXXX", line[512], *p;
	struct dns_sec sec;
	enum dns_status st;
	struct dns *d;
	char **txts;
	size_t n;
	FILE *in, *out;
	int fd;

	(void)state;
	server_need(nsd_pid, "nsd");
	assert_non_null(in = fopen(ANCHOR, "r"));
	assert_non_null(fgets(line, sizeof(line), in));
	fclose(in);
	/* the digest's last hex digit, changed */
	p = line + strcspn(line, "\n") - 1;
	*p = *p == '0' ? '1' : '0';
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(out = fdopen(fd, "w"));
	fputs(line, out);
	fclose(out);
	d = validating(path);
	assert_int_equal(dns_txt_sync(d, "dane.test", &txts, &n, &st, &sec),
	    0);
	assert_int_equal(st, DNS_TEMPFAIL);
	check_sec("dane.test", &sec, DNS_BOGUS);
	assert_int_equal(dns_txt_sync(d, "nothere.dane.test", &txts, &n, &st,
	    &sec), 0);
	assert_int_equal(st, DNS_TEMPFAIL);
	check_sec("nothere.dane.test", &sec, DNS_BOGUS);
	assert_int_equal(dns_txt_sync(d, "plain.test", &txts, &n, &st, &sec),
	    0);
	assert_int_equal(st, DNS_OK);
	check_sec("plain.test", &sec, DNS_INSECURE);
	dns_txts_free(txts, n);
	dns_free(d);
	unlink(path);
}

/* ---- asynchronous, on a libevent loop ---- */

/* One lookup's answer as the callback saw it. */
struct got {
	int		 done;		/* callbacks so far */
	enum dns_status	 st;
	size_t		 n;
	struct dns_sec	 sec;
	char		 text[256];	/* the first record, as text */
};

/* got_done - record one answer; stop the loop after the last */
static void
got_done(struct got *g, enum dns_status st, size_t n,
    const struct dns_sec *sec)
{
	g->done++;
	g->st = st;
	g->n = n;
	g->sec = *sec;
	if (--outstanding == 0)
		event_base_loopexit(base, NULL);
}

/* mx_cb - the first host's name */
static void
mx_cb(void *arg, enum dns_status st, const struct dns_mx *hosts, size_t n,
    const struct dns_sec *sec)
{
	struct got *g = arg;

	snprintf(g->text, sizeof(g->text), "%s", n > 0 ? hosts[0].name : "");
	got_done(g, st, n, sec);
}

/* addrs_cb - only the count */
static void
addrs_cb(void *arg, enum dns_status st, const struct sockaddr_storage *addrs,
    size_t n, const struct dns_sec *sec)
{
	struct got *g = arg;

	(void)addrs;
	g->text[0] = '\0';
	got_done(g, st, n, sec);
}

/* tlsa_cb - the first record as "usage selector mtype hex" */
static void
tlsa_cb(void *arg, enum dns_status st, const struct dns_tlsa *recs,
    size_t n, const struct dns_sec *sec)
{
	struct got *g = arg;

	g->text[0] = '\0';
	if (n > 0)
		snprintf(g->text, sizeof(g->text), "%u %u %u %s",
		    recs[0].usage, recs[0].selector, recs[0].mtype,
		    hex(recs[0].data, recs[0].len));
	got_done(g, st, n, sec);
}

/* txt_cb - the first value */
static void
txt_cb(void *arg, enum dns_status st, char **txts, size_t n,
    const struct dns_sec *sec)
{
	struct got *g = arg;

	snprintf(g->text, sizeof(g->text), "%s", n > 0 ? txts[0] : "");
	got_done(g, st, n, sec);
}

/* check_got - one answer with this status, security and text */
static void
check_got(const char *what, const struct got *g, enum dns_status st,
    enum dns_security level, const char *text)
{
	if (g->done != 1)
		fail_msg("%s: called back %d times", what, g->done);
	if (g->st != st)
		fail_msg("%s: %s, want %s", what, dns_status_name(g->st),
		    dns_status_name(st));
	check_sec(what, &g->sec, level);
	if (strcmp(g->text, text) != 0)
		fail_msg("%s: \"%s\", want \"%s\"", what, g->text, text);
}

enum { A_MX, A_ADDRS, A_TLSA, A_PLAIN_MX, A_PLAIN_ADDRS, A_BOGUS_MX,
    A_BOGUS_ADDRS, A_BOGUS_TLSA, A_BOGUS_TXT, A_NX, A_CANCELLED, A_N };

/*
 * test_async - MX, addresses, TLSA and TXT on the loop, secure, insecure
 * and bogus at once; a cancelled TLSA lookup never calls back.
 */
static void
test_async(void **state)
{
	struct got got[A_N];
	struct dns *d;
	int id;

	(void)state;
	server_need(nsd_pid, "nsd");
	memset(got, 0, sizeof(got));
	assert_non_null(base = event_base_new());
	d = validating(ANCHOR);
	assert_int_equal(dns_attach(d, base), 0);
	assert_true(dns_mx(d, "dane.test", mx_cb, &got[A_MX]) > 0);
	assert_true(dns_addrs(d, "mx.dane.test", DNS_INET4 | DNS_INET6,
	    addrs_cb, &got[A_ADDRS]) > 0);
	assert_true(dns_tlsa(d, "_25._tcp.mx.dane.test", tlsa_cb,
	    &got[A_TLSA]) > 0);
	assert_true(dns_mx(d, "plain.test", mx_cb, &got[A_PLAIN_MX]) > 0);
	assert_true(dns_addrs(d, "mx.plain.test", DNS_INET4 | DNS_INET6,
	    addrs_cb, &got[A_PLAIN_ADDRS]) > 0);
	assert_true(dns_mx(d, "bogus.dane.test", mx_cb, &got[A_BOGUS_MX]) > 0);
	/* only the bogus A asked: AAAA would be a secure NODATA */
	assert_true(dns_addrs(d, "bogus.dane.test", DNS_INET4, addrs_cb,
	    &got[A_BOGUS_ADDRS]) > 0);
	assert_true(dns_tlsa(d, "_25._tcp.bogus.dane.test", tlsa_cb,
	    &got[A_BOGUS_TLSA]) > 0);
	assert_true(dns_txt(d, "bogus.dane.test", txt_cb,
	    &got[A_BOGUS_TXT]) > 0);
	assert_true(dns_tlsa(d, "_25._tcp.nothere.dane.test", tlsa_cb,
	    &got[A_NX]) > 0);
	assert_true((id = dns_tlsa(d, "_25._tcp.mx.plain.test", tlsa_cb,
	    &got[A_CANCELLED])) > 0);
	dns_cancel(d, id);
	assert_int_equal(dns_tlsa(d, "not a name", tlsa_cb, &got[0]), -1);
	outstanding = A_N - 1;
	loop_for(base, 10);

	check_got("MX", &got[A_MX], DNS_OK, DNS_SECURE, "mx.dane.test");
	check_got("addresses", &got[A_ADDRS], DNS_OK, DNS_SECURE, "");
	assert_int_equal(got[A_ADDRS].n, 2);
	check_got("TLSA", &got[A_TLSA], DNS_OK, DNS_SECURE, "3 1 1 " TLSA_HEX);
	check_got("plain MX", &got[A_PLAIN_MX], DNS_OK, DNS_INSECURE,
	    "mx.plain.test");
	check_got("plain addresses", &got[A_PLAIN_ADDRS], DNS_OK,
	    DNS_INSECURE, "");
	assert_int_equal(got[A_PLAIN_ADDRS].n, 1);
	check_got("bogus MX", &got[A_BOGUS_MX], DNS_TEMPFAIL, DNS_BOGUS, "");
	check_got("bogus addresses", &got[A_BOGUS_ADDRS], DNS_TEMPFAIL,
	    DNS_BOGUS, "");
	check_got("bogus TLSA", &got[A_BOGUS_TLSA], DNS_TEMPFAIL, DNS_BOGUS,
	    "");
	check_got("bogus TXT", &got[A_BOGUS_TXT], DNS_TEMPFAIL, DNS_BOGUS, "");
	check_got("NXDOMAIN TLSA", &got[A_NX], DNS_NXDOMAIN, DNS_SECURE, "");
	assert_int_equal(got[A_CANCELLED].done, 0);
	dns_free(d);
	event_base_free(base);
	base = NULL;
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_tlsa_parse),
		cmocka_unit_test(test_security_names),
		cmocka_unit_test(test_anchor_errors),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_tlsa_sync),
		cmocka_unit_test(test_txt_sync),
		cmocka_unit_test(test_no_validation),
		cmocka_unit_test(test_wrong_anchor),
		cmocka_unit_test(test_async),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("dnssec without a server", pure,
	    NULL, NULL);
	rc += cmocka_run_group_tests_name("dnssec live (nsd)", live,
	    start_nsd, stop_nsd);
	return rc;
}
