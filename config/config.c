/*
 * config - load and check the configuration file; see config.h and
 * config_table.h.
 *
 * Two passes over the libconfig tree. check_group() walks everything that
 * is present against keys[] (unknown names, types, ranges, choices,
 * required members) and reports each problem once. The build_* functions
 * then read values (table default when absent, or when the value was
 * already reported as bad), check what needs context (addresses, hosted
 * domains, files, duplicates) and fill struct config. Problems are
 * collected with file and line, sorted by position, and handed to the
 * caller only at the end; any problem means no config.
 */
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/tlspolicy.h"
#include "config/config.h"
#include "config/config_table.h"

#define K_GROUP		CONFIG_KEY_GROUP
#define K_LIST		CONFIG_KEY_LIST
#define K_STRING	CONFIG_KEY_STRING
#define K_BOOL		CONFIG_KEY_BOOL
#define K_INT		CONFIG_KEY_INT
#define K_DURATION	CONFIG_KEY_DURATION
#define K_ENUM		CONFIG_KEY_ENUM
#define K_STRINGS	CONFIG_KEY_STRINGS
#define REQ		CONFIG_KEY_REQUIRED
#define NONEMPTY	CONFIG_KEY_NONEMPTY

/*
 * Every setting. Keep config/postern.conf.example in step (a unit test
 * checks every name is documented there).
 */
