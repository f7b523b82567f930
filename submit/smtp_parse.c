/*
 * smtp_parse - the SMTP server's command parser; see smtp_parse.h.
 *
 * Reply codes follow RFC 5321 4.2 and enhanced status codes RFC 3463;
 * each is a reply id of submit/reply.h, whose table gives the code:
 *	501 5.5.4	bad command or parameter syntax (MAIL_RCPT_SYNTAX,
 *			HELO_SYNTAX, AUTH_SYNTAX)
 *	555 5.5.4	MAIL/RCPT parameter not recognized or not implemented,
 *			or given twice (MAIL_RCPT_PARAM)
 *	501 5.1.7	bad sender address syntax (SENDER_SYNTAX)
 *	501 5.1.3	bad recipient address syntax (RCPT_SYNTAX)
 *	553 5.6.7	non-ASCII address without SMTPUTF8, RFC 6531 3.5
 *			(UTF8_REQUIRED)
 *	501 5.5.2	a malformed AUTH initial response (AUTH_MALFORMED)
 * Every text is a static string; the address parser's reason is carried
 * into the text through addr_texts[] below, which lists every reason
 * address_parse_path() can give (the unit test checks them all).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "submit/reply.h"
#include "submit/smtp_parse.h"

#define SASL_MECH_MAX	20	/* RFC 4422 3.1 */
#define HELO_MAX	255
#define SIZE_DIGITS_MAX	20

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} verbs[] = {
	{ "HELO", SMTP_HELO },
	{ "EHLO", SMTP_EHLO },
	{ "STARTTLS", SMTP_STARTTLS },
	{ "AUTH", SMTP_AUTH },
	{ "MAIL", SMTP_MAIL },
	{ "RCPT", SMTP_RCPT },
	{ "DATA", SMTP_DATA },
	{ "BDAT", SMTP_BDAT },
	{ "RSET", SMTP_RSET },
	{ "NOOP", SMTP_NOOP },
	{ "QUIT", SMTP_QUIT },
	{ "VRFY", SMTP_VRFY },
	{ "EXPN", SMTP_EXPN },
	{ "HELP", SMTP_HELP },
	{ "GET", SMTP_HTTP },
	{ "POST", SMTP_HTTP },
	{ "HEAD", SMTP_HTTP },
	{ "PUT", SMTP_HTTP },
	{ "CONNECT", SMTP_HTTP },
	{ "OPTIONS", SMTP_HTTP },
	{ "DELETE", SMTP_HTTP },
};

/*
 * The reasons address_parse_path() gives, each with its sender and
 * recipient reply text. A reason missing here still gets a correct reply
 * code, with the generic text.
 */
#define ADDR_TEXT(r) \
	{ r, "Bad sender address syntax: " r, \
	    "Bad recipient address syntax: " r }

static const struct {
	const char	*reason;
	const char	*sender;
	const char	*rcpt;
} addr_texts[] = {
	ADDR_TEXT("missing address"),
	ADDR_TEXT("address must be in angle brackets"),
	ADDR_TEXT("null address not allowed"),
	ADDR_TEXT("bad source route"),
	ADDR_TEXT("empty local part"),
	ADDR_TEXT("local part starts with a dot"),
	ADDR_TEXT("local part ends with a dot"),
	ADDR_TEXT("consecutive dots in local part"),
	ADDR_TEXT("bad character in local part"),
	ADDR_TEXT("unterminated quoted local part"),
	ADDR_TEXT("bad character in quoted local part"),
	ADDR_TEXT("local part too long"),
	ADDR_TEXT("missing domain"),
	ADDR_TEXT("empty label in domain"),
	ADDR_TEXT("bad character in domain"),
	ADDR_TEXT("domain label too long"),
	ADDR_TEXT("domain label starts or ends with a hyphen"),
	ADDR_TEXT("domain too long"),
	ADDR_TEXT("bad character in address literal"),
	ADDR_TEXT("unterminated address literal"),
	ADDR_TEXT("bad address literal"),
	ADDR_TEXT("bad IPv4 address literal"),
	ADDR_TEXT("bad IPv6 address literal"),
	ADDR_TEXT("unsupported address literal"),
	ADDR_TEXT("non-ASCII character without SMTPUTF8"),
	ADDR_TEXT("malformed UTF-8"),
	ADDR_TEXT("missing '>'"),
	ADDR_TEXT("path too long"),
	ADDR_TEXT("junk after address"),
};

