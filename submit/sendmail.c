/*
 * sendmail - `postern sendmail`: hand a message on standard input to the
 * Postern daemon over its local unix socket, as sendmail(1) does
 *
 * Local programs (cron, PHP's mail(), Trac, git send-email, mutt) run
 * /usr/sbin/sendmail; make that a symlink to postern and they get this.
 * The daemon listens on local_socket (the configuration), speaks plain
 * SMTP there and knows the caller by the socket's peer credentials: it
 * allows only the sender addresses local_senders maps to the caller's
 * user. This client needs no privileges and no state directory: it reads
 * the configuration (when it may; see below), standard input and the
 * socket, nothing else. It holds the header section in memory (bounded)
 * and streams the body from standard input to the socket.
 *
 *	sendmail [options] [--] [recipient ...]
 *
 * Options, as Postfix's sendmail takes them (an option's argument may be
 * attached, -fADDR, or the next word, -f ADDR; flags may be grouped, -ti;
 * options end at "--" or at the first word that is not one):
 *
 *   -t          recipients also from the To:, Cc: and Bcc: fields of the
 *               message, added to those on the command line
 *   -i, -oi     a line holding only "." does not end the message (without
 *               them it does, and the rest of the input is ignored)
 *   -f ADDR     envelope sender ("ADDR", "<ADDR>"; "" or "<>" is the null
 *   -r ADDR     sender, which the daemon refuses)
 *   -F NAME     full name, used only in a From: field the client adds
 *   -C FILE     configuration file (default CONFIG_DEFAULT_PATH)
 *   -B TYPE     7BIT or 8BITMIME (any other value: EX_USAGE): sent as
 *               BODY= when the daemon offers 8BITMIME
 *   -bm         read a message from standard input: what happens anyway
 *   -bp         list the queue, as `mailq` and `postern queue list` do
 *               (with -C FILE's state_dir); nothing is read from stdin
 *   -bi, -I     newaliases: Postern has no aliases file; says so, exit 0
 *
 * Accepted and ignored, because they mean nothing here:
 *
 *   -odi -odb -odq  delivery mode: the daemon always queues and delivers
 *   -oem -oep -oeq -oew  error mode: errors are always reported on stderr
 *               and in the exit status, never by mail (there is no local
 *               mail to send them to)
 *   -om -m      "me too"; -oo old headers; -oL* log level; -ob* (sendmail
 *               options of no meaning here)
 *   -N DSN      "never" or a list of success, delay, failure (checked:
 *               anything else is EX_USAGE). The daemon has no DSN
 *               extension: failed deliveries always bounce to the envelope
 *               sender, successes are not reported
 *   -R RET      "hdrs" or "full" (checked); -V ENVID: DSN, as -N
 *   -v          verbose: nothing more is said (stderr stays one line)
 *   -X FILE     sendmail's traffic log: ignored, as Postfix ignores it (no
 *               file is written; nothing else depends on it)
 *   -h N        hop count; -L LABEL, -A[mc]: ignored, as Postfix does;
 *   -n -G -U    no aliasing, gateway, initial submission: ignored (every
 *               message is an initial submission; there are no aliases)
 *
 * Refused with EX_USAGE and one line saying why: the other modes (-q*,
 * -bs, -bd, -bv, -bt ...), any -o
 * option not listed, and any unknown option. Strict rather than ignored:
 * a caller asking for a queue listing or SMTP on stdin must not have its
 * input taken for a message.
 *
 * Recipients on the command line are RFC 5322 address lists: "a@x",
 * "a@x, b@y", "Name <a@x>". An address without a domain ("root", as cron
 * uses when MAILTO is unset) is refused with EX_NOUSER: Postern only
 * relays, it has no local mailboxes. Duplicates are sent once.
 *
 * The message (standard input, LF or CRLF line ends; CRLF is sent, lines
 * are dot-stuffed): the header section, up to the first empty line or the
 * first line that is neither a field nor a continuation (the body starts
 * there, and an empty line is put before it), is read and held
 * (at most limits.header_size, or SENDMAIL_HEADER_MAX when the
 * configuration cannot be read: more is EX_DATAERR). Bcc: fields and
 * their continuation lines are always removed, with or without -t (the
 * daemon keeps every field; a Bcc: must never reach the other
 * recipients; Resent-Bcc: likewise). -t does not look at Resent-*
 * fields (To, Cc and Bcc only). A first
 * line "From " (an mbox separator) is dropped, as sendmail and Postfix
 * do. A message whose first line is not a header field has no header
 * section and is sent as it is: the daemon decides (it refuses it).
 * Date: and Message-ID: are the daemon's business (it adds them when
 * missing).
 *
 * The envelope sender: -f/-r; else the single mailbox of the From: field;
 * else the first exact address (not "*@domain") local_senders gives the
 * calling user (getpwuid(getuid())). None of these: EX_USAGE, saying how
 * to give one. A message with a header section but no From: gets
 * "From: NAME <SENDER>" (NAME from -F) at the top.
 *
 * The configuration is read with the project's loader for local_socket,
 * local_senders and limits.header_size. It checks the whole file, files it
 * names included, and a caller such as www-data may not be able to read
 * it or them (the TLS key is root's): then the compiled defaults are used
 * (the socket at "/run/postern/sendmail.sock", no default sender) rather
 * than failing, because the daemon decides what the caller may do anyway;
 * the reason is quoted if the call then fails for want of either.
 *
 * SMTP on the socket, one step at a time with 5-minute socket timeouts:
 * greeting (220), EHLO localhost, MAIL FROM:<sender> (BODY= with -B;
 * SMTPUTF8 when the sender, a recipient or the header section is not
 * ASCII and the daemon offers it), RCPT TO for each recipient, DATA, the
 * message, ".", QUIT. One refused recipient fails the whole call: it is
 * reported and the transaction is abandoned before DATA, so nobody gets
 * the message (the caller can fix the list and send again).
 *
 * Exit status (sysexits.h), with exactly one line "sendmail: REASON" on
 * stderr for every status but 0 (REASON quotes the daemon's reply when it
 * refused):
 *
 *   EX_OK (0)           250 to the final "." (the message is queued)
 *   EX_USAGE (64)       bad or unsupported option, no recipients, no
 *                       sender, bad -f address
 *   EX_DATAERR (65)     5xx other than below (header problems 5.6.0, size
 *                       5.3.4, bare CR 5.5.2...); header section over the
 *                       limit; -t with a To/Cc/Bcc that is not an address
 *                       list
 *   EX_NOUSER (67)      5xx with 5.1.x (bad address 5.1.3...); a command-
 *                       line recipient that is not an address
 *   EX_NOHOST (68)      5xx with 5.1.2 (domain does not exist) or 5.1.10
 *                       (null MX)
 *   EX_UNAVAILABLE (69) the daemon cannot be reached (socket missing:
 *                       the daemon is down or local_senders is empty,
 *                       said apart when the configuration can be read;
 *                       refused, not permitted)
 *   EX_IOERR (74)       standard input could not be read (the "." is not
 *                       sent: the daemon discards what it got)
 *   EX_TEMPFAIL (75)    4xx; the connection lost or timed out before the
 *                       final reply (the message was not accepted; after
 *                       the final "." was sent its fate is unknown, as for
 *                       any SMTP client, and retrying may duplicate it)
 *   EX_PROTOCOL (76)    a reply that is not SMTP, or a code the step did
 *                       not expect (e.g. 3xx to MAIL)
 *   EX_NOPERM (77)      5xx with 5.7.x (sender or From: not allowed for
 *                       this user, user not mapped)
 *
 * Not done: splitting recipients over several transactions when there
 * are more than limits.recipients (the daemon answers 452 4.5.3, which is
 * EX_TEMPFAIL); spooling: a program that writes its message more slowly
 * than limits.data_timeout between bytes is cut off by the daemon.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "config/config.h"
#include "common/address.h"
#include "queue/queuecmd.h"
#include "submit/sendmail.h"

#define DEFAULT_SOCKET	"/run/postern/sendmail.sock"
#define IO_TIMEOUT	300		/* seconds, each socket read/write */
#define CHUNK		65536		/* bytes read from stdin at a time */
#define REPLY_LINE_MAX	2048		/* longest reply line we take */
#define REPLY_TEXT_MAX	512		/* reply text we keep and quote */
#define REPLY_LINES_MAX	100		/* lines of one reply */