static const struct config_key keys[] = {
	{ "hostname", K_STRING, 0, NULL, 0, 0, NULL,
	  "fully-qualified name for the greeting, EHLO and Received:; "
	  "default: the system host name" },
	{ "state_dir", K_STRING, 0, "/var/lib/postern", 0, 0, NULL,
	  "queue directory; relative: to the config file's directory" },
	{ "resolver", K_STRING, 0, NULL, 0, 0, NULL,
	  "DNS server to ask, \"IP\" or \"IP@PORT\"; default: "
	  "/etc/resolv.conf; Postern validates DNSSEC itself, so this "
	  "server must pass DNSSEC records (RRSIG, DNSKEY, DS, NSEC) "
	  "through" },
	{ "dnssec_trust_anchor", K_STRING, 0, "/usr/share/dns/root.key", 0,
	  0, NULL,
	  "file of DS or DNSKEY records (zone-file format) that DNSSEC "
	  "validation starts from, read once at start (a static anchor, "
	  "no RFC 5011 updates: Debian's dns-root-data package updates "
	  "the default, the root key); relative: to the config file's "
	  "directory" },
	{ "dnssec_validation", K_BOOL, 0, "true", 0, 0, NULL,
	  "validate DNSSEC from dnssec_trust_anchor; false: every answer "
	  "is insecure, so DANE is never used (for a resolver that strips "
	  "DNSSEC records); the anchor file is then not read" },
	{ "dkim_check_interval", K_DURATION, 0, "1h", 1, 86400, NULL,
	  "how often pending DKIM selectors (postern keys rotate) are "
	  "looked up in DNS, and the published SPF, DKIM and DMARC records "
	  "compared with postern keys dns (the drift watch)" },
	{ "stop_timeout", K_DURATION, 0, "30s", 1, 3600, NULL,
	  "on SIGTERM, how long transactions and deliveries in progress may "
	  "take to finish" },
	{ "user", K_STRING, 0, NULL, 0, 0, NULL,
	  "account to switch to after binding; required when started as "
	  "root" },
	{ "local_socket", K_STRING, 0, "/run/postern/sendmail.sock", 0, 0,
	  NULL, "unix socket for `postern sendmail`; readable by everyone, "
	  "callers are told apart by their uid" },
	{ "control_socket", K_STRING, 0, "control", 0, 0, NULL,
	  "unix socket of the admin commands (postern queue flush, hold, "
	  "release, delete; postern limits); root and user only; "
	  "relative: to state_dir" },

	{ "listen", K_LIST, REQ | NONEMPTY, NULL, 0, 0, NULL,
	  "sockets to accept mail on" },
	{ "listen.address", K_STRING, REQ, NULL, 0, 0, NULL,
	  "numeric IPv4 or IPv6 address to bind" },
	{ "listen.port", K_INT, REQ, NULL, 1, 65535, NULL,
	  "TCP port" },
	{ "listen.tls", K_ENUM, 0, "starttls", 0, 0, "starttls|implicit|none",
	  "STARTTLS (RFC 3207), implicit TLS (RFC 8314) or no TLS" },
	{ "listen.trusted", K_BOOL, 0, "false", 0, 0, NULL,
	  "relay without AUTH, from listen.senders only" },
	{ "listen.senders", K_STRINGS, 0, NULL, 0, 0, NULL,
	  "trusted listeners: addresses clients may use (required there)" },
	{ "listen.allow_plaintext_auth", K_BOOL, 0, "false", 0, 0, NULL,
	  "offer AUTH without TLS; loopback addresses only" },

	{ "tls", K_GROUP, 0, NULL, 0, 0, NULL,
	  "certificate, key and TLS policy of the starttls and implicit "
	  "listeners" },
	{ "tls.certificate", K_STRING, 0, NULL, 0, 0, NULL,
	  "PEM certificate chain; required if a listener uses TLS" },
	{ "tls.key", K_STRING, 0, NULL, 0, 0, NULL,
	  "PEM private key; required if a listener uses TLS" },
	{ "tls.min_version", K_ENUM, 0, "1.2", 0, 0, "1.2|1.3",
	  "oldest TLS version the listeners accept" },
	{ "tls.ciphers", K_STRING, 0,
	  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305", 0, 0,
	  NULL,
	  "OpenSSL cipher list for TLS 1.2, in the server's order of "
	  "preference; default: ECDHE key exchange with AEAD ciphers only "
	  "(Mozilla's \"intermediate\" list without DHE)" },
	{ "tls.ciphersuites", K_STRING, 0,
	  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
	  "TLS_CHACHA20_POLY1305_SHA256", 0, 0, NULL,
	  "OpenSSL ciphersuites for TLS 1.3 (name:name:...)" },

	{ "auth", K_GROUP, 0, NULL, 0, 0, NULL,
	  "SMTP AUTH" },
	{ "auth.mechanisms", K_STRINGS, NONEMPTY, "PLAIN LOGIN SCRAM-SHA-256",
	  0, 0, NULL,
	  "SASL mechanisms: PLAIN, LOGIN, SCRAM-SHA-1, SCRAM-SHA-256" },
	{ "auth.sasldb", K_STRING, 0, "sasldb2", 0, 0, NULL,
	  "Cyrus sasldb file of users; relative: to state_dir" },

	{ "domains", K_LIST, REQ | NONEMPTY, NULL, 0, 0, NULL,
	  "hosted domains: mail from them is signed and relayed" },
	{ "domains.name", K_STRING, REQ, NULL, 0, 0, NULL,
	  "domain name" },
	{ "domains.dkim", K_LIST, NONEMPTY, NULL, 0, 0, NULL,
	  "DKIM selectors (one rsa-sha256 key signs, one ed25519-sha256 "
	  "may sign beside it)" },
	{ "domains.dkim.selector", K_STRING, REQ, NULL, 0, 0, NULL,
	  "DKIM selector (s=), published at SELECTOR._domainkey.DOMAIN" },
	{ "domains.dkim.algorithm", K_ENUM, REQ, NULL, 0, 0,
	  "rsa-sha256|ed25519-sha256", "signing algorithm" },
	{ "domains.dkim.key", K_STRING, 0, NULL, 0, 0, NULL,
	  "PEM private key; default keys/DOMAIN/SELECTOR.key in state_dir" },
	{ "domains.sign_headers", K_STRINGS, NONEMPTY, NULL, 0, 0, NULL,
	  "header fields to sign when present; default RFC 6376 5.4.1" },
	{ "domains.oversign_headers", K_STRINGS, 0, NULL, 0, 0, NULL,
	  "header fields signed once more than present, so none can be "
	  "added" },
	{ "domains.bounce_address", K_STRING, 0, NULL, 0, 0, NULL,
	  "envelope sender for outbound mail from this domain, instead of "
	  "the submitter's own; same organisational domain" },

	{ "senders", K_LIST, 0, NULL, 0, 0, NULL,
	  "extra addresses a login may send as" },
	{ "senders.login", K_STRING, REQ, NULL, 0, 0, NULL,
	  "SASL login" },
	{ "senders.addresses", K_STRINGS, REQ | NONEMPTY, NULL, 0, 0, NULL,
	  "\"user@domain\" or \"*@domain\" in hosted domains" },
	{ "senders.messages_per_hour", K_INT, 0, NULL, 0, 100000000, NULL,
	  "this login's limit instead of limits.user_messages_per_hour" },
	{ "senders.messages_per_day", K_INT, 0, NULL, 0, 100000000, NULL,
	  "this login's limit instead of limits.user_messages_per_day" },
	{ "senders.recipients_per_hour", K_INT, 0, NULL, 0, 100000000, NULL,
	  "this login's limit instead of limits.user_recipients_per_hour" },
	{ "senders.recipients_per_day", K_INT, 0, NULL, 0, 100000000, NULL,
	  "this login's limit instead of limits.user_recipients_per_day" },

	{ "local_senders", K_LIST, 0, NULL, 0, 0, NULL,
	  "addresses each local user may send as through `postern "
	  "sendmail` (the local_socket)" },
	{ "local_senders.user", K_STRING, REQ, NULL, 0, 0, NULL,
	  "local account name (the caller's uid, from the socket's peer "
	  "credentials)" },
	{ "local_senders.addresses", K_STRINGS, REQ | NONEMPTY, NULL, 0, 0,
	  NULL, "\"user@domain\" or \"*@domain\" in hosted domains" },

	{ "limits", K_GROUP, 0, NULL, 0, 0, NULL,
	  "input limits" },
	{ "limits.message_size", K_INT, 0, "26214400", 1024, 2147483648LL,
	  NULL, "bytes per message, after dot-unstuffing (SIZE)" },
	{ "limits.recipients", K_INT, 0, "100", 1, 10000, NULL,
	  "recipients per message" },
	{ "limits.line_length", K_INT, 0, "4096", 512, 65536, NULL,
	  "bytes per command line, CRLF included" },
	{ "limits.header_size", K_INT, 0, "262144", 1024, 4194304, NULL,
	  "bytes in the header section" },
	{ "limits.errors_per_session", K_INT, 0, "10", 1, 1000, NULL,
	  "client errors before 421 and close" },
	{ "limits.command_timeout", K_DURATION, 0, "5m", 10, 3600, NULL,
	  "wait for a command" },
	{ "limits.data_timeout", K_DURATION, 0, "3m", 10, 3600, NULL,
	  "wait between bytes of DATA" },
	{ "limits.session_lifetime", K_DURATION, 0, "1h", 60, 86400, NULL,
	  "whole connection" },
	{ "limits.connections", K_INT, 0, "1000", 1, 100000, NULL,
	  "concurrent connections in total" },
	{ "limits.connections_per_ip", K_INT, 0, "20", 1, 100000, NULL,
	  "concurrent connections per client address" },
	{ "limits.recipient_lookup_timeout", K_DURATION, 0, "5s", 1, 60, NULL,
	  "wait for DNS on a recipient's domain at RCPT before accepting" },
	{ "limits.user_messages_per_hour", K_INT, 0, "200", 0, 100000000,
	  NULL, "messages one login (or trusted sender) may send per hour; "
	  "0: no limit" },
	{ "limits.user_messages_per_day", K_INT, 0, "1000", 0, 100000000,
	  NULL, "messages per login per day; 0: no limit" },
	{ "limits.user_recipients_per_hour", K_INT, 0, "1000", 0, 100000000,
	  NULL, "recipients per login per hour; 0: no limit" },
	{ "limits.user_recipients_per_day", K_INT, 0, "5000", 0, 100000000,
	  NULL, "recipients per login per day; 0: no limit" },
	{ "limits.recipient_messages_per_hour", K_INT, 0, "30", 0, 100000000,
	  NULL, "messages to any one recipient address per hour, from all "
	  "logins together; 0: no limit" },
	{ "limits.rate_window", K_DURATION, 0, "1h", 1, 3600, NULL,
	  "length of the \"hour\" of the rate limits (a day is 24 of "
	  "them); only tests shorten it" },
	{ "limits.connection_rate_per_ip", K_INT, 0, "60", 0, 100000, NULL,
	  "new connections one client address may open per minute; "
	  "0: no limit" },
	{ "limits.auth_failures_per_ip", K_INT, 0, "5", 0, 100000, NULL,
	  "failed AUTH attempts from one client address within "
	  "auth_failure_window that lock the address out; 0: never" },
	{ "limits.auth_failures_per_login", K_INT, 0, "10", 0, 100000, NULL,
	  "failed AUTH attempts for one login, from all addresses, within "
	  "auth_failure_window that lock the login out; 0: never" },
	{ "limits.auth_failure_window", K_DURATION, 0, "15m", 1, 86400, NULL,
	  "how long failed AUTH attempts are counted" },
	{ "limits.auth_lockout", K_DURATION, 0, "5m", 1, 86400, NULL,
	  "first lockout; each one that follows within auth_lockout_max "
	  "of the last is twice as long" },
	{ "limits.auth_lockout_max", K_DURATION, 0, "1h", 1, 604800, NULL,
	  "longest lockout" },
	{ "limits.auth_failure_delay", K_DURATION, 0, "2s", 0, 60, NULL,
	  "wait before answering a failed AUTH (the event loop goes on)" },
	{ "limits.exempt_networks", K_STRINGS, 0, "127.0.0.0/8 ::1/128", 0, 0,
	  NULL, "client networks (address/prefix) exempt from the per-address "
	  "limits: connections_per_ip, connection_rate_per_ip, AUTH lockouts "
	  "and delay" },
	{ "limits.bounces_per_hour", K_INT, 0, "100", 0, 100000000, NULL,
	  "bounces (DSNs) to one envelope sender per hour; more wait for "
	  "the next hour; 0: no limit" },
	{ "limits.queue_min_free", K_INT, 0, "104857600", 0,
	  1099511627776LL, NULL, "bytes that must stay free on the queue's "
	  "filesystem, or MAIL gets 452 4.3.1; 0: no check" },

	{ "relay", K_GROUP, 0, NULL, 0, 0, NULL,
	  "delivery of queued mail" },
	{ "relay.mode", K_ENUM, 0, "mx", 0, 0, "mx|smarthost|directory",
	  "recipients' MX hosts, one upstream server, or a local folder" },
	{ "relay.directory", K_STRING, 0, "mail", 0, 0, NULL,
	  "directory mode: the Maildir-style folder; relative: to state_dir" },
	{ "relay.port", K_INT, 0, "25", 1, 65535, NULL,
	  "mx mode: TCP port of the recipients' mail servers" },
	{ "relay.addresses", K_STRINGS, 0, NULL, 0, 0, NULL,
	  "public addresses mail leaves from: bound before connecting, "
	  "and put in the SPF suggestion" },
	{ "relay.ip", K_ENUM, 0, "any", 0, 0, "any|ipv4|ipv6",
	  "address families used to reach mail servers" },
	{ "relay.tls", K_ENUM, 0, "opportunistic", 0, 0,
	  "opportunistic|require|none",
	  "mx mode: STARTTLS when offered, required (and verified), or never" },
	{ "relay.ca_file", K_STRING, 0, NULL, 0, 0, NULL,
	  "PEM CA certificates for verification; default: the system's" },
	{ "relay.connections", K_INT, 0, "100", 1, 10000, NULL,
	  "outbound connections in total" },
	{ "relay.connections_per_host", K_INT, 0, "5", 1, 1000, NULL,
	  "outbound connections to one destination" },
	{ "relay.pause", K_DURATION, 0, "0", 0, 3600, NULL,
	  "wait between two messages to one destination" },
	{ "relay.retry", K_GROUP, 0, NULL, 0, 0, NULL,
	  "retries of deferred mail" },
	{ "relay.retry.first", K_DURATION, 0, "5m", 1, 86400, NULL,
	  "wait before the first retry; doubled each time" },
	{ "relay.retry.max", K_DURATION, 0, "1h", 1, 604800, NULL,
	  "longest wait between retries" },
	{ "relay.retry.expire", K_DURATION, 0, "5d", 1, 2592000, NULL,
	  "give up (and bounce) this long after acceptance" },
	{ "relay.smarthost", K_GROUP, 0, NULL, 0, 0, NULL,
	  "smarthost mode: the upstream server" },
	{ "relay.smarthost.host", K_STRING, 0, NULL, 0, 0, NULL,
	  "host name or IP address; required in smarthost mode" },
	{ "relay.smarthost.port", K_INT, 0, "587", 1, 65535, NULL,
	  "TCP port" },
	{ "relay.smarthost.tls", K_ENUM, 0, "require", 0, 0,
	  "require|implicit|opportunistic|none",
	  "STARTTLS required, TLS from connect (465), when offered, or never" },
	{ "relay.smarthost.verify", K_BOOL, 0, "true", 0, 0, NULL,
	  "verify the certificate and host name (require and implicit)" },
	{ "relay.smarthost.login", K_STRING, 0, NULL, 0, 0, NULL,
	  "AUTH login (PLAIN or LOGIN, over TLS only)" },
	{ "relay.smarthost.password_file", K_STRING, 0, NULL, 0, 0, NULL,
	  "file holding the password (first line); mode 0600" },
	{ "relay.smarthost.spf", K_STRING, 0, NULL, 0, 0, NULL,
	  "the provider's SPF mechanism for `keys dns`, e.g. "
	  "\"include:_spf.provider.example\"" },
	{ "relay.routes", K_LIST, 0, NULL, 0, 0, NULL,
	  "per-domain next hops, in any mode" },
	{ "relay.routes.domain", K_STRING, REQ, NULL, 0, 0, NULL,
	  "recipient domain (and its subdomains)" },
	{ "relay.routes.next_hop", K_STRING, REQ, NULL, 0, 0, NULL,
	  "\"host\", \"host:port\", \"[address]:port\" (no MX lookup)" },
	{ "relay.routes.tls", K_ENUM, 0, NULL, 0, 0,
	  "opportunistic|require|none",
	  "TLS to this next hop; default: relay.tls" },

	{ "metrics", K_GROUP, 0, NULL, 0, 0, NULL,
	  "HTTP listener serving /metrics to Prometheus; absent: none" },
	{ "metrics.address", K_STRING, 0, "127.0.0.1", 0, 0, NULL,
	  "numeric IPv4 or IPv6 address to bind; keep it on loopback or "
	  "firewall it (no authentication)" },
	{ "metrics.port", K_INT, REQ, NULL, 1, 65535, NULL,
	  "TCP port" },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static const char *const mechanisms_allowed[] = {
	"PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256",
};

/* One collected problem; sorted by file (first seen), line, arrival. */
struct problem {
	size_t		 file;
	unsigned	 line;
	size_t		 seq;
	char		*text;		/* "FILE:LINE: message" */
};

struct loader {
	const char	*path;		/* as the caller gave it */
	config_t	 lc;
	char		*confdir;	/* absolute; NULL if unknown */
	struct config	*c;
	struct problem	*probs;
	size_t		 nprobs;
	char		**files;	/* file names in order of first problem */
	size_t		 nfiles;
	int		 tls_line;	/* first listener using TLS, 0 if none */
	const struct config *running;	/* config_reload: the one in force */
	bool		 client;	/* config_load_client: no secrets */
};

/* Address of one listener, for duplicate checks. */
struct bound {
	int		 family;	/* 0: address was invalid */
	unsigned char	 addr[16];
	int		 port;
	int		 line;
};

/* config_keys - the settings table */
const struct config_key *
config_keys(size_t *n)
{
	*n = NKEYS;
	return keys;
}

/* key_find - table entry for a dotted name, or NULL */
static const struct config_key *
key_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* key_get - table entry that must exist (a name used by this file) */
static const struct config_key *
key_get(const char *name)
{
	const struct config_key *k;

	if ((k = key_find(name)) == NULL)
		log_panic("config: no table entry for %s", name);
	return k;
}

/* key_leaf - last component of a dotted name */
static const char *
key_leaf(const char *name)
{
	const char *dot;

	return (dot = strrchr(name, '.')) ? dot + 1 : name;
}

/* key_in_group - is key a direct member of group prefix (NULL: top)? */
static int
key_in_group(const struct config_key *k, const char *prefix)
{
	const char *dot;
	size_t plen;

	dot = strrchr(k->name, '.');
	if (prefix == NULL)
		return dot == NULL;
	plen = strlen(prefix);
	return dot != NULL && (size_t)(dot - k->name) == plen &&
	    strncmp(k->name, prefix, plen) == 0;
}

/*
 * source_path - the file a setting came from, as a path we can open: the
 * config file as the caller named it, or an @include file, which libconfig
 * names as written but opened in the include directory (confdir). New
 * memory.
 */
static char *
source_path(const struct loader *ld, const char *file)
{
	if (file == NULL || strcmp(file, ld->path) == 0)
		return xstrdup(ld->path);
	if (file[0] == '/' || ld->confdir == NULL)
		return xstrdup(file);
	return xasprintf("%s/%s", ld->confdir, file);
}

/* vproblem - record "FILE:LINE: message" */
static void
vproblem(struct loader *ld, const char *file, unsigned line,
    const char *fmt, va_list ap)
{
	struct problem *p;
	char *msg, *path;
	size_t i;

	path = source_path(ld, file);
	for (i = 0; i < ld->nfiles; i++)
		if (strcmp(ld->files[i], path) == 0)
			break;
	if (i == ld->nfiles) {
		ld->files = xreallocarray(ld->files, ld->nfiles + 1,
		    sizeof(*ld->files));
		ld->files[ld->nfiles++] = path;
	} else
		free(path);
	file = ld->files[i];
	if (vasprintf(&msg, fmt, ap) == -1)
		log_panic("out of memory (vasprintf)");
	ld->probs = xreallocarray(ld->probs, ld->nprobs + 1,
	    sizeof(*ld->probs));
	p = &ld->probs[ld->nprobs];
	p->file = i;
	p->line = line;
	p->seq = ld->nprobs++;
	p->text = xasprintf("%s:%u: %s", file, line, msg);
	free(msg);
}

/* problem_at - record a problem at a setting's line (NULL: line 0) */
static void __attribute__((format(printf, 3, 4)))
problem_at(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (s == NULL)
		vproblem(ld, NULL, 0, fmt, ap);
	else
		vproblem(ld, config_setting_source_file(s),
		    config_setting_source_line(s), fmt, ap);
	va_end(ap);
}

/* problem_line - record a problem at an explicit file and line */
static void __attribute__((format(printf, 4, 5)))
problem_line(struct loader *ld, const char *file, unsigned line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(ld, file, line, fmt, ap);
	va_end(ap);
}

/* problem_cmp - qsort order: file, line, arrival */
static int
problem_cmp(const void *a, const void *b)
{
	const struct problem *p = a, *q = b;

	if (p->file != q->file)
		return p->file < q->file ? -1 : 1;
	if (p->line != q->line)
		return p->line < q->line ? -1 : 1;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* found_type - what libconfig parsed, for "found ..." messages */
static const char *
found_type(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/* wanted_type - what a key expects, for "expected ..." messages */
static const char *
wanted_type(const struct config_key *k)
{
	switch (k->type) {
	case K_GROUP:
		return "a group { ... }";
	case K_LIST:
		return "a list ( { ... }, ... )";
	case K_STRING:
		return "a string";
	case K_BOOL:
		return "true or false";
	case K_INT:
		return "an integer";
	case K_DURATION:
		return "a duration (seconds, or a string like \"5m\")";
	case K_ENUM:
		return "a string";
	case K_STRINGS:
		return "an array of strings [ \"...\" ]";
	}
	return "?";
}

/* config_format_duration - see config.h */
char *
config_format_duration(int64_t secs, char *out, size_t outsz)
{
	if (secs != 0 && secs % 86400 == 0)
		snprintf(out, outsz, "%lldd", (long long)(secs / 86400));
	else if (secs != 0 && secs % 3600 == 0)
		snprintf(out, outsz, "%lldh", (long long)(secs / 3600));
	else if (secs != 0 && secs % 60 == 0)
		snprintf(out, outsz, "%lldm", (long long)(secs / 60));
	else
		snprintf(out, outsz, "%llds", (long long)secs);
	return out;
}

/*
 * line_text - line number line of file, in new memory, or NULL
 */
static char *
line_text(const char *file, unsigned line)
{
	FILE *fp;
	char *buf = NULL;
	size_t cap = 0;
	unsigned n = 0;

	if ((fp = fopen(file, "r")) == NULL)
		return NULL;
	while (getline(&buf, &cap, fp) != -1)
		if (++n == line) {
			fclose(fp);
			return buf;
		}
	free(buf);
	fclose(fp);
	return NULL;
}

/*
 * int_literal - the value an integer setting was written with
 *
 * XXX libconfig 1.5 reads a plain integer with atoi(), so 2147483648
 * silently becomes -2147483648 and 4294967396 becomes 100 (1.7 promotes
 * large values to int64). So look at the source line again: unless some
 * "name = literal" there has exactly the value libconfig gave, the
 * literal written for name is the value meant. Returns 0 with *v, or -1
 * when that literal does not fit in 64 bits.
 */
static int
int_literal(const struct loader *ld, const config_setting_t *s, int64_t *v)
{
	const char *name, *p, *q;
	long long got, val, cand = 0;
	int ncand = 0, overflow = 0;
	size_t len;
	char *text, *end, *file;

	got = config_setting_get_int64(s);
	*v = got;
	if (config_setting_type(s) != CONFIG_TYPE_INT ||
	    (name = config_setting_name(s)) == NULL)
		return 0;
	file = source_path(ld, config_setting_source_file(s));
	text = line_text(file, config_setting_source_line(s));
	free(file);
	if (text == NULL)
		return 0;
	len = strlen(name);
	for (p = text; (p = strstr(p, name)) != NULL; p++) {
		if (p > text && (isalnum((unsigned char)p[-1]) ||
		    p[-1] == '_' || p[-1] == '-' || p[-1] == '*'))
			continue;
		q = p + len;
		q += strspn(q, " \t");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t");
		if (!isdigit((unsigned char)*q) &&
		    !((*q == '-' || *q == '+') && isdigit((unsigned char)q[1])))
			continue;
		errno = 0;
		if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
			val = (long long)strtoull(q, &end, 16);
		else
			val = strtoll(q, &end, 10);
		if (errno == 0 && val == got) {
			free(text);
			return 0;
		}
		if (ncand++ == 0) {
			cand = val;
			overflow = errno == ERANGE;
		}
	}
	free(text);
	if (ncand == 0)
		return 0;
	if (overflow)
		return -1;
	*v = cand;
	return 0;
}

/*
 * check_value - type, range and choices of one present setting k at s;
 * problems are recorded when report is set. Returns 1 if usable.
 */
static int
check_value(struct loader *ld, const struct config_key *k,
    const config_setting_t *s, int report)
{
	const char *str, *c, *bar;
	int type = config_setting_type(s), i, n, ok;
	int64_t v = 0;
	unsigned secs;
	char lo[32], hi[32], val[32];

	switch (k->type) {
	case K_GROUP:
		if (type == CONFIG_TYPE_GROUP)
			return 1;
		break;
	case K_LIST:
		if (type != CONFIG_TYPE_LIST)
			break;
		if ((k->flags & NONEMPTY) && config_setting_length(s) == 0) {
			if (report)
				problem_at(ld, s, "%s needs at least one entry",
				    k->name);
			return 0;
		}
		return 1;
	case K_STRING:
	case K_ENUM:
		if (type != CONFIG_TYPE_STRING)
			break;
		str = config_setting_get_string(s);
		if (*str == '\0') {
			if (report)
				problem_at(ld, s, "%s must not be empty",
				    k->name);
			return 0;
		}
		if (k->type == K_STRING)
			return 1;
		for (c = k->choices; c != NULL; c = bar ? bar + 1 : NULL) {
			bar = strchr(c, '|');
			n = bar ? (int)(bar - c) : (int)strlen(c);
			if ((int)strlen(str) == n && strncmp(str, c, n) == 0)
				return 1;
		}
		if (report)
			problem_at(ld, s, "%s: \"%s\" is not one of %s",
			    k->name, str, k->choices);
		return 0;
	case K_BOOL:
		if (type == CONFIG_TYPE_BOOL)
			return 1;
		break;
	case K_INT:
	case K_DURATION:
		if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
			if (int_literal(ld, s, &v) == -1) {
				if (report)
					problem_at(ld, s, "%s: number too "
					    "large", k->name);
				return 0;
			}
		} else if (type == CONFIG_TYPE_STRING &&
		    k->type == K_DURATION) {
			str = config_setting_get_string(s);
			if (config_parse_duration(str, &secs) == -1) {
				if (report)
					problem_at(ld, s, "%s: \"%s\" is not a "
					    "duration (seconds, or a number "
					    "followed by s, m, h or d)",
					    k->name, str);
				return 0;
			}
			v = secs;
		} else
			break;
		if (v >= k->min && v <= k->max)
			return 1;
		if (!report)
			return 0;
		if (k->type == K_DURATION)
			problem_at(ld, s, "%s: %s is out of range (%s..%s)",
			    k->name, config_format_duration(v, val, sizeof(val)),
			    config_format_duration(k->min, lo, sizeof(lo)),
			    config_format_duration(k->max, hi, sizeof(hi)));
		else
			problem_at(ld, s, "%s: %lld is out of range "
			    "(%lld..%lld)", k->name, (long long)v,
			    (long long)k->min, (long long)k->max);
		return 0;
	case K_STRINGS:
		if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
			break;
		n = config_setting_length(s);
		if ((k->flags & NONEMPTY) && n == 0) {
			if (report)
				problem_at(ld, s, "%s needs at least one entry",
				    k->name);
			return 0;
		}
		ok = 1;
		for (i = 0; i < n; i++) {
			const config_setting_t *e;

			e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				if (report)
					problem_at(ld, e, "%s: expected strings, "
					    "found %s", k->name, found_type(e));
				ok = 0;
			} else if (*config_setting_get_string(e) == '\0') {
				if (report)
					problem_at(ld, e, "%s: empty string",
					    k->name);
				ok = 0;
			}
		}
		return ok;
	}
	if (report)
		problem_at(ld, s, "%s: expected %s, found %s", k->name,
		    wanted_type(k), found_type(s));
	return 0;
}

/*
 * check_group - check every member of group g against keys[]; prefix is
 * the group's dotted name (NULL for the top level). Recurses into groups
 * and into each entry of lists of groups.
 */
static void
check_group(struct loader *ld, const config_setting_t *g, const char *prefix)
{
	const config_setting_t *s, *e;
	const struct config_key *k;
	const char *name;
	char *full;
	int i, j, n;
	size_t ki;

	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		name = config_setting_name(s);
		full = prefix ? xasprintf("%s.%s", prefix, name) :
		    xstrdup(name);
		if ((k = key_find(full)) == NULL)
			problem_at(ld, s, "unknown setting \"%s\"", full);
		else if (!check_value(ld, k, s, 1))
			;	/* reported */
		else if (k->type == K_GROUP)
			check_group(ld, s, k->name);
		else if (k->type == K_LIST) {
			for (j = 0; j < config_setting_length(s); j++) {
				e = config_setting_get_elem(s, (unsigned)j);
				if (config_setting_type(e) == CONFIG_TYPE_GROUP)
					check_group(ld, e, k->name);
				else
					problem_at(ld, e, "%s: entries must be "
					    "groups { ... }, found %s",
					    k->name, found_type(e));
			}
		}
		free(full);
	}
	for (ki = 0; ki < NKEYS; ki++) {
		k = &keys[ki];
		if (!(k->flags & REQ) || !key_in_group(k, prefix) ||
		    config_setting_get_member(g, key_leaf(k->name)) != NULL)
			continue;
		problem_at(ld, prefix ? g : NULL,
		    "missing required setting \"%s\"", k->name);
	}
}

