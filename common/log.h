/*
 * log - the one logging module
 *
 * Three levels, as in Postfix and OpenSMTPD:
 *  - log_panic: a broken invariant in our own code; logs and aborts (core).
 *  - log_fatal/log_fatalx: startup, configuration or environment failure;
 *    logs and exits 1. Never called once the event loop runs for anything a
 *    client or remote peer did.
 *  - log_warn/log_warnx/log_info/log_debug at runtime.
 * The *_warn/_fatal forms append ": strerror(errno)".
 *
 * Lines go to stderr as "postern[pid]: LEVEL message"; under systemd,
 * when stderr is the journal's stream (JOURNAL_STREAM), as "<N>LEVEL
 * message" instead: the journal adds the name and pid itself, and files
 * the line at syslog priority N (warnings 4, fatal 3, panic 2, info 6,
 * debug 7), so `journalctl -p warning` finds them. Event lines use
 * key=value pairs after a session or queue id. Untrusted text (client
 * input, remote replies) must pass through log_escape() first; AUTH
 * payloads and key material are never logged.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stddef.h>
#include <time.h>

void	log_init(const char *progname, int debug);
void	log_set_quiet(int);	/* 1: info and debug are dropped (CLI tools) */

void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	log_fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	log_panic(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * log_escape - make untrusted bytes safe for one log line
 *
 * Copies at most outsz-1 bytes of s[0..len) into out, replacing control
 * characters, backslash, double quote and bytes >= 0x7f by \xHH, and
 * marking truncation with "...". Returns out. Pass len = (size_t)-1 for a
 * NUL-terminated string. out is the caller's; 128 bytes is usual.
 */
char	*log_escape(const char *s, size_t len, char *out, size_t outsz);

/* log_utc - "HH:MM:SS UTC" of t in out, for lines that say until when a
   refusal or hold lasts; returns out */
#define LOG_UTC_LEN	16
char	*log_utc(time_t t, char out[LOG_UTC_LEN]);

#endif
