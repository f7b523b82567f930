/*
 * sendmail - `postern sendmail`, the sendmail(1)-compatible client that
 * hands a message from standard input to the daemon over its local unix
 * socket (config local_socket). See sendmail.c for the options, the exit
 * statuses and the protocol.
 *
 * sendmail_main() is the program. The pieces below it are pure (no I/O
 * except sendmail_read_header(), which reads a file descriptor) so the
 * unit tests can drive them: option parsing, recipient lists, the header
 * pass (To/Cc/Bcc collected, Bcc dropped, From: found), the From: field
 * the client adds, the LF->CRLF and dot-stuffing transform, reply lines
 * and the mapping of replies to sysexits.h statuses.
 */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/address.h"

/* The program: argv[0] is its name ("sendmail", or "sendmail" after
   "postern"); returns a sysexits.h status. */
int	sendmail_main(int argc, char **argv);

/* Largest header section held in memory when the configuration (and its
   limits.header_size) cannot be read. */
#define SENDMAIL_HEADER_MAX	(1024 * 1024)
/* Longest -F full name. */
#define SENDMAIL_FULLNAME_MAX	256

enum sendmail_body {
	SENDMAIL_BODY_NONE,		/* no -B: no BODY= parameter */
	SENDMAIL_BODY_7BIT,		/* -B 7BIT */
	SENDMAIL_BODY_8BITMIME,		/* -B 8BITMIME */
};

struct sendmail_opts {
	const char	 *sender;	/* -f / -r as given, or NULL */
	const char	 *fullname;	/* -F, or NULL */
	const char	 *config;	/* -C, else CONFIG_DEFAULT_PATH */
	bool		  extract;	/* -t */
	bool		  ignore_dots;	/* -i, -oi */
	enum sendmail_body body;	/* -B */
	char		  mode;		/* 'm' (a message, the default),
					   'p' (-bp: list the queue), 'i'
					   (-bi, -I: newaliases) */
	char		**rcpts;	/* the operands (into argv) */
	size_t		  nrcpts;
};

/* sendmail_newaliases - what `newaliases` (and sendmail -bi) does:
   say there is nothing to do; exit status 0 */
int	sendmail_newaliases(void);

/*
 * sendmail_parse_args - the options and operands of argv[1..argc) into
 * *o. Returns 0, or a sysexits.h status (EX_USAGE) with a one-line reason
 * in err[0..errsz). Nothing is allocated: o points into argv.
 */
int	sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o,
	    char *err, size_t errsz);

/* A list of recipient addresses, "local@domain", without duplicates. */
struct sendmail_rcpts {
	char	**v;
	size_t	  n;
	bool	  utf8;		/* some address is not ASCII */
};

/*
 * sendmail_rcpts_add - the mailboxes of the RFC 5322 address list
 * text[0..len) ("a@x", "a@x, B <b@y>", "group: a@x;") appended to r,
 * skipping those already there. Returns 0, or -1 with a static reason in
 * *err (r keeps what it had).
 */
int	sendmail_rcpts_add(struct sendmail_rcpts *r, const char *text,
	    size_t len, const char **err);
void	sendmail_rcpts_free(struct sendmail_rcpts *r);

/*
 * sendmail_parse_sender - a -f/-r argument: "addr", "<addr>", or "" /
 * "<>" for the null sender (a->local and a->domain empty). Returns 0, or
 * -1 with a static reason in *err.
 */
int	sendmail_parse_sender(const char *s, struct address *a,
	    const char **err);

/* What the header pass learnt about the header section. */
struct sendmail_header {
	unsigned	nfrom;		/* From: fields */
	bool		from_ok;	/* the first has exactly one mailbox: */
	struct address	from;
	bool		utf8;		/* a byte >= 0x80 in what is kept */
};