/* member - setting k of group g, or NULL (g may be NULL) */
static const config_setting_t *
member(const config_setting_t *g, const struct config_key *k)
{
	if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP)
		return NULL;
	return config_setting_get_member(g, key_leaf(k->name));
}

/*
 * get_string - string or enum setting name in group g: its value, else its
 * default (also when the value was bad, already reported), else NULL.
 * *sp gets the setting, NULL if absent. The result belongs to libconfig
 * or to the table.
 */
static const char *
get_string(struct loader *ld, const config_setting_t *g, const char *name,
    const config_setting_t **sp)
{
	const struct config_key *k = key_get(name);
	const config_setting_t *s;

	s = member(g, k);
	if (sp)
		*sp = s;
	if (s != NULL && check_value(ld, k, s, 0))
		return config_setting_get_string(s);
	return k->def;
}

/* get_bool - boolean setting name in group g, or its default */
static int
get_bool(struct loader *ld, const config_setting_t *g, const char *name)
{
	const struct config_key *k = key_get(name);
	const config_setting_t *s;

	s = member(g, k);
	if (s != NULL && check_value(ld, k, s, 0))
		return config_setting_get_bool(s);
	return k->def != NULL && strcmp(k->def, "true") == 0;
}

/*
 * get_number - integer or duration setting name in group g (seconds for
 * durations), or its default; 0 for a required setting that is absent.
 */
static int64_t
get_number(struct loader *ld, const config_setting_t *g, const char *name)
{
	const struct config_key *k = key_get(name);
	const config_setting_t *s;
	unsigned secs;
	int64_t v;

	s = member(g, k);
	if (s != NULL && check_value(ld, k, s, 0)) {
		if (config_setting_type(s) == CONFIG_TYPE_STRING) {
			(void)config_parse_duration(
			    config_setting_get_string(s), &secs);
			return secs;
		}
		(void)int_literal(ld, s, &v);
		return v;
	}
	if (k->def == NULL)
		return 0;
	if (k->type == K_DURATION) {
		if (config_parse_duration(k->def, &secs) == -1)
			log_panic("config: bad default for %s", k->name);
		return secs;
	}
	return strtoll(k->def, NULL, 10);
}

/* get_strings - usable array setting name of group g, or NULL */
static const config_setting_t *
get_strings(struct loader *ld, const config_setting_t *g, const char *name)
{
	const struct config_key *k = key_get(name);
	const config_setting_t *s;

	s = member(g, k);
	if (s != NULL && check_value(ld, k, s, 0))
		return s;
	return NULL;
}

