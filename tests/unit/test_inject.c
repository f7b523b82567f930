/*
 * test_inject - queue/inject.c, the one door into the queue, against a
 * real on-disk queue (queue_open in a mkdtemp directory, the committer
 * thread on a real event_base) and real DKIM keys (an RSA-2048 and an
 * Ed25519 key made by keyfile_generate, loaded by keyring_load from a
 * configuration written here).
 *
 * Checked: what reaches the disk (the Received: field asked for, the
 * client's header fields untouched, Message-ID: and Date: added only
 * when missing, the body byte for byte however it was chunked, two
 * DKIM-Signature fields in the envelope's prepend, the envelope's
 * sender, recipients, submitter, client and flags); the order of the
 * queued hook and the caller's callback; and each refusal with its
 * detail, after which nothing is left in tmp/ or queue/ and no callback
 * runs. Signatures themselves are verified by independent verifiers in
 * the e2e tests (tests/e2e/test_dkim.py), not here.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
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
#include <event2/thread.h>

#include "common/alloc.h"
#include "config/config.h"
#include "config/principal.h"
#include "keys/dkim.h"
#include "keys/keyfile.h"
#include "keys/keyring.h"
#include "queue/envelope.h"
#include "queue/inject.h"
#include "queue/queue.h"

struct fixture {
	char			 dir[64];
	struct config		*cfg;
	struct keyring		*keys;
	struct event_base	*base;
	struct queue		*q;
	struct inject		*inj;
};

/* What the callbacks saw, in order. */
static char	 events[8][64];
static int	 nevents;
static char	 done_id[QUEUE_ID_LEN + 1];
static enum inject_status done_status;

/* rm_rf - remove the test directory */
static void
rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", path);
}

/* count_dir - entries in dir/sub besides . and .. */
static int
count_dir(const struct fixture *f, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/state/%s", f->dir, sub);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* slurp - the message in id's queue file (between its 37-byte header
   and the envelope offset the header gives), NUL-terminated */
static char *
slurp(const struct fixture *f, const char *id)
{
	char path[PATH_MAX], hdr[38], *text;
	unsigned long long off;
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/state/queue/%s", f->dir, id);
	assert_non_null(fp = fopen(path, "rb"));
	assert_int_equal(fread(hdr, 1, 37, fp), 37);
	hdr[37] = '\0';
	assert_int_equal(sscanf(hdr, "postern-queue 3 %20llu\n", &off), 1);
	assert_true(off >= 37);
	n = (size_t)off - 37;
	text = xmalloc(n + 1);
	assert_int_equal(fread(text, 1, n, fp), n);
	text[n] = '\0';
	fclose(fp);
	return text;
}