/* ------------------------------------------------------------------ */
/* Options                                                            */

/* opt_arg - the argument of the option whose letter ended at *p in
   argv[*i]: the rest of the word, else the next word */
static const char *
opt_arg(int argc, char **argv, int *i, const char *p)
{
	if (*p != '\0')
		return p;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

/* dsn_notify_ok - "never", or a comma list of success, delay, failure */
static bool
dsn_notify_ok(const char *v)
{
	const char *p = v, *comma;
	size_t n;

	if (strcasecmp(v, "never") == 0)
		return true;
	for (;;) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (!((n == 7 && strncasecmp(p, "success", 7) == 0) ||
		    (n == 5 && strncasecmp(p, "delay", 5) == 0) ||
		    (n == 7 && strncasecmp(p, "failure", 7) == 0)))
			return false;
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

/* mode_error - why -bX (or -q, -I) is refused */
static void
mode_error(char mode, char *err, size_t errsz)
{
	switch (mode) {
	case 's':
		snprintf(err, errsz, "-bs (SMTP on standard input) is not "
		    "supported");
		break;
	case 'd':
		snprintf(err, errsz, "-bd (daemon mode) is not supported: the "
		    "daemon is `postern serve`");
		break;
	case 'q':
		snprintf(err, errsz, "-q (queue run) is not supported: the "
		    "daemon runs its queue itself");
		break;
	default:
		snprintf(err, errsz, "-b%c: mode not supported (only -bm: a "
		    "message on standard input; -bp: the queue; -bi: "
		    "newaliases)", mode);
		break;
	}
}

/* o_option - one -o option (its text after "o"); 0 or EX_USAGE */
static int
o_option(struct sendmail_opts *o, const char *v, char *err, size_t errsz)
{
	if (strcmp(v, "i") == 0)
		o->ignore_dots = true;
	else if (strcmp(v, "di") == 0 || strcmp(v, "db") == 0 ||
	    strcmp(v, "dq") == 0 || strcmp(v, "em") == 0 ||
	    strcmp(v, "ep") == 0 || strcmp(v, "eq") == 0 ||
	    strcmp(v, "ew") == 0 || strcmp(v, "m") == 0 ||
	    strcmp(v, "o") == 0 || v[0] == 'L' || v[0] == 'b')
		;	/* ignored: see the header comment */
	else {
		snprintf(err, errsz, "option -o%s is not supported", v);
		return EX_USAGE;
	}
	return 0;
}

/* sendmail_parse_args - see sendmail.h */
int
sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o,
    char *err, size_t errsz)
{
	const char *p, *v;
	char c;
	int i;

	memset(o, 0, sizeof(*o));
	o->mode = 'm';
	o->config = CONFIG_DEFAULT_PATH;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			break;
		for (p = argv[i] + 1; *p != '\0';) {
			c = *p++;
			switch (c) {
			case 't':
				o->extract = true;
				continue;
			case 'i':
				o->ignore_dots = true;
				continue;
			case 'v': case 'm': case 'n': case 'G': case 'U':
				continue;	/* ignored */
			case 'I':
				o->mode = 'i';
				continue;
			case 'q':
				mode_error('q', err, errsz);
				return EX_USAGE;
			case 'b': case 'f': case 'r': case 'F': case 'C':
			case 'B': case 'N': case 'R': case 'V': case 'X':
			case 'h': case 'L': case 'A': case 'o':
				break;
			default:
				snprintf(err, errsz, "unknown option -%c", c);
				return EX_USAGE;
			}
			if ((v = opt_arg(argc, argv, &i, p)) == NULL) {
				snprintf(err, errsz, "option -%c needs an "
				    "argument", c);
				return EX_USAGE;
			}
			p = "";		/* the word is used up */
			switch (c) {
			case 'b':
				if (strcmp(v, "m") != 0 && strcmp(v, "p") != 0 &&
				    strcmp(v, "i") != 0) {
					mode_error(v[0] != '\0' && v[1] == '\0' ?
					    v[0] : '?', err, errsz);
					return EX_USAGE;
				}
				o->mode = v[0];
				break;
			case 'f':
			case 'r':
				o->sender = v;
				break;
			case 'F':
				if (strlen(v) > SENDMAIL_FULLNAME_MAX) {
					snprintf(err, errsz, "-F: full name "
					    "longer than %d bytes",
					    SENDMAIL_FULLNAME_MAX);
					return EX_USAGE;
				}
				o->fullname = v;
				break;
			case 'C':
				if (*v == '\0') {
					snprintf(err, errsz, "-C: empty file "
					    "name");
					return EX_USAGE;
				}
				o->config = v;
				break;
			case 'B':
				if (strcasecmp(v, "8BITMIME") == 0)
					o->body = SENDMAIL_BODY_8BITMIME;
				else if (strcasecmp(v, "7BIT") == 0)
					o->body = SENDMAIL_BODY_7BIT;
				else {
					snprintf(err, errsz, "-B needs 7BIT or "
					    "8BITMIME");
					return EX_USAGE;
				}
				break;
			case 'N':
				if (!dsn_notify_ok(v)) {
					snprintf(err, errsz, "-N needs never, "
					    "or success, delay, failure "
					    "separated by commas");
					return EX_USAGE;
				}
				break;
			case 'R':
				if (strcasecmp(v, "hdrs") != 0 &&
				    strcasecmp(v, "full") != 0) {
					snprintf(err, errsz, "-R needs hdrs or "
					    "full");
					return EX_USAGE;
				}
				break;
			case 'o':
				if (o_option(o, v, err, errsz) != 0)
					return EX_USAGE;
				break;
			default:	/* V X h L A: ignored */
				break;
			}
		}
	}
	o->rcpts = argv + i;
	o->nrcpts = (size_t)(argc - i);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Addresses                                                          */

/* sendmail_rcpts_add - see sendmail.h */
int
sendmail_rcpts_add(struct sendmail_rcpts *r, const char *text, size_t len,
    const char **err)
{
	struct address *a;
	char s[ADDRESS_MAX + 1];
	size_t n, got, i, j;

	if (address_header_mailboxes(text, len, true, NULL, 0, &n, err) == -1)
		return -1;
	if (n == 0)
		return 0;
	a = xcalloc(n, sizeof(*a));
	if (address_header_mailboxes(text, len, true, a, n, &got, err) == -1) {
		free(a);
		return -1;
	}
	if (got != n)
		log_panic("sendmail: address list parsed two ways");
	for (i = 0; i < n; i++) {
		address_format(&a[i], s, sizeof(s));
		for (j = 0; j < r->n; j++)
			if (strcmp(r->v[j], s) == 0)
				break;
		if (j < r->n)
			continue;
		r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
		r->v[r->n++] = xstrdup(s);
		if (a[i].utf8)
			r->utf8 = true;
	}
	free(a);
	return 0;
}

/* sendmail_rcpts_free - release the list; it can be used again */
void
sendmail_rcpts_free(struct sendmail_rcpts *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	r->v = NULL;
	r->n = 0;
	r->utf8 = false;
}

/* sendmail_parse_sender - see sendmail.h */
int
sendmail_parse_sender(const char *s, struct address *a, const char **err)
{
	size_t len = strlen(s);

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
		s++, len -= 2;
	if (len == 0) {
		memset(a, 0, sizeof(*a));
		return 0;
	}
	return address_parse_addrspec(s, len, true, a, err);
}

/* ------------------------------------------------------------------ */
/* The header section                                                 */

enum line_kind { LINE_EMPTY, LINE_CONT, LINE_FIELD, LINE_OTHER };

/* name_char - RFC 5322 ftext: printable ASCII but ':' */
static bool
name_char(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* field_name_len - length of the field name of line[0..len) if it is
   "name:" (WSP allowed before the colon, obsolete syntax), else 0 */
static size_t
field_name_len(const char *line, size_t len)
{
	size_t n, i;

	for (n = 0; n < len && name_char((unsigned char)line[n]); n++)
		;
	for (i = n; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	return n > 0 && i < len && line[i] == ':' ? n : 0;
}

/* line_kind - what line[0..len) (no line end) is in a header section */
static enum line_kind
line_kind(const char *line, size_t len)
{
	if (len == 0)
		return LINE_EMPTY;
	if (line[0] == ' ' || line[0] == '\t')
		return LINE_CONT;
	return field_name_len(line, len) > 0 ? LINE_FIELD : LINE_OTHER;
}

/* sendmail_read_header - see sendmail.h */
int
sendmail_read_header(int fd, size_t max, struct buf *hdr, bool *blank,
    bool *headerless, struct buf *rest, char *err, size_t errsz)
{
	struct buf in;
	char *chunk = xmalloc(CHUNK);
	const char *line, *nl;
	size_t pos = 0, llen, next;
	bool first = true, at_start = true, eof = false;
	enum line_kind k;
	ssize_t r;
	int rc = 0;

	*blank = *headerless = false;
	buf_init(&in, max + CHUNK);
	for (;;) {
		while ((nl = pos < in.len ? memchr(in.data + pos, '\n',
		    in.len - pos) : NULL) != NULL || (eof && pos < in.len)) {
			line = in.data + pos;
			llen = nl ? (size_t)(nl - line) : in.len - pos;
			next = pos + llen + (nl ? 1 : 0);
			if (llen > 0 && line[llen - 1] == '\r')
				llen--;
			if (at_start && llen >= 5 &&
			    memcmp(line, "From ", 5) == 0) {
				at_start = false;	/* mbox separator */
				pos = next;
				continue;
			}
			at_start = false;
			k = line_kind(line, llen);
			if (k == LINE_EMPTY) {
				*blank = true;
				pos = next;
				goto done;
			}
			if (k == LINE_OTHER || (k == LINE_CONT && first)) {
				*headerless = first;
				goto done;	/* the body starts here */
			}
			if (hdr->len + llen + 2 > max ||
			    buf_append(hdr, line, llen) == -1 ||
			    buf_append(hdr, "\r\n", 2) == -1)
				goto toobig;
			first = false;
			pos = next;
		}
		if (eof)
			goto done;
		if (pos > 0) {
			memmove(in.data, in.data + pos, in.len - pos);
			in.len -= pos;
			pos = 0;
		}
		if (in.len >= max) {
			/* a line longer than the whole limit so far */
			k = line_kind(in.data, in.len);
			if (k == LINE_FIELD || (k == LINE_CONT && !first))
				goto toobig;
			*headerless = first;
			goto done;
		}
		do
			r = read(fd, chunk, CHUNK);
		while (r == -1 && errno == EINTR);
		if (r == -1) {
			snprintf(err, errsz, "cannot read the message: %s",
			    strerror(errno));
			rc = EX_IOERR;
			goto out;
		}
		if (r == 0)
			eof = true;
		else if (buf_append(&in, chunk, (size_t)r) == -1)
			log_panic("sendmail: header input buffer");
	}
toobig:
	snprintf(err, errsz, "the message's header section is larger than "
	    "%zu bytes", max);
	rc = EX_DATAERR;
	goto out;
done:
	if (pos < in.len && buf_append(rest, in.data + pos, in.len - pos) ==
	    -1)
		log_panic("sendmail: rest buffer");
out:
	buf_free(&in);
	free(chunk);
	return rc;
}

/* name_is - is field name p[0..n) name, in any case? */
static bool
name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* blank_value - only whitespace and line ends? */
static bool
blank_value(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] != ' ' && v[i] != '\t' && v[i] != '\r' &&
		    v[i] != '\n')
			return false;
	return true;
}

/* sendmail_header_pass - see sendmail.h */
int
sendmail_header_pass(const char *hdr, size_t len, bool extract,
    struct buf *out, struct sendmail_rcpts *rcpts,
    struct sendmail_header *info, char *err, size_t errsz)
{
	const char *p = hdr, *end = hdr + len, *fend, *nl, *val, *e;
	size_t namelen, vlen, n, i;
	bool bcc;

	memset(info, 0, sizeof(*info));
	while (p < end) {
		/* one field: [p, fend), its continuation lines included */
		fend = p;
		do {
			nl = memchr(fend, '\n', (size_t)(end - fend));
			fend = nl ? nl + 1 : end;
		} while (fend < end && (*fend == ' ' || *fend == '\t'));
		namelen = field_name_len(p, (size_t)(fend - p));
		val = memchr(p, ':', (size_t)(fend - p));
		if (namelen == 0 || val == NULL) {
			/* not a field (a caller's bug): keep it as it is */
			namelen = 0;
			val = fend;
		} else
			val++;
		vlen = (size_t)(fend - val);
		while (vlen > 0 && (val[vlen - 1] == '\n' ||
		    val[vlen - 1] == '\r'))
			vlen--;
		bcc = name_is(p, namelen, "Bcc");
		/* Resent-Bcc: is dropped too, but not used by -t */
		if (extract && (bcc || name_is(p, namelen, "To") ||
		    name_is(p, namelen, "Cc")) && !blank_value(val, vlen) &&
		    sendmail_rcpts_add(rcpts, val, vlen, &e) == -1) {
			snprintf(err, errsz, "%.*s: field is not an address "
			    "list: %s", (int)namelen, p, e);
			return EX_DATAERR;
		}
		if (name_is(p, namelen, "From") && info->nfrom++ == 0)
			info->from_ok = address_header_mailboxes(val, vlen,
			    true, &info->from, 1, &n, &e) == 0 && n == 1;
		if (!bcc && !name_is(p, namelen, "Resent-Bcc")) {
			if (buf_append(out, p, (size_t)(fend - p)) == -1) {
				snprintf(err, errsz, "header buffer full");
				return EX_SOFTWARE;
			}
			for (i = 0; i < (size_t)(fend - p); i++)
				if ((unsigned char)p[i] >= 0x80)
					info->utf8 = true;
		}
		p = fend;
	}
	if (!info->from_ok)
		memset(&info->from, 0, sizeof(info->from));
	return 0;
}

/* atext - RFC 5322 atext */
static bool
atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

/* b64_append - base64 of p[0..n) */
static int
b64_append(struct buf *out, const unsigned char *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	size_t i;
	unsigned v;

	for (i = 0; i < n; i += 3) {
		v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		if (buf_append(out, q, 4) == -1)
			return -1;
	}
	return 0;
}

/* sendmail_from_field - see sendmail.h */
int
sendmail_from_field(struct buf *out, const char *name, const char *addr)
{
	char *nm = xstrdup(name ? name : ""), *s;
	size_t len, i, take;
	bool ascii = true, atoms = true;
	int rc = -1;

	for (i = 0; nm[i]; i++) {
		unsigned char c = (unsigned char)nm[i];

		if (c < 0x20 || c == 0x7f)
			nm[i] = ' ';	/* no CR/LF: no field injection */
		else if (c >= 0x80)
			ascii = false;
	}
	for (s = nm; *s == ' '; s++)
		;
	len = strlen(s);
	while (len > 0 && s[len - 1] == ' ')
		len--;
	s[len] = '\0';
	if (buf_puts(out, "From: ") == -1)
		goto out;
	if (len > 0 && ascii) {
		for (i = 0; i < len; i++)
			if (!atext((unsigned char)s[i]) && s[i] != ' ')
				atoms = false;
		if (atoms) {
			if (buf_append(out, s, len) == -1)
				goto out;
		} else {
			if (buf_puts(out, "\"") == -1)
				goto out;
			for (i = 0; i < len; i++)
				if (((s[i] == '"' || s[i] == '\\') &&
				    buf_puts(out, "\\") == -1) ||
				    buf_append(out, &s[i], 1) == -1)
					goto out;
			if (buf_puts(out, "\"") == -1)
				goto out;
		}
	} else if (len > 0) {
		/* RFC 2047 encoded-words of at most 45 bytes (60 base64
		   characters, 72 in all), cut between UTF-8 characters,
		   folded between words */
		for (i = 0; i < len; i += take) {
			take = len - i < 45 ? len - i : 45;
			while (take > 1 && i + take < len &&
			    ((unsigned char)s[i + take] & 0xc0) == 0x80)
				take--;
			if ((i > 0 && buf_puts(out, "\r\n ") == -1) ||
			    buf_puts(out, "=?UTF-8?B?") == -1 ||
			    b64_append(out, (unsigned char *)s + i, take) == -1 ||
			    buf_puts(out, "?=") == -1)
				goto out;
		}
	}
	if (len > 0 ? buf_printf(out, " <%s>\r\n", addr) :
	    buf_printf(out, "%s\r\n", addr))
		goto out;
	rc = 0;
out:
	free(nm);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The text transform                                                 */

/* put - append what must fit (the caller reserved room) */
static void
put(struct buf *out, const char *p, size_t n)
{
	if (buf_append(out, p, n) == -1)
		log_panic("sendmail: output buffer full");
}

/* sendmail_dot_init - start of the message: start of a line */
void
sendmail_dot_init(struct sendmail_dot *s, bool ignore_dots)
{
	memset(s, 0, sizeof(*s));
	s->ignore_dots = ignore_dots;
	s->bol = true;
}

/* dot_text - ordinary text p[0..n): after a held "." (stuffed) */
static void
dot_text(struct sendmail_dot *s, const char *p, size_t n, struct buf *out)
{
	if (s->dot) {
		put(out, "..", 2);
		s->dot = false;
	}
	put(out, p, n);
	s->bol = false;
}

/* sendmail_dot_feed - see sendmail.h */
size_t
sendmail_dot_feed(struct sendmail_dot *s, const char *in, size_t n,
    struct buf *out)
{
	size_t i, j;
	char c;

	if (s->done)
		return 0;
	for (i = 0; i < n; i++) {
		c = in[i];
		if (s->cr) {
			s->cr = false;
			if (c != '\n')	/* a bare CR: passed on */
				dot_text(s, "\r", 1, out);
		}
		if (c == '\r') {
			s->cr = true;
			continue;
		}
		if (c == '\n') {
			if (s->dot) {
				s->done = true;
				return i + 1;
			}
			put(out, "\r\n", 2);
			s->bol = true;
			continue;
		}
		if (s->bol && c == '.') {
			s->bol = false;
			if (s->ignore_dots)
				put(out, "..", 2);
			else
				s->dot = true;
			continue;
		}
		/* the run of ordinary characters from here */
		for (j = i + 1; j < n && in[j] != '\r' && in[j] != '\n'; j++)
			;
		dot_text(s, in + i, j - i, out);
		i = j - 1;
	}
	return n;
}

/* sendmail_dot_finish - see sendmail.h */
void
sendmail_dot_finish(struct sendmail_dot *s, struct buf *out)
{
	if (s->done)
		return;
	if (s->dot) {
		/* "." (or ".\r") as the last line, without LF: the end */
		s->done = true;
		return;
	}
	if (s->cr || !s->bol)
		put(out, "\r\n", 2);
	s->cr = false;
	s->bol = true;
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */

/* sendmail_reply_line - see sendmail.h */
int
sendmail_reply_line(const char *line, size_t len, int *code, bool *last,
    const char **text)
{
	if (len < 3 || line[0] < '1' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = len == 3 || line[3] == ' ';
	*text = len > 3 ? line + 4 : line + 3;
	return 0;
}

/* enhanced - parse "C.S.D" at the start of text; -1 if there is none */
static int
enhanced(const char *text, unsigned *subject, unsigned *detail)
{
	const char *p = text;
	unsigned v[3];
	int i, d;

	if (*p < '2' || *p > '5' || p[1] != '.')
		return -1;
	v[0] = (unsigned)(*p - '0');
	p += 2;
	for (i = 1; i < 3; i++) {
		v[i] = 0;
		for (d = 0; isdigit((unsigned char)*p) && d < 4; d++, p++)
			v[i] = v[i] * 10 + (unsigned)(*p - '0');
		if (d == 0 || d > 3)
			return -1;
		if (i == 1 && *p++ != '.')
			return -1;
	}
	if (*p != '\0' && *p != ' ')
		return -1;
	*subject = v[1];
	*detail = v[2];
	return 0;
}

/* sendmail_exit_status - see sendmail.h */
int
sendmail_exit_status(int code, const char *text)
{
	unsigned subject, detail;

	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code < 500 || code >= 600)
		return EX_PROTOCOL;
	if (enhanced(text, &subject, &detail) == -1)
		return EX_DATAERR;
	if (subject == 7)
		return EX_NOPERM;
	if (subject == 1)
		return detail == 2 || detail == 10 ? EX_NOHOST : EX_NOUSER;
	return EX_DATAERR;
}

/* ------------------------------------------------------------------ */
/* The program                                                        */

/* fail - print "sendmail: REASON" as one line (control characters made
   '?') and return status */
static int __attribute__((format(printf, 2, 3)))
fail(int status, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (i = 0; line[i]; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	fprintf(stderr, "sendmail: %s\n", line);
	fflush(stderr);
	return status;
}

/* What the configuration says, or the defaults. */
struct local_conf {
	char	*socket;
	char	*sender;	/* first exact local_senders address, or NULL */
	char	*user;		/* the caller's name, or NULL */
	size_t	 header_max;
	size_t	 nlocal;	/* local_senders entries (0 if not loaded) */
	char	*problem;	/* why the file could not be used, or NULL */
};

/* local_conf_load - see the header comment: never fails */
static void
local_conf_load(const char *path, struct local_conf *lc)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cfg;
	struct passwd *pw;
	size_t i, j;

	memset(lc, 0, sizeof(*lc));
	if ((pw = getpwuid(getuid())) != NULL)
		lc->user = xstrdup(pw->pw_name);
	/* Files the configuration names (the TLS key is root's) are not
	   opened (config_load_client). If the caller may not read the
	   configuration itself, use the compiled defaults rather than fail:
	   the daemon decides what this caller may send anyway. */
	if ((cfg = config_load_client(path, &errs)) == NULL) {
		lc->socket = xstrdup(DEFAULT_SOCKET);
		lc->header_max = SENDMAIL_HEADER_MAX;
		lc->problem = errs.n > 0 ? xstrdup(errs.v[0]) :
		    xasprintf("%s: cannot load the configuration", path);
		config_errors_free(&errs);
		return;
	}
	lc->socket = xstrdup(cfg->local_socket);
	lc->header_max = cfg->limits.header_size;
	lc->nlocal = cfg->nlocal_senders;
	for (i = 0; lc->user != NULL && i < cfg->nlocal_senders; i++) {
		if (strcmp(cfg->local_senders[i].user, lc->user) != 0)
			continue;
		for (j = 0; j < cfg->local_senders[i].naddresses; j++)
			if (cfg->local_senders[i].addresses[j][0] != '*') {
				lc->sender = xstrdup(
				    cfg->local_senders[i].addresses[j]);
				break;
			}
		break;
	}
	config_free(cfg);
}

/*
 * no_socket - there is nothing at the socket path: the daemon is not
 * running, or it opens no local socket because local_senders is empty.
 * Say which (when the configuration could be read) and what to do;
 * returns EX_UNAVAILABLE.
 */
static int
no_socket(const struct local_conf *lc, const char *config)
{
	const char *user = lc->user ? lc->user : "(unknown uid)";

	if (lc->problem == NULL && lc->nlocal == 0)
		return fail(EX_UNAVAILABLE, "no local socket at %s: "
		    "local_senders in %s is empty, so the postern daemon "
		    "opens none (add user %s to local_senders there, then "
		    "restart the daemon)", lc->socket, config, user);
	if (lc->problem == NULL)
		return fail(EX_UNAVAILABLE, "no local socket at %s: the "
		    "postern daemon is not running (start it: postern serve "
		    "-c %s, or its service)", lc->socket, config);
	return fail(EX_UNAVAILABLE, "no local socket at %s: the postern "
	    "daemon is not running, or local_senders is empty so it opens "
	    "none (start the daemon, or add user %s to local_senders in %s "
	    "and restart it) (the default path: %s)", lc->socket, user,
	    config, lc->problem);
}

static void
local_conf_free(struct local_conf *lc)
{
	free(lc->socket);
	free(lc->sender);
	free(lc->user);
	free(lc->problem);
}

/* A connection to the daemon. */
struct conn {
	int	 fd;
	char	 in[4096];
	size_t	 off, len;
};

/* A reply: its code and text (lines joined by " ", at most
   REPLY_TEXT_MAX). */
struct reply {
	int	 code;
	char	 text[REPLY_TEXT_MAX + 1];
};

enum { IO_OK, IO_LOST, IO_TIMEDOUT, IO_BAD };

/* conn_line - one line from the daemon into line[REPLY_LINE_MAX + 1],
   without its CRLF; IO_* */
static int
conn_line(struct conn *c, char *line, size_t *len)
{
	ssize_t r;
	char ch;

	*len = 0;
	for (;;) {
		if (c->off == c->len) {
			do
				r = recv(c->fd, c->in, sizeof(c->in), 0);
			while (r == -1 && errno == EINTR);
			if (r == -1 && (errno == EAGAIN ||
			    errno == EWOULDBLOCK))
				return IO_TIMEDOUT;
			if (r <= 0)
				return IO_LOST;
			c->off = 0;
			c->len = (size_t)r;
		}
		ch = c->in[c->off++];
		if (ch == '\n') {
			if (*len > 0 && line[*len - 1] == '\r')
				(*len)--;
			line[*len] = '\0';
			return IO_OK;
		}
		if (*len == REPLY_LINE_MAX)
			return IO_BAD;
		line[(*len)++] = ch;
	}
}

/* conn_reply - one whole reply; IO_* */
static int
conn_reply(struct conn *c, struct reply *rp)
{
	char line[REPLY_LINE_MAX + 1];
	const char *text;
	size_t len, tl, n;
	bool last;
	int code, rc, lines = 0;

	rp->code = 0;
	rp->text[0] = '\0';
	tl = 0;
	do {
		if ((rc = conn_line(c, line, &len)) != IO_OK)
			return rc;
		if (sendmail_reply_line(line, len, &code, &last, &text) == -1 ||
		    (rp->code != 0 && code != rp->code) ||
		    ++lines > REPLY_LINES_MAX)
			return IO_BAD;
		rp->code = code;
		n = strlen(text);
		if (tl > 0 && tl < REPLY_TEXT_MAX)
			rp->text[tl++] = ' ';
		if (n > REPLY_TEXT_MAX - tl)
			n = REPLY_TEXT_MAX - tl;
		memcpy(rp->text + tl, text, n);
		tl += n;
		rp->text[tl] = '\0';
	} while (!last);
	return IO_OK;
}

/* conn_write - all of p[0..n); 0, or IO_LOST / IO_TIMEDOUT */
static int
conn_write(struct conn *c, const char *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ?
			    IO_TIMEDOUT : IO_LOST;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A transaction in progress: what fail_io needs to say. */
struct txn {
	struct conn	 c;
	const char	*socket;
	struct reply	 rp;
};

/* fail_io - a read or write that did not work (rc: IO_*) at step what */
static int
fail_io(struct txn *t, int rc, const char *what)
{
	if (rc == IO_BAD)
		return fail(EX_PROTOCOL, "%s: the daemon's reply is not SMTP",
		    what);
	if (rc == IO_TIMEDOUT)
		return fail(EX_TEMPFAIL, "%s: no answer from the daemon in "
		    "%d seconds", what, IO_TIMEOUT);
	return fail(EX_TEMPFAIL, "%s: connection to the daemon at %s lost",
	    what, t->socket);
}

/* fail_reply - the daemon refused (or said something unexpected) */
static int
fail_reply(struct txn *t, const char *prefix)
{
	int st = sendmail_exit_status(t->rp.code, t->rp.text);

	if (st == EX_PROTOCOL)
		return fail(st, "%sunexpected reply from the daemon: %03d %s",
		    prefix, t->rp.code, t->rp.text);
	return fail(st, "%s%03d %s", prefix, t->rp.code, t->rp.text);
}

/* command - send line (CRLF added) and read the reply; IO_* */
static int
command(struct txn *t, const char *line)
{
	char *l = xasprintf("%s\r\n", line);
	int rc;

	rc = conn_write(&t->c, l, strlen(l));
	free(l);
	if (rc != 0)
		return rc;
	return conn_reply(&t->c, &t->rp);
}

/* quit - polite end; its outcome does not matter */
static void
quit(struct txn *t)
{
	struct timeval tv = { 5, 0 };

	(void)setsockopt(t->c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)command(t, "QUIT");
}

/* connect_daemon - the socket, or -1 with errno */
static int
connect_daemon(const char *path)
{
	struct sockaddr_un sun;
	struct timeval tv = { IO_TIMEOUT, 0 };
	int fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* send_message - DATA's text: head, then rest and the rest of stdin,
   transformed; then ".". 0, or an exit status (already reported) */
static int
send_message(struct txn *t, const struct sendmail_opts *o,
    const struct buf *head, const struct buf *rest)
{
	struct sendmail_dot dot;
	struct buf out;
	char *chunk = xmalloc(CHUNK);
	size_t off;
	ssize_t r;
	int rc, status = 0;

	buf_init(&out, 4 * CHUNK + 16);
	sendmail_dot_init(&dot, o->ignore_dots);
	/* head and rest in pieces of CHUNK: out always has room */
	for (off = 0; off < head->len; off += CHUNK) {
		sendmail_dot_feed(&dot, head->data + off,
		    head->len - off < CHUNK ? head->len - off : CHUNK, &out);
		if ((rc = conn_write(&t->c, out.data, out.len)) != 0)
			goto io;
		buf_reset(&out);
	}
	for (off = 0; off < rest->len && !dot.done; off += CHUNK) {
		sendmail_dot_feed(&dot, rest->data + off,
		    rest->len - off < CHUNK ? rest->len - off : CHUNK, &out);
		if ((rc = conn_write(&t->c, out.data, out.len)) != 0)
			goto io;
		buf_reset(&out);
	}
	while (!dot.done) {
		do
			r = read(STDIN_FILENO, chunk, CHUNK);
		while (r == -1 && errno == EINTR);
		if (r == -1) {
			/* no final ".": the daemon discards the message */
			status = fail(EX_IOERR, "cannot read the message: %s",
			    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		sendmail_dot_feed(&dot, chunk, (size_t)r, &out);
		if (out.len >= CHUNK) {
			if ((rc = conn_write(&t->c, out.data, out.len)) != 0)
				goto io;
			buf_reset(&out);
		}
	}
	sendmail_dot_finish(&dot, &out);
	put(&out, ".\r\n", 3);
	if ((rc = conn_write(&t->c, out.data, out.len)) != 0)
		goto io;
	if ((rc = conn_reply(&t->c, &t->rp)) != IO_OK) {
		status = fail_io(t, rc, "after the message");
		goto out;
	}
	if (t->rp.code != 250) {
		status = fail_reply(t, "");
		quit(t);
	}
	goto out;
io:
	/* The daemon may have said why it stopped reading (a bare CR, 521,
	   then it closed): quote that rather than the broken pipe. */
	if (rc == IO_LOST && conn_reply(&t->c, &t->rp) == IO_OK &&
	    t->rp.code >= 400)
		status = fail_reply(t, "");
	else
		status = fail_io(t, rc, "sending the message");
out:
	buf_free(&out);
	free(chunk);
	return status;
}

/* transact - the SMTP dialogue; an exit status */
static int
transact(struct txn *t, const struct sendmail_opts *o,
    const struct address *sender, const struct sendmail_rcpts *rcpts,
    bool utf8, const struct buf *head, const struct buf *rest)
{
	char from[ADDRESS_MAX + 1], *line, *kw;
	bool smtputf8 = false, eightbit = false;
	size_t i;
	int rc, status;

	if ((rc = conn_reply(&t->c, &t->rp)) != IO_OK)
		return fail_io(t, rc, "greeting");
	if (t->rp.code != 220)
		return fail_reply(t, "");
	if ((rc = command(t, "EHLO localhost")) != IO_OK)
		return fail_io(t, rc, "EHLO");
	if (t->rp.code != 250) {
		status = fail_reply(t, "EHLO: ");
		quit(t);
		return status;
	}
	/* the keywords: the joined lines after the host name */
	for (kw = strtok(t->rp.text, " "); kw; kw = strtok(NULL, " ")) {
		if (strcasecmp(kw, "SMTPUTF8") == 0)
			smtputf8 = true;
		else if (strcasecmp(kw, "8BITMIME") == 0)
			eightbit = true;
	}

	address_format(sender, from, sizeof(from));
	line = xasprintf("MAIL FROM:<%s>%s%s", from,
	    o->body == SENDMAIL_BODY_8BITMIME && eightbit ? " BODY=8BITMIME" :
	    o->body == SENDMAIL_BODY_7BIT && eightbit ? " BODY=7BIT" : "",
	    utf8 && smtputf8 ? " SMTPUTF8" : "");
	rc = command(t, line);
	free(line);
	if (rc != IO_OK)
		return fail_io(t, rc, "MAIL");
	if (t->rp.code != 250) {
		status = fail_reply(t, "");
		quit(t);
		return status;
	}
	for (i = 0; i < rcpts->n; i++) {
		line = xasprintf("RCPT TO:<%s>", rcpts->v[i]);
		rc = command(t, line);
		free(line);
		if (rc != IO_OK)
			return fail_io(t, rc, "RCPT");
		if (t->rp.code != 250 && t->rp.code != 251) {
			/* one refused: nobody gets it (see the top) */
			line = xasprintf("recipient <%s> refused, message not "
			    "sent: ", rcpts->v[i]);
			status = fail_reply(t, line);
			free(line);
			quit(t);
			return status;
		}
	}
	if ((rc = command(t, "DATA")) != IO_OK)
		return fail_io(t, rc, "DATA");
	if (t->rp.code != 354) {
		status = fail_reply(t, "DATA: ");
		quit(t);
		return status;
	}
	if ((status = send_message(t, o, head, rest)) != 0)
		return status;
	quit(t);
	return 0;
}

/* sendmail_newaliases - there are no aliases to rebuild */
int
sendmail_newaliases(void)
{
	printf("newaliases: Postern has no aliases file (it delivers no "
	    "local mail): nothing to do\n");
	return 0;
}

/* sendmail_mailq - -bp: `postern queue list -c FILE`; operands are
   refused, as mailq refuses them */
static int
sendmail_mailq(const struct sendmail_opts *o)
{
	char *words[] = { "list", "-c", (char *)o->config, NULL };

	if (o->nrcpts > 0 || o->extract)
		return fail(EX_USAGE, "-bp lists the queue: it takes no "
		    "recipients and no -t");
	return queue_main(3, words) == 0 ? 0 : EX_UNAVAILABLE;
}

/* sendmail_main - see sendmail.h */
int
sendmail_main(int argc, char **argv)
{
	struct sendmail_opts o;
	struct sendmail_rcpts rcpts = { NULL, 0, false };
	struct sendmail_header info;
	struct local_conf lc;
	struct address sender;
	struct buf hdr, kept, head, rest;
	struct txn t;
	char err[512];
	const char *why;
	bool blank, headerless, have_sender = false;
	size_t i;
	int status;

	signal(SIGPIPE, SIG_IGN);
	log_init("sendmail", 0);
	log_set_quiet(1);
	if ((status = sendmail_parse_args(argc, argv, &o, err, sizeof(err))))
		return fail(status, "%s", err);
	if (o.mode == 'i')
		return sendmail_newaliases();
	if (o.mode == 'p')
		return sendmail_mailq(&o);
	if (o.nrcpts == 0 && !o.extract)
		return fail(EX_USAGE, "no recipients given (name them, or use "
		    "-t to take them from the message)");
	if (o.sender != NULL) {
		if (sendmail_parse_sender(o.sender, &sender, &why) == -1)
			return fail(EX_USAGE, "-f \"%s\": not an address: %s",
			    o.sender, why);
		have_sender = true;
	}
	for (i = 0; i < o.nrcpts; i++)
		if (sendmail_rcpts_add(&rcpts, o.rcpts[i], strlen(o.rcpts[i]),
		    &why) == -1) {
			sendmail_rcpts_free(&rcpts);
			return fail(EX_NOUSER, "recipient \"%s\": not an "
			    "address (%s); Postern relays only to "
			    "user@domain", o.rcpts[i], why);
		}

	local_conf_load(o.config, &lc);
	buf_init(&hdr, lc.header_max);
	buf_init(&kept, lc.header_max);
	buf_init(&head, lc.header_max + 2 * SENDMAIL_FULLNAME_MAX + 1024);
	buf_init(&rest, lc.header_max + CHUNK);
	memset(&info, 0, sizeof(info));
	memset(&t, 0, sizeof(t));
	t.c.fd = -1;

	if ((status = sendmail_read_header(STDIN_FILENO, lc.header_max, &hdr,
	    &blank, &headerless, &rest, err, sizeof(err))) != 0) {
		status = fail(status, "%s", err);
		goto out;
	}
	if ((status = sendmail_header_pass(hdr.data, hdr.len, o.extract,
	    &kept, &rcpts, &info, err, sizeof(err))) != 0) {
		status = fail(status, "%s", err);
		goto out;
	}
	if (rcpts.n == 0) {
		status = fail(EX_USAGE, "no recipients: none given and none "
		    "in To:, Cc: or Bcc:");
		goto out;
	}

	if (!have_sender && info.from_ok) {
		sender = info.from;
		have_sender = true;
	}
	if (!have_sender && lc.sender != NULL &&
	    address_parse_addrspec(lc.sender, strlen(lc.sender), true,
	    &sender, &why) == 0)
		have_sender = true;
	if (!have_sender) {
		status = fail(EX_USAGE, "no sender address: give -f ADDRESS%s, "
		    "or map user %s to an address in local_senders of %s%s%s",
		    info.nfrom > 0 ? " (the From: field does not hold "
		    "exactly one address)" : " or a From: field",
		    lc.user ? lc.user : "(unknown uid)", o.config,
		    lc.problem ? ", which cannot be used: " : "",
		    lc.problem ? lc.problem : "");
		goto out;
	}

	if (!headerless && info.nfrom == 0 && sender.local[0] != '\0') {
		char a[ADDRESS_MAX + 1];

		if (sendmail_from_field(&head, o.fullname,
		    address_format(&sender, a, sizeof(a))) == -1)
			log_panic("sendmail: From: field too long");
	}
	/* the empty line: as read, or put in where the body began without
	   one (a line that is no field), as sendmail does */
	if (buf_append(&head, kept.data, kept.len) == -1 ||
	    ((blank || (!headerless && rest.len > 0)) &&
	    buf_append(&head, "\r\n", 2) == -1))
		log_panic("sendmail: header buffer");

	t.socket = lc.socket;
	if ((t.c.fd = connect_daemon(lc.socket)) == -1 && errno == ENOENT) {
		status = no_socket(&lc, o.config);
		goto out;
	}
	if (t.c.fd == -1) {
		status = fail(EX_UNAVAILABLE, "cannot reach the postern daemon "
		    "at %s: %s%s%s%s", lc.socket, strerror(errno),
		    lc.problem ? " (the default path: " : "",
		    lc.problem ? lc.problem : "", lc.problem ? ")" : "");
		goto out;
	}
	status = transact(&t, &o, &sender, &rcpts,
	    sender.utf8 || rcpts.utf8 || info.utf8, &head, &rest);
out:
	if (t.c.fd != -1)
		close(t.c.fd);
	buf_free(&hdr);
	buf_free(&kept);
	buf_free(&head);
	buf_free(&rest);
	sendmail_rcpts_free(&rcpts);
	local_conf_free(&lc);
	return status;
}