/* top - usable top-level group or list name, or NULL */
static const config_setting_t *
top(struct loader *ld, const char *name)
{
	const struct config_key *k = key_get(name);
	const config_setting_t *s;

	s = config_setting_get_member(config_root_setting(&ld->lc), name);
	if (s != NULL && check_value(ld, k, s, 0))
		return s;
	return NULL;
}

/* lower - lower-case copy of s[0..n) */
static char *
lower(const char *s, size_t n)
{
	char *p;
	size_t i;

	p = xstrndup(s, n);
	for (i = 0; p[i]; i++)
		p[i] = (char)tolower((unsigned char)p[i]);
	return p;
}

/*
 * valid_domain - LDH labels of 1..63 octets, no hyphen at either end, at
 * least two labels, 253 octets at most, and not all-numeric at the end
 * (so an IPv4 address is not a domain). No trailing dot.
 */
static int
valid_domain(const char *d)
{
	const char *p, *label = d;
	int digits = 1, dots = 0;

	if (*d == '\0' || strlen(d) > 253)
		return 0;
	for (p = d;; p++) {
		if (*p == '.' || *p == '\0') {
			if (p == label || p - label > 63 || *label == '-' ||
			    p[-1] == '-')
				return 0;
			if (*p == '\0')
				break;
			dots++;
			label = p + 1;
			digits = 1;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
		if (!isdigit((unsigned char)*p))
			digits = 0;
	}
	return dots > 0 && !digits;
}

/* valid_local - dot-atom local part of at most 64 octets, not "*..." */
static int
valid_local(const char *s, size_t n)
{
	static const char atext[] = "!#$%&'+-/=?^_`{|}~";
	size_t i;

	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!isalnum((unsigned char)s[i]) &&
		    strchr(atext, s[i]) == NULL)
			return 0;
	}
	return 1;
}

/* path_clean - drop empty and "." components of an absolute path, in place */
static char *
path_clean(char *path)
{
	char *r = path, *w = path;

	while (*r) {
		while (*r == '/')
			r++;
		if (r[0] == '.' && (r[1] == '/' || r[1] == '\0')) {
			r++;
			continue;
		}
		if (*r == '\0')
			break;
		*w++ = '/';
		while (*r && *r != '/')
			*w++ = *r++;
	}
	if (w == path)
		*w++ = '/';
	*w = '\0';
	return path;
}

/* path_join - rel if absolute, else base/rel; cleaned, in new memory */
static char *
path_join(const char *base, const char *rel)
{
	if (rel[0] == '/')
		return path_clean(xstrdup(rel));
	return path_clean(xasprintf("%s/%s", base, rel));
}

/* config_dir - absolute directory of the file path; NULL if unknown */
static char *
config_dir(const char *path)
{
	const char *slash;
	char *dir, *cwd, *abs;

	slash = strrchr(path, '/');
	if (slash == path)
		return xstrdup("/");
	dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
	if (dir[0] == '/')
		return path_clean(dir);
	if ((cwd = getcwd(NULL, 0)) == NULL) {
		free(dir);
		return NULL;
	}
	abs = path_join(cwd, dir);
	free(cwd);
	free(dir);
	return abs;
}

/* readable - 0 if path is a regular file we can open, else errno text */
static const char *
readable(const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) == -1)
		return strerror(errno);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return strerror(errno);
	}
	close(fd);
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	return NULL;
}

/*
 * system_hostname - gethostname(), qualified through the resolver
 * (/etc/hosts first, usually) when it has no dot, as Postfix does.
 * New memory, or NULL.
 */
static char *
system_hostname(void)
{
	struct addrinfo hints, *res;
	char name[HOST_NAME_MAX + 1];
	char *fqdn = NULL;

	if (gethostname(name, sizeof(name)) == -1)
		return NULL;
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(name, NULL, &hints, &res) == 0) {
			if (res->ai_canonname &&
			    strchr(res->ai_canonname, '.') != NULL)
				fqdn = xstrdup(res->ai_canonname);
			freeaddrinfo(res);
		}
	}
	return fqdn ? fqdn : xstrdup(name);
}

/* domain_name - lower-case, one trailing dot dropped; new memory */
static char *
domain_name(const char *s)
{
	size_t n = strlen(s);

	if (n > 1 && s[n - 1] == '.')
		n--;
	return lower(s, n);
}

/* valid_resolver - "IPv4", "IPv6", optionally "@PORT" (1..65535) */
static bool
valid_resolver(const char *v)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *at = strchr(v, '@');
	char ip[INET6_ADDRSTRLEN];
	size_t n = at ? (size_t)(at - v) : strlen(v);
	char *end;
	long port;

	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, v, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, addr) != 1 &&
	    inet_pton(AF_INET6, ip, addr) != 1)
		return false;
	if (at == NULL)
		return true;
	errno = 0;
	port = strtol(at + 1, &end, 10);
	return errno == 0 && *end == '\0' && end != at + 1 && port >= 1 &&
	    port <= 65535;
}

/* build_basics - hostname, state_dir, user */
static void
build_basics(struct loader *ld)
{
	const config_setting_t *root = config_root_setting(&ld->lc), *s;
	struct config *c = ld->c;
	const char *v;
	char *sys;

	if ((v = get_string(ld, root, "hostname", &s)) != NULL) {
		c->hostname = domain_name(v);
		if (!valid_domain(c->hostname))
			problem_at(ld, s, "hostname: \"%s\" is not a "
			    "fully-qualified domain name", v);
	} else if (s == NULL) {
		if ((sys = system_hostname()) == NULL) {
			problem_at(ld, NULL, "hostname: cannot get the system "
			    "host name (%s); set hostname", strerror(errno));
		} else {
			c->hostname = domain_name(sys);
			if (!valid_domain(c->hostname))
				problem_at(ld, NULL, "hostname: the system host "
				    "name \"%s\" is not a fully-qualified "
				    "domain name; set hostname", sys);
			free(sys);
		}
	}

	v = get_string(ld, root, "state_dir", NULL);
	if (ld->confdir)
		c->state_dir = path_join(ld->confdir, v);

	if ((v = get_string(ld, root, "user", NULL)) != NULL)
		c->user = xstrdup(v);
	if ((v = get_string(ld, root, "resolver", &s)) != NULL) {
		if (!valid_resolver(v))
			problem_at(ld, s, "resolver: \"%s\" is not an IP "
			    "address, optionally with @PORT", v);
		else
			c->resolver = xstrdup(v);
	}
	v = get_string(ld, root, "dnssec_trust_anchor", NULL);
	if (get_bool(ld, root, "dnssec_validation"))
		c->dnssec_trust_anchor = ld->confdir != NULL ?
		    path_join(ld->confdir, v) : xstrdup(v);
	c->dkim_check_interval = (unsigned)get_number(ld, root,
	    "dkim_check_interval");
	c->stop_timeout = (unsigned)get_number(ld, root, "stop_timeout");
}

/* valid_selector - RFC 6376 3.1: dot-separated labels of [A-Za-z0-9-] */
static bool
valid_selector(const char *v)
{
	size_t i, label = 0;

	for (i = 0; v[i]; i++) {
		if (v[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)v[i]) || (v[i] == '-' &&
		    label > 0)) {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0 && v[i - 1] != '-' && i <= 253;
}

/*
 * build_dkim - the selectors declared for one domain. Which of them sign
 * (one rsa-sha256, at most one ed25519-sha256 beside it) also depends on
 * the rotation state next to the keys, so keys/keyring.c checks that.
 */
static void
build_dkim(struct loader *ld, const config_setting_t *dom,
    struct domain_config *d)
{
	const config_setting_t *list, *e, *s, *as;
	const struct config_key *k = key_get("domains.dkim");
	struct dkim_selector_config *sc;
	const char *sel, *alg, *key;
	int i, n;
	size_t j;
	char *rel;

	if ((list = member(dom, k)) == NULL)
		return;
	if (!check_value(ld, k, list, 0))
		return;
	n = config_setting_length(list);
	d->dkim = xcalloc((size_t)n, sizeof(*d->dkim));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			continue;
		sel = get_string(ld, e, "domains.dkim.selector", &s);
		alg = get_string(ld, e, "domains.dkim.algorithm", &as);
		if (sel == NULL || alg == NULL || as == NULL)
			continue;
		if (!valid_selector(sel)) {
			problem_at(ld, s, "domains.dkim.selector: \"%s\" is not "
			    "a valid selector (letters, digits, '-', dots)",
			    sel);
			continue;
		}
		for (j = 0; j < d->ndkim; j++)
			if (strcasecmp(d->dkim[j].selector, sel) == 0)
				break;
		if (j < d->ndkim) {
			problem_at(ld, s, "domains.dkim.selector: %s is already "
			    "used at line %d", sel, d->dkim[j].line);
			continue;
		}
		sc = &d->dkim[d->ndkim++];
		sc->selector = xstrdup(sel);
		sc->algorithm = strcmp(alg, "rsa-sha256") == 0 ?
		    DKIM_ALG_RSA_SHA256 : DKIM_ALG_ED25519_SHA256;
		sc->line = config_setting_source_line(e);
		key = get_string(ld, e, "domains.dkim.key", NULL);
		rel = key ? xstrdup(key) : xasprintf("keys/%s/%s.key",
		    d->name, sel);
		sc->key = ld->c->state_dir ? path_join(ld->c->state_dir, rel) :
		    xstrdup(rel);
		free(rel);
	}
}

/* header_names - an optional array of header field names, or NULL */
static char **
header_names(struct loader *ld, const config_setting_t *dom,
    const char *key, size_t *np)
{
	const config_setting_t *arr, *e;
	const char *v, *p;
	char **names;
	int i, n;

	*np = 0;
	if ((arr = get_strings(ld, dom, key)) == NULL)
		return NULL;
	n = config_setting_length(arr);
	names = xcalloc((size_t)n + 1, sizeof(*names));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(arr, (unsigned)i);
		v = config_setting_get_string(e);
		for (p = v; *p; p++)
			if (*p <= ' ' || *p >= 0x7f || *p == ':')
				break;
		if (*p) {
			problem_at(ld, e, "%s: \"%s\" is not a header field "
			    "name", key, v);
			continue;
		}
		names[(*np)++] = xstrdup(v);
	}
	return names;
}

/* checked_domain - v as a domain name (lower case, no final dot), or
   NULL after reporting that setting key at s is not one */
static char *
checked_domain(struct loader *ld, const config_setting_t *s, const char *key,
    const char *v)
{
	char *name = domain_name(v);

	if (valid_domain(name))
		return name;
	problem_at(ld, s, "%s: \"%s\" is not a valid domain name", key, v);
	free(name);
	return NULL;
}

/*
 * same_org - whether a and b are the same domain or one is a subdomain
 * of the other (the organisational domain without the public suffix
 * list: a bounce address must not leave the domain it stands for)
 */
static bool
same_org(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la == lb)
		return strcmp(a, b) == 0;
	if (la < lb)
		return b[lb - la - 1] == '.' && strcmp(b + lb - la, a) == 0;
	return a[la - lb - 1] == '.' && strcmp(a + la - lb, b) == 0;
}

/* bounce_address - a domain's optional bounce_address, lower-cased
   domain part, in the same organisational domain; NULL if none or bad */
