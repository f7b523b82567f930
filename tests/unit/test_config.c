/*
 * test_config - config_load() against real files: valid configurations
 * load with the right values and defaults, and each broken one fails with
 * its expected "FILE:LINE: message". Fixtures are written into a mkdtemp
 * directory (kept when POSTERN_KEEP_TMP is set); the test runs from the
 * repository root so it can load config/postern.conf.example and
 * config/dev.conf themselves.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "common/alloc.h"
#include "config/config.h"
#include "config/config_table.h"

#include "tests/unit/read_text.h"

static char tmpdir[] = "/tmp/postern-test-config-XXXXXX";

/* Four lines every error case starts from; line 5 is the case's own. */
#define HEAD \
	"hostname = \"relay.example.org\";\n"				\
	"state_dir = \".\";\n"						\
	"tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"	\
	"domains = ( { name = \"example.org\"; } );\n"
#define LISTEN5	"listen = ( { address = \"0.0.0.0\"; port = 587; } );\n"
/* The same, the tls group opened on line 5 and left open. */
#define TLS5 \
	"hostname = \"relay.example.org\";\n"				\
	"state_dir = \".\";\n"						\
	"domains = ( { name = \"example.org\"; } );\n"			\
	"listen = ( { address = \"0.0.0.0\"; port = 587; } );\n"		\
	"tls = { certificate = \"cert.pem\"; key = \"key.pem\";\n"

struct error_case {
	const char	*name;
	const char	*text;		/* whole file */
	unsigned	 line;		/* of the first error */
	const char	*want;		/* in the first error's message */
	const char	*want2;		/* and this too, if set */
	size_t		 nerr;		/* errors expected; 0 means 1 */
};

