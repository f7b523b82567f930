/*
 * config - the Postern configuration: one typed, read-only struct
 *
 * config_load() parses a libconfig file, checks every setting (types,
 * ranges, files that must exist, ports, hosted domains, sender grants) and
 * returns a complete struct config, or NULL with every problem found listed
 * in errs as "FILE:LINE: message" (line 0 when the setting is missing).
 * Unknown settings are errors. The returned struct and all its strings
 * belong to the caller until config_free(); nothing changes it afterwards.
 *
 * Every setting, its default and its bounds are declared once, in config.c,
 * and documented in config/postern.conf.example (a test keeps them in step).
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH	"/etc/postern/postern.conf"

enum listen_tls {
	LISTEN_TLS_NONE,	/* plaintext; AUTH only if allow_plaintext_auth */
	LISTEN_TLS_STARTTLS,	/* RFC 3207; AUTH after STARTTLS */
	LISTEN_TLS_IMPLICIT,	/* RFC 8314: TLS from the first byte */
};

struct listen_config {
	char		*address;	/* numeric IPv4 or IPv6 address */
	int		 port;
	enum listen_tls	 tls;
	bool		 trusted;	/* relay without AUTH, senders only */
	char		**senders;	/* trusted: addresses clients may use */
	size_t		 nsenders;
	bool		 allow_plaintext_auth;	/* loopback address only */
	int		 line;		/* where it was declared */
};

enum dkim_algorithm {
	DKIM_ALG_RSA_SHA256,		/* RFC 6376; every domain signs
					   with one */
	DKIM_ALG_ED25519_SHA256,	/* RFC 8463; only beside an RSA key */
};

struct dkim_selector_config {
	char			*selector;
	enum dkim_algorithm	 algorithm;
	char			*key;		/* absolute path of the PEM key */
	int			 line;
};

struct domain_config {
	char		*name;		/* lower case, no trailing dot */
	struct dkim_selector_config *dkim;	/* as declared; which sign is
						   keys/keyring.c's business */
	size_t		 ndkim;
	int		 line;		/* where it was declared */
	char		**sign_headers;	/* NULL: the built-in list */
	size_t		 nsign_headers;
	char		**oversign_headers;	/* NULL: the built-in list */
	size_t		 noversign_headers;
	char		*bounce_address;	/* outbound envelope sender, or
						   NULL: the submitter's own */
};

struct sender_grant {
	char		*login;		/* SASL login, as the client sends it */
	char		**addresses;	/* "user@dom" or "*@dom", lower case */
	size_t		 naddresses;
	long		 messages_per_hour;	/* -1: limits' default */
	long		 messages_per_day;
	long		 recipients_per_hour;
	long		 recipients_per_day;
};

/* One entry of local_senders: a local account and what it may send as
   through the local socket (`postern sendmail`). */
struct local_sender {
	char		*user;		/* account name, as in getpwnam() */
	char		**addresses;	/* "user@dom" or "*@dom", lower case */
	size_t		 naddresses;
};

struct limits_config {
	uint64_t	 message_size;		/* bytes after dot-unstuffing */
	unsigned	 recipients;		/* per message */
	size_t		 line_length;		/* command line, CRLF included */
	size_t		 header_size;		/* whole header section */
	unsigned	 errors_per_session;	/* then 421 and close */
	unsigned	 command_timeout;	/* seconds waiting for a command */
	unsigned	 data_timeout;		/* seconds between DATA bytes */
	unsigned	 session_lifetime;	/* seconds, whole connection */
	unsigned	 connections;		/* concurrent, in total */
	unsigned	 connections_per_ip;
	unsigned	 recipient_lookup_timeout;	/* seconds at RCPT */
	unsigned	 user_messages_per_hour;	/* 0: none */
	unsigned	 user_messages_per_day;
	unsigned	 user_recipients_per_hour;
	unsigned	 user_recipients_per_day;
	unsigned	 recipient_messages_per_hour;
	unsigned	 rate_window;		/* seconds in an "hour" */
	unsigned	 connection_rate_per_ip;	/* per minute; 0: none */
	unsigned	 auth_failures_per_ip;	/* then locked; 0: never */
	unsigned	 auth_failures_per_login;
	unsigned	 auth_failure_window;	/* seconds */
	unsigned	 auth_lockout;		/* first lockout, seconds */
	unsigned	 auth_lockout_max;	/* doubled up to this */
	unsigned	 auth_failure_delay;	/* seconds before a 535 */
	struct config_net *exempt;		/* exempt_networks */
	size_t		 nexempt;
	unsigned	 bounces_per_hour;	/* per envelope sender */
	uint64_t	 queue_min_free;	/* bytes; 0: no check */
};

/* One network of limits.exempt_networks. */
struct config_net {
	int		 family;		/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];		/* network, host bits zero */
	unsigned	 prefix;		/* bits */
};

enum relay_mode {
	RELAY_MX,		/* the recipients' MX hosts */
	RELAY_SMARTHOST,	/* everything to one upstream server */
	RELAY_DIRECTORY,	/* a local Maildir-style folder (development) */
};

enum relay_tls {
	RELAY_TLS_OPPORTUNISTIC,	/* STARTTLS when offered */
	RELAY_TLS_REQUIRE,		/* STARTTLS required, verified */
	RELAY_TLS_IMPLICIT,		/* TLS from connect (smarthost, 465) */
	RELAY_TLS_NONE,			/* never */
};

#define CONFIG_INET4	0x01
#define CONFIG_INET6	0x02