static char *
bounce_address(struct loader *ld, const config_setting_t *e,
    const char *domain)
{
	const config_setting_t *s;
	const char *v, *at;
	char *dom, *addr;

	if ((v = get_string(ld, e, "domains.bounce_address", &s)) == NULL)
		return NULL;
	if ((at = strrchr(v, '@')) == NULL || at == v ||
	    strchr(v, ' ') != NULL || strchr(v, '<') != NULL ||
	    strchr(v, '>') != NULL) {
		problem_at(ld, s, "domains.bounce_address: \"%s\" is not "
		    "local@domain", v);
		return NULL;
	}
	dom = domain_name(at + 1);
	if (!valid_domain(dom) || !same_org(dom, domain)) {
		problem_at(ld, s, "domains.bounce_address: %s is not in %s or "
		    "one of its subdomains (SPF and DMARC must align with the "
		    "domain it sends for)", v, domain);
		free(dom);
		return NULL;
	}
	addr = xasprintf("%.*s@%s", (int)(at - v), v, dom);
	free(dom);
	return addr;
}

/* build_domains - the hosted domains */
static void
build_domains(struct loader *ld)
{
	const config_setting_t *list, *e, *s;
	struct config *c = ld->c;
	int i, n, *lines;
	size_t j;
	char *name;
	const char *v;

	if ((list = top(ld, "domains")) == NULL)
		return;
	n = config_setting_length(list);
	c->domains = xcalloc((size_t)n, sizeof(*c->domains));
	lines = xcalloc((size_t)n, sizeof(*lines));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		if ((v = get_string(ld, e, "domains.name", &s)) == NULL)
			continue;
		if ((name = checked_domain(ld, s, "domains.name", v)) == NULL)
			continue;
		for (j = 0; j < c->ndomains; j++)
			if (strcmp(c->domains[j].name, name) == 0)
				break;
		if (j < c->ndomains) {
			problem_at(ld, s, "domains.name: %s is already declared "
			    "at line %d", name, lines[j]);
			free(name);
			continue;
		}
		lines[c->ndomains] = config_setting_source_line(e);
		c->domains[c->ndomains].name = name;
		c->domains[c->ndomains].line = lines[c->ndomains];
		build_dkim(ld, e, &c->domains[c->ndomains]);
		c->domains[c->ndomains].sign_headers = header_names(ld, e,
		    "domains.sign_headers",
		    &c->domains[c->ndomains].nsign_headers);
		c->domains[c->ndomains].oversign_headers = header_names(ld, e,
		    "domains.oversign_headers",
		    &c->domains[c->ndomains].noversign_headers);
		c->domains[c->ndomains].bounce_address = bounce_address(ld, e,
		    name);
		c->ndomains++;
	}
	free(lines);
}

/*
 * sender_patterns - check the "user@domain" or "*@domain" strings of
 * array s (named key) against the hosted domains; lower-case copies go
 * to *out and *nout. Problems are recorded; bad entries are skipped.
 */
static void
sender_patterns(struct loader *ld, const config_setting_t *s,
    const char *key, char ***out, size_t *nout)
{
	const config_setting_t *e;
	const char *v, *at;
	char *dom;
	int i, n;

	n = config_setting_length(s);
	*out = xcalloc((size_t)n, sizeof(**out));
	*nout = 0;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		v = config_setting_get_string(e);
		if ((at = strrchr(v, '@')) == NULL || at == v) {
			problem_at(ld, e, "%s: \"%s\" is not an address "
			    "(user@domain or *@domain)", key, v);
			continue;
		}
		if (!(at - v == 1 && v[0] == '*') &&
		    !valid_local(v, (size_t)(at - v))) {
			problem_at(ld, e, "%s: \"%s\": bad local part (use "
			    "letters, digits, dots and !#$%%&'+-/=?^_`{|}~, or "
			    "\"*\" alone for the whole domain)", key, v);
			continue;
		}
		dom = lower(at + 1, strlen(at + 1));
		if (!valid_domain(dom)) {
			problem_at(ld, e, "%s: \"%s\": \"%s\" is not a valid "
			    "domain name", key, v, at + 1);
			free(dom);
			continue;
		}
		if (!config_domain_hosted(ld->c, dom)) {
			problem_at(ld, e, "%s: \"%s\": %s is not a hosted "
			    "domain; Postern can only sign for the domains "
			    "listed in domains", key, v, dom);
			free(dom);
			continue;
		}
		free(dom);
		(*out)[(*nout)++] = lower(v, strlen(v));
	}
}

/* is_loopback - 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104 */
static int
is_loopback(const struct bound *b)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	if (b->family == AF_INET)
		return b->addr[0] == 127;
	if (b->family == AF_INET6)
		return memcmp(b->addr, &in6addr_loopback, 16) == 0 ||
		    (memcmp(b->addr, mapped, 12) == 0 && b->addr[12] == 127);
	return 0;
}

/* build_listener - one entry e of the listen list */
static void
build_listener(struct loader *ld, const config_setting_t *e,
    struct bound *bounds, size_t nb)
{
	struct config *c = ld->c;
	struct listen_config *l = &c->listen[c->nlisten++];
	struct bound *b = &bounds[nb];
	const config_setting_t *s, *senders;
	const char *v;
	size_t i;

	l->line = config_setting_source_line(e);
	b->line = l->line;
	if ((v = get_string(ld, e, "listen.address", &s)) != NULL) {
		l->address = xstrdup(v);
		if (inet_pton(AF_INET, v, b->addr) == 1)
			b->family = AF_INET;
		else if (inet_pton(AF_INET6, v, b->addr) == 1)
			b->family = AF_INET6;
		else
			problem_at(ld, s, "listen.address: \"%s\" is not a "
			    "numeric IPv4 or IPv6 address", v);
	}
	l->port = (int)get_number(ld, e, "listen.port");
	b->port = l->port;

	v = get_string(ld, e, "listen.tls", NULL);
	if (strcmp(v, "implicit") == 0)
		l->tls = LISTEN_TLS_IMPLICIT;
	else if (strcmp(v, "none") == 0)
		l->tls = LISTEN_TLS_NONE;
	else
		l->tls = LISTEN_TLS_STARTTLS;
	if (l->tls != LISTEN_TLS_NONE && ld->tls_line == 0)
		ld->tls_line = l->line;

	l->trusted = get_bool(ld, e, "listen.trusted");
	s = member(e, key_get("listen.senders"));
	senders = get_strings(ld, e, "listen.senders");
	if (s != NULL && !l->trusted)
		problem_at(ld, s, "listen.senders is only allowed on a trusted "
		    "listener (trusted = true)");
	else if (l->trusted && s == NULL)
		problem_at(ld, e, "a trusted listener needs senders: the "
		    "addresses its clients may use");
	else if (l->trusted && senders != NULL &&
	    config_setting_length(senders) == 0)
		problem_at(ld, s, "listen.senders needs at least one entry on a "
		    "trusted listener");
	else if (l->trusted && senders != NULL)
		sender_patterns(ld, senders, "listen.senders", &l->senders,
		    &l->nsenders);

	l->allow_plaintext_auth = get_bool(ld, e, "listen.allow_plaintext_auth");
	if (l->allow_plaintext_auth && b->family != 0 && !is_loopback(b))
		problem_at(ld, member(e, key_get("listen.allow_plaintext_auth")),
		    "listen.allow_plaintext_auth is only allowed on a loopback "
		    "address (127.0.0.0/8 or ::1), not %s", l->address);

	if (b->family == 0 || b->port == 0)
		return;
	for (i = 0; i < nb; i++)
		if (bounds[i].family == b->family && bounds[i].port == b->port &&
		    memcmp(bounds[i].addr, b->addr, sizeof(b->addr)) == 0) {
			problem_at(ld, e, "listen: %s port %d is already "
			    "declared at line %d", l->address, l->port,
			    bounds[i].line);
			break;
		}
}

/* build_listen - all listeners */
static void
build_listen(struct loader *ld)
{
	const config_setting_t *list, *e;
	struct bound *bounds;
	int i, n;

	if ((list = top(ld, "listen")) == NULL)
		return;
	n = config_setting_length(list);
	ld->c->listen = xcalloc((size_t)n, sizeof(*ld->c->listen));
	bounds = xcalloc((size_t)n, sizeof(*bounds));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		if (config_setting_type(e) == CONFIG_TYPE_GROUP)
			build_listener(ld, e, bounds, ld->c->nlisten);
	}
	free(bounds);
}

/* tls_same - is path the running config's file for name? */
static bool
tls_same(const struct config *running, const char *name, const char *path)
{
	const char *was = strcmp(name, "tls.key") == 0 ? running->tls_key :
	    running->tls_certificate;

	return was != NULL && strcmp(was, path) == 0;
}

/* tls_file - one of tls.certificate and tls.key, when a listener needs it */
static char *
tls_file(struct loader *ld, const config_setting_t *g, const char *name)
{
	const config_setting_t *s;
	const char *v, *why;
	struct stat st;
	char *path;

	if ((v = get_string(ld, g, name, &s)) == NULL) {
		if (s == NULL)
			problem_at(ld, g, "%s is required: the listener at "
			    "line %d uses TLS", name, ld->tls_line);
		return NULL;
	}
	if (ld->c->state_dir == NULL)
		return NULL;
	path = path_join(ld->c->state_dir, v);
	if (ld->client)
		return path;		/* never opened by a client */
	if ((why = readable(path)) != NULL) {
		/* A reload runs without root: the running daemon keeps the
		   TLS files it read at start if they stay the same. */
		if (ld->running != NULL && errno == EACCES &&
		    tls_same(ld->running, name, path))
			return path;
		problem_at(ld, s, "%s: cannot read %s: %s", name, path, why);
	}
	else if (strcmp(name, "tls.key") == 0 && stat(path, &st) == 0 &&
	    (st.st_mode & S_IRWXO))
		problem_at(ld, s, "%s: %s is accessible by others (mode %04o); "
		    "a private key must not be: chmod o-rwx %s", name, path,
		    (unsigned)(st.st_mode & 07777), path);
	return path;
}

/*
 * build_tls_policy - tls.min_version, tls.ciphers and tls.ciphersuites,
 * tried on a scratch OpenSSL context (not by clients, which never serve
 * TLS), so that a list OpenSSL refuses is an error at its line, found by
 * check-config and by a reload, not a daemon that cannot start.
 */
static void
build_tls_policy(struct loader *ld, const config_setting_t *g)
{
	const config_setting_t *cs, *ss;
	struct tls_policy p;
	SSL_CTX *ctx;
	char *why = NULL;

	p.min_version = strcmp(get_string(ld, g, "tls.min_version", NULL),
	    "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
	p.ciphers = get_string(ld, g, "tls.ciphers", &cs);
	p.ciphersuites = get_string(ld, g, "tls.ciphersuites", &ss);
	ld->c->tls_min_version = p.min_version;
	ld->c->tls_ciphers = xstrdup(p.ciphers);
	ld->c->tls_ciphersuites = xstrdup(p.ciphersuites);
	if (ld->client)
		return;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		problem_at(ld, g, "tls: cannot create a TLS context to check "
		    "the ciphers with");
		return;
	}
	switch (tlspolicy_apply(ctx, &p, &why)) {
	case TLSPOLICY_OK:
		break;
	case TLSPOLICY_CIPHERS:
		problem_at(ld, cs != NULL ? cs : g, "tls.ciphers: %s", why);
		break;
	case TLSPOLICY_CIPHERSUITES:
		problem_at(ld, ss != NULL ? ss : g, "tls.ciphersuites: %s",
		    why);
		break;
	case TLSPOLICY_OTHER:
		problem_at(ld, g, "tls: %s", why);
		break;
	}
	free(why);
	SSL_CTX_free(ctx);
}

/* build_tls - the policy; certificate and key only if some listener uses
   TLS */
