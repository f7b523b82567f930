/*
 * fuzz_smtp_parse - one command line through smtp_parse_command and, by
 * its verb, smtp_parse_mail / _rcpt / _helo / _auth
 *
 * The input is cut at the first NUL (the session refuses lines with NUL
 * before parsing) and at 2048 bytes (past any line limit we allow).
 * Checks: args points into the line; errors carry a 4xx/5xx code, a
 * status and a text without CR/LF; parsed addresses fit their limits,
 * have a lower-case domain and no byte >= 0x80 unless UTF-8 was allowed;
 * the AUTH mechanism is at most 20 upper-case characters.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "submit/smtp_parse.h"
#include "tests/fuzz/fuzz.h"

#define SP_LINE_MAX	2048

/* sp_check_err - a reply the session can send as it is */
static void
sp_check_err(const struct smtp_error *err)
{
	FUZZ_CHECK(err->code >= 400 && err->code <= 599);
	FUZZ_CHECK(err->status != NULL && err->text != NULL);
	FUZZ_CHECK(strpbrk(err->text, "\r\n") == NULL);
	FUZZ_CHECK(strpbrk(err->status, "\r\n ") == NULL);
}

/* sp_check_addr - limits, lower-case domain, UTF-8 only when allowed */
static void
sp_check_addr(const struct address *a, bool utf8_ok)
{
	size_t i;
	bool high = false;

	FUZZ_CHECK(strlen(a->local) <= ADDRESS_LOCAL_MAX);
	FUZZ_CHECK(strlen(a->domain) <= ADDRESS_DOMAIN_MAX);
	for (i = 0; a->domain[i] != '\0'; i++) {
		FUZZ_CHECK(!(a->domain[i] >= 'A' && a->domain[i] <= 'Z'));
		if ((unsigned char)a->domain[i] >= 0x80)
			high = true;
	}
	for (i = 0; a->local[i] != '\0'; i++)
		if ((unsigned char)a->local[i] >= 0x80)
			high = true;
	FUZZ_CHECK(!high || (utf8_ok && a->utf8));
	FUZZ_CHECK(a->domain[0] == '\0' ||
	    a->domain[strlen(a->domain) - 1] != '.');
}

int
fuzz_smtp_parse(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	struct smtp_mail_params p;
	struct smtp_error err;
	struct address a;
	const char *initial;
	char mech[21], *line;
	size_t len, i;

	len = strnlen((const char *)data, size < SP_LINE_MAX ? size :
	    SP_LINE_MAX);
	if ((line = malloc(len + 1)) == NULL)
		return 0;
	memcpy(line, data, len);
	line[len] = '\0';

	memset(&cmd, 0, sizeof(cmd));
	smtp_parse_command(line, &cmd);
	FUZZ_CHECK(cmd.name != NULL && cmd.args != NULL);
	FUZZ_CHECK(cmd.args >= line && cmd.args <= line + len);
	FUZZ_CHECK(cmd.verb != SMTP_UNKNOWN || cmd.name[0] == '\0');

	switch (cmd.verb) {
	case SMTP_MAIL:
		memset(&p, 0, sizeof(p));
		if (smtp_parse_mail(cmd.args, &a, &p, &err) == 0) {
			sp_check_addr(&a, p.smtputf8);
			FUZZ_CHECK(p.size_given || p.size == 0);
		} else
			sp_check_err(&err);
		break;
	case SMTP_RCPT:
		for (i = 0; i < 2; i++) {
			if (smtp_parse_rcpt(cmd.args, i == 1, &a, &err) == 0) {
				sp_check_addr(&a, i == 1);
				FUZZ_CHECK(a.local[0] != '\0');
			} else
				sp_check_err(&err);
		}
		break;
	case SMTP_HELO:
	case SMTP_EHLO:
		if (smtp_parse_helo(cmd.args, &err) != 0)
			sp_check_err(&err);
		break;
	case SMTP_AUTH:
		initial = NULL;
		memset(mech, 'x', sizeof(mech));
		if (smtp_parse_auth(cmd.args, mech, &initial, &err) == 0) {
			FUZZ_CHECK(memchr(mech, '\0', sizeof(mech)) != NULL);
			FUZZ_CHECK(mech[0] != '\0');
			for (i = 0; mech[i] != '\0'; i++)
				FUZZ_CHECK(!(mech[i] >= 'a' && mech[i] <= 'z'));
			FUZZ_CHECK(initial == NULL || (initial >= cmd.args &&
			    initial <= line + len));
		} else
			sp_check_err(&err);
		break;
	default:
		break;
	}
	free(line);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_smtp_parse(data, size);
}
#endif
