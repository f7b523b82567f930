/*
 * fuzz_auth - the AUTH exchange: auth_decode on every line, then a whole
 * SASL server conversation (auth_start, auth_step) through Cyrus SASL
 * with a real sasldb holding one user
 *
 * The first byte chooses the mechanism (bits 0-1: PLAIN, LOGIN,
 * SCRAM-SHA-256, and a lower-case "plain") and whether the first line is
 * an initial response (bit 2); the rest is split at LF into the client's
 * response lines. Checks: a decoded line is NUL-terminated within its
 * buffer and encodes back to the same data; results are in range; a
 * challenge is base64; AUTH_OK names the one user, and for PLAIN and
 * LOGIN only when some line carried its password; auth_attempted says
 * something only after AUTH_FAIL.
 *
 * The sasldb and the configuration live in a directory made once per
 * process under $TMPDIR (removed at exit).
 */
#include <sys/stat.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sasl/saslutil.h>

#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"
#include "submit/auth.h"
#include "tests/fuzz/fuzz.h"

#define FA_USER		"alice@example.org"
#define FA_PASSWORD	"Pw-fuzz-1"
#define FA_STEPS	8

static struct config	*fa_cfg;
static char		 fa_dir[256];

/* fa_cleanup - remove what fa_setup made */
static void
fa_cleanup(void)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/sasldb2", fa_dir);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/postern.conf", fa_dir);
	(void)unlink(path);
	(void)rmdir(fa_dir);
}

/* fa_setup - a configuration, SASL and one user; 0 or -1 */
static int
fa_setup(void)
{
	struct config_errors errs = { NULL, 0 };
	const char *tmp = getenv("TMPDIR"), *err;
	char path[300];
	FILE *f;

	if (fa_cfg != NULL)
		return 0;
	log_set_quiet(1);
	snprintf(fa_dir, sizeof(fa_dir), "%s/postern-fuzz-auth.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fa_dir) == NULL)
		return -1;
	atexit(fa_cleanup);
	snprintf(path, sizeof(path), "%s/postern.conf", fa_dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "hostname = \"relay.example.org\";\n"
	    "state_dir = \"%s\";\n"
	    "domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 2525; "
	    "tls = \"none\"; } );\n", fa_dir);
	if (fclose(f) != 0)
		return -1;
	if ((fa_cfg = config_load(path, &errs)) == NULL || errs.n != 0) {
		fprintf(stderr, "fuzz_auth: config: %s\n",
		    errs.n ? errs.v[0] : "?");
		return -1;
	}
	config_errors_free(&errs);
	if (auth_init(fa_cfg, &err) == -1 ||
	    auth_user_set(fa_cfg, FA_USER, FA_PASSWORD, false, &err) == -1) {
		fprintf(stderr, "fuzz_auth: %s\n", err);
		return -1;
	}
	return 0;
}

/* fa_decode - auth_decode's invariants on one line; true if the line
   decodes to something holding the password */
static bool
fa_decode(const char *line)
{
	char *out = NULL, *again = NULL;
	char enc[AUTH_LINE_MAX + 8];
	size_t outsz, againsz;
	unsigned outlen, elen, againlen;
	bool pw;

	if (auth_decode(line, &out, &outsz, &outlen) == -1) {
		FUZZ_CHECK(out == NULL);
		return false;
	}
	FUZZ_CHECK(out != NULL);
	FUZZ_CHECK(outlen < outsz);
	FUZZ_CHECK(out[outlen] == '\0');
	FUZZ_CHECK((size_t)outlen <= strlen(line) / 4 * 3);
	/* encodes back to the same data (the text may differ: padding) */
	FUZZ_CHECK(sasl_encode64(out, outlen, enc, sizeof(enc), &elen) ==
	    SASL_OK);
	FUZZ_CHECK(auth_decode(enc, &again, &againsz, &againlen) == 0);
	FUZZ_CHECK(againlen == outlen);
	FUZZ_CHECK(memcmp(again, out, outlen) == 0);
	pw = memmem(out, outlen, FA_PASSWORD, strlen(FA_PASSWORD)) != NULL;
	freezero_(again, againsz);
	freezero_(out, outsz);
	return pw;
}

/* fa_base64 - is s made of base64 characters only? */
static bool
fa_base64(const char *s)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/=") == strlen(s);
}

int
fuzz_auth(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = { "PLAIN", "LOGIN",
	    "SCRAM-SHA-256", "plain" };
	const char *challenge, *login, *mech;
	struct auth_session *as;
	enum auth_result r;
	char *text, *line, *next;
	bool initial, pw = false;
	unsigned steps = 0;

	if (size == 0 || fa_setup() == -1)
		return 0;
	mech = mechs[data[0] & 3];
	initial = (data[0] & 4) != 0;
	text = xmalloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if ((as = auth_new("127.0.0.1;587", "127.0.0.1;40000")) == NULL) {
		free(text);
		return 0;
	}
	line = text;
	next = strchr(line, '\n');
	if (next != NULL)
		*next++ = '\0';
	if (initial) {
		pw |= fa_decode(line);
		r = auth_start(as, mech, line, &challenge, &login);
		line = next;
	} else
		r = auth_start(as, mech, NULL, &challenge, &login);
	for (;;) {
		FUZZ_CHECK(r >= AUTH_CONTINUE && r <= AUTH_TEMP);
		FUZZ_CHECK(r == AUTH_FAIL || auth_attempted(as) == NULL);
		if (r != AUTH_CONTINUE)
			break;
		FUZZ_CHECK(challenge != NULL);
		FUZZ_CHECK(fa_base64(challenge));
		FUZZ_CHECK(login == NULL);
		if (line == NULL || ++steps > FA_STEPS)
			break;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		pw |= fa_decode(line);
		r = auth_step(as, line, &challenge, &login);
		line = next;
	}
	if (r == AUTH_OK) {
		FUZZ_CHECK(login != NULL);
		FUZZ_CHECK(strcasecmp(login, FA_USER) == 0);
		FUZZ_CHECK(pw || strcmp(mech, "SCRAM-SHA-256") == 0);
	} else
		FUZZ_CHECK(login == NULL);
	auth_free(as);
	free(text);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_auth(data, size);
}
#endif