/* fail - fill *err with reply id (its code and status from the table)
   and the text it carries; always -1 */
static int
fail(struct smtp_error *err, enum reply_id id, const char *text)
{
	const struct reply *r = reply_get(id);

	err->id = id;
	err->code = r->code;
	err->status = r->status;
	err->text = text;
	return -1;
}

/* addr_fail - 501 with the sender (5.1.7) or recipient (5.1.3) text */
static int
addr_fail(struct smtp_error *err, bool sender, const char *reason)
{
	size_t i;

	for (i = 0; i < sizeof(addr_texts) / sizeof(addr_texts[0]); i++)
		if (strcmp(addr_texts[i].reason, reason) == 0)
			return fail(err, sender ? REPLY_SENDER_SYNTAX :
			    REPLY_RCPT_SYNTAX, sender ? addr_texts[i].sender :
			    addr_texts[i].rcpt);
	return fail(err, sender ? REPLY_SENDER_SYNTAX : REPLY_RCPT_SYNTAX,
	    sender ? "Bad sender address syntax" :
	    "Bad recipient address syntax");
}

/* smtp_parse_command - split line into verb and arguments */
void
smtp_parse_command(const char *line, struct smtp_command *cmd)
{
	size_t n, i;

	n = strcspn(line, " ");
	cmd->verb = SMTP_UNKNOWN;
	cmd->name = "";
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == n &&
		    strncasecmp(line, verbs[i].name, n) == 0) {
			cmd->verb = verbs[i].verb;
			cmd->name = verbs[i].name;
			break;
		}
	}
	line += n;
	while (*line == ' ')
		line++;
	cmd->args = line;
}

/* is_alnum - ASCII letter or digit (no locale) */
static bool
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* is_xtext - RFC 3461 4: xchar (33..126 but '+', '=') or "+" 2HEXUPPER */
static bool
is_xtext(const char *v, size_t n)
{
	size_t i;
	int c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)v[i];
		if (c == '+') {
			if (n - i < 3 ||
			    strchr("0123456789ABCDEF", v[i + 1]) == NULL ||
			    strchr("0123456789ABCDEF", v[i + 2]) == NULL)
				return false;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return true;
}