/*
 * sendmail_header_pass - hdr[0..len) is a header section as
 * sendmail_read_header() returns it (fields and continuation lines, each
 * ending in CRLF, without the empty line). Appends every field but Bcc:
 * (with its continuation lines) to out. With extract (-t), the mailboxes
 * of To:, Cc: and Bcc: are added to rcpts. Returns 0, or a sysexits.h
 * status (EX_DATAERR: a To/Cc/Bcc that is not an address list; EX_SOFTWARE:
 * out is full) with a one-line reason in err.
 */
int	sendmail_header_pass(const char *hdr, size_t len, bool extract,
	    struct buf *out, struct sendmail_rcpts *rcpts,
	    struct sendmail_header *info, char *err, size_t errsz);

/*
 * sendmail_from_field - the "From: NAME <ADDR>\r\n" field the client adds
 * when the message has none, appended to out. NAME (-F; NULL or empty:
 * "From: ADDR") loses control characters; it is written as atoms when it
 * can be, else as a quoted-string, and as RFC 2047 encoded-words (UTF-8,
 * base64) when it is not ASCII. Returns 0, or -1 if out is full.
 */
int	sendmail_from_field(struct buf *out, const char *name,
	    const char *addr);

/*
 * The message text transform: input with LF or CRLF line ends becomes
 * CRLF lines, dot-stuffed (RFC 5321 4.5.2). Unless ignore_dots (-i), a
 * line holding only "." ends the input, as sendmail does. A CR not
 * followed by LF is passed on (the daemon refuses it); a CR at the very
 * end is a line end.
 */
struct sendmail_dot {
	bool	ignore_dots;
	bool	bol;		/* at the start of a line */
	bool	cr;		/* a CR is held */
	bool	dot;		/* a "." starting the line is held */
	bool	done;		/* a "." line ended the input */
};

void	sendmail_dot_init(struct sendmail_dot *, bool ignore_dots);
/*
 * sendmail_dot_feed - transform in[0..n) into out (which needs room for
 * 2 * n + 4 more bytes). Returns the bytes consumed: n, or fewer once a
 * "." line ended the input (s->done; the rest is to be ignored).
 */
size_t	sendmail_dot_feed(struct sendmail_dot *s, const char *in, size_t n,
	    struct buf *out);
/* sendmail_dot_finish - end of input: end the last line with CRLF if
   needed (not the final "."; the caller sends that). */
void	sendmail_dot_finish(struct sendmail_dot *s, struct buf *out);

/*
 * sendmail_read_header - read from fd up to the end of the header section:
 * hdr gets its fields as CRLF lines (at most max bytes), *blank whether an
 * empty line ended it (that line is consumed), rest the raw input read
 * past it (the start of the body, as read: LF or CRLF). A first line
 * "From " (an mbox separator) is dropped. A first line that is not a
 * header field means no header section: hdr stays empty, *headerless is
 * set, and everything goes to rest. Returns 0, or a sysexits.h status
 * (EX_IOERR: read error; EX_DATAERR: header section over max) with a
 * one-line reason in err.
 */
int	sendmail_read_header(int fd, size_t max, struct buf *hdr, bool *blank,
	    bool *headerless, struct buf *rest, char *err, size_t errsz);

/*
 * sendmail_reply_line - one line of an SMTP reply, line[0..len) without
 * its CRLF: "NNN-text" (more follow) or "NNN text" / "NNN" (the last).
 * Sets *code, *last and *text (into line). Returns 0, or -1 if it is not
 * a reply line.
 */
int	sendmail_reply_line(const char *line, size_t len, int *code,
	    bool *last, const char **text);

/*
 * sendmail_exit_status - the sysexits.h status for a refusal: code with
 * text (the reply after the code, which may start with an enhanced status
 * code). 4xx: EX_TEMPFAIL; 5xx with 5.7.x: EX_NOPERM, 5.1.2 and 5.1.10:
 * EX_NOHOST, other 5.1.x: EX_NOUSER, any other 5xx: EX_DATAERR; any other
 * code (not 4xx or 5xx where a refusal was read): EX_PROTOCOL.
 */
int	sendmail_exit_status(int code, const char *text);

#endif