static const struct error_case error_cases[] = {
	{ "smarthost mode without a host",
	  HEAD LISTEN5 "relay = { mode = \"smarthost\"; };\n",
	  6, "relay.smarthost.host is required", "\"smarthost\"", 0 },
	{ "smarthost host with a port",
	  HEAD LISTEN5 "relay = { smarthost = { host = \"mx.example:25\"; "
	  "}; };\n",
	  6, "is not a host name or IP address", "relay.smarthost.port", 0 },
	{ "smarthost login without password file",
	  HEAD LISTEN5 "relay = { smarthost = { host = \"up.example\"; "
	  "login = \"me\"; }; };\n",
	  6, "login and password_file go together", NULL, 0 },
	{ "smarthost password file missing",
	  HEAD LISTEN5 "relay = { smarthost = { host = \"up.example\"; "
	  "login = \"me\"; password_file = \"nope.pw\"; }; };\n",
	  6, "relay.smarthost.password_file: cannot read", "nope.pw", 0 },
	{ "AUTH without TLS",
	  HEAD LISTEN5 "relay = { smarthost = { host = \"up.example\"; "
	  "tls = \"none\"; login = \"me\"; password_file = \"nope.pw\"; "
	  "}; };\n",
	  6, "AUTH sends the password, so it needs TLS", NULL, 2 },
	{ "bad relay mode",
	  HEAD LISTEN5 "relay = { mode = \"lmtp\"; };\n",
	  6, "relay.mode", "mx|smarthost|directory", 0 },
	{ "bad source address",
	  HEAD LISTEN5 "relay = { addresses = [ \"mail.example.org\" ]; };\n",
	  6, "relay.addresses: \"mail.example.org\" is not a numeric", NULL,
	  0 },
	{ "retry max below first",
	  HEAD LISTEN5 "relay = { retry = { first = \"2h\"; max = \"1h\"; "
	  "}; };\n",
	  6, "relay.retry: max (3600s) is shorter than first (7200s)", NULL,
	  0 },
	{ "exempt network not an address",
	  HEAD LISTEN5 "limits = { exempt_networks = [ \"10.0.0.0/8\",\n"
	  "  \"office.example/24\" ]; };\n",
	  7, "limits.exempt_networks: \"office.example/24\" is not", NULL,
	  0 },
	{ "exempt network prefix too long",
	  HEAD LISTEN5 "limits = { exempt_networks = [ \"10.0.0.0/33\" ]; "
	  "};\n", 6, "limits.exempt_networks: \"10.0.0.0/33\"", NULL, 0 },
	{ "exempt network prefix not a number",
	  HEAD LISTEN5 "limits = { exempt_networks = [ \"::1/x\" ]; };\n",
	  6, "limits.exempt_networks: \"::1/x\"", NULL, 0 },
	{ "lockout max below lockout",
	  HEAD LISTEN5 "limits = { auth_lockout = \"2h\"; auth_lockout_max "
	  "= \"1h\"; };\n",
	  6, "limits.auth_lockout_max (3600s) is shorter than "
	  "limits.auth_lockout (7200s)", NULL, 0 },
	{ "bad route next hop",
	  HEAD LISTEN5 "relay = { routes = ( { domain = \"lists.example\"; "
	  "next_hop = \"[::1\"; } ); };\n",
	  6, "relay.routes.next_hop: \"[::1\" is not", NULL, 0 },
	{ "route port out of range",
	  HEAD LISTEN5 "relay = { routes = ( { domain = \"lists.example\"; "
	  "next_hop = \"10.0.0.5:70000\"; } ); };\n",
	  6, "relay.routes.next_hop", NULL, 0 },
	{ "route given twice",
	  HEAD LISTEN5 "relay = { routes = ( { domain = \"lists.example\"; "
	  "next_hop = \"a.example\"; },\n  { domain = \"Lists.Example.\"; "
	  "next_hop = \"[2001:db8::1]:2525\"; } ); };\n",
	  7, "lists.example already has a route at line 6", NULL, 0 },
	{ "syntax error has its line",
	  HEAD "listen = ( { address = \"0.0.0.0\";\n  port = ; } );\n",
	  6, "syntax error", NULL, 0 },
	{ "missing @include file",
	  HEAD LISTEN5 "@include \"nope.conf\"\n",
	  6, "cannot open include file", NULL, 0 },
	{ "unknown top-level setting",
	  HEAD LISTEN5 "bogus = 1;\n",
	  6, "unknown setting \"bogus\"", NULL, 0 },
	{ "unknown setting in a listener",
	  HEAD "listen = ( { address = \"0.0.0.0\"; port = 587;\n"
	  "  tsl = \"none\"; } );\n",
	  6, "unknown setting \"listen.tsl\"", NULL, 0 },
	{ "unknown setting in tls",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; ca = \"x\"; };\n"
	  "domains = ( { name = \"example.org\"; } );\n" LISTEN5,
	  3, "unknown setting \"tls.ca\"", NULL, 0 },
	{ "unknown setting in auth",
	  HEAD LISTEN5 "auth = { mechanism = [ \"PLAIN\" ]; };\n",
	  6, "unknown setting \"auth.mechanism\"", NULL, 0 },
	{ "unknown setting in domains",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; dkim = 1; } );\n" LISTEN5,
	  4, "domains.dkim: expected a list", NULL, 0 },
	{ "bounce address in another domain",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; bounce_address = "
	  "\"bounces@example.org.evil.test\"; } );\n" LISTEN5,
	  4, "domains.bounce_address: bounces@example.org.evil.test is not in "
	  "example.org", "SPF and DMARC", 0 },
	{ "bounce address without a domain",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; bounce_address = "
	  "\"bounces\"; } );\n" LISTEN5,
	  4, "domains.bounce_address: \"bounces\" is not local@domain", NULL,
	  0 },
	{ "bad selector",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; dkim = ( { selector = \"a_b\"; "
	  "algorithm = \"rsa-sha256\"; } ); } );\n" LISTEN5,
	  4, "\"a_b\" is not a valid selector", NULL, 0 },
	{ "bad algorithm",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; dkim = ( { selector = \"a\"; "
	  "algorithm = \"rsa-sha1\"; } ); } );\n" LISTEN5,
	  4, "domains.dkim.algorithm", "rsa-sha1", 0 },
	{ "bad header name",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; dkim = ( { selector = \"a\"; "
	  "algorithm = \"rsa-sha256\"; } ); oversign_headers = [\"Sub ject\"]; "
	  "} );\n" LISTEN5,
	  4, "\"Sub ject\" is not a header field name", NULL, 0 },
	{ "unknown setting in senders",
	  HEAD LISTEN5 "senders = ( { login = \"a\";\n"
	  "  addresses = [ \"a@example.org\" ]; address = \"x\"; } );\n",
	  7, "unknown setting \"senders.address\"", NULL, 0 },
	{ "unknown setting in limits",
	  HEAD LISTEN5 "limits = { max_size = 10; };\n",
	  6, "unknown setting \"limits.max_size\"", NULL, 0 },
	{ "wrong type: port as a string",
	  HEAD "listen = ( { address = \"0.0.0.0\"; port = \"587\"; } );\n",
	  5, "listen.port: expected an integer, found a string", NULL, 0 },
	{ "wrong type: trusted as a string",
	  HEAD "listen = ( { address = \"0.0.0.0\"; port = 587; "
	  "trusted = \"yes\"; } );\n",
	  5, "listen.trusted: expected true or false, found a string", NULL, 0 },
	{ "wrong type: limits not a group",
	  HEAD LISTEN5 "limits = 5;\n",
	  6, "limits: expected a group", NULL, 0 },
	{ "wrong type: listen as a group",
	  HEAD "listen = { address = \"0.0.0.0\"; port = 587; };\n",
	  5, "listen: expected a list", NULL, 0 },
	{ "wrong type: listen entry not a group",
	  HEAD "listen = ( 5 );\n",
	  5, "listen: entries must be groups", NULL, 0 },
	{ "wrong type: state_dir as a number",
	  "state_dir = 5;\nhostname = \"relay.example.org\";\n"
	  "domains = ( { name = \"example.org\"; } );\n"
	  "listen = ( { address = \"::1\"; port = 25; tls = \"none\"; } );\n",
	  1, "state_dir: expected a string, found an integer", NULL, 0 },
	{ "wrong type: float duration",
	  HEAD LISTEN5 "limits = { data_timeout = 1.5; };\n",
	  6, "limits.data_timeout: expected a duration", NULL, 0 },
	{ "wrong type: numbers as mechanisms",
	  HEAD LISTEN5 "auth = { mechanisms = [ 1 ]; };\n",
	  6, "auth.mechanisms: expected strings, found an integer", NULL, 0 },
	{ "empty string",
	  HEAD LISTEN5 "user = \"\";\n",
	  6, "user must not be empty", NULL, 0 },
	{ "out of range: port",
	  HEAD "listen = ( { address = \"0.0.0.0\"; port = 70000; } );\n",
	  5, "listen.port: 70000 is out of range (1..65535)", NULL, 0 },
	{ "out of range: recipients",
	  HEAD LISTEN5 "limits = { recipients = 0; };\n",
	  6, "limits.recipients: 0 is out of range (1..10000)", NULL, 0 },
	{ "out of range: int64 message_size",
	  HEAD LISTEN5 "limits = { message_size = 2147483649L; };\n",
	  6, "limits.message_size: 2147483649 is out of range "
	  "(1024..2147483648)", NULL, 0 },
	{ "out of range: plain integer libconfig 1.5 would wrap",
	  HEAD LISTEN5 "limits = { message_size = 4294968320; };\n",
	  6, "limits.message_size: 4294968320 is out of range", NULL, 0 },
	{ "out of range: beyond 64 bits",
	  HEAD LISTEN5 "limits = { recipients = 99999999999999999999; };\n",
	  6, "limits.recipients: number too large", NULL, 0 },
	{ "bad choice for listen.tls",
	  HEAD "listen = ( { address = \"0.0.0.0\"; port = 587; tls = \"ssl\"; } );\n",
	  5, "listen.tls: \"ssl\" is not one of starttls|implicit|none",
	  NULL, 0 },
	{ "bad address: a host name",
	  HEAD "listen = ( { address = \"localhost\"; port = 587; } );\n",
	  5, "listen.address: \"localhost\" is not a numeric IPv4 or IPv6 "
	  "address", NULL, 0 },
	{ "bad address: octet too big",
	  HEAD "listen = ( { address = \"256.1.1.1\"; port = 587; } );\n",
	  5, "\"256.1.1.1\" is not a numeric", NULL, 0 },
	{ "duplicate listener, same address written differently",
	  HEAD "listen = (\n  { address = \"::1\"; port = 587; },\n"
	  "  { address = \"0:0::1\"; port = 587; } );\n",
	  7, "listen: 0:0::1 port 587 is already declared at line 6", NULL, 0 },
	{ "missing listen",
	  HEAD,
	  0, "missing required setting \"listen\"", NULL, 0 },
	{ "empty listen",
	  HEAD "listen = ();\n",
	  5, "listen needs at least one entry", NULL, 0 },
	{ "listener without port",
	  HEAD "listen = ( { address = \"0.0.0.0\"; } );\n",
	  5, "missing required setting \"listen.port\"", NULL, 0 },
	{ "plaintext auth on a public address",
	  HEAD "listen = ( { address = \"192.0.2.1\"; port = 587;\n"
	  "  allow_plaintext_auth = true; } );\n",
	  6, "listen.allow_plaintext_auth is only allowed on a loopback "
	  "address", "not 192.0.2.1", 0 },
	{ "plaintext auth on the IPv6 wildcard",
	  HEAD "listen = ( { address = \"::\"; port = 587; tls = \"none\"; "
	  "allow_plaintext_auth = true; } );\n",
	  5, "only allowed on a loopback address", NULL, 0 },
	{ "trusted listener without senders",
	  HEAD "listen = ( { address = \"127.0.0.1\"; port = 2525; "
	  "tls = \"none\";\n  trusted = true; } );\n",
	  5, "a trusted listener needs senders", NULL, 0 },
	{ "trusted listener with no senders",
	  HEAD "listen = ( { address = \"127.0.0.1\"; port = 2525; "
	  "trusted = true;\n  senders = [ ]; } );\n",
	  6, "listen.senders needs at least one entry", NULL, 0 },
	{ "senders on an untrusted listener",
	  HEAD "listen = ( { address = \"127.0.0.1\"; port = 2525;\n"
	  "  senders = [ \"app@example.org\" ]; } );\n",
	  6, "listen.senders is only allowed on a trusted listener", NULL, 0 },
	{ "trusted listener sender outside hosted domains",
	  HEAD "listen = ( { address = \"127.0.0.1\"; port = 2525; "
	  "trusted = true;\n  senders = [ \"app@example.com\" ]; } );\n",
	  6, "listen.senders: \"app@example.com\": example.com is not a "
	  "hosted domain", NULL, 0 },
	{ "CRAM-MD5 refused with the reason",
	  HEAD LISTEN5 "auth = { mechanisms = [ \"PLAIN\",\n"
	  "  \"cram-md5\" ]; };\n",
	  7, "auth.mechanisms: CRAM-MD5 is not supported",
	  "plaintext-equivalent", 0 },
	{ "DIGEST-MD5 refused with the reason",
	  HEAD LISTEN5 "auth = { mechanisms = [ \"DIGEST-MD5\" ]; };\n",
	  6, "DIGEST-MD5 is not supported", "smtplib", 0 },
	{ "unknown mechanism",
	  HEAD LISTEN5 "auth = { mechanisms = [ \"GSSAPI\" ]; };\n",
	  6, "auth.mechanisms: unknown mechanism \"GSSAPI\"", NULL, 0 },
	{ "mechanism listed twice",
	  HEAD LISTEN5 "auth = { mechanisms = [ \"PLAIN\", \"plain\" ]; };\n",
	  6, "auth.mechanisms: PLAIN is listed twice", NULL, 0 },
	{ "no mechanisms",
	  HEAD LISTEN5 "auth = { mechanisms = [ ]; };\n",
	  6, "auth.mechanisms needs at least one entry", NULL, 0 },
	{ "sasldb directory missing",
	  HEAD LISTEN5 "auth = { sasldb = \"nodir/sasldb2\"; };\n",
	  6, "auth.sasldb: directory ", "/nodir: No such file or directory", 0 },
	{ "sender grant outside hosted domains",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; addresses = "
	  "[ \"a@example.org\",\n  \"b@other.org\" ]; } );\n",
	  7, "senders.addresses: \"b@other.org\": other.org is not a hosted "
	  "domain", "can only sign for", 0 },
	{ "sender grant for a subdomain of a hosted domain",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; addresses = "
	  "[ \"*@lists.example.org\" ]; } );\n",
	  6, "lists.example.org is not a hosted domain", NULL, 0 },
	{ "sender grant that is not an address",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; addresses = "
	  "[ \"example.org\" ]; } );\n",
	  6, "senders.addresses: \"example.org\" is not an address", NULL, 0 },
	{ "sender grant with a partial wildcard",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; addresses = "
	  "[ \"a*@example.org\" ]; } );\n",
	  6, "\"a*@example.org\": bad local part", NULL, 0 },
	{ "sender grant with a bad domain",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; addresses = "
	  "[ \"a@example..org\" ]; } );\n",
	  6, "\"example..org\" is not a valid domain name", NULL, 0 },
	{ "sender grant without addresses",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; } );\n",
	  6, "missing required setting \"senders.addresses\"", NULL, 0 },
	{ "sender grant with an empty address",
	  HEAD LISTEN5 "senders = ( { login = \"a\"; addresses = [ \"\" ]; } );\n",
	  6, "senders.addresses: empty string", NULL, 0 },
	{ "two grants for one login",
	  HEAD LISTEN5 "senders = (\n"
	  "  { login = \"a\"; addresses = [ \"a@example.org\" ]; },\n"
	  "  { login = \"a\"; addresses = [ \"b@example.org\" ]; } );\n",
	  8, "senders.login: \"a\" already has a grant at line 7", NULL, 0 },
	{ "two local_senders entries for one user",
	  HEAD LISTEN5 "local_senders = (\n"
	  "  { user = \"www-data\"; addresses = [ \"a@example.org\" ]; },\n"
	  "  { user = \"www-data\"; addresses = [ \"b@example.org\" ]; } );\n",
	  8, "local_senders.user: \"www-data\" already has a grant at line 7",
	  NULL, 0 },
	{ "local sender outside the hosted domains",
	  HEAD LISTEN5 "local_senders = ( { user = \"cron\"; addresses = "
	  "[ \"*@lists.example.org\" ]; } );\n",
	  6, "local_senders.addresses: \"*@lists.example.org\": "
	  "lists.example.org is not a hosted domain", NULL, 0 },
	{ "local sender that is not an address",
	  HEAD LISTEN5 "local_senders = ( { user = \"cron\"; addresses = "
	  "[ \"root\" ]; } );\n",
	  6, "local_senders.addresses: \"root\" is not an address", NULL, 0 },
	{ "local sender without addresses",
	  HEAD LISTEN5 "local_senders = ( { user = \"cron\"; addresses = [ ]; "
	  "} );\n",
	  6, "local_senders.addresses", NULL, 0 },
	{ "local sender without user",
	  HEAD LISTEN5 "local_senders = ( { addresses = [ \"a@example.org\" ]; "
	  "} );\n",
	  6, "missing required setting \"local_senders.user\"", NULL, 0 },
	{ "local socket path too long for sockaddr_un",
	  HEAD LISTEN5 "local_socket = \"/run/"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "\";\n",
	  6, "local_socket: /run/aaa", "longer than a unix socket path", 0 },
	{ "missing certificate file",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"nope.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; } );\n" LISTEN5,
	  3, "tls.certificate: cannot read ",
	  "/nope.pem: No such file or directory", 0 },
	{ "key is a directory",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \".\"; };\n"
	  "domains = ( { name = \"example.org\"; } );\n" LISTEN5,
	  3, "tls.key: cannot read ", "not a regular file", 0 },
	{ "no tls group but a TLS listener",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "domains = ( { name = \"example.org\"; } );\n"
	  "listen = ( { address = \"0.0.0.0\"; port = 465; "
	  "tls = \"implicit\"; } );\n",
	  0, "tls.certificate is required: the listener at line 4 uses TLS",
	  NULL, 2 },
	{ "tls.ciphers from which OpenSSL selects nothing",
	  TLS5 "  ciphers = \"NO-SUCH-CIPHER:ALSO-NOT\"; };\n",
	  6, "tls.ciphers: OpenSSL selects no TLS 1.2 cipher from "
	  "\"NO-SUCH-CIPHER:ALSO-NOT\"", "no cipher match", 0 },
	{ "tls.ciphers naming TLS 1.3 suites only",
	  TLS5 "  ciphers = \"TLS_AES_128_GCM_SHA256\"; };\n",
	  6, "tls.ciphers: OpenSSL selects no TLS 1.2 cipher", NULL, 0 },
	{ "tls.ciphersuites from which OpenSSL selects nothing",
	  TLS5 "  min_version = \"1.3\";\n"
	  "  ciphersuites = \"TLS_NO_SUCH_SUITE\"; };\n",
	  7, "tls.ciphersuites: OpenSSL selects no TLS 1.3 ciphersuite from "
	  "\"TLS_NO_SUCH_SUITE\"", NULL, 0 },
	{ "tls.min_version below 1.2",
	  TLS5 "  min_version = \"1.1\"; };\n",
	  6, "tls.min_version: \"1.1\" is not one of 1.2|1.3", NULL, 0 },
	{ "tls.min_version as a number",
	  TLS5 "  min_version = 1.3; };\n",
	  6, "tls.min_version", NULL, 0 },
	{ "tls.ciphers checked without a TLS listener too",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "domains = ( { name = \"example.org\"; } );\n"
	  "listen = ( { address = \"0.0.0.0\"; port = 25; tls = \"none\"; } );\n"
	  "tls = { ciphers = \"eNULL-BOGUS\"; };\n",
	  5, "tls.ciphers: OpenSSL selects no TLS 1.2 cipher", NULL, 0 },
	{ "duration with a bad unit",
	  HEAD LISTEN5 "limits = { command_timeout = \"5x\"; };\n",
	  6, "limits.command_timeout: \"5x\" is not a duration", NULL, 0 },
	{ "duration below its minimum",
	  HEAD LISTEN5 "limits = { command_timeout = \"5s\"; };\n",
	  6, "limits.command_timeout: 5s is out of range (10s..1h)", NULL, 0 },
	{ "duration in seconds above its maximum",
	  HEAD LISTEN5 "limits = { data_timeout = 3601; };\n",
	  6, "limits.data_timeout: 3601s is out of range (10s..1h)", NULL, 0 },
	{ "duration above its maximum",
	  HEAD LISTEN5 "limits = { session_lifetime = \"2d\"; };\n",
	  6, "limits.session_lifetime: 2d is out of range (1m..1d)", NULL, 0 },
	{ "negative duration",
	  HEAD LISTEN5 "limits = { session_lifetime = \"-1h\"; };\n",
	  6, "\"-1h\" is not a duration", NULL, 0 },
	{ "hostname that is not fully qualified",
	  "hostname = \"localhost\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"example.org\"; } );\n" LISTEN5,
	  1, "hostname: \"localhost\" is not a fully-qualified domain name",
	  NULL, 0 },
	{ "hosted domain with a bad name",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ( { name = \"exa_mple.org\"; } );\n" LISTEN5,
	  4, "domains.name: \"exa_mple.org\" is not a valid domain name",
	  NULL, 0 },
	{ "no hosted domains",
	  "hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	  "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	  "domains = ();\n" LISTEN5,
	  4, "domains needs at least one entry", NULL, 0 },
	{ "metrics without a port",
	  HEAD LISTEN5 "metrics = { address = \"127.0.0.1\"; };\n",
	  6, "missing required setting \"metrics.port\"", NULL, 0 },
	{ "metrics address not numeric",
	  HEAD LISTEN5 "metrics = { address = \"localhost\"; port = 9325; };\n",
	  6, "metrics.address: \"localhost\" is not a numeric IPv4 or IPv6",
	  NULL, 0 },
	{ "metrics port out of range",
	  HEAD LISTEN5 "metrics = { port = 70000; };\n",
	  6, "metrics.port: 70000 is out of range (1..65535)", NULL, 0 },
	{ "metrics not a group",
	  HEAD LISTEN5 "metrics = 9325;\n",
	  6, "metrics", "a group", 0 },
};

#define NERROR_CASES	(sizeof(error_cases) / sizeof(error_cases[0]))

/* path_in - tmpdir/rel in a static buffer */
static const char *
path_in(const char *rel)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	return path;
}

/*
 * with_dkim - text with every bare domain entry `{ name = "X"; }` given
 * one rsa-sha256 key on the same line (so expected line numbers hold);
 * entries with more members are left as written. New memory.
 */
static char *
with_dkim(const char *text)
{
	static const char open[] = "{ name = \"", close[] = "\"; }",
	    add[] = "\"; dkim = ( { selector = \"s1\"; "
	    "algorithm = \"rsa-sha256\"; } ); }";
	const char *p = text, *q, *e;
	size_t len = 0, cap = strlen(text) * 4 + 1;
	char *out = malloc(cap);

	assert_non_null(out);
	while ((q = strstr(p, open)) != NULL) {
		q += sizeof(open) - 1;
		e = strchr(q, '"');
		memcpy(out + len, p, (size_t)(q - p));
		len += (size_t)(q - p);
		p = q;
		if (e != NULL && strncmp(e, close, sizeof(close) - 1) == 0 &&
		    len + (size_t)(e - q) + sizeof(add) < cap) {
			memcpy(out + len, q, (size_t)(e - q));
			len += (size_t)(e - q);
			memcpy(out + len, add, sizeof(add) - 1);
			len += sizeof(add) - 1;
			p = e + sizeof(close) - 1;
		}
	}
	strcpy(out + len, p);
	return out;
}

/* write_file - create tmpdir/rel (parent directories too) holding text;
   configuration files get DKIM keys for bare domains (with_dkim) */
static void
write_file(const char *rel, const char *text)
{
	char path[PATH_MAX], *slash, *fixed = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	for (slash = path + strlen(tmpdir) + 1; (slash = strchr(slash, '/'));
	    slash++) {
		*slash = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*slash = '/';
	}
	if (strlen(rel) > 5 && strcmp(rel + strlen(rel) - 5, ".conf") == 0)
		text = fixed = with_dkim(text);
	if ((fp = fopen(path, "w")) == NULL)
		fail_msg("create %s: %s", path, strerror(errno));
	fputs(text, fp);
	free(fixed);
	if (fclose(fp) != 0)
		fail_msg("write %s: %s", path, strerror(errno));
}

/* replace_all - copy of s with every from replaced by to; *count of them */
static char *
replace_all(const char *s, const char *from, const char *to, int *count)
{
	size_t flen = strlen(from), tlen = strlen(to), n = 0;
	const char *p;
	char *out, *w;

	for (p = s; (p = strstr(p, from)) != NULL; p += flen)
		n++;
	out = xmalloc(strlen(s) + n * tlen + 1);
	for (w = out, p = s; *p;) {
		if (strncmp(p, from, flen) == 0) {
			memcpy(w, to, tlen);
			w += tlen;
			p += flen;
		} else
			*w++ = *p++;
	}
	*w = '\0';
	if (count)
		*count = (int)n;
	return out;
}

/* load_text - write text to tmpdir/t.conf and load it */
static struct config *
load_text(const char *text, struct config_errors *errs)
{
	write_file("t.conf", text);
	return config_load(path_in("t.conf"), errs);
}

/* dump_errors - print what config_load said, for failure messages */
static void
dump_errors(const struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		print_message("# got: %s\n", errs->v[i]);
}

/* must_load - load text, failing the test with the errors if any */
static struct config *
must_load(const char *text)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;

	c = load_text(text, &errs);
	if (c == NULL || errs.n != 0) {
		dump_errors(&errs);
		fail_msg("config did not load");
	}
	return c;
}

/* has_error - does errs hold "t.conf:LINE: ...want...want2..." at index i */
static int
has_error(const struct config_errors *errs, size_t i, const char *file,
    unsigned line, const char *want, const char *want2)
{
	char prefix[PATH_MAX + 32];

	snprintf(prefix, sizeof(prefix), "%s:%u: ", file, line);
	return i < errs->n &&
	    strncmp(errs->v[i], prefix, strlen(prefix)) == 0 &&
	    strstr(errs->v[i] + strlen(prefix), want) != NULL &&
	    (want2 == NULL || strstr(errs->v[i], want2) != NULL);
}

/* test_error_case - one row of error_cases fails exactly as expected */
static void
test_error_case(void **state)
{
	const struct error_case *ec = *state;
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	size_t nerr = ec->nerr ? ec->nerr : 1;

	c = load_text(ec->text, &errs);
	if (c != NULL || errs.n != nerr ||
	    !has_error(&errs, 0, path_in("t.conf"), ec->line, ec->want,
	    ec->want2)) {
		dump_errors(&errs);
		config_free(c);
		config_errors_free(&errs);
		fail_msg("want %zu error(s), the first at line %u with \"%s\"",
		    nerr, ec->line, ec->want);
	}
	config_errors_free(&errs);
}

/* test_duplicate_domain - both spellings of one domain are one domain */
static void
test_duplicate_domain(void **state)
{
	struct config_errors errs = { NULL, 0 };

	(void)state;
	assert_null(load_text("hostname = \"relay.example.org\";\n"
	    "state_dir = \".\";\n"
	    "domains = ( { name = \"example.org\"; },\n"
	    "  { name = \"EXAMPLE.org.\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 25; tls = \"none\"; } );\n",
	    &errs));
	if (errs.n != 1 || !has_error(&errs, 0, path_in("t.conf"), 4,
	    "domains.name: example.org is already declared at line 3", NULL))
		dump_errors(&errs), fail();
	config_errors_free(&errs);
}

/* test_all_errors_collected - every problem reported, sorted by line */
static void
test_all_errors_collected(void **state)
{
	struct config_errors errs = { NULL, 0 };
	const char *f = path_in("t.conf");

	(void)state;
	assert_null(load_text(
	    "hostname = \"localhost\";\n"				/* 1 */
	    "state_dir = \".\";\n"					/* 2 */
	    "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	    "domains = ( { name = \"example.org\"; } );\n"		/* 4 */
	    "listen = (\n"						/* 5 */
	    "  { address = \"0.0.0.0\"; port = 0; },\n"		/* 6 */
	    "  { address = \"10.0.0.1\"; port = 25; bogus = 1;\n"	/* 7 */
	    "    allow_plaintext_auth = true; } );\n"			/* 8 */
	    "limits = { command_timeout = \"5x\"; recipients = \"9\"; };\n"
	    "senders = ( { login = \"a\"; addresses = [ \"a@b.c\" ]; } );\n"
	    "auth = { mechanisms = [ \"CRAM-MD5\" ]; };\n",		/* 11 */
	    &errs));
	if (errs.n != 8 ||
	    !has_error(&errs, 0, f, 1, "hostname: \"localhost\"", NULL) ||
	    !has_error(&errs, 1, f, 6, "listen.port: 0 is out of range", NULL) ||
	    !has_error(&errs, 2, f, 7, "unknown setting \"listen.bogus\"", NULL) ||
	    !has_error(&errs, 3, f, 8, "allow_plaintext_auth", NULL) ||
	    !has_error(&errs, 4, f, 9, "limits.command_timeout", NULL) ||
	    !has_error(&errs, 5, f, 9, "limits.recipients: expected an integer",
	    NULL) ||
	    !has_error(&errs, 6, f, 10, "b.c is not a hosted domain", NULL) ||
	    !has_error(&errs, 7, f, 11, "CRAM-MD5", NULL)) {
		dump_errors(&errs);
		fail_msg("want 8 errors in line order");
	}
	config_errors_free(&errs);

	/* errs may be NULL: still no config, nothing leaks */
	assert_null(load_text("bogus = 1;\n", NULL));
}

/* test_missing_file - an unreadable config file is one clear error */
static void
test_missing_file(void **state)
{
	struct config_errors errs = { NULL, 0 };
	const char *f = path_in("no-such.conf");

	(void)state;
	assert_null(config_load(f, &errs));
	if (errs.n != 1 || !has_error(&errs, 0, f, 0,
	    "cannot open: No such file or directory", NULL))
		dump_errors(&errs), fail();
	config_errors_free(&errs);
}

/* test_loose_tls_key - a TLS key others may read is refused, naming it */
static void
test_loose_tls_key(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;

	(void)state;
	write_file("loose.pem", "dummy key\n");
	assert_int_equal(chmod(path_in("loose.pem"), 0644), 0);
	c = load_text("hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	    "tls = { certificate = \"cert.pem\"; key = \"loose.pem\"; };\n"
	    "domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 587; } );\n", &errs);
	assert_null(c);
	if (errs.n != 1 || !has_error(&errs, 0, path_in("t.conf"), 3,
	    "tls.key: ", "loose.pem is accessible by others (mode 0644)"))
		dump_errors(&errs), fail();
	config_errors_free(&errs);
}

/* test_tls_policy - the policy settings reach struct config as given */
static void
test_tls_policy(void **state)
{
	struct config *c;

	(void)state;
	c = must_load(TLS5 "  min_version = \"1.3\";\n"
	    "  ciphers = \"ECDHE-RSA-AES256-GCM-SHA384\";\n"
	    "  ciphersuites = \"TLS_AES_256_GCM_SHA384\"; };\n");
	assert_int_equal(c->tls_min_version, TLS1_3_VERSION);
	assert_string_equal(c->tls_ciphers, "ECDHE-RSA-AES256-GCM-SHA384");
	assert_string_equal(c->tls_ciphersuites, "TLS_AES_256_GCM_SHA384");
	config_free(c);
}

/* test_full - every setting given, every value where it belongs */
static void
test_full(void **state)
{
	struct config *c;
	const struct listen_config *l;
	char *text;

	(void)state;
	text = xasprintf(
	    "hostname = \"Relay.Example.ORG\";\n"
	    "state_dir = \"/var/spool/postern-test\";\n"
	    "user = \"postern\";\n"
	    "listen = (\n"
	    "  { address = \"0.0.0.0\"; port = 587; tls = \"starttls\"; },\n"
	    "  { address = \"::\"; port = 465; tls = \"implicit\"; },\n"
	    "  { address = \"127.0.0.1\"; port = 2525; tls = \"none\";\n"
	    "    trusted = true; senders = [ \"Trac@Example.org\", "
	    "\"*@lists.example.org\" ]; },\n"
	    "  { address = \"::1\"; port = 2587; tls = \"none\";\n"
	    "    allow_plaintext_auth = true; },\n"
	    "  { address = \"127.0.0.2\"; port = 2588; tls = \"none\";\n"
	    "    allow_plaintext_auth = true; },\n"
	    "  { address = \"::ffff:127.0.0.1\"; port = 2589; tls = \"none\";\n"
	    "    allow_plaintext_auth = true; },\n"
	    "  { address = \"192.0.2.7\"; port = 2526; tls = \"implicit\";\n"
	    "    trusted = true; senders = [ \"app@example.org\" ]; }\n"
	    ");\n"
	    "tls = { certificate = \"%s/cert.pem\"; key = \"%s/key.pem\"; };\n"
	    "auth = { mechanisms = [ \"scram-sha-1\", \"PLAIN\" ];\n"
	    "  sasldb = \"/tmp/users.db\"; };\n"
	    "domains = ( { name = \"Example.org.\"; }, "
	    "{ name = \"lists.example.org\"; } );\n"
	    "senders = ( { login = \"Admin@example.org\"; addresses = "
	    "[ \"*@Example.org\", \"bob@lists.example.org\" ]; },\n"
	    "  { login = \"trac\"; addresses = [ \"trac@example.org\" ]; } );\n"
	    "limits = { message_size = 2147483648; recipients = 10000;\n"
	    "  line_length = 512; header_size = 1024; errors_per_session = 3;\n"
	    "  command_timeout = 10; data_timeout = \"1h\";\n"
	    "  session_lifetime = \"1d\"; connections = 5;\n"
	    "  connections_per_ip = 100000; };\n", tmpdir, tmpdir);
	c = must_load(text);
	free(text);

	assert_string_equal(c->path, path_in("t.conf"));
	assert_string_equal(c->hostname, "relay.example.org");
	assert_string_equal(c->state_dir, "/var/spool/postern-test");
	assert_string_equal(c->user, "postern");

	assert_int_equal(c->nlisten, 7);
	l = &c->listen[0];
	assert_string_equal(l->address, "0.0.0.0");
	assert_int_equal(l->port, 587);
	assert_int_equal(l->tls, LISTEN_TLS_STARTTLS);
	assert_false(l->trusted);
	assert_int_equal(l->nsenders, 0);
	assert_false(l->allow_plaintext_auth);
	assert_int_equal(l->line, 5);
	l = &c->listen[1];
	assert_string_equal(l->address, "::");
	assert_int_equal(l->port, 465);
	assert_int_equal(l->tls, LISTEN_TLS_IMPLICIT);
	l = &c->listen[2];
	assert_int_equal(l->tls, LISTEN_TLS_NONE);
	assert_true(l->trusted);
	assert_int_equal(l->nsenders, 2);
	assert_string_equal(l->senders[0], "trac@example.org");
	assert_string_equal(l->senders[1], "*@lists.example.org");
	assert_int_equal(l->line, 7);
	assert_true(c->listen[3].allow_plaintext_auth);
	assert_true(c->listen[4].allow_plaintext_auth);
	assert_true(c->listen[5].allow_plaintext_auth);
	/* a trusted listener on a public address is the admin's choice */
	assert_true(c->listen[6].trusted);
	assert_int_equal(c->listen[6].tls, LISTEN_TLS_IMPLICIT);

	assert_string_equal(c->tls_certificate, path_in("cert.pem"));
	assert_string_equal(c->tls_key, path_in("key.pem"));

	assert_int_equal(c->nauth_mechanisms, 2);
	assert_string_equal(c->auth_mechanisms[0], "SCRAM-SHA-1");
	assert_string_equal(c->auth_mechanisms[1], "PLAIN");
	assert_string_equal(c->sasldb, "/tmp/users.db");

	assert_int_equal(c->ndomains, 2);
	assert_string_equal(c->domains[0].name, "example.org");
	assert_string_equal(c->domains[1].name, "lists.example.org");

	assert_int_equal(c->nsenders, 2);
	assert_string_equal(c->senders[0].login, "Admin@example.org");
	assert_int_equal(c->senders[0].naddresses, 2);
	assert_string_equal(c->senders[0].addresses[0], "*@example.org");
	assert_string_equal(c->senders[0].addresses[1],
	    "bob@lists.example.org");
	assert_string_equal(c->senders[1].login, "trac");

	assert_true(c->limits.message_size == 2147483648ULL);
	assert_int_equal(c->limits.recipients, 10000);
	assert_int_equal(c->limits.line_length, 512);
	assert_int_equal(c->limits.header_size, 1024);
	assert_int_equal(c->limits.errors_per_session, 3);
	assert_int_equal(c->limits.command_timeout, 10);
	assert_int_equal(c->limits.data_timeout, 3600);
	assert_int_equal(c->limits.session_lifetime, 86400);
	assert_int_equal(c->limits.connections, 5);
	assert_int_equal(c->limits.connections_per_ip, 100000);

	assert_true(config_domain_hosted(c, "example.org"));
	assert_true(config_domain_hosted(c, "EXAMPLE.ORG."));
	assert_true(config_domain_hosted(c, "Lists.Example.Org"));
	assert_false(config_domain_hosted(c, "example.org.."));
	assert_false(config_domain_hosted(c, "sub.example.org"));
	assert_false(config_domain_hosted(c, "xample.org"));
	assert_false(config_domain_hosted(c, "."));
	assert_false(config_domain_hosted(c, ""));
	assert_false(config_domain_hosted(c, NULL));
	config_free(c);
}

/* test_defaults - a minimal file gets every documented default */
static void
test_defaults(void **state)
{
	struct config *c;

	(void)state;
	c = must_load(
	    "hostname = \"relay.example.org\";\n"
	    "domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 25; tls = \"none\"; } );\n");
	assert_string_equal(c->state_dir, "/var/lib/postern");
	assert_null(c->user);
	assert_null(c->tls_certificate);
	assert_null(c->tls_key);
	assert_int_equal(c->tls_min_version, TLS1_2_VERSION);
	/* Mozilla's "intermediate" without DHE: ECDHE and AEAD only */
	assert_string_equal(c->tls_ciphers,
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
	assert_string_equal(c->tls_ciphersuites, "TLS_AES_128_GCM_SHA256:"
	    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
	assert_false(c->listen[0].trusted);
	assert_false(c->listen[0].allow_plaintext_auth);
	assert_int_equal(c->nauth_mechanisms, 3);
	assert_string_equal(c->auth_mechanisms[0], "PLAIN");
	assert_string_equal(c->auth_mechanisms[1], "LOGIN");
	assert_string_equal(c->auth_mechanisms[2], "SCRAM-SHA-256");
	assert_string_equal(c->sasldb, "/var/lib/postern/sasldb2");
	assert_int_equal(c->nsenders, 0);
	assert_string_equal(c->local_socket, "/run/postern/sendmail.sock");
	assert_int_equal(c->nlocal_senders, 0);
	assert_null(c->local_senders);
	assert_true(c->limits.message_size == 26214400);
	assert_int_equal(c->limits.recipients, 100);
	assert_int_equal(c->limits.line_length, 4096);
	assert_int_equal(c->limits.header_size, 262144);
	assert_int_equal(c->limits.errors_per_session, 10);
	assert_int_equal(c->limits.command_timeout, 300);
	assert_int_equal(c->limits.data_timeout, 180);
	assert_int_equal(c->limits.session_lifetime, 3600);
	assert_int_equal(c->limits.connections, 1000);
	assert_int_equal(c->limits.connections_per_ip, 20);
	assert_int_equal(c->stop_timeout, 30);
	assert_int_equal(c->limits.connection_rate_per_ip, 60);
	assert_int_equal(c->limits.auth_failures_per_ip, 5);
	assert_int_equal(c->limits.auth_failures_per_login, 10);
	assert_int_equal(c->limits.auth_failure_window, 900);
	assert_int_equal(c->limits.auth_lockout, 300);
	assert_int_equal(c->limits.auth_lockout_max, 3600);
	assert_int_equal(c->limits.auth_failure_delay, 2);
	assert_int_equal(c->limits.bounces_per_hour, 100);
	assert_true(c->limits.queue_min_free == 104857600);
	/* loopback is exempt by default, nothing else */
	assert_int_equal(c->limits.nexempt, 2);
	assert_true(config_exempt(c, "127.0.0.1"));
	assert_true(config_exempt(c, "127.255.0.9"));
	assert_true(config_exempt(c, "::1"));
	assert_false(config_exempt(c, "128.0.0.1"));
	assert_false(config_exempt(c, "::2"));
	assert_false(config_exempt(c, "192.0.2.1"));
	assert_false(config_exempt(c, "not an address"));
	config_free(c);

	/* networks of any prefix; [ ] exempts nobody */
	c = must_load(HEAD LISTEN5 "limits = { exempt_networks = [ "
	    "\"192.0.2.77/25\", \"2001:db8::/32\", \"198.51.100.7\", "
	    "\"0.0.0.0/0\" ]; };\n");
	assert_int_equal(c->limits.nexempt, 4);
	assert_true(config_exempt(c, "2001:db8:ffff::1"));
	assert_false(config_exempt(c, "2001:db9::1"));
	assert_true(config_exempt(c, "10.1.2.3"));	/* 0.0.0.0/0 */
	config_free(c);
	c = must_load(HEAD LISTEN5 "limits = { exempt_networks = [ "
	    "\"192.0.2.77/25\", \"198.51.100.7\" ]; };\n");
	assert_true(config_exempt(c, "192.0.2.0"));
	assert_true(config_exempt(c, "192.0.2.127"));
	assert_false(config_exempt(c, "192.0.2.128"));
	assert_true(config_exempt(c, "198.51.100.7"));
	assert_false(config_exempt(c, "198.51.100.6"));
	assert_false(config_exempt(c, "127.0.0.1"));
	config_free(c);
	c = must_load(HEAD LISTEN5 "limits = { exempt_networks = [ ]; };\n");
	assert_int_equal(c->limits.nexempt, 0);
	assert_false(config_exempt(c, "127.0.0.1"));
	config_free(c);

	/* listen.tls defaults to starttls, which needs the tls files */
	c = must_load(HEAD LISTEN5);
	assert_int_equal(c->listen[0].tls, LISTEN_TLS_STARTTLS);
	assert_string_equal(c->tls_certificate, path_in("cert.pem"));
	assert_string_equal(c->tls_key, path_in("key.pem"));
	config_free(c);
}

/* test_default_hostname - no hostname: the system's, qualified */
static void
test_default_hostname(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	char name[HOST_NAME_MAX + 1], *dot;

	(void)state;
	assert_int_equal(gethostname(name, sizeof(name)), 0);
	name[sizeof(name) - 1] = '\0';
	if ((dot = strchr(name, '.')) != NULL)
		*dot = '\0';
	c = load_text("domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 25; tls = \"none\"; } );\n",
	    &errs);
	if (c != NULL) {
		/* qualified, and its first label is the short host name */
		assert_non_null(strchr(c->hostname, '.'));
		assert_int_equal(strncasecmp(c->hostname, name, strlen(name)), 0);
		assert_int_equal(c->hostname[strlen(name)], '.');
		config_free(c);
	} else if (errs.n != 1 || !has_error(&errs, 0, path_in("t.conf"), 0,
	    "hostname: the system host name", "set hostname")) {
		dump_errors(&errs);
		fail();
	}
	config_errors_free(&errs);
}

/* test_relative_paths - state_dir from the file's directory, the rest from
   state_dir; a relative config path is made absolute */
static void
test_relative_paths(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	write_file("state/tls/cert.pem", "dummy\n");
	write_file("state/tls/key.pem", "dummy\n");
	write_file("state/db/.keep", "");
	write_file("etc/rel.conf",
	    "hostname = \"relay.example.org\";\n"
	    "state_dir = \"../state/./\";\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 587; } );\n"
	    "tls = { certificate = \"tls/cert.pem\"; key = \"./tls//key.pem\"; };\n"
	    "auth = { sasldb = \"db/sasldb2\"; };\n"
	    "domains = ( { name = \"example.org\"; } );\n");

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	c = config_load("etc/rel.conf", &errs);
	assert_int_equal(chdir(cwd), 0);
	if (c == NULL)
		dump_errors(&errs), fail();
	assert_string_equal(c->path, "etc/rel.conf");
	snprintf(want, sizeof(want), "%s/etc/../state", tmpdir);
	assert_string_equal(c->state_dir, want);
	snprintf(want, sizeof(want), "%s/etc/../state/tls/cert.pem", tmpdir);
	assert_string_equal(c->tls_certificate, want);
	snprintf(want, sizeof(want), "%s/etc/../state/tls/key.pem", tmpdir);
	assert_string_equal(c->tls_key, want);
	snprintf(want, sizeof(want), "%s/etc/../state/db/sasldb2", tmpdir);
	assert_string_equal(c->sasldb, want);
	config_free(c);

	/* no directory part at all: relative to the working directory */
	assert_int_equal(chdir(path_in("etc")), 0);
	c = config_load("rel.conf", &errs);
	assert_int_equal(chdir(cwd), 0);
	if (c == NULL)
		dump_errors(&errs), fail();
	snprintf(want, sizeof(want), "%s/etc/../state", tmpdir);
	assert_string_equal(c->state_dir, want);
	config_free(c);
}

/* test_include - @include is relative to the including file's directory,
   and problems in the included file carry its name */
static void
test_include(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	char *inc;

	(void)state;
	write_file("inc/main.conf", "hostname = \"relay.example.org\";\n"
	    "domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 25; tls = \"none\"; } );\n"
	    "@include \"limits.conf\"\n");
	write_file("inc/limits.conf", "# limits for the test\n"
	    "limits = { recipients = 7; message_size = 2147483648; };\n");
	c = config_load(path_in("inc/main.conf"), &errs);
	if (c == NULL)
		dump_errors(&errs), fail();
	assert_int_equal(c->limits.recipients, 7);
	assert_true(c->limits.message_size == 2147483648ULL);
	config_free(c);

	write_file("inc/limits.conf", "# limits for the test\n"
	    "limits = { recipients = 0; };\n");
	assert_null(config_load(path_in("inc/main.conf"), &errs));
	inc = xasprintf("%s/inc/limits.conf", tmpdir);
	if (errs.n != 1 || !has_error(&errs, 0, inc, 2,
	    "limits.recipients: 0 is out of range", NULL))
		dump_errors(&errs), fail();
	config_errors_free(&errs);

	write_file("inc/limits.conf", "limits = {\n recipients = ; };\n");
	assert_null(config_load(path_in("inc/main.conf"), &errs));
	if (errs.n != 1 || !has_error(&errs, 0, inc, 2, "syntax error", NULL))
		dump_errors(&errs), fail();
	free(inc);
	config_errors_free(&errs);
}

/* test_int64 - message_size above 2^31-1, written with or without L */
static void
test_int64(void **state)
{
	static const struct {
		const char	*value;
		uint64_t	 want;
	} cases[] = {
		{ "2147483648", 2147483648ULL },	/* libconfig 1.5: INT_MIN */
		{ "2147483648L", 2147483648ULL },
		{ "1048576L", 1048576 },
		{ "1024", 1024 },
		{ "0x100000", 1048576 },
	};
	char text[1024];
	struct config *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%slimits = { recipients = 5; "
		    "message_size = %s; };\n", HEAD, LISTEN5, cases[i].value);
		c = must_load(text);
		if (c->limits.message_size != cases[i].want)
			fail_msg("message_size = %s: got %llu", cases[i].value,
			    (unsigned long long)c->limits.message_size);
		assert_int_equal(c->limits.recipients, 5);
		config_free(c);
	}
}

/* test_parse_duration - good and bad durations */
static void
test_parse_duration(void **state)
{
	static const struct {
		const char	*in;
		int		 ret;
		unsigned	 secs;
	} cases[] = {
		{ "300", 0, 300 },
		{ "45s", 0, 45 },
		{ "5m", 0, 300 },
		{ "2h", 0, 7200 },
		{ "1d", 0, 86400 },
		{ "0", 0, 0 },
		{ "007s", 0, 7 },
		{ "4294967295", 0, 4294967295U },
		{ "49710d", 0, 4294944000U },
		{ "", -1, 0 },
		{ "s", -1, 0 },
		{ "-5", -1, 0 },
		{ "+5", -1, 0 },
		{ " 5", -1, 0 },
		{ "5 ", -1, 0 },
		{ "5 m", -1, 0 },
		{ "5x", -1, 0 },
		{ "5M", -1, 0 },
		{ "5ms", -1, 0 },
		{ "1h30m", -1, 0 },
		{ "1.5h", -1, 0 },
		{ "4294967296", -1, 0 },
		{ "49711d", -1, 0 },
		{ "71583m", 0, 4294980U },
		{ "99999999999999999999", -1, 0 },
	};
	unsigned secs;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		secs = 12345;
		ret = config_parse_duration(cases[i].in, &secs);
		if (ret != cases[i].ret ||
		    (ret == 0 && secs != cases[i].secs) ||
		    (ret == -1 && secs != 12345))
			fail_msg("\"%s\": got %d/%u, want %d/%u", cases[i].in,
			    ret, secs, cases[i].ret, cases[i].secs);
	}
	assert_int_equal(config_parse_duration(NULL, &secs), -1);
}

/* test_table - defaults parse and sit within bounds; parents exist */
static void
test_table(void **state)
{
	const struct config_key *keys, *parent;
	size_t n, i, j, plen;
	const char *dot;
	unsigned secs;
	long long v;
	char *end;

	(void)state;
	keys = config_keys(&n);
	assert_true(n > 20);
	for (i = 0; i < n; i++) {
		assert_non_null(keys[i].desc);
		for (j = 0; j < i; j++)
			if (strcmp(keys[i].name, keys[j].name) == 0)
				fail_msg("%s twice", keys[i].name);
		if ((dot = strrchr(keys[i].name, '.')) != NULL) {
			plen = (size_t)(dot - keys[i].name);
			parent = NULL;
			for (j = 0; j < n; j++)
				if (strlen(keys[j].name) == plen &&
				    strncmp(keys[j].name, keys[i].name, plen) == 0)
					parent = &keys[j];
			if (parent == NULL || (parent->type != CONFIG_KEY_GROUP &&
			    parent->type != CONFIG_KEY_LIST))
				fail_msg("%s: no group or list above it",
				    keys[i].name);
		}
		if (keys[i].def == NULL)
			continue;
		switch (keys[i].type) {
		case CONFIG_KEY_INT:
			v = strtoll(keys[i].def, &end, 10);
			if (*end != '\0' || v < keys[i].min || v > keys[i].max)
				fail_msg("%s: bad default", keys[i].name);
			break;
		case CONFIG_KEY_DURATION:
			if (config_parse_duration(keys[i].def, &secs) == -1 ||
			    secs < keys[i].min || secs > keys[i].max)
				fail_msg("%s: bad default", keys[i].name);
			break;
		case CONFIG_KEY_BOOL:
			if (strcmp(keys[i].def, "true") != 0 &&
			    strcmp(keys[i].def, "false") != 0)
				fail_msg("%s: bad default", keys[i].name);
			break;
		case CONFIG_KEY_ENUM:
			if (strstr(keys[i].choices, keys[i].def) == NULL)
				fail_msg("%s: bad default", keys[i].name);
			break;
		default:
			break;
		}
	}
}

/*
 * documented - is key mentioned in the example? Nested keys by their
 * dotted name; top-level ones as "name =" at the start of a line, live or
 * commented out.
 */
static int
documented(const char *text, const char *name)
{
	const char *p, *q;
	size_t len = strlen(name);

	for (p = text; (p = strstr(p, name)) != NULL; p++) {
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_' ||
		    p[-1] == '.'))
			continue;
		q = p + len;
		if (isalnum((unsigned char)*q) || *q == '_')
			continue;
		if (strchr(name, '.') != NULL)
			return 1;
		for (q = p; q > text && q[-1] != '\n'; q--)
			if (q[-1] != ' ' && q[-1] != '\t' && q[-1] != '#')
				break;
		if (q > text && q[-1] != '\n')
			continue;
		q = p + len;
		q += strspn(q, " \t");
		if (*q == '=')
			return 1;
	}
	return 0;
}

/* test_example_documents_every_key - postern.conf.example names them all */
static void
test_example_documents_every_key(void **state)
{
	const struct config_key *keys;
	char *text;
	size_t n, i;
	int missing = 0;

	(void)state;
	if ((text = read_text("config/postern.conf.example")) == NULL)
		fail_msg("config/postern.conf.example: %s (run from the "
		    "repository root)", strerror(errno));
	keys = config_keys(&n);
	for (i = 0; i < n; i++)
		if (!documented(text, keys[i].name)) {
			print_message("# not in postern.conf.example: %s\n",
			    keys[i].name);
			missing++;
		}
	assert_false(documented(text, "no_such_setting"));
	free(text);
	assert_int_equal(missing, 0);
}

/*
 * load_example - postern.conf.example with /etc/postern and
 * /var/lib/postern moved into tmpdir (and its commented-out lines that
 * start with "#<tab>" enabled when uncomment is set)
 */
static struct config *
load_example(int uncomment, struct config_errors *errs)
{
	char *text, *a, *b, *etc, *var;
	struct config *c;
	int n1, n2, n3 = 1;

	if ((text = read_text("config/postern.conf.example")) == NULL)
		fail_msg("config/postern.conf.example: %s", strerror(errno));
	etc = xasprintf("%s/etc/", tmpdir);
	var = xasprintf("state_dir = \"%s/var\";", tmpdir);
	a = replace_all(text, "/etc/postern/", etc, &n1);
	b = replace_all(a, "state_dir = \"/var/lib/postern\";", var, &n2);
	free(a);
	a = b;
	if (uncomment) {
		a = replace_all(b, "\n#\t", "\n\t", &n3);
		free(b);
	}
	/* the example must have had what we moved */
	assert_true(n1 >= 3);
	assert_int_equal(n2, 1);
	assert_true(n3 > 0);
	write_file("etc/tls/fullchain.pem", "dummy\n");
	write_file("etc/tls/key.pem", "dummy\n");
	write_file("example.conf", a);
	c = config_load(path_in("example.conf"), errs);
	free(text);
	free(a);
	free(etc);
	free(var);
	return c;
}

/* test_example_loads - the example as shipped is a valid configuration */
static void
test_example_loads(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	size_t i, d;

	(void)state;
	if ((c = load_example(0, &errs)) == NULL)
		dump_errors(&errs), fail();
	assert_string_equal(c->hostname, "relay.example.org");
	assert_string_equal(c->user, "postern");
	assert_int_equal(c->nlisten, 4);
	for (i = 0; i < c->nlisten; i++) {
		assert_true(strcmp(c->listen[i].address, "0.0.0.0") == 0 ||
		    strcmp(c->listen[i].address, "::") == 0);
		assert_int_equal(c->listen[i].port, i < 2 ? 587 : 465);
		assert_int_equal(c->listen[i].tls, i < 2 ?
		    LISTEN_TLS_STARTTLS : LISTEN_TLS_IMPLICIT);
		assert_false(c->listen[i].trusted);
	}
	assert_string_equal(c->tls_certificate, path_in("etc/tls/fullchain.pem"));
	assert_string_equal(c->tls_key, path_in("etc/tls/key.pem"));
	assert_string_equal(c->sasldb, path_in("etc/sasldb2"));
	assert_string_equal(c->state_dir, path_in("var"));
	assert_int_equal(c->ndomains, 1);
	assert_string_equal(c->domains[0].name, "example.org");
	assert_int_equal(c->nsenders, 2);
	assert_string_equal(c->local_socket, "/run/postern/sendmail.sock");
	/* local_senders: none until the admin grants them */
	assert_int_equal(c->nlocal_senders, 0);
	/* the values it shows in limits are the defaults */
	assert_true(c->limits.message_size == 26214400);
	assert_int_equal(c->limits.recipients, 100);
	assert_int_equal(c->limits.command_timeout, 300);
	assert_int_equal(c->limits.data_timeout, 180);
	assert_int_equal(c->limits.session_lifetime, 3600);
	assert_int_equal(c->limits.connections_per_ip, 20);
	config_free(c);

	/* and its commented-out trusted listener works when enabled */
	if ((c = load_example(1, &errs)) == NULL)
		dump_errors(&errs), fail();
	assert_int_equal(c->nlisten, 5);
	for (i = d = 0; i < c->nlisten; i++)
		if (c->listen[i].trusted) {
			assert_string_equal(c->listen[i].address, "127.0.0.1");
			assert_int_equal(c->listen[i].port, 2525);
			assert_int_equal(c->listen[i].nsenders, 1);
			d++;
		}
	assert_int_equal(d, 1);
	/* and so do its commented-out local_senders entries */
	assert_int_equal(c->nlocal_senders, 2);
	assert_string_equal(c->local_senders[0].user, "www-data");
	assert_string_equal(c->local_senders[0].addresses[0],
	    "trac@example.org");
	config_free(c);
}

/* test_relay_settings - every relay setting reaches struct relay_config;
   the smarthost password is read from its file, and only if private */
static void
test_relay_settings(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	struct relay_config *r;
	char want[PATH_MAX + 32];

	(void)state;
	c = must_load(HEAD LISTEN5);
	r = &c->relay;
	assert_int_equal(r->mode, RELAY_MX);
	assert_int_equal(r->port, 25);
	assert_int_equal(r->tls, RELAY_TLS_OPPORTUNISTIC);
	assert_int_equal(r->families, CONFIG_INET4 | CONFIG_INET6);
	assert_int_equal(r->retry_first, 300);
	assert_int_equal(r->retry_max, 3600);
	assert_int_equal(r->expire, 5 * 86400);
	assert_int_equal(r->connections_per_host, 5);
	assert_int_equal(r->pause, 0);
	assert_null(r->smarthost.host);
	assert_int_equal(r->nroutes, 0);
	assert_null(c->domains[0].bounce_address);
	snprintf(want, sizeof(want), "%s/mail", tmpdir);
	assert_string_equal(r->directory, want);
	config_free(c);

	write_file("up.pw", "s3cret word\nignored\n");
	assert_int_equal(chmod(path_in("up.pw"), 0600), 0);
	c = must_load("hostname = \"relay.example.org\";\nstate_dir = \".\";\n"
	    "tls = { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
	    "domains = ( { name = \"example.org\"; bounce_address = "
	    "\"Bounces@Mail.Example.ORG\"; } );\n" LISTEN5);
	assert_string_equal(c->domains[0].bounce_address,
	    "Bounces@mail.example.org");
	config_free(c);
	c = must_load(HEAD LISTEN5 "relay = { mode = \"smarthost\"; "
	    "ip = \"ipv4\"; tls = \"require\"; port = 2525; pause = \"2s\";\n"
	    "  addresses = [ \"192.0.2.7\", \"2001:db8::7\" ];\n"
	    "  smarthost = { host = \"Smtp.Provider.Example\"; tls = "
	    "\"implicit\"; port = 465; verify = false; login = \"me@x\"; "
	    "password_file = \"up.pw\"; spf = \"include:_spf.p.example\"; "
	    "};\n"
	    "  routes = ( { domain = \"lists.example.org\"; next_hop = "
	    "\"[2001:db8::5]:2526\"; tls = \"none\"; },\n"
	    "    { domain = \"b.example\"; next_hop = \"mx.b.example\"; } );"
	    " };\n");
	r = &c->relay;
	assert_int_equal(r->mode, RELAY_SMARTHOST);
	assert_int_equal(r->families, CONFIG_INET4);
	assert_int_equal(r->tls, RELAY_TLS_REQUIRE);
	assert_int_equal(r->port, 2525);
	assert_int_equal(r->pause, 2);
	assert_int_equal(r->naddresses, 2);
	assert_string_equal(r->addresses[1], "2001:db8::7");
	assert_string_equal(r->smarthost.host, "Smtp.Provider.Example");
	assert_int_equal(r->smarthost.port, 465);
	assert_int_equal(r->smarthost.tls, RELAY_TLS_IMPLICIT);
	assert_false(r->smarthost.verify);
	assert_string_equal(r->smarthost.login, "me@x");
	assert_string_equal(r->smarthost.password, "s3cret word");
	assert_string_equal(r->smarthost.spf, "include:_spf.p.example");
	assert_int_equal(r->nroutes, 2);
	assert_string_equal(r->routes[0].domain, "lists.example.org");
	assert_string_equal(r->routes[0].host, "2001:db8::5");
	assert_int_equal(r->routes[0].port, 2526);
	assert_string_equal(r->routes[1].host, "mx.b.example");
	assert_int_equal(r->routes[1].port, 0);
	assert_int_equal(r->routes[0].tls, RELAY_TLS_NONE);
	assert_int_equal(r->routes[1].tls, RELAY_TLS_REQUIRE);	/* relay.tls */
	config_free(c);

	/* a password file others may read is refused, naming it */
	assert_int_equal(chmod(path_in("up.pw"), 0640), 0);
	c = load_text(HEAD LISTEN5 "relay = { smarthost = { host = "
	    "\"up.example\"; login = \"me\"; password_file = \"up.pw\"; }; "
	    "};\n", &errs);
	assert_null(c);
	assert_true(has_error(&errs, 0, path_in("t.conf"), 6,
	    "relay.smarthost.password_file:", "is accessible by others (mode "
	    "0640)"));
	config_errors_free(&errs);
}

/* test_metrics_settings - no group, no listener; the address defaults
   to loopback; IPv6 is fine */
static void
test_metrics_settings(void **state)
{
	struct config *c;

	(void)state;
	c = must_load(HEAD LISTEN5);
	assert_int_equal(c->metrics.port, 0);
	assert_null(c->metrics.address);
	config_free(c);
	c = must_load(HEAD LISTEN5 "metrics = { port = 9325; };\n");
	assert_int_equal(c->metrics.port, 9325);
	assert_string_equal(c->metrics.address, "127.0.0.1");
	config_free(c);
	c = must_load(HEAD LISTEN5 "metrics = { address = \"::1\"; "
	    "port = 1; };\n");
	assert_int_equal(c->metrics.port, 1);
	assert_string_equal(c->metrics.address, "::1");
	config_free(c);
}

/* test_dev_conf - config/dev.conf, in a copy of the repository layout */
static void
test_dev_conf(void **state)
{
	struct config_errors errs = { NULL, 0 };
	struct config *c;
	char *text, want[PATH_MAX + 64];

	(void)state;
	if ((text = read_text("config/dev.conf")) == NULL)
		fail_msg("config/dev.conf: %s", strerror(errno));
	write_file("repo/config/dev.conf", text);
	free(text);
	write_file("repo/var/tls/cert.pem", "dummy\n");
	write_file("repo/var/tls/key.pem", "dummy\n");
	if ((c = config_load(path_in("repo/config/dev.conf"), &errs)) == NULL)
		dump_errors(&errs), fail();
	assert_string_equal(c->hostname, "relay.example.test");
	snprintf(want, sizeof(want), "%s/repo/config/../var", tmpdir);
	assert_string_equal(c->state_dir, want);
	snprintf(want, sizeof(want), "%s/repo/config/../var/tls/cert.pem",
	    tmpdir);
	assert_string_equal(c->tls_certificate, want);
	snprintf(want, sizeof(want), "%s/repo/config/../var/sasldb2", tmpdir);
	assert_string_equal(c->sasldb, want);
	assert_int_equal(c->nlisten, 3);
	assert_int_equal(c->listen[0].port, 5587);
	assert_int_equal(c->listen[0].tls, LISTEN_TLS_STARTTLS);
	assert_int_equal(c->listen[1].port, 5465);
	assert_int_equal(c->listen[1].tls, LISTEN_TLS_IMPLICIT);
	assert_int_equal(c->listen[2].port, 5525);
	assert_int_equal(c->listen[2].tls, LISTEN_TLS_NONE);
	assert_true(c->listen[2].trusted);
	assert_string_equal(c->listen[2].senders[0], "app@example.test");
	assert_string_equal(c->domains[0].name, "example.test");
	assert_string_equal(c->senders[0].login, "admin@example.test");
	assert_string_equal(c->senders[0].addresses[0], "*@example.test");
	config_free(c);
}

/* test_local_senders - local_socket and local_senders as configured */
static void
test_local_senders(void **state)
{
	struct config *c;
	char want[PATH_MAX];

	(void)state;
	c = must_load(
	    "hostname = \"relay.example.org\";\n"
	    "state_dir = \"var\";\n"
	    "domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 25; tls = \"none\"; } );\n"
	    "local_socket = \"run/sendmail.sock\";\n"
	    "local_senders = (\n"
	    "  { user = \"www-data\"; addresses = [ \"Trac@Example.ORG\",\n"
	    "    \"*@example.org\" ]; },\n"
	    "  { user = \"root\"; addresses = [ \"root@example.org\" ]; } );\n"
	    "senders = ( { login = \"www-data\"; addresses = "
	    "[ \"x@example.org\" ]; } );\n");
	/* relative: to state_dir, like every other path */
	snprintf(want, sizeof(want), "%s/var/run/sendmail.sock", tmpdir);
	assert_string_equal(c->local_socket, want);
	assert_int_equal(c->nlocal_senders, 2);
	assert_string_equal(c->local_senders[0].user, "www-data");
	assert_int_equal(c->local_senders[0].naddresses, 2);
	assert_string_equal(c->local_senders[0].addresses[0],
	    "trac@example.org");
	assert_string_equal(c->local_senders[0].addresses[1], "*@example.org");
	assert_string_equal(c->local_senders[1].user, "root");
	assert_int_equal(c->local_senders[1].naddresses, 1);
	assert_string_equal(c->local_senders[1].addresses[0],
	    "root@example.org");
	/* a SASL login of the same name is a separate grant */
	assert_int_equal(c->nsenders, 1);
	assert_string_equal(c->senders[0].login, "www-data");
	assert_string_equal(c->senders[0].addresses[0], "x@example.org");
	assert_int_equal(c->senders[0].messages_per_hour, -1);
	config_free(c);

	c = must_load(
	    "hostname = \"relay.example.org\";\n"
	    "domains = ( { name = \"example.org\"; } );\n"
	    "listen = ( { address = \"127.0.0.1\"; port = 25; tls = \"none\"; } );\n"
	    "local_socket = \"/tmp/x/./postern.sock\";\n");
	assert_string_equal(c->local_socket, "/tmp/x/postern.sock");
	config_free(c);
}

/* rm_entry - nftw callback removing one entry */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* setup - the temp directory with a dummy certificate and key */
static int
setup(void **state)
{
	(void)state;
	umask(077);	/* private keys must not be readable by others */
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	write_file("cert.pem", "dummy certificate\n");
	write_file("key.pem", "dummy key\n");
	return 0;
}

/* teardown - remove the temp directory unless POSTERN_KEEP_TMP is set */
static int
teardown(void **state)
{
	(void)state;
	if (getenv("POSTERN_KEEP_TMP")) {
		fprintf(stderr, "# kept %s\n", tmpdir);
		return 0;
	}
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_full),
	cmocka_unit_test(test_defaults),
	cmocka_unit_test(test_local_senders),
	cmocka_unit_test(test_default_hostname),
	cmocka_unit_test(test_relative_paths),
	cmocka_unit_test(test_include),
	cmocka_unit_test(test_int64),
	cmocka_unit_test(test_parse_duration),
	cmocka_unit_test(test_duplicate_domain),
	cmocka_unit_test(test_all_errors_collected),
	cmocka_unit_test(test_missing_file),
	cmocka_unit_test(test_loose_tls_key),
	cmocka_unit_test(test_tls_policy),
	cmocka_unit_test(test_table),
	cmocka_unit_test(test_example_documents_every_key),
	cmocka_unit_test(test_example_loads),
	cmocka_unit_test(test_dev_conf),
	cmocka_unit_test(test_relay_settings),
	cmocka_unit_test(test_metrics_settings),
};

#define NFIXED	(sizeof(fixed_tests) / sizeof(fixed_tests[0]))

/* main - the fixed tests, then one test per row of error_cases */
int
main(void)
{
	static struct CMUnitTest tests[NFIXED + NERROR_CASES];
	static char names[NERROR_CASES][128];
	size_t i;

	for (i = 0; i < NFIXED; i++)
		tests[i] = fixed_tests[i];
	for (i = 0; i < NERROR_CASES; i++) {
		snprintf(names[i], sizeof(names[i]), "error: %s",
		    error_cases[i].name);
		tests[NFIXED + i].name = names[i];
		tests[NFIXED + i].test_func = test_error_case;
		tests[NFIXED + i].initial_state = (void *)&error_cases[i];
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