static void
build_tls(struct loader *ld)
{
	const config_setting_t *g;

	g = top(ld, "tls");
	if (g == NULL &&
	    config_setting_get_member(config_root_setting(&ld->lc), "tls"))
		return;		/* wrong type, already reported */
	build_tls_policy(ld, g);
	if (ld->tls_line == 0)
		return;
	ld->c->tls_certificate = tls_file(ld, g, "tls.certificate");
	ld->c->tls_key = tls_file(ld, g, "tls.key");
}

/* add_default_words - call add for each word of key's default (a
   string list given no value) */
static void
add_default_words(struct loader *ld, const char *key, void (*add)(
    struct loader *, const config_setting_t *, const char *))
{
	const char *p, *sp;
	char *word;

	for (p = key_get(key)->def; *p; p = sp) {
		if ((sp = strchr(p, ' ')) == NULL)
			sp = p + strlen(p);
		word = xstrndup(p, (size_t)(sp - p));
		add(ld, NULL, word);
		free(word);
		sp += strspn(sp, " ");
	}
}

/* add_mechanism - check and append one mechanism name (any case) */
static void
add_mechanism(struct loader *ld, const config_setting_t *e, const char *v)
{
	struct config *c = ld->c;
	char *m;
	size_t i;

	m = xstrdup(v);
	for (i = 0; m[i]; i++)
		m[i] = (char)toupper((unsigned char)m[i]);
	if (strcmp(m, "CRAM-MD5") == 0 || strcmp(m, "DIGEST-MD5") == 0) {
		problem_at(ld, e, "auth.mechanisms: %s is not supported: it "
		    "needs every password stored in a plaintext-equivalent "
		    "form, and clients such as Python's smtplib prefer it "
		    "over PLAIN when offered; use SCRAM-SHA-256", m);
		free(m);
		return;
	}
	for (i = 0; i < sizeof(mechanisms_allowed) /
	    sizeof(mechanisms_allowed[0]); i++)
		if (strcmp(m, mechanisms_allowed[i]) == 0)
			break;
	if (i == sizeof(mechanisms_allowed) / sizeof(mechanisms_allowed[0])) {
		problem_at(ld, e, "auth.mechanisms: unknown mechanism \"%s\" "
		    "(known: PLAIN, LOGIN, SCRAM-SHA-1, SCRAM-SHA-256)", v);
		free(m);
		return;
	}
	for (i = 0; i < c->nauth_mechanisms; i++)
		if (strcmp(c->auth_mechanisms[i], m) == 0) {
			problem_at(ld, e, "auth.mechanisms: %s is listed twice",
			    m);
			free(m);
			return;
		}
	c->auth_mechanisms = xreallocarray(c->auth_mechanisms,
	    c->nauth_mechanisms + 1, sizeof(*c->auth_mechanisms));
	c->auth_mechanisms[c->nauth_mechanisms++] = m;
}

/* build_auth - mechanisms and the sasldb path */
static void
build_auth(struct loader *ld)
{
	const config_setting_t *g, *s, *arr;
	const char *v;
	struct config *c = ld->c;
	struct stat st;
	char *dir;
	int i, n;

	g = top(ld, "auth");
	if ((arr = get_strings(ld, g, "auth.mechanisms")) != NULL) {
		n = config_setting_length(arr);
		for (i = 0; i < n; i++) {
			s = config_setting_get_elem(arr, (unsigned)i);
			add_mechanism(ld, s, config_setting_get_string(s));
		}
	} else if (member(g, key_get("auth.mechanisms")) == NULL)
		add_default_words(ld, "auth.mechanisms", add_mechanism);

	v = get_string(ld, g, "auth.sasldb", &s);
	if (c->state_dir == NULL)
		return;
	c->sasldb = path_join(c->state_dir, v);
	dir = xstrndup(c->sasldb, (size_t)(strrchr(c->sasldb, '/') -
	    c->sasldb));
	if (*dir == '\0') {
		free(dir);
		dir = xstrdup("/");
	}
	/* state_dir itself is created by the daemon */
	if (!ld->client && strcmp(dir, c->state_dir) != 0) {
		if (stat(dir, &st) == -1)
			problem_at(ld, s ? s : g, "auth.sasldb: directory %s: "
			    "%s", dir, strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			problem_at(ld, s ? s : g, "auth.sasldb: %s is not a "
			    "directory", dir);
	}
	free(dir);
	/* password verifiers: as private as a key (it may not exist yet:
	   `postern users add` makes it 0600) */
	if (!ld->client && stat(c->sasldb, &st) == 0 &&
	    (st.st_mode & S_IRWXO))
		problem_at(ld, s ? s : g, "auth.sasldb: %s is accessible by "
		    "others (mode %04o); chmod o-rwx it",
		    c->sasldb, (unsigned)(st.st_mode & 07777));
}

/* sender_limit - a grant's own rate limit, or -1 (the limits default) */
static long
sender_limit(struct loader *ld, const config_setting_t *e, const char *name)
{
	if (member(e, key_get(name)) == NULL)
		return -1;
	return (long)get_number(ld, e, name);
}

/*
 * build_grants - the entries of the top-level list `list` (senders,
 * local_senders): each entry's `whokey` member (the login or user), unique
 * in the list, and its `addrkey` addresses checked by sender_patterns().
 * add() gets each good entry with the lower-case addresses, which it
 * keeps.
 */
static void
build_grants(struct loader *ld, const char *list_name, const char *whokey,
    const char *addrkey, void (*add)(struct loader *,
    const config_setting_t *, const char *, char **, size_t))
{
	const config_setting_t *list, *e, *s, *arr;
	const char *who, **seen;
	char **addrs;
	size_t j, nseen = 0, naddrs;
	int i, n, *lines;

	if ((list = top(ld, list_name)) == NULL)
		return;
	n = config_setting_length(list);
	seen = xcalloc((size_t)n, sizeof(*seen));
	lines = xcalloc((size_t)n, sizeof(*lines));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			continue;
		who = get_string(ld, e, whokey, &s);
		arr = get_strings(ld, e, addrkey);
		if (who == NULL || arr == NULL)
			continue;
		for (j = 0; j < nseen; j++)
			if (strcmp(seen[j], who) == 0)
				break;
		if (j < nseen) {
			problem_at(ld, s, "%s: \"%s\" already has a grant at "
			    "line %d", whokey, who, lines[j]);
			continue;
		}
		lines[nseen] = config_setting_source_line(e);
		seen[nseen++] = who;
		sender_patterns(ld, arr, addrkey, &addrs, &naddrs);
		add(ld, e, who, addrs, naddrs);
	}
	free(seen);
	free(lines);
}

/* add_sender_grant - one good entry of senders */
static void
add_sender_grant(struct loader *ld, const config_setting_t *e,
    const char *login, char **addrs, size_t naddrs)
{
	struct config *c = ld->c;
	struct sender_grant *g;

	c->senders = xreallocarray(c->senders, c->nsenders + 1,
	    sizeof(*c->senders));
	g = &c->senders[c->nsenders++];
	g->login = xstrdup(login);
	g->addresses = addrs;
	g->naddresses = naddrs;
	g->messages_per_hour = sender_limit(ld, e,
	    "senders.messages_per_hour");
	g->messages_per_day = sender_limit(ld, e,
	    "senders.messages_per_day");
	g->recipients_per_hour = sender_limit(ld, e,
	    "senders.recipients_per_hour");
	g->recipients_per_day = sender_limit(ld, e,
	    "senders.recipients_per_day");
}

/* add_local_sender - one good entry of local_senders */
static void
add_local_sender(struct loader *ld, const config_setting_t *e,
    const char *user, char **addrs, size_t naddrs)
{
	struct config *c = ld->c;
	struct local_sender *l;

	(void)e;
	c->local_senders = xreallocarray(c->local_senders,
	    c->nlocal_senders + 1, sizeof(*c->local_senders));
	l = &c->local_senders[c->nlocal_senders++];
	l->user = xstrdup(user);
	l->addresses = addrs;
	l->naddresses = naddrs;
}

/* build_senders - the sender grants of SASL logins */
static void
build_senders(struct loader *ld)
{
	build_grants(ld, "senders", "senders.login", "senders.addresses",
	    add_sender_grant);
}

/*
 * socket_path - the unix socket path setting name (relative: to
 * state_dir, like every other path; it must fit a sockaddr_un), newly
 * allocated
 */
static char *
socket_path(struct loader *ld, const config_setting_t *root,
    const char *name)
{
	const config_setting_t *s;
	struct sockaddr_un sun;
	const char *v;
	char *path;

	v = get_string(ld, root, name, &s);
	path = ld->c->state_dir ? path_join(ld->c->state_dir, v) : xstrdup(v);
	if (strlen(path) >= sizeof(sun.sun_path))
		problem_at(ld, s, "%s: %s is longer than a unix socket path "
		    "may be (%zu bytes)", name, path, sizeof(sun.sun_path) - 1);
	return path;
}

/*
 * build_local - the unix sockets (local_socket, control_socket) and the
 * local_senders grants of local users
 */
static void
build_local(struct loader *ld)
{
	const config_setting_t *root = config_root_setting(&ld->lc);
	struct config *c = ld->c;

	c->local_socket = socket_path(ld, root, "local_socket");
	c->control_socket = socket_path(ld, root, "control_socket");
	build_grants(ld, "local_senders", "local_senders.user",
	    "local_senders.addresses", add_local_sender);
}

/*
 * parse_net - "address/prefix" or a bare address (all its bits) into
 * *net, host bits cleared; -1 if it is neither
 */
static int
parse_net(const char *v, struct config_net *net)
{
	char addr[INET6_ADDRSTRLEN], *end;
	const char *slash = strchr(v, '/');
	size_t len = slash ? (size_t)(slash - v) : strlen(v);
	unsigned long prefix;
	unsigned i;

	if (len >= sizeof(addr))
		return -1;
	memcpy(addr, v, len);
	addr[len] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, addr, net->addr) == 1)
		net->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, net->addr) == 1)
		net->family = AF_INET6;
	else
		return -1;
	net->prefix = net->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || prefix > net->prefix)
			return -1;
		net->prefix = (unsigned)prefix;
	}
	for (i = net->prefix; i < 128; i++)
		net->addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	return 0;
}

/* add_exempt - check and append one exempt network */
static void
add_exempt(struct loader *ld, const config_setting_t *e, const char *v)
{
	struct limits_config *l = &ld->c->limits;
	struct config_net net;

	if (parse_net(v, &net) == -1) {
		problem_at(ld, e, "limits.exempt_networks: \"%s\" is not an "
		    "address or address/prefix", v);
		return;
	}
	l->exempt = xreallocarray(l->exempt, l->nexempt + 1,
	    sizeof(*l->exempt));
	l->exempt[l->nexempt++] = net;
}

/* build_exempt - limits.exempt_networks, or its default */
static void
build_exempt(struct loader *ld, const config_setting_t *g)
{
	const config_setting_t *arr, *s;
	int i, n;

	if ((arr = get_strings(ld, g, "limits.exempt_networks")) != NULL) {
		n = config_setting_length(arr);
		for (i = 0; i < n; i++) {
			s = config_setting_get_elem(arr, (unsigned)i);
			add_exempt(ld, s, config_setting_get_string(s));
		}
		return;
	}
	if (member(g, key_get("limits.exempt_networks")) == NULL)
		add_default_words(ld, "limits.exempt_networks", add_exempt);
}