/* parse_size - SIZE=digits into *size; -1 on syntax or overflow */
static int
parse_size(const char *v, size_t n, uint64_t *size, struct smtp_error *err)
{
	uint64_t x = 0;
	unsigned d;
	size_t i;

	if (n == 0 || n > SIZE_DIGITS_MAX)
		return fail(err, REPLY_MAIL_RCPT_SYNTAX,
		    "Syntax: SIZE=number (1 to 20 digits)");
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(err, REPLY_MAIL_RCPT_SYNTAX,
			    "Syntax: SIZE=number (digits only)");
		d = (unsigned)(v[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return fail(err, REPLY_MAIL_RCPT_SYNTAX,
			    "SIZE value too large");
		x = x * 10 + d;
	}
	*size = x;
	return 0;
}

/* match - is kw[0..n) the keyword name, ignoring case? */
static bool
match(const char *kw, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(kw, name, n) == 0;
}

/*
 * parse_mail_params - the ESMTP parameters after the MAIL path:
 * *( SP esmtp-keyword ["=" esmtp-value] ), spaces between them tolerated.
 */
static int
parse_mail_params(const char *s, struct smtp_mail_params *p,
    struct smtp_error *err)
{
	bool seen_body = false, seen_auth = false;
	const char *kw, *val;
	size_t kwlen, vlen, i;

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		kw = s;
		kwlen = strcspn(kw, "= ");
		val = NULL;
		vlen = 0;
		s = kw + kwlen;
		if (*s == '=') {
			val = s + 1;
			vlen = strcspn(val, " ");
			s = val + vlen;
		}
		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		if (kwlen == 0 || !is_alnum((unsigned char)kw[0]))
			return fail(err, REPLY_MAIL_RCPT_SYNTAX,
			    "Syntax: bad MAIL parameter keyword");
		for (i = 1; i < kwlen; i++)
			if (!is_alnum((unsigned char)kw[i]) && kw[i] != '-')
				return fail(err, REPLY_MAIL_RCPT_SYNTAX,
				    "Syntax: bad MAIL parameter keyword");

		if (match(kw, kwlen, "SIZE")) {
			if (p->size_given)
				return fail(err, REPLY_MAIL_RCPT_PARAM,
				    "Duplicate SIZE parameter");
			if (val == NULL)
				return fail(err, REPLY_MAIL_RCPT_SYNTAX,
				    "Syntax: SIZE=number (1 to 20 digits)");
			if (parse_size(val, vlen, &p->size, err) == -1)
				return -1;
			p->size_given = true;
		} else if (match(kw, kwlen, "BODY")) {
			if (seen_body)
				return fail(err, REPLY_MAIL_RCPT_PARAM,
				    "Duplicate BODY parameter");
			seen_body = true;
			if (val != NULL && match(val, vlen, "7BIT"))
				p->body = SMTP_BODY_7BIT;
			else if (val != NULL && match(val, vlen, "8BITMIME"))
				p->body = SMTP_BODY_8BITMIME;
			else if (val != NULL && match(val, vlen, "BINARYMIME"))
				return fail(err, REPLY_MAIL_RCPT_PARAM,
				    "BODY=BINARYMIME not supported");
			else
				return fail(err, REPLY_MAIL_RCPT_SYNTAX,
				    "Syntax: BODY=7BIT or BODY=8BITMIME");
		} else if (match(kw, kwlen, "SMTPUTF8")) {
			if (p->smtputf8)
				return fail(err, REPLY_MAIL_RCPT_PARAM,
				    "Duplicate SMTPUTF8 parameter");
			if (val != NULL)
				return fail(err, REPLY_MAIL_RCPT_SYNTAX,
				    "Syntax: SMTPUTF8 takes no value");
			p->smtputf8 = true;
		} else if (match(kw, kwlen, "AUTH")) {
			/* RFC 4954 5: accepted and ignored */
			if (seen_auth)
				return fail(err, REPLY_MAIL_RCPT_PARAM,
				    "Duplicate AUTH parameter");
			seen_auth = true;
			if (val == NULL || vlen == 0 || !is_xtext(val, vlen))
				return fail(err, REPLY_MAIL_RCPT_SYNTAX, "Syntax: "
				    "AUTH=<mailbox as xtext> or AUTH=<>");
		} else
			return fail(err, REPLY_MAIL_RCPT_PARAM,
			    "Unsupported MAIL parameter");
	}
}

/* smtp_parse_mail - parse "FROM:<path> [params]" */
int
smtp_parse_mail(const char *args, struct address *from,
    struct smtp_mail_params *p, struct smtp_error *err)
{
	const char *s, *why;
	size_t consumed;

	memset(p, 0, sizeof(*p));
	if (strncasecmp(args, "FROM:", 5) != 0)
		return fail(err, REPLY_MAIL_RCPT_SYNTAX,
		    "Syntax: MAIL FROM:<address>");
	s = args + 5;
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return fail(err, REPLY_MAIL_RCPT_SYNTAX,
		    "Syntax: MAIL FROM:<address>");
	if (address_parse_path(s, strlen(s), true, true, from, &consumed,
	    &why) == -1)
		return addr_fail(err, true, why);
	s += consumed;
	if (*s != '\0' && *s != ' ')
		return addr_fail(err, true, "junk after address");
	if (parse_mail_params(s, p, err) == -1)
		return -1;
	if (from->utf8 && !p->smtputf8)
		return fail(err, REPLY_UTF8_REQUIRED,
		    "Non-ASCII sender address needs the SMTPUTF8 parameter");
	return 0;
}

