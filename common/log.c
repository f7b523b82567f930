/*
 * log - stderr logging with levels; see log.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_prog = "postern";
static int log_debugging;
static int log_quiet;
static int log_journal;

/*
 * log_to_journal - is stderr systemd's journal stream? systemd sets
 * JOURNAL_STREAM to "DEV:INODE" of the stream it gives a service
 * (systemd.exec(5)); a program's own redirection of stderr does not
 * match it. Then each line starts with "<N>" (the syslog priority,
 * sd-daemon(3)) and without our "prog[pid]: ", which the journal adds.
 */
static int
log_to_journal(void)
{
	unsigned long long dev, ino;
	const char *v = getenv("JOURNAL_STREAM");
	struct stat st;

	if (v == NULL || sscanf(v, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* log_init - set the program name and whether debug lines are shown */
void
log_init(const char *progname, int debug)
{
	log_prog = progname;
	log_debugging = debug;
	log_journal = log_to_journal();
}

/* log_set_quiet - drop info and debug lines (command-line tools) */
void
log_set_quiet(int quiet)
{
	log_quiet = quiet;
}

/* log_vwrite - format one line, optionally with strerror(saved errno);
   prio is its syslog priority (for the journal) */
static void
log_vwrite(int prio, const char *level, int with_errno, int saved_errno,
    const char *fmt, va_list ap)
{
	char msg[2048], head[64];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal)
		snprintf(head, sizeof(head), "<%d>", prio);
	else
		snprintf(head, sizeof(head), "%s[%d]: ", log_prog,
		    (int)getpid());
	if (with_errno)
		fprintf(stderr, "%s%s %s: %s\n", head, level, msg,
		    strerror(saved_errno));
	else
		fprintf(stderr, "%s%s %s\n", head, level, msg);
	fflush(stderr);
}

/* syslog(3)'s priorities, without its header's names in our namespace */
#define PRIO_CRIT	2
#define PRIO_ERR	3
#define PRIO_WARNING	4
#define PRIO_INFO	6
#define PRIO_DEBUG	7

#define LOG_BODY(prio, level, with_errno) do {				\
	int saved_errno = errno;					\
	va_list ap;							\
	va_start(ap, fmt);						\
	log_vwrite(prio, level, with_errno, saved_errno, fmt, ap);	\
	va_end(ap);							\
	errno = saved_errno;						\
} while (0)

/* log_debug - debug line, shown only with -d */
void
log_debug(const char *fmt, ...)
{
	if (!log_debugging || log_quiet)
		return;
	LOG_BODY(PRIO_DEBUG, "debug", 0);
}

/* log_info - informational event line */
void
log_info(const char *fmt, ...)
{
	if (log_quiet)
		return;
	LOG_BODY(PRIO_INFO, "info", 0);
}

/* log_warn - warning with strerror(errno) */
void
log_warn(const char *fmt, ...)
{
	LOG_BODY(PRIO_WARNING, "warning", 1);
}

/* log_warnx - warning */
void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(PRIO_WARNING, "warning", 0);
}

/* log_fatal - startup/environment failure with strerror(errno); exit 1 */
void
log_fatal(const char *fmt, ...)
{
	LOG_BODY(PRIO_ERR, "fatal", 1);
	exit(1);
}

/* log_fatalx - startup/environment failure; exit 1 */
void
log_fatalx(const char *fmt, ...)
{
	LOG_BODY(PRIO_ERR, "fatal", 0);
	exit(1);
}

/* log_panic - broken invariant: log and abort */
void
log_panic(const char *fmt, ...)
{
	LOG_BODY(PRIO_CRIT, "panic", 0);
	abort();
}

/* log_utc - see log.h */
char *
log_utc(time_t t, char out[LOG_UTC_LEN])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, LOG_UTC_LEN, "%H:%M:%S UTC", &tm) == 0)
		out[0] = '\0';
	return out;
}

/* log_escape - copy untrusted bytes into out, escaped and truncated */
char *
log_escape(const char *s, size_t len, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (outsz == 0)
		return out;
	if (s == NULL)
		s = "";
	if (len == (size_t)-1)
		len = strlen(s);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"';

		if (o + (plain ? 1 : 4) + 4 > outsz) {
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain)
			out[o++] = (char)c;
		else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