struct route_config {
	char		*domain;	/* lower case; subdomains too */
	char		*host;		/* name or address, no brackets */
	unsigned	 port;		/* 0: relay.port */
	enum relay_tls	 tls;		/* relay.routes.tls, else relay.tls */
	int		 line;
};

struct relay_config {
	enum relay_mode	 mode;
	char		*directory;	/* absolute; directory mode */
	unsigned	 port;		/* mx mode: the servers' port */
	char		**addresses;	/* numeric source addresses */
	size_t		 naddresses;
	int		 families;	/* CONFIG_INET4 | CONFIG_INET6 */
	enum relay_tls	 tls;		/* mx mode: opportunistic, require,
					   none */
	char		*ca_file;	/* absolute; NULL: system store */
	unsigned	 connections;
	unsigned	 connections_per_host;
	unsigned	 pause;		/* seconds between two messages to
					   one destination */
	unsigned	 retry_first;	/* seconds */
	unsigned	 retry_max;
	unsigned	 expire;
	struct {
		char		*host;	/* NULL unless configured */
		unsigned	 port;
		enum relay_tls	 tls;
		bool		 verify;
		char		*login;	/* NULL: no AUTH */
		char		*password;	/* read from password_file
						   as root; wiped on free */
		char		*spf;	/* "include:..." or NULL */
	} smarthost;
	struct route_config *routes;
	size_t		 nroutes;
};

/* The metrics group: an HTTP listener for Prometheus. */
struct metrics_config {
	char		*address;	/* numeric IPv4 or IPv6 address */
	unsigned	 port;		/* 0: no metrics group, no listener */
};

struct config {
	char			*path;		/* file it came from */
	char			*hostname;	/* banner, EHLO, Received */
	char			*state_dir;	/* absolute; queue lives here */
	char			*user;		/* NULL: stay who we are */
	char			*resolver;	/* "IP" or "IP@PORT"; NULL: the
						   system's resolv.conf */
	char			*dnssec_trust_anchor;	/* DS/DNSKEY file;
						   NULL: no validation
						   (dnssec_validation
						   false) */
	unsigned		 stop_timeout;		/* seconds, SIGTERM */
	unsigned		 dkim_check_interval;	/* seconds between
						   DNS checks of pending
						   selectors */

	struct listen_config	*listen;
	size_t			 nlisten;

	char			*tls_certificate;	/* NULL if no listener uses TLS */
	char			*tls_key;
	char			*tls_ciphers;		/* TLS 1.2 cipher list,
						   checked by OpenSSL */
	char			*tls_ciphersuites;	/* TLS 1.3 */
	int			 tls_min_version;	/* TLS1_2_VERSION or
						   TLS1_3_VERSION */

	char			**auth_mechanisms;	/* upper case, never CRAM/DIGEST-MD5 */
	size_t			 nauth_mechanisms;
	char			*sasldb;	/* absolute path */

	struct domain_config	*domains;
	size_t			 ndomains;

	struct sender_grant	*senders;
	size_t			 nsenders;

	char			*local_socket;	/* absolute path of the unix
						   socket of `postern
						   sendmail` */
	char			*control_socket;	/* absolute path of
						   the admin commands'
						   socket (daemon/control.h) */
	struct local_sender	*local_senders;
	size_t			 nlocal_senders;

	struct limits_config	 limits;
	struct relay_config	 relay;
	struct metrics_config	 metrics;
};

/* A list of "FILE:LINE: message" strings, owned by the list. */

struct config_errors {
	char	**v;
	size_t	  n;
};

struct config	*config_load(const char *path, struct config_errors *errs);

/*
 * config_reload - config_load for a reload by a daemon that may no longer
 * be root: a TLS file that is the running config's own and cannot be read
 * (EACCES) is not a problem (the daemon keeps what it read at start).
 */
struct config	*config_reload(const char *path, struct config_errors *errs,
		    const struct config *running);

/*
 * config_load_client - config_load for a client such as `postern
 * sendmail` run by any local user: the files the configuration names
 * (TLS key, CA file, smarthost password, sasldb) are neither opened nor
 * checked, and no secret is read.
 */
struct config	*config_load_client(const char *path,
		    struct config_errors *errs);

void		 config_free(struct config *);
void		 config_errors_free(struct config_errors *);

/*
 * config_parse_duration - "300", "45s", "5m", "2h", "1d" -> seconds.
 * Returns 0 and sets *secs, or -1 for anything else (empty, negative,
 * unknown unit, overflow past UINT32_MAX).
 */
int		 config_parse_duration(const char *, unsigned *secs);

/*
 * config_format_duration - seconds in the largest unit that divides them
 * exactly: "90s", "10m", "1h", "1d" (0: "0s"), as error messages and
 * postern.conf(5) show bounds. Writes into out (truncated to outsz) and
 * returns it.
 */
char		*config_format_duration(int64_t secs, char *out, size_t outsz);

/* config_domain_hosted - true if domain (any case) is a hosted domain */
bool		 config_domain_hosted(const struct config *, const char *domain);

/* config_exempt - is client address ip (numeric) in
   limits.exempt_networks? */
bool		 config_exempt(const struct config *, const char *ip);

/* config_route - the relay.routes entry for domain or its closest
   parent, or NULL */
const struct route_config *config_route(const struct config *,
		    const char *domain);

/*
 * config_signing_domain - the hosted domain that signs mail whose From:
 * is in domain: the domain itself, or else its closest hosted parent
 * (relaxed DMARC alignment). NULL if none.
 */
const struct domain_config *config_signing_domain(const struct config *,
		    const char *domain);

#endif