/* smtp_parse_rcpt - parse "TO:<path>" (no parameters supported) */
int
smtp_parse_rcpt(const char *args, bool smtputf8, struct address *to,
    struct smtp_error *err)
{
	const char *s, *why;
	size_t consumed;

	if (strncasecmp(args, "TO:", 3) != 0)
		return fail(err, REPLY_MAIL_RCPT_SYNTAX,
		    "Syntax: RCPT TO:<address>");
	s = args + 3;
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return fail(err, REPLY_MAIL_RCPT_SYNTAX,
		    "Syntax: RCPT TO:<address>");
	if (strncasecmp(s, "<postmaster>", 12) == 0) {
		/* RFC 5321 4.5.1: the local postmaster, no domain */
		memset(to, 0, sizeof(*to));
		memcpy(to->local, s + 1, 10);
		consumed = 12;
	} else if (address_parse_path(s, strlen(s), false, true, to,
	    &consumed, &why) == -1)
		return addr_fail(err, false, why);
	s += consumed;
	if (*s != '\0' && *s != ' ')
		return addr_fail(err, false, "junk after address");
	while (*s == ' ')
		s++;
	if (*s != '\0')
		return fail(err, REPLY_MAIL_RCPT_PARAM,
		    "RCPT parameters not supported");
	if (to->utf8 && !smtputf8)
		return fail(err, REPLY_UTF8_REQUIRED,
		    "Non-ASCII recipient address needs SMTPUTF8 at MAIL");
	return 0;
}

/*
 * smtp_parse_helo - check the HELO/EHLO argument. Lenient as Postfix is:
 * one word of printable ASCII up to 255 octets, whatever its syntax.
 */
int
smtp_parse_helo(const char *args, struct smtp_error *err)
{
	size_t n = 0;
	int c;

	while (*args == ' ')
		args++;
	for (n = 0; args[n] != '\0' && args[n] != ' '; n++) {
		c = (unsigned char)args[n];
		if (c < 33 || c > 126)
			return fail(err, REPLY_HELO_SYNTAX,
			    "Invalid EHLO hostname: control or non-ASCII "
			    "character");
	}
	if (n == 0)
		return fail(err, REPLY_HELO_SYNTAX, "Syntax: EHLO hostname");
	if (n > HELO_MAX)
		return fail(err, REPLY_HELO_SYNTAX, "EHLO hostname too long");
	args += n;
	while (*args == ' ')
		args++;
	if (*args != '\0')
		return fail(err, REPLY_HELO_SYNTAX, "Syntax: EHLO hostname");
	return 0;
}

/* smtp_parse_auth - split "MECH [initial-response]" */
int
smtp_parse_auth(const char *args, char mech[21], const char **initial,
    struct smtp_error *err)
{
	size_t n, i;
	int c;

	mech[0] = '\0';
	*initial = NULL;
	n = strcspn(args, " ");
	if (n == 0)
		return fail(err, REPLY_AUTH_SYNTAX,
		    "Syntax: AUTH mechanism [initial-response]");
	if (n > SASL_MECH_MAX)
		return fail(err, REPLY_AUTH_SYNTAX,
		    "Invalid SASL mechanism name: longer than 20 characters");
	for (i = 0; i < n; i++) {
		c = (unsigned char)args[i];
		if (!is_alnum(c) && c != '-' && c != '_')
			return fail(err, REPLY_AUTH_SYNTAX,
			    "Invalid SASL mechanism name: bad character");
		mech[i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
	}
	mech[n] = '\0';
	args += n;
	while (*args == ' ')
		args++;
	if (*args == '\0')
		return 0;
	n = strcspn(args, " ");
	for (i = 0; i < n; i++) {
		c = (unsigned char)args[i];
		if (!is_alnum(c) && c != '+' && c != '/' && c != '=') {
			mech[0] = '\0';
			return fail(err, REPLY_AUTH_MALFORMED,
			    "Error: malformed authentication response");
		}
	}
	if (args[n] != '\0') {
		mech[0] = '\0';
		return fail(err, REPLY_AUTH_SYNTAX,
		    "Syntax: AUTH mechanism [initial-response]");
	}
	*initial = args;
	return 0;
}