static int
setup(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct fixture *f = xcalloc(1, sizeof(*f));
	char path[PATH_MAX], *err = NULL;
	FILE *fp;
	size_t i;

	strcpy(f->dir, "/tmp/test_inject.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/r.key", f->dir);
	assert_int_equal(keyfile_generate(path, KEYFILE_RSA_SHA256, 2048, &err), 0);
	snprintf(path, sizeof(path), "%s/e.key", f->dir);
	assert_int_equal(keyfile_generate(path, KEYFILE_ED25519_SHA256, 0, &err), 0);
	snprintf(path, sizeof(path), "%s/postern.conf", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fprintf(fp, "hostname = \"relay.example.org\";\n"
	    "state_dir = \"%s/state\";\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 5870; tls = "
	    "\"none\"; trusted = true; senders = [ \"app@example.org\" ]; } );\n"
	    "limits = { header_size = 4096; };\n"
	    "domains = ( { name = \"example.org\"; dkim = (\n"
	    "  { selector = \"r1\"; algorithm = \"rsa-sha256\"; "
	    "key = \"%s/r.key\"; },\n"
	    "  { selector = \"e1\"; algorithm = \"ed25519-sha256\"; "
	    "key = \"%s/e.key\"; } ); } );\n", f->dir, f->dir, f->dir);
	fclose(fp);
	if ((f->cfg = config_load(path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("config did not load");
	}
	if ((f->keys = keyring_load(f->cfg, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("keys did not load");
	}
	assert_non_null(f->base = event_base_new());
	snprintf(path, sizeof(path), "%s/state", f->dir);
	assert_non_null(f->q = queue_open(path, 1, &err));
	assert_int_equal(queue_start(f->q, f->base), 0);
	f->inj = inject_new(f->q);
	nevents = 0;
	done_id[0] = '\0';
	done_status = INJECT_QUEUE_ERROR;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	inject_close(f->inj);
	queue_close(f->q);
	inject_free(f->inj);
	event_base_free(f->base);
	keyring_free(f->keys);
	config_free(f->cfg);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* queued_hook - inject's hook: remember the order */
static void
queued_hook(void *arg, const char *id)
{
	(void)arg;
	assert_true(nevents < 8);
	snprintf(events[nevents++], sizeof(events[0]), "queued %s", id);
}

/* done_cb - the caller's callback: remember, stop the loop */
static void
done_cb(uint64_t cookie, enum inject_status st, const char *id, int error,
    const char *detail)
{
	(void)detail;
	assert_true(nevents < 8);
	snprintf(events[nevents++], sizeof(events[0]), "done %llu %s %d",
	    (unsigned long long)cookie, id, error);
	done_status = st;
	snprintf(done_id, sizeof(done_id), "%s", id);
}

/* many_cb - test_many_workers' callback: each cookie once, OK */
static int		 many_done;
static unsigned char	 many_seen[64];

static void
many_cb(uint64_t cookie, enum inject_status st, const char *id, int error,
    const char *detail)
{
	(void)id; (void)error; (void)detail;
	assert_true(cookie < 64);
	assert_int_equal(st, INJECT_OK);
	assert_int_equal(many_seen[cookie], 0);
	many_seen[cookie] = 1;
	many_done++;
}

/* never_cb - a refused message must not call back */
static void
never_cb(uint64_t cookie, enum inject_status st, const char *id, int error,
    const char *detail)
{
	(void)cookie; (void)st; (void)id; (void)error; (void)detail;
	fail_msg("callback for a refused message");
}

/* only_bob - the caller's From: policy in these tests */
static bool
only_bob(const struct address *a, void *arg)
{
	(void)arg;
	return strcmp(a->local, "bob") == 0 &&
	    strcmp(a->domain, "example.org") == 0;
}

/* params - a submission from login bob@example.org to two recipients */
static void
params(struct fixture *f, struct inject_params *p, struct principal *who,
    struct inject_received *rcv)
{
	static char *rcpts[] = { "carol@example.net", "dave@example.com" };

	memset(who, 0, sizeof(*who));
	principal_login(who, "bob@example.org");
	memset(rcv, 0, sizeof(*rcv));
	rcv->helo = "client.example.net";
	rcv->client_addr = "192.0.2.7";
	rcv->protocol = "ESMTPSA";
	rcv->tls = "TLSv1.3:TLS_AES_256_GCM_SHA384";
	memset(p, 0, sizeof(*p));
	p->cfg = f->cfg;
	p->keys = f->keys;
	p->who = who;
	p->sender = "bob@example.org";
	p->rcpts = rcpts;
	p->nrcpts = 2;
	p->client = "192.0.2.7";
	p->helo = "client.example.net";
	p->body_8bit = true;
	p->received = rcv;
	p->from_ok = only_bob;
}

/* write_chunked - the text in pieces of n bytes */
static void
write_chunked(struct inject_msg *m, const char *text, size_t n)
{
	size_t off, len = strlen(text);

	for (off = 0; off < len; off += n)
		assert_int_equal(inject_write(m, text + off, off + n > len ?
		    len - off : n), 0);
}

/* commit - inject_end and run the loop until the callback came */
static void
commit(struct fixture *f, struct inject_msg *m, uint64_t cookie)
{
	const char *detail = NULL;

	assert_int_equal(inject_end(m, done_cb, cookie, &detail), INJECT_OK);
	assert_int_equal(nevents, 0);	/* never from inside the call */
	while (done_id[0] == '\0')
		assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
}

/* accepted - fix-ups, signatures and envelope on disk */
static void
accepted(struct fixture *f)
{
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	struct inject_msg *m;
	struct envelope e;
	const char *why, *body;
	char *text, id[QUEUE_ID_LEN + 1], want[128];
	static const char msg[] =
	    "From: Bob <bob@example.org>\r\n"
	    "To: carol@example.net\r\n"
	    "Subject: chunks\r\n"
	    "\r\n"
	    "line one\r\n"
	    "..not stuffed here: the session undid it\r\n"
	    "last line\r\n";

	params(f, &p, &who, &rcv);
	inject_set_queued(f->inj, queued_hook, NULL);
	assert_non_null(m = inject_begin(f->inj, &p));
	snprintf(id, sizeof(id), "%s", inject_id(m));
	write_chunked(m, msg, 7);	/* header end split across chunks */
	assert_int_equal(inject_status(m, NULL), INJECT_OK);
	commit(f, m, 42);

	assert_int_equal(done_status, INJECT_OK);
	assert_string_equal(done_id, id);
	assert_int_equal(nevents, 2);	/* the hook first */
	snprintf(want, sizeof(want), "queued %s", id);
	assert_string_equal(events[0], want);
	snprintf(want, sizeof(want), "done 42 %s 0", id);
	assert_string_equal(events[1], want);

	text = slurp(f, id);
	/* our Received first, naming the client, TLS and the queue id */
	assert_true(strncmp(text, "Received: from client.example.net", 33) ==
	    0);
	assert_non_null(strstr(text, "192.0.2.7"));
	assert_non_null(strstr(text, "ESMTPSA"));
	assert_non_null(strstr(text, id));
	/* the client's fields as they were, then the two we add */
	assert_non_null(strstr(text, "\r\nFrom: Bob <bob@example.org>\r\n"
	    "To: carol@example.net\r\nSubject: chunks\r\nMessage-ID: <"));
	assert_non_null(strstr(text, "@relay.example.org>\r\nDate: "));
	body = strstr(text, "\r\n\r\n");
	assert_non_null(body);
	assert_string_equal(body + 4, strstr(msg, "\r\n\r\n") + 4);
	free(text);

	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_load_envelope(f->q, id, &e, &why), 0);
	assert_string_equal(e.sender, "bob@example.org");
	assert_string_equal(e.login, "bob@example.org");
	assert_string_equal(e.client, "192.0.2.7");
	assert_string_equal(e.helo, "client.example.net");
	assert_true(e.body_8bit);
	assert_false(e.smtputf8);
	assert_int_equal(e.nrcpts, 2);
	assert_string_equal(e.rcpts[0].addr, "carol@example.net");
	assert_string_equal(e.rcpts[1].addr, "dave@example.com");
	assert_non_null(e.prepend);
	text = xmalloc(e.prepend_len + 1);
	memcpy(text, e.prepend, e.prepend_len);
	text[e.prepend_len] = '\0';
	/* RSA first, then Ed25519, both for d=example.org */
	assert_true(strncmp(text, "DKIM-Signature:", 15) == 0);
	assert_non_null(strstr(text, "a=rsa-sha256"));
	assert_non_null(strstr(strstr(text, "a=rsa-sha256"),
	    "\r\nDKIM-Signature:"));
	assert_non_null(strstr(text, "a=ed25519-sha256"));
	assert_non_null(strstr(text, "d=example.org"));
	free(text);
	envelope_free(&e);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 1);	/* one file */
}

/* test_accepted - signed on the calling thread */
static void
test_accepted(void **state)
{
	accepted(*state);
}

/* test_accepted_workers - signed on two worker threads: the same */
static void
test_accepted_workers(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inject_start(f->inj, f->base, 2), 0);
	accepted(f);
}

/* test_many_workers - 40 messages signed by two workers at once: each
   commits once, with its own signatures, hook before callback */
static void
test_many_workers(void **state)
{
	struct fixture *f = *state;
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	struct inject_msg *m;
	const char *detail;
	char text[128];
	int i;

	assert_int_equal(inject_start(f->inj, f->base, 2), 0);
	params(f, &p, &who, &rcv);
	many_done = 0;
	for (i = 0; i < 40; i++) {
		assert_non_null(m = inject_begin(f->inj, &p));
		snprintf(text, sizeof(text), "From: bob@example.org\r\n"
		    "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		write_chunked(m, text, 16);
		assert_int_equal(inject_end(m, many_cb, (uint64_t)i, &detail),
		    INJECT_OK);
	}
	while (many_done < 40)
		assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
	assert_int_equal(count_dir(f, "queue"), 40);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/* test_kept_fields - a message with its own Message-ID and Date, and
   no Received asked for (a bounce): stored as it came */
static void
test_kept_fields(void **state)
{
	struct fixture *f = *state;
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	struct inject_msg *m;
	struct envelope e;
	const char *why;
	char *text, id[QUEUE_ID_LEN + 1];
	static const char msg[] =
	    "From: Mail Delivery System <MAILER-DAEMON@example.org>\r\n"
	    "Message-ID: <own@example.org>\r\n"
	    "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
	    "\r\n"
	    "body\r\n";

	params(f, &p, &who, &rcv);
	principal_relay(&who);
	p.received = NULL;
	p.from_ok = NULL;	/* any hosted From: */
	p.sender = "";
	assert_non_null(m = inject_begin(f->inj, &p));
	snprintf(id, sizeof(id), "%s", inject_id(m));
	write_chunked(m, msg, sizeof(msg));
	commit(f, m, 1);
	assert_int_equal(done_status, INJECT_OK);
	assert_int_equal(nevents, 1);	/* no hook set */
	text = slurp(f, id);
	assert_string_equal(text, msg);
	free(text);
	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_load_envelope(f->q, id, &e, &why), 0);
	assert_string_equal(e.sender, "");
	assert_null(e.login);		/* the relay is nobody's login */
	envelope_free(&e);
}

/* test_no_body - a header section without the empty line: complete at
   inject_eom, signed, stored with the fields added */
static void
test_no_body(void **state)
{
	struct fixture *f = *state;
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	struct inject_msg *m;
	char *text, id[QUEUE_ID_LEN + 1];

	params(f, &p, &who, &rcv);
	p.received = NULL;
	assert_non_null(m = inject_begin(f->inj, &p));
	snprintf(id, sizeof(id), "%s", inject_id(m));
	write_chunked(m, "From: bob@example.org\r\nSubject: x\r\n", 5);
	assert_int_equal(inject_eom(m, NULL), INJECT_OK);
	assert_int_equal(inject_eom(m, NULL), INJECT_OK);	/* again */
	commit(f, m, 2);
	assert_int_equal(done_status, INJECT_OK);
	text = slurp(f, id);
	assert_true(strncmp(text, "From: bob@example.org\r\nSubject: x\r\n"
	    "Message-ID: <", 48) == 0);
	assert_non_null(strstr(text, "\r\nDate: "));
	assert_null(strstr(text, "\r\n\r\n"));
	free(text);
}

/* One refusal: the message, and what inject must say. */
struct refusal {
	const char		*name;
	const char		*text;
	enum inject_status	 status;
	const char		*detail;	/* NULL: any */
};

static const struct refusal refusals[] = {
	{ "no From", "To: x@example.net\r\n\r\nbody\r\n",
	  INJECT_FROM_COUNT, "" },
	{ "two From fields", "From: bob@example.org\r\nFrom: bob@example.org"
	  "\r\n\r\nb\r\n", INJECT_FROM_COUNT, "" },
	{ "two From addresses", "From: bob@example.org, eve@example.org\r\n"
	  "\r\nb\r\n", INJECT_FROM_COUNT, "" },
	{ "From not an address", "From: <<>>\r\n\r\nb\r\n",
	  INJECT_FROM_MALFORMED, NULL },
	{ "not a field", "From: bob@example.org\r\nno colon here\r\n\r\nb\r\n",
	  INJECT_HEADER_MALFORMED, NULL },
	{ "someone else's From", "From: eve@example.org\r\n\r\nb\r\n",
	  INJECT_FROM_REFUSED, "eve@example.org" },
	{ "refused before hosted", "From: bob@example.net\r\n\r\nb\r\n",
	  INJECT_FROM_REFUSED, "bob@example.net" },
};

/* refuse - write text, expect the refusal, then end: no callback, and
   nothing left anywhere on disk */
static void
refuse(struct fixture *f, struct inject_params *p, const char *text,
    enum inject_status want, const char *want_detail, const char *name)
{
	struct inject_msg *m;
	const char *detail = NULL;
	enum inject_status st;

	assert_non_null(m = inject_begin(f->inj, p));
	(void)inject_write(m, text, strlen(text));
	st = inject_eom(m, &detail);
	if (st != want)
		fail_msg("%s: status %d, want %d (%s)", name, st, want, detail);
	if (want_detail != NULL && strcmp(detail, want_detail) != 0)
		fail_msg("%s: detail \"%s\", want \"%s\"", name, detail,
		    want_detail);
	/* later bytes are dropped */
	assert_int_equal(inject_write(m, "more\r\n", 6), -1);
	assert_int_equal(inject_end(m, never_cb, 7, &detail), want);
	assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
}

/* test_refusals - each bad header section, with its detail */
static void
test_refusals(void **state)
{
	struct fixture *f = *state;
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	size_t i;

	params(f, &p, &who, &rcv);
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		refuse(f, &p, refusals[i].text, refusals[i].status,
		    refusals[i].detail, refusals[i].name);
	/* a domain that is not hosted, when the policy lets it through */
	p.from_ok = NULL;
	refuse(f, &p, "From: bob@example.net\r\n\r\nb\r\n",
	    INJECT_FROM_NOT_HOSTED, "example.net", "not hosted");
	/* a field name with a space in it, however hosted the From: */
	refuse(f, &p, "From: bob@lists.example.org\r\nBad Name: x\r\n\r\n",
	    INJECT_HEADER_MALFORMED, NULL, "field name with a space");
}

/* test_header_too_big - over limits.header_size (4096 here): refused
   with the limit as detail, whatever follows */
static void
test_header_too_big(void **state)
{
	struct fixture *f = *state;
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	struct inject_msg *m;
	const char *detail;
	char line[80];
	int i;

	params(f, &p, &who, &rcv);
	assert_non_null(m = inject_begin(f->inj, &p));
	assert_int_equal(inject_write(m, "From: bob@example.org\r\n", 23), 0);
	for (i = 0; i < (4096 - 23) / 40; i++) {
		snprintf(line, sizeof(line), "X-Filler-%03d: %024d\r\n", i, i);
		assert_int_equal(strlen(line), 40);
		assert_int_equal(inject_write(m, line, 40), 0);
	}
	assert_int_equal(inject_write(m, line, 40), -1);
	assert_int_equal(inject_status(m, &detail), INJECT_HEADER_TOO_BIG);
	assert_string_equal(detail, "4096");
	inject_abort(m);
	assert_int_equal(count_dir(f, "tmp"), 0);
}

/* test_abort - a message dropped half way leaves nothing */
static void
test_abort(void **state)
{
	struct fixture *f = *state;
	struct inject_params p;
	struct inject_received rcv;
	struct principal who;
	struct inject_msg *m;

	params(f, &p, &who, &rcv);
	assert_non_null(m = inject_begin(f->inj, &p));
	assert_int_equal(count_dir(f, "tmp"), 1);
	write_chunked(m, "From: bob@example.org\r\n\r\nhalf a bo", 4);
	inject_abort(m);
	inject_abort(NULL);
	assert_int_equal(count_dir(f, "tmp"), 0);
	assert_int_equal(count_dir(f, "queue"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_accepted_workers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_many_workers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kept_fields, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_body, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_header_too_big, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	};

	if (evthread_use_pthreads() == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
