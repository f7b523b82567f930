/*
 * smtp_parse - the SMTP server's command parser (RFC 5321, 1869, 1870,
 * 6152, 6531, 4954)
 *
 * Pure functions over one command line that the session has already cut at
 * CRLF and checked against the line-length limit. Input is untrusted; the
 * line is NUL-terminated and must not contain NUL (the session rejects
 * lines with NUL before calling). Nothing here allocates.
 *
 * Errors come back as a struct smtp_error: the reply id (submit/reply.h),
 * its code and enhanced status code (RFC 3463) from the reply table, and
 * a human-readable text (a static string). The session sends the id
 * with the text as its value: session_reply_id(s, e.id, e.text).
 */
#ifndef POSTERN_SMTP_PARSE_H
#define POSTERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/address.h"
#include "submit/reply.h"

enum smtp_verb {
	SMTP_UNKNOWN = 0,
	SMTP_HELO, SMTP_EHLO, SMTP_STARTTLS, SMTP_AUTH,
	SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT,
	SMTP_RSET, SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP,
	SMTP_HTTP,		/* GET, POST, HEAD, PUT, CONNECT, OPTIONS: close */
};

struct smtp_command {
	enum smtp_verb	 verb;
	const char	*name;	/* canonical upper-case verb, "" if unknown */
	const char	*args;	/* after the verb and one or more spaces;
				   "" if none; points into the line */
};

struct smtp_error {
	enum reply_id	 id;		/* the reply to send */
	int		 code;		/* 501, 555, 553, ... (the id's) */
	const char	*status;	/* "5.5.4" */
	const char	*text;		/* no CR/LF */
};

/*
 * smtp_parse_command - split line into verb and arguments. Verbs are
 * case-insensitive. "MAIL FROM:" and "RCPT TO:" keep their "FROM:"/"TO:"
 * in args. Never fails: an unknown verb gives SMTP_UNKNOWN.
 */
void	smtp_parse_command(const char *line, struct smtp_command *cmd);

enum smtp_body {
	SMTP_BODY_7BIT = 0,
	SMTP_BODY_8BITMIME,
};

struct smtp_mail_params {
	uint64_t	 size;		/* SIZE=, 0 if not given */
	bool		 size_given;
	enum smtp_body	 body;		/* BODY= */
	bool		 smtputf8;	/* SMTPUTF8 */
};

/*
 * smtp_parse_mail - parse the arguments of MAIL: "FROM:<path> [params]".
 * Accepts (as Postfix does) optional spaces after the colon. The null path
 * is allowed here; policy decides. UTF-8 in the path is allowed only with
 * the SMTPUTF8 parameter. Parameters: SIZE=digits, BODY=7BIT|8BITMIME,
 * SMTPUTF8, AUTH=xtext (accepted and ignored, RFC 4954 5). Unknown or
 * repeated parameters give 555 5.5.4; BODY=BINARYMIME 555 5.5.4; bad
 * syntax 501 5.5.4 (command) or 501 5.1.7 (address).
 */
int	smtp_parse_mail(const char *args, struct address *from,
	    struct smtp_mail_params *p, struct smtp_error *err);

/*
 * smtp_parse_rcpt - parse the arguments of RCPT: "TO:<path> [params]".
 * The null path is refused (501 5.1.3); "<postmaster>" without a domain is
 * accepted with an empty domain (RFC 5321 4.5.1). UTF-8 only when
 * smtputf8 was given at MAIL. No RCPT parameters are supported (DSN's
 * NOTIFY/ORCPT are not advertised): any parameter gives 555 5.5.4.
 * Bad address: 501 5.1.3.
 */
int	smtp_parse_rcpt(const char *args, bool smtputf8, struct address *to,
	    struct smtp_error *err);

/*
 * smtp_parse_helo - check the argument of HELO/EHLO: a domain or an
 * address literal, no spaces after it. Empty gives 501 5.5.4.
 */
int	smtp_parse_helo(const char *args, struct smtp_error *err);

/*
 * smtp_parse_auth - split "MECH [initial-response]" for AUTH. The
 * mechanism is copied upper-cased into mech (size 21: SASL names are at
 * most 20 characters, RFC 4422 3.1); *initial points into args at the
 * initial response or is NULL. Returns -1 with 501 5.5.4 on bad syntax.
 */
int	smtp_parse_auth(const char *args, char mech[21], const char **initial,
	    struct smtp_error *err);

#endif