/* config_exempt - ip in one of limits.exempt_networks? */
bool
config_exempt(const struct config *c, const char *ip)
{
	unsigned char a[16];
	const struct config_net *n;
	int family;
	size_t i;
	unsigned b;

	if (inet_pton(AF_INET, ip, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		family = AF_INET6;
	else
		return false;
	for (i = 0; i < c->limits.nexempt; i++) {
		n = &c->limits.exempt[i];
		if (n->family != family)
			continue;
		for (b = 0; b < n->prefix; b++)
			if ((a[b / 8] ^ n->addr[b / 8]) & (0x80u >> (b % 8)))
				break;
		if (b == n->prefix)
			return true;
	}
	return false;
}

/* build_limits - the limits group */
static void
build_limits(struct loader *ld)
{
	const config_setting_t *g = top(ld, "limits");
	struct limits_config *l = &ld->c->limits;

	l->message_size = (uint64_t)get_number(ld, g, "limits.message_size");
	l->recipients = (unsigned)get_number(ld, g, "limits.recipients");
	l->line_length = (size_t)get_number(ld, g, "limits.line_length");
	l->header_size = (size_t)get_number(ld, g, "limits.header_size");
	l->errors_per_session =
	    (unsigned)get_number(ld, g, "limits.errors_per_session");
	l->command_timeout =
	    (unsigned)get_number(ld, g, "limits.command_timeout");
	l->data_timeout = (unsigned)get_number(ld, g, "limits.data_timeout");
	l->session_lifetime =
	    (unsigned)get_number(ld, g, "limits.session_lifetime");
	l->connections = (unsigned)get_number(ld, g, "limits.connections");
	l->connections_per_ip =
	    (unsigned)get_number(ld, g, "limits.connections_per_ip");
	l->recipient_lookup_timeout =
	    (unsigned)get_number(ld, g, "limits.recipient_lookup_timeout");
	l->user_messages_per_hour =
	    (unsigned)get_number(ld, g, "limits.user_messages_per_hour");
	l->user_messages_per_day =
	    (unsigned)get_number(ld, g, "limits.user_messages_per_day");
	l->user_recipients_per_hour =
	    (unsigned)get_number(ld, g, "limits.user_recipients_per_hour");
	l->user_recipients_per_day =
	    (unsigned)get_number(ld, g, "limits.user_recipients_per_day");
	l->recipient_messages_per_hour =
	    (unsigned)get_number(ld, g, "limits.recipient_messages_per_hour");
	l->rate_window = (unsigned)get_number(ld, g, "limits.rate_window");
	l->connection_rate_per_ip =
	    (unsigned)get_number(ld, g, "limits.connection_rate_per_ip");
	l->auth_failures_per_ip =
	    (unsigned)get_number(ld, g, "limits.auth_failures_per_ip");
	l->auth_failures_per_login =
	    (unsigned)get_number(ld, g, "limits.auth_failures_per_login");
	l->auth_failure_window =
	    (unsigned)get_number(ld, g, "limits.auth_failure_window");
	l->auth_lockout = (unsigned)get_number(ld, g, "limits.auth_lockout");
	l->auth_lockout_max =
	    (unsigned)get_number(ld, g, "limits.auth_lockout_max");
	if (l->auth_lockout_max < l->auth_lockout)
		problem_at(ld, g, "limits.auth_lockout_max (%us) is shorter "
		    "than limits.auth_lockout (%us)", l->auth_lockout_max,
		    l->auth_lockout);
	l->auth_failure_delay =
	    (unsigned)get_number(ld, g, "limits.auth_failure_delay");
	l->bounces_per_hour =
	    (unsigned)get_number(ld, g, "limits.bounces_per_hour");
	l->queue_min_free =
	    (uint64_t)get_number(ld, g, "limits.queue_min_free");
	build_exempt(ld, g);
}

/*
 * parse_next_hop - "host", "host:port", "[address]" or "[address]:port"
 * (IPv6 only in brackets) into *host (newly allocated) and *port (0 if
 * none). Returns 0, or -1 if it is none of those.
 */
static int
parse_next_hop(const char *v, char **host, unsigned *port)
{
	const char *end, *colon;
	unsigned char tmp[sizeof(struct in6_addr)];
	unsigned long p = 0;
	char *h, *e;

	*host = NULL;
	*port = 0;
	if (v[0] == '[') {
		if ((end = strchr(v, ']')) == NULL)
			return -1;
		h = xstrndup(v + 1, (size_t)(end - v - 1));
		if (inet_pton(AF_INET, h, tmp) != 1 &&
		    inet_pton(AF_INET6, h, tmp) != 1) {
			free(h);
			return -1;
		}
		colon = end[1] == ':' ? end + 1 : NULL;
		if (colon == NULL && end[1] != '\0') {
			free(h);
			return -1;
		}
	} else {
		colon = strrchr(v, ':');
		h = colon ? xstrndup(v, (size_t)(colon - v)) : xstrdup(v);
		if (!valid_domain(h) && inet_pton(AF_INET, h, tmp) != 1) {
			free(h);
			return -1;
		}
	}
	if (colon != NULL) {
		errno = 0;
		p = strtoul(colon + 1, &e, 10);
		if (colon[1] < '1' || colon[1] > '9' || *e != '\0' ||
		    errno != 0 || p > 65535) {
			free(h);
			return -1;
		}
	}
	*host = h;
	*port = (unsigned)p;
	return 0;
}

/* read_secret - the first line of a password file that only its owner
   may read; NULL with the problem recorded */
static char *
read_secret(struct loader *ld, const config_setting_t *s, const char *path)
{
	char buf[1024], *nl, *pw = NULL;
	struct stat st;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL) {
		problem_at(ld, s, "relay.smarthost.password_file: cannot read "
		    "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		problem_at(ld, s, "relay.smarthost.password_file: %s is "
		    "accessible by others (mode %04o); a password file must "
		    "not be: chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
	else if (fgets(buf, sizeof(buf), fp) == NULL || buf[0] == '\n' ||
	    buf[0] == '\0')
		problem_at(ld, s, "relay.smarthost.password_file: %s is empty",
		    path);
	else {
		if ((nl = strchr(buf, '\n')) != NULL)
			*nl = '\0';
		if ((nl = strchr(buf, '\r')) != NULL)
			*nl = '\0';
		pw = xstrdup(buf);
	}
	explicit_bzero(buf, sizeof(buf));
	fclose(fp);
	return pw;
}

/* build_smarthost - the upstream server of smarthost mode */
static void
build_smarthost(struct loader *ld, const config_setting_t *r)
{
	struct relay_config *rc = &ld->c->relay;
	const config_setting_t *g, *s, *ps;
	const char *v, *pwfile, *login;
	char *path;
	unsigned port;

	g = member(r, key_get("relay.smarthost"));
	if ((v = get_string(ld, g, "relay.smarthost.host", &s)) != NULL) {
		if (parse_next_hop(v, &rc->smarthost.host, &port) ==
		    -1 || port != 0) {
			problem_at(ld, s, "relay.smarthost.host: \"%s\" is not "
			    "a host name or IP address (the port is "
			    "relay.smarthost.port)", v);
			free(rc->smarthost.host);
			rc->smarthost.host = NULL;
		}
	} else if (rc->mode == RELAY_SMARTHOST)
		problem_at(ld, g ? g : r, "relay.smarthost.host is required: "
		    "relay.mode is \"smarthost\"");
	rc->smarthost.port = (unsigned)get_number(ld, g,
	    "relay.smarthost.port");
	v = get_string(ld, g, "relay.smarthost.tls", NULL);
	rc->smarthost.tls = strcmp(v, "implicit") == 0 ? RELAY_TLS_IMPLICIT :
	    strcmp(v, "opportunistic") == 0 ? RELAY_TLS_OPPORTUNISTIC :
	    strcmp(v, "none") == 0 ? RELAY_TLS_NONE : RELAY_TLS_REQUIRE;
	rc->smarthost.verify = get_bool(ld, g, "relay.smarthost.verify");
	login = get_string(ld, g, "relay.smarthost.login", &s);
	pwfile = get_string(ld, g, "relay.smarthost.password_file", &ps);
	if ((login == NULL) != (pwfile == NULL))
		problem_at(ld, login ? s : ps, "relay.smarthost: login and "
		    "password_file go together");
	else if (login != NULL) {
		if (rc->smarthost.tls == RELAY_TLS_NONE)
			problem_at(ld, s, "relay.smarthost.login: AUTH sends "
			    "the password, so it needs TLS (relay.smarthost.tls "
			    "is \"none\")");
		rc->smarthost.login = xstrdup(login);
		path = ld->c->state_dir ? path_join(ld->c->state_dir, pwfile) :
		    xstrdup(pwfile);
		/* A reload keeps the relay settings it started with (and
		   may no longer read a root-only file); a client never
		   needs the password. */
		if (ld->running != NULL) {
			if (ld->running->relay.smarthost.password != NULL)
				rc->smarthost.password = xstrdup(
				    ld->running->relay.smarthost.password);
		} else if (!ld->client)
			rc->smarthost.password = read_secret(ld, ps, path);
		free(path);
	}
	if ((v = get_string(ld, g, "relay.smarthost.spf", NULL)) != NULL)
		rc->smarthost.spf = xstrdup(v);
}

/* build_routes - per-domain next hops */
static void
build_routes(struct loader *ld, const config_setting_t *r)
{
	struct relay_config *rc = &ld->c->relay;
	const config_setting_t *list, *e, *ds, *hs;
	struct route_config *rt;
	const char *dom, *hop, *v;
	char *name;
	int i, n;
	size_t j;

	if ((list = member(r, key_get("relay.routes"))) == NULL ||
	    !check_value(ld, key_get("relay.routes"), list, 0))
		return;
	n = config_setting_length(list);
	rc->routes = xcalloc((size_t)n + 1, sizeof(*rc->routes));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		dom = get_string(ld, e, "relay.routes.domain", &ds);
		hop = get_string(ld, e, "relay.routes.next_hop", &hs);
		if (dom == NULL || hop == NULL)
			continue;
		if ((name = checked_domain(ld, ds, "relay.routes.domain",
		    dom)) == NULL)
			continue;
		for (j = 0; j < rc->nroutes; j++)
			if (strcmp(rc->routes[j].domain, name) == 0)
				break;
		if (j < rc->nroutes) {
			problem_at(ld, ds, "relay.routes.domain: %s already has "
			    "a route at line %d", name, rc->routes[j].line);
			free(name);
			continue;
		}
		rt = &rc->routes[rc->nroutes];
		if (parse_next_hop(hop, &rt->host, &rt->port) == -1) {
			problem_at(ld, hs, "relay.routes.next_hop: \"%s\" is not "
			    "\"host\", \"host:port\" or \"[address]:port\"",
			    hop);
			free(name);
			continue;
		}
		rt->domain = name;
		rt->line = config_setting_source_line(e);
		v = get_string(ld, e, "relay.routes.tls", NULL);
		rt->tls = v == NULL ? rc->tls : strcmp(v, "require") == 0 ?
		    RELAY_TLS_REQUIRE : strcmp(v, "none") == 0 ?
		    RELAY_TLS_NONE : RELAY_TLS_OPPORTUNISTIC;
		rc->nroutes++;
	}
}

/* build_relay - the relay group */
static void
build_relay(struct loader *ld)
{
	const config_setting_t *g = top(ld, "relay"), *arr, *e;
	struct relay_config *rc = &ld->c->relay;
	unsigned char tmp[sizeof(struct in6_addr)];
	const char *v;
	int i, n;

	v = get_string(ld, g, "relay.mode", NULL);
	rc->mode = strcmp(v, "smarthost") == 0 ? RELAY_SMARTHOST :
	    strcmp(v, "directory") == 0 ? RELAY_DIRECTORY : RELAY_MX;
	v = get_string(ld, g, "relay.directory", NULL);
	if (ld->c->state_dir != NULL)
		rc->directory = path_join(ld->c->state_dir, v);
	rc->port = (unsigned)get_number(ld, g, "relay.port");
	if ((arr = get_strings(ld, g, "relay.addresses")) != NULL) {
		n = config_setting_length(arr);
		rc->addresses = xcalloc((size_t)n + 1, sizeof(*rc->addresses));
		for (i = 0; i < n; i++) {
			e = config_setting_get_elem(arr, (unsigned)i);
			v = config_setting_get_string(e);
			if (inet_pton(AF_INET, v, tmp) != 1 &&
			    inet_pton(AF_INET6, v, tmp) != 1) {
				problem_at(ld, e, "relay.addresses: \"%s\" is "
				    "not a numeric IPv4 or IPv6 address", v);
				continue;
			}
			rc->addresses[rc->naddresses++] = xstrdup(v);
		}
	}
	v = get_string(ld, g, "relay.ip", NULL);
	rc->families = strcmp(v, "ipv4") == 0 ? CONFIG_INET4 :
	    strcmp(v, "ipv6") == 0 ? CONFIG_INET6 :
	    CONFIG_INET4 | CONFIG_INET6;
	v = get_string(ld, g, "relay.tls", NULL);
	rc->tls = strcmp(v, "require") == 0 ? RELAY_TLS_REQUIRE :
	    strcmp(v, "none") == 0 ? RELAY_TLS_NONE : RELAY_TLS_OPPORTUNISTIC;
	if ((v = get_string(ld, g, "relay.ca_file", &e)) != NULL &&
	    ld->c->state_dir != NULL) {
		rc->ca_file = path_join(ld->c->state_dir, v);
		if (!ld->client && (v = readable(rc->ca_file)) != NULL)
			problem_at(ld, e, "relay.ca_file: cannot read %s: %s",
			    rc->ca_file, v);
	}
	rc->connections = (unsigned)get_number(ld, g, "relay.connections");
	rc->connections_per_host =
	    (unsigned)get_number(ld, g, "relay.connections_per_host");
	rc->pause = (unsigned)get_number(ld, g, "relay.pause");
	e = member(g, key_get("relay.retry"));
	rc->retry_first = (unsigned)get_number(ld, e, "relay.retry.first");
	rc->retry_max = (unsigned)get_number(ld, e, "relay.retry.max");
	rc->expire = (unsigned)get_number(ld, e, "relay.retry.expire");
	if (rc->retry_max < rc->retry_first)
		problem_at(ld, e ? e : g, "relay.retry: max (%us) is shorter "
		    "than first (%us)", rc->retry_max, rc->retry_first);
	build_smarthost(ld, g);
	build_routes(ld, g);
}

/* build_metrics - the metrics group; without it, no listener */
static void
build_metrics(struct loader *ld)
{
	const config_setting_t *g = top(ld, "metrics"), *s;
	struct metrics_config *m = &ld->c->metrics;
	unsigned char tmp[sizeof(struct in6_addr)];
	const char *v;

	if (g == NULL)
		return;
	v = get_string(ld, g, "metrics.address", &s);
	if (inet_pton(AF_INET, v, tmp) != 1 &&
	    inet_pton(AF_INET6, v, tmp) != 1)
		problem_at(ld, s, "metrics.address: \"%s\" is not a numeric "
		    "IPv4 or IPv6 address", v);
	m->address = xstrdup(v);
	m->port = (unsigned)get_number(ld, g, "metrics.port");
}

/* read_file - parse path; 0, or -1 with the problem recorded */
static int
read_file(struct loader *ld)
{
	FILE *fp;

	if ((fp = fopen(ld->path, "r")) == NULL) {
		problem_line(ld, ld->path, 0, "cannot open: %s",
		    strerror(errno));
		return -1;
	}
	fclose(fp);
	if (ld->confdir)
		config_set_include_dir(&ld->lc, ld->confdir);
	if (config_read_file(&ld->lc, ld->path) == CONFIG_TRUE)
		return 0;
	if (config_error_type(&ld->lc) == CONFIG_ERR_FILE_IO)
		problem_line(ld, ld->path, 0, "cannot read: %s",
		    strerror(errno));
	else
		problem_line(ld, config_error_file(&ld->lc),
		    (unsigned)config_error_line(&ld->lc), "%s",
		    config_error_text(&ld->lc));
	return -1;
}

/* config_load - parse and check path; see config.h */
static struct config *config_load_as(const char *, struct config_errors *,
		    const struct config *, bool);

struct config *
config_load(const char *path, struct config_errors *errs)
{
	return config_load_as(path, errs, NULL, false);
}

/* config_load_client - config_load without opening any file it names */
struct config *
config_load_client(const char *path, struct config_errors *errs)
{
	return config_load_as(path, errs, NULL, true);
}

/* config_reload - config_load, lenient about the running TLS files */
struct config *
config_reload(const char *path, struct config_errors *errs,
    const struct config *running)
{
	return config_load_as(path, errs, running, false);
}

/* config_load_as - the loader, for a daemon, a reload or a client */
static struct config *
config_load_as(const char *path, struct config_errors *errs,
    const struct config *running, bool client)
{
	struct loader ld;
	struct config *c;
	size_t i;

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.running = running;
	ld.client = client;
	c = ld.c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(path);
	config_init(&ld.lc);
	if ((ld.confdir = config_dir(path)) == NULL)
		problem_line(&ld, path, 0, "cannot find the current "
		    "directory: %s", strerror(errno));

	if (read_file(&ld) == 0) {
		check_group(&ld, config_root_setting(&ld.lc), NULL);
		build_basics(&ld);
		build_domains(&ld);
		build_listen(&ld);
		build_tls(&ld);
		build_auth(&ld);
		build_senders(&ld);
		build_local(&ld);
		build_limits(&ld);
		build_relay(&ld);
		build_metrics(&ld);
	}

	config_destroy(&ld.lc);
	free(ld.confdir);
	if (ld.nprobs > 1)
		qsort(ld.probs, ld.nprobs, sizeof(*ld.probs), problem_cmp);
	for (i = 0; i < ld.nprobs; i++) {
		if (errs) {
			errs->v = xreallocarray(errs->v, errs->n + 1,
			    sizeof(*errs->v));
			errs->v[errs->n++] = ld.probs[i].text;
		} else
			free(ld.probs[i].text);
	}
	for (i = 0; i < ld.nfiles; i++)
		free(ld.files[i]);
	free(ld.files);
	free(ld.probs);
	if (ld.nprobs > 0) {
		config_free(c);
		return NULL;
	}
	return c;
}

/* free_strings - free an array of n strings and the array */
static void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* config_free - release a config from config_load; NULL is fine */
void
config_free(struct config *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	free(c->path);
	free(c->hostname);
	free(c->state_dir);
	free(c->user);
	free(c->resolver);
	free(c->dnssec_trust_anchor);
	for (i = 0; i < c->nlisten; i++) {
		free(c->listen[i].address);
		free_strings(c->listen[i].senders, c->listen[i].nsenders);
	}
	free(c->listen);
	free(c->tls_certificate);
	free(c->tls_key);
	free(c->tls_ciphers);
	free(c->tls_ciphersuites);
	free_strings(c->auth_mechanisms, c->nauth_mechanisms);
	free(c->sasldb);
	for (i = 0; i < c->ndomains; i++) {
		struct domain_config *d = &c->domains[i];

		free(d->name);
		for (j = 0; j < d->ndkim; j++) {
			free(d->dkim[j].selector);
			free(d->dkim[j].key);
		}
		free(d->dkim);
		free_strings(d->sign_headers, d->nsign_headers);
		free_strings(d->oversign_headers, d->noversign_headers);
		free(d->bounce_address);
	}
	free(c->domains);
	for (i = 0; i < c->nsenders; i++) {
		free(c->senders[i].login);
		free_strings(c->senders[i].addresses, c->senders[i].naddresses);
	}
	free(c->senders);
	free(c->local_socket);
	free(c->control_socket);
	for (i = 0; i < c->nlocal_senders; i++) {
		free(c->local_senders[i].user);
		free_strings(c->local_senders[i].addresses,
		    c->local_senders[i].naddresses);
	}
	free(c->local_senders);
	free(c->limits.exempt);
	free(c->relay.directory);
	free_strings(c->relay.addresses, c->relay.naddresses);
	free(c->relay.ca_file);
	free(c->relay.smarthost.host);
	free(c->relay.smarthost.login);
	if (c->relay.smarthost.password != NULL) {
		explicit_bzero(c->relay.smarthost.password,
		    strlen(c->relay.smarthost.password));
		free(c->relay.smarthost.password);
	}
	free(c->relay.smarthost.spf);
	for (i = 0; i < c->relay.nroutes; i++) {
		free(c->relay.routes[i].domain);
		free(c->relay.routes[i].host);
	}
	free(c->relay.routes);
	free(c->metrics.address);
	free(c);
}

/* config_errors_free - release the messages; the struct can be reused */
void
config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	free_strings(errs->v, errs->n);
	errs->v = NULL;
	errs->n = 0;
}

/* config_parse_duration - "300", "45s", "5m", "2h", "1d" -> seconds */
int
config_parse_duration(const char *s, unsigned *secs)
{
	uint64_t v = 0, mult = 1;
	const char *p;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	for (p = s; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	switch (*p) {
	case '\0':
		break;
	case 's':
		p++;
		break;
	case 'm':
		mult = 60;
		p++;
		break;
	case 'h':
		mult = 3600;
		p++;
		break;
	case 'd':
		mult = 86400;
		p++;
		break;
	default:
		return -1;
	}
	if (*p != '\0' || v > UINT32_MAX / mult)
		return -1;
	*secs = (unsigned)(v * mult);
	return 0;
}

/* config_domain_hosted - is domain (any case, one trailing dot) hosted? */
bool
config_domain_hosted(const struct config *c, const char *domain)
{
	size_t i, n;

	if (c == NULL || domain == NULL)
		return false;
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0)
		return false;
	for (i = 0; i < c->ndomains; i++)
		if (strlen(c->domains[i].name) == n &&
		    strncasecmp(c->domains[i].name, domain, n) == 0)
			return true;
	return false;
}

/* config_route - the route for domain (itself or a parent), or NULL */
const struct route_config *
config_route(const struct config *c, const char *domain)
{
	const struct relay_config *rc = &c->relay;
	size_t i, dl = strlen(domain), rl;

	for (i = 0; i < rc->nroutes; i++) {
		rl = strlen(rc->routes[i].domain);
		if (dl == rl ? strcasecmp(domain, rc->routes[i].domain) == 0 :
		    dl > rl && domain[dl - rl - 1] == '.' &&
		    strcasecmp(domain + dl - rl, rc->routes[i].domain) == 0)
			return &rc->routes[i];
	}
	return NULL;
}

/* config_signing_domain - the domain itself or its closest hosted parent */
const struct domain_config *
config_signing_domain(const struct config *c, const char *domain)
{
	const char *p;
	size_t i, n;

	if (c == NULL || domain == NULL)
		return NULL;
	for (p = domain; p != NULL; p = (p = strchr(p, '.')) ? p + 1 : NULL) {
		n = strlen(p);
		if (n > 0 && p[n - 1] == '.')
			n--;
		for (i = 0; n > 0 && i < c->ndomains; i++)
			if (strlen(c->domains[i].name) == n &&
			    strncasecmp(c->domains[i].name, p, n) == 0)
				return &c->domains[i];
	}
	return NULL;
}
