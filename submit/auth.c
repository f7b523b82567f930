/*
 * auth - SMTP AUTH through the Cyrus SASL server API; see auth.h.
 *
 * What libsasl2 2.1.28 (Debian 12) does with "alice@example.org", checked
 * by tests/unit/test_auth.c for PLAIN, LOGIN and SCRAM-SHA-256:
 *  - The server context is created with user_realm NULL and serverFQDN
 *    set to the configured hostname. The INTERNAL canon_user plugin then
 *    leaves an authcid containing '@' as it is (it would append
 *    "@user_realm" only to a name without '@' and a non-NULL user_realm),
 *    so SASL_USERNAME comes back exactly as the client spelled it.
 *  - The sasldb auxprop plugin splits that name at the '@' into
 *    user "alice" and realm "example.org", which is the key that
 *    `saslpasswd2 -u example.org alice` writes. A name without '@' uses
 *    the serverFQDN (our hostname) as realm, as saslpasswd2 without -u
 *    uses the machine's name.
 *  - sasl_setpass() and sasl_auxprop_store() do no canonicalisation:
 *    sasldb splits the given "alice@example.org" the same way, so
 *    auth_user_set() passes the login unchanged.
 *  - PLAIN with an authzid different from the authcid is refused by
 *    libsasl2's default proxy policy: nobody authenticates as someone
 *    else.
 *
 * No SASL configuration file is ever read: the SASL_CB_VERIFYFILE
 * callback refuses every SASL_VRFY_CONF file (postern.conf in the SASL
 * configuration path, a "plugin_list" file), so all options come from
 * auth_getopt() or libsasl2's built-in defaults. Plugins are loaded from
 * libsasl2's default directory.
 *
 * SMTP has no room for "additional data with success" (RFC 4954 4), so
 * SASL_SUCCESS_DATA is not set: SCRAM's server-final message goes out as
 * one more 334 challenge, the client answers with an empty line, and
 * only then does auth_step() return AUTH_OK.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "submit/auth.h"

#define AUTH_SERVICE		"smtp"		/* RFC 4954 4: GSSAPI name */
#define AUTH_APPNAME		"postern"
#define AUTH_MECH_MAX		20		/* RFC 4422 3.1 */
#define AUTH_LOGIN_MAX		255
#define AUTH_PASSWORD_MAX	1024
#define AUTH_LIST_MAX		(16 * 1024 * 1024)	/* listusers output */
#define AUTH_LISTUSERS		"/usr/sbin/sasldblistusers2"

/* Mechanisms never offered, whatever the configuration says. */
static const char *auth_banned[] = {
	"CRAM-MD5",	/* needs plaintext-equivalent secrets, obsolete */
	"DIGEST-MD5",	/* RFC 6331: historic */
	"ANONYMOUS",	/* would let anyone relay */
	"EXTERNAL",	/* no external identity is ever set */
	NULL,
};

/* Option values handed to libsasl2 through SASL_CB_GETOPT. */
struct auth_opts {
	char	*sasldb;
	char	*mechlist;	/* space separated, filtered */
	char	*hostname;	/* serverFQDN and default realm */
};

enum auth_state {
	AUTH_IDLE,	/* fresh SASL context, nothing started */
	AUTH_STEPPING,	/* exchange under way: auth_step is valid */
	AUTH_ENDED,	/* exchange failed or was cancelled: reset first */
	AUTH_DONE,	/* authenticated */
};

struct auth_session {
	sasl_conn_t	*conn;
	char		*local;
	char		*remote;
	char		*mechs;		/* what auth_mechanisms() returns */
	enum auth_state	 state;
	char		*challenge;	/* base64, last AUTH_CONTINUE */
	char		*login;		/* after AUTH_OK; the one tried after
					   AUTH_FAIL, if SASL knows it */
	bool		 login_user;	/* LOGIN: the user name is next */
};

static struct auth_opts auth_global;
static int auth_sasl_ready;	/* sasl_server_init succeeded */

static int	auth_getopt(void *, const char *, const char *,
		    const char **, unsigned *);
static int	auth_log(void *, int, const char *);
static int	auth_verifyfile(void *, const char *, sasl_verify_type_t);

/* sasl_callback_t.proc is int (*)(void); go through void (*)(void) */
#define AUTH_CB(f)	((int (*)(void))(void (*)(void))(f))

/* Callbacks for every server context; they must live as long as SASL. */
static const sasl_callback_t auth_callbacks[] = {
	{ SASL_CB_GETOPT, AUTH_CB(auth_getopt), &auth_global },
	{ SASL_CB_LOG, AUTH_CB(auth_log), NULL },
	{ SASL_CB_VERIFYFILE, AUTH_CB(auth_verifyfile), NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

/* auth_getopt - the only source of SASL options (no sasl2 .conf file) */
static int
auth_getopt(void *context, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	const struct auth_opts *o = context;
	const char *v = NULL;

	(void)plugin;
	if (o == NULL || option == NULL || result == NULL)
		return SASL_BADPARAM;
	if (strcmp(option, "sasldb_path") == 0)
		v = o->sasldb;
	else if (strcmp(option, "pwcheck_method") == 0)
		v = "auxprop";
	else if (strcmp(option, "auxprop_plugin") == 0)
		v = "sasldb";
	else if (strcmp(option, "mech_list") == 0)
		v = o->mechlist ? o->mechlist : "";	/* none, not all */
	else if (strcmp(option, "auto_transition") == 0)
		v = "no";
	else if (strcmp(option, "canon_user_plugin") == 0)
		v = "INTERNAL";
	if (v == NULL)
		return SASL_FAIL;	/* libsasl2's built-in default */
	*result = v;
	if (len != NULL)
		*len = (unsigned)strlen(v);
	return SASL_OK;
}

/* auth_log - SASL's messages; traces (which may hold secrets) dropped */
static int
auth_log(void *context, int level, const char *message)
{
	char esc[512];

	(void)context;
	if (message == NULL)
		return SASL_OK;
	switch (level) {
	case SASL_LOG_ERR:
	case SASL_LOG_WARN:
		log_warnx("sasl: %s",
		    log_escape(message, (size_t)-1, esc, sizeof(esc)));
		break;
	case SASL_LOG_FAIL:
	case SASL_LOG_NOTE:
	case SASL_LOG_DEBUG:
		log_debug("sasl: %s",
		    log_escape(message, (size_t)-1, esc, sizeof(esc)));
		break;
	default:	/* SASL_LOG_TRACE, SASL_LOG_PASS: payloads */
		break;
	}
	return SASL_OK;
}

/* auth_verifyfile - never read a SASL configuration file */
static int
auth_verifyfile(void *context, const char *file, sasl_verify_type_t type)
{
	(void)context;
	(void)file;
	if (type == SASL_VRFY_CONF)
		return SASL_CONTINUE;	/* "skip this file" */
	return SASL_OK;
}

/* auth_mech_banned - true for the mechanisms we never offer */
static int
auth_mech_banned(const char *mech)
{
	size_t i;

	for (i = 0; auth_banned[i] != NULL; i++)
		if (strcasecmp(mech, auth_banned[i]) == 0)
			return 1;
	return 0;
}

/* auth_mech_valid - RFC 4422 3.1 mechanism name (upper case if upper) */
static int
auth_mech_valid(const char *mech, int upper)
{
	size_t n;

	for (n = 0; mech[n] != '\0'; n++)
		if (!((mech[n] >= 'A' && mech[n] <= 'Z') ||
		    (!upper && mech[n] >= 'a' && mech[n] <= 'z') ||
		    (mech[n] >= '0' && mech[n] <= '9') ||
		    mech[n] == '-' || mech[n] == '_'))
			return 0;
	return n > 0 && n <= AUTH_MECH_MAX;
}

/* auth_list_has - true if the space-separated list holds word */
static int
auth_list_has(const char *list, const char *word)
{
	size_t n = strlen(word);
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, " ");

		if (len == n && strncasecmp(p, word, n) == 0)
			return 1;
		p += len;
		p += strspn(p, " ");
	}
	return 0;
}

/* auth_mechlist - the configured mechanisms, filtered, space separated */
static char *
auth_mechlist(const struct config *cfg, const char **err)
{
	struct buf b;
	size_t i;

	buf_init(&b, 4096);
	for (i = 0; i < cfg->nauth_mechanisms; i++) {
		const char *m = cfg->auth_mechanisms[i];

		if (m == NULL || !auth_mech_valid(m, 1)) {
			*err = "invalid SASL mechanism name";
			buf_free(&b);
			return NULL;
		}
		if (auth_mech_banned(m) || (b.len && auth_list_has(b.data, m)))
			continue;
		if ((b.len && buf_puts(&b, " ") == -1) ||
		    buf_puts(&b, m) == -1) {
			*err = "too many SASL mechanisms";
			buf_free(&b);
			return NULL;
		}
	}
	if (b.len == 0) {
		*err = "no usable SASL mechanism configured";
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* auth_opts_fill - option strings for one configuration */
static int
auth_opts_fill(struct auth_opts *o, const struct config *cfg,
    const char **err)
{
	memset(o, 0, sizeof(*o));
	if (cfg->sasldb == NULL || cfg->sasldb[0] != '/') {
		*err = "auth sasldb must be an absolute path";
		return -1;
	}
	if (cfg->hostname == NULL || cfg->hostname[0] == '\0') {
		*err = "hostname is not set";
		return -1;
	}
	if ((o->mechlist = auth_mechlist(cfg, err)) == NULL)
		return -1;
	o->sasldb = xstrdup(cfg->sasldb);
	o->hostname = xstrdup(cfg->hostname);
	return 0;
}

/* auth_opts_clear - release option strings */
static void
auth_opts_clear(struct auth_opts *o)
{
	free(o->sasldb);
	free(o->mechlist);
	free(o->hostname);
	memset(o, 0, sizeof(*o));
}

/* auth_check_mechs - every mechanism to offer must be loaded */
static int
auth_check_mechs(const char *mechlist, const char **err)
{
	const char **all;
	const char *p = mechlist;
	char mech[AUTH_MECH_MAX + 1];

	if ((all = sasl_global_listmech()) == NULL) {
		*err = "libsasl2 lists no mechanisms";
		return -1;
	}
	while (*p != '\0') {
		size_t len = strcspn(p, " "), i;

		if (len > AUTH_MECH_MAX)
			log_panic("auth: mechanism name too long");
		memcpy(mech, p, len);
		mech[len] = '\0';
		for (i = 0; all[i] != NULL; i++)
			if (strcasecmp(all[i], mech) == 0)
				break;
		if (all[i] == NULL) {
			log_warnx("auth: SASL mechanism %s is not available "
			    "(is libsasl2-modules installed?)", mech);
			*err = "a configured SASL mechanism is not available";
			return -1;
		}
		p += len;
		p += strspn(p, " ");
	}
	return 0;
}

/* auth_init - SASL server setup; a later call replaces the options */
int
auth_init(const struct config *cfg, const char **err)
{
	struct auth_opts o;
	int r;

	if (auth_opts_fill(&o, cfg, err) == -1)
		return -1;
	if (auth_sasl_ready) {
		/* reload: check first, then swap; nothing keeps old strings */
		if (auth_check_mechs(o.mechlist, err) == -1) {
			auth_opts_clear(&o);
			return -1;
		}
		auth_opts_clear(&auth_global);
		auth_global = o;
	} else {
		auth_global = o;	/* sasl_server_init reads it */
		if ((r = sasl_server_init(auth_callbacks, AUTH_APPNAME)) !=
		    SASL_OK) {
			log_warnx("auth: sasl_server_init: %s",
			    sasl_errstring(r, NULL, NULL));
			auth_opts_clear(&auth_global);
			*err = "cannot initialise Cyrus SASL";
			return -1;
		}
		auth_sasl_ready = 1;
		if (auth_check_mechs(auth_global.mechlist, err) == -1) {
			auth_opts_clear(&auth_global);
			return -1;
		}
	}
	return 0;
}

/* auth_conn_new - a SASL server context with our security properties */
static sasl_conn_t *
auth_conn_new(const char *hostname, const char *local, const char *remote,
    const sasl_callback_t *cb)
{
	sasl_security_properties_t sp;
	sasl_conn_t *conn = NULL;
	int r;

	r = sasl_server_new(AUTH_SERVICE, hostname, NULL, local, remote, cb,
	    0, &conn);
	if (r != SASL_OK) {
		log_warnx("auth: sasl_server_new: %s",
		    sasl_errstring(r, NULL, NULL));
		return NULL;
	}
	/*
	 * AUTH is only offered after TLS or on a loopback listener the admin
	 * allowed, so plaintext mechanisms are fine; no SASL security layer.
	 */
	memset(&sp, 0, sizeof(sp));
	sp.min_ssf = 0;
	sp.max_ssf = 0;
	sp.maxbufsize = 0;
	sp.security_flags = SASL_SEC_NOANONYMOUS;
	if ((r = sasl_setprop(conn, SASL_SEC_PROPS, &sp)) != SASL_OK) {
		log_warnx("auth: sasl_setprop: %s",
		    sasl_errdetail(conn));
		sasl_dispose(&conn);
		return NULL;
	}
	return conn;
}

/*
 * auth_offered - what the library lists for this context, kept only if
 * it is also in our filtered mech_list (belt and braces); new memory.
 */
static char *
auth_offered(sasl_conn_t *conn)
{
	struct buf b;
	const char *list, *p;
	char mech[AUTH_MECH_MAX + 1];
	unsigned len;
	int count;

	if (sasl_listmech(conn, NULL, "", " ", "", &list, &len, &count) !=
	    SASL_OK) {
		log_warnx("auth: sasl_listmech: %s", sasl_errdetail(conn));
		list = "";
	}
	buf_init(&b, 4096);
	if (buf_puts(&b, "") == -1)
		log_panic("auth: mechanism list");
	for (p = list; *p != '\0'; p += strspn(p, " ")) {
		size_t n = strcspn(p, " ");

		if (n > 0 && n <= AUTH_MECH_MAX) {
			memcpy(mech, p, n);
			mech[n] = '\0';
			if (!auth_mech_banned(mech) &&
			    auth_list_has(auth_global.mechlist, mech) &&
			    !auth_list_has(b.data, mech) &&
			    ((b.len && buf_puts(&b, " ") == -1) ||
			    buf_puts(&b, mech) == -1))
				log_panic("auth: mechanism list");
		}
		p += n;
	}
	return b.data;
}

/* auth_new - a session with its own SASL server context */
struct auth_session *
auth_new(const char *local, const char *remote)
{
	struct auth_session *as;

	if (!auth_sasl_ready || auth_global.mechlist == NULL) {
		log_warnx("auth: auth_new before auth_init");
		return NULL;
	}
	as = xcalloc(1, sizeof(*as));
	as->local = local ? xstrdup(local) : NULL;
	as->remote = remote ? xstrdup(remote) : NULL;
	if ((as->conn = auth_conn_new(auth_global.hostname, as->local,
	    as->remote, NULL)) == NULL) {
		auth_free(as);
		return NULL;
	}
	as->mechs = auth_offered(as->conn);
	as->state = AUTH_IDLE;
	return as;
}

/* auth_free - dispose of the SASL context and the session */
void
auth_free(struct auth_session *as)
{
	if (as == NULL)
		return;
	if (as->conn != NULL)
		sasl_dispose(&as->conn);
	free(as->local);
	free(as->remote);
	free(as->mechs);
	free(as->challenge);
	free(as->login);
	free(as);
}

/* auth_attempted - the login a failed exchange tried, or NULL */
const char *
auth_attempted(const struct auth_session *as)
{
	return as != NULL && as->state == AUTH_ENDED ? as->login : NULL;
}

/* auth_mechanisms - what to advertise after "AUTH" in EHLO */
const char *
auth_mechanisms(struct auth_session *as)
{
	return as->mechs;
}

/* auth_reset - fresh SASL context after a failed or cancelled exchange */
static int
auth_reset(struct auth_session *as)
{
	if (as->conn != NULL)
		sasl_dispose(&as->conn);
	free(as->challenge);
	as->challenge = NULL;
	free(as->login);
	as->login = NULL;
	as->conn = auth_conn_new(auth_global.hostname, as->local, as->remote,
	    NULL);
	as->state = as->conn ? AUTH_IDLE : AUTH_ENDED;
	return as->conn ? 0 : -1;
}

/* auth_decode - see auth.h */
int
auth_decode(const char *in, char **out, size_t *outsz, unsigned *outlen)
{
	size_t inlen;

	inlen = strnlen(in, AUTH_LINE_MAX + 1);
	if (inlen > AUTH_LINE_MAX)
		return -1;
	*outsz = inlen / 4 * 3 + 4;
	*out = xmalloc(*outsz);
	(*out)[0] = '\0';
	*outlen = 0;
	if (inlen == 0)
		return 0;
	if (sasl_decode64(in, (unsigned)inlen, *out, (unsigned)*outsz,
	    outlen) != SASL_OK) {
		freezero_(*out, *outsz);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* auth_failure - our result for a SASL result other than OK/CONTINUE */
static enum auth_result
auth_failure(int r, int starting)
{
	switch (r) {
	case SASL_NOMECH:
	case SASL_TOOWEAK:
	case SASL_ENCRYPT:
		return starting ? AUTH_NOMECH : AUTH_FAIL;
	case SASL_BADAUTH:
	case SASL_NOUSER:
	case SASL_NOAUTHZ:
	case SASL_NOVERIFY:
	case SASL_DISABLED:
	case SASL_EXPIRED:
	case SASL_TRANS:
		return AUTH_FAIL;
	case SASL_BADPROT:
	case SASL_BADPARAM:
	case SASL_BADSERV:
		return AUTH_BAD;
	case SASL_FAIL:
	case SASL_NOMEM:
	case SASL_BUFOVER:
	case SASL_UNAVAIL:
	case SASL_TRYAGAIN:
	case SASL_NOTINIT:
	default:
		log_warnx("auth: SASL error: %s",
		    sasl_errstring(r, NULL, NULL));
		return AUTH_TEMP;
	}
}

/* auth_outcome - turn a SASL result into ours; set challenge or login */
static enum auth_result
auth_outcome(struct auth_session *as, int r, int starting, const char *out,
    unsigned outlen, const char **challenge, const char **login)
{
	const void *user = NULL;
	enum auth_result res;
	size_t sz;
	unsigned n;

	switch (r) {
	case SASL_CONTINUE:
		if (out == NULL)
			outlen = 0;
		sz = ((size_t)outlen + 2) / 3 * 4 + 1;
		free(as->challenge);
		as->challenge = xmalloc(sz);
		as->challenge[0] = '\0';
		if (outlen > 0 && sasl_encode64(out, outlen, as->challenge,
		    (unsigned)sz, &n) != SASL_OK) {
			log_warnx("auth: cannot encode challenge");
			as->state = AUTH_ENDED;
			return AUTH_TEMP;
		}
		as->state = AUTH_STEPPING;
		*challenge = as->challenge;
		return AUTH_CONTINUE;
	case SASL_OK:
		if (sasl_getprop(as->conn, SASL_USERNAME, &user) != SASL_OK ||
		    user == NULL || *(const char *)user == '\0') {
			log_warnx("auth: no SASL username after success");
			as->state = AUTH_ENDED;
			return AUTH_TEMP;
		}
		free(as->login);
		as->login = xstrdup(user);
		as->state = AUTH_DONE;
		*login = as->login;
		return AUTH_OK;
	default:
		break;
	}
	as->state = AUTH_ENDED;
	log_debug("auth: SASL result %d: %s", r, sasl_errstring(r, NULL, NULL));
	if ((res = auth_failure(r, starting)) == AUTH_FAIL &&
	    sasl_getprop(as->conn, SASL_USERNAME, &user) == SASL_OK &&
	    user != NULL && *(const char *)user != '\0') {
		/* who was tried, for the lockout per login (guard.h) */
		free(as->login);
		as->login = xstrdup(user);
	}
	return res;
}

/* auth_login_name_ok - a LOGIN user name SASL may see: not empty, no
   control characters, no space at either end (see auth_start) */
static bool
auth_login_name_ok(const char *name, unsigned len)
{
	unsigned i;

	if (len == 0 || name[0] == ' ' || name[len - 1] == ' ')
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 ||
		    (unsigned char)name[i] == 0x7f)
			return false;
	return true;
}

/* auth_start - begin a mechanism, with an optional initial response */
enum auth_result
auth_start(struct auth_session *as, const char *mech, const char *initial,
    const char **challenge, const char **login)
{
	const char *dummy, *out = NULL;
	char *in = NULL, upper[AUTH_MECH_MAX + 1];
	size_t insz = 0, i;
	unsigned inlen = 0, outlen = 0;
	int r;

	if (challenge == NULL)
		challenge = &dummy;
	if (login == NULL)
		login = &dummy;
	*challenge = NULL;
	*login = NULL;
	if (as->state == AUTH_DONE)
		return AUTH_BAD;	/* RFC 4954: no AUTH after AUTH */
	if (as->state != AUTH_IDLE && auth_reset(as) == -1)
		return AUTH_TEMP;
	/* clients may spell it in lower case; SASL gets upper case */
	if (mech == NULL || !auth_mech_valid(mech, 0))
		return AUTH_NOMECH;
	for (i = 0; mech[i] != '\0'; i++)
		upper[i] = (char)toupper((unsigned char)mech[i]);
	upper[i] = '\0';
	if (auth_mech_banned(upper) || !auth_list_has(as->mechs, upper))
		return AUTH_NOMECH;
	if (initial != NULL && strcmp(initial, "=") == 0) {
		in = xstrdup("");
		insz = 1;
	} else if (initial != NULL &&
	    auth_decode(initial, &in, &insz, &inlen) == -1)
		return AUTH_BAD;
	/*
	 * Cyrus's LOGIN plugin (2.1.28) leaks the password when the user
	 * name is empty, holds control characters or starts with a space
	 * (its canonicalisation fails with SASL_FAIL: " a" does); such a
	 * name cannot log in anyway, so it never gets one.
	 * An empty initial response counts as none: the name comes next.
	 */
	as->login_user = strcmp(upper, "LOGIN") == 0 && inlen == 0;
	if (strcmp(upper, "LOGIN") == 0 && inlen > 0 &&
	    !auth_login_name_ok(in, inlen)) {
		freezero_(in, insz);
		as->state = AUTH_ENDED;
		return AUTH_FAIL;
	}
	r = sasl_server_start(as->conn, upper, in, inlen, &out, &outlen);
	if (in != NULL)
		freezero_(in, insz);
	return auth_outcome(as, r, 1, out, outlen, challenge, login);
}

/* auth_step - the client's answer to the last challenge */
enum auth_result
auth_step(struct auth_session *as, const char *response,
    const char **challenge, const char **login)
{
	const char *dummy, *out = NULL;
	char *in = NULL;
	size_t insz = 0;
	unsigned inlen = 0, outlen = 0;
	int r;

	if (challenge == NULL)
		challenge = &dummy;
	if (login == NULL)
		login = &dummy;
	*challenge = NULL;
	*login = NULL;
	if (as->state != AUTH_STEPPING || response == NULL)
		return AUTH_BAD;
	if (strcmp(response, "*") == 0) {
		as->state = AUTH_ENDED;
		return AUTH_CANCEL;
	}
	if (auth_decode(response, &in, &insz, &inlen) == -1) {
		as->state = AUTH_ENDED;
		return AUTH_BAD;
	}
	if (as->login_user) {
		as->login_user = false;
		if (!auth_login_name_ok(in, inlen)) {
			freezero_(in, insz);
			as->state = AUTH_ENDED;
			return AUTH_FAIL;
		}
	}
	r = sasl_server_step(as->conn, in, inlen, &out, &outlen);
	freezero_(in, insz);
	return auth_outcome(as, r, 0, out, outlen, challenge, login);
}

/*
 * User management (the `postern users` CLI). Each call makes its own
 * SASL server context whose GETOPT callback describes cfg, so it works
 * whatever configuration auth_init saw first.
 */

struct auth_admin {
	struct auth_opts	 opts;
	sasl_callback_t		 cb[2];
	sasl_conn_t		*conn;
};

/* auth_admin_open - init SASL if needed and make a context for cfg */
static int
auth_admin_open(struct auth_admin *a, const struct config *cfg,
    const char **err)
{
	memset(a, 0, sizeof(*a));
	if (!auth_sasl_ready && auth_init(cfg, err) == -1)
		return -1;
	if (auth_opts_fill(&a->opts, cfg, err) == -1)
		return -1;
	a->cb[0].id = SASL_CB_GETOPT;
	a->cb[0].proc = AUTH_CB(auth_getopt);
	a->cb[0].context = &a->opts;
	a->cb[1].id = SASL_CB_LIST_END;
	if ((a->conn = auth_conn_new(a->opts.hostname, NULL, NULL,
	    a->cb)) == NULL) {
		auth_opts_clear(&a->opts);
		*err = "cannot create a SASL context";
		return -1;
	}
	return 0;
}

/* auth_admin_close - dispose of the context */
static void
auth_admin_close(struct auth_admin *a)
{
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	auth_opts_clear(&a->opts);
}

/* auth_login_valid - see auth.h */
int
auth_login_valid(const char *login)
{
	const char *at;
	size_t i;

	if (login == NULL || login[0] == '\0' ||
	    strlen(login) > AUTH_LOGIN_MAX)
		return 0;
	for (i = 0; login[i] != '\0'; i++)
		if (login[i] <= ' ' || login[i] >= 0x7f)
			return 0;
	if ((at = strchr(login, '@')) == NULL)
		return 1;
	return at != login && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

/* auth_login_key - "user@realm" as sasldb stores it; new memory */
static char *
auth_login_key(const struct config *cfg, const char *login)
{
	if (strchr(login, '@') != NULL)
		return xstrdup(login);
	return xasprintf("%s@%s", login, cfg->hostname);
}

/* auth_user_wipe - remove secrets saslpasswd2 also removes (errors ignored) */
static void
auth_user_wipe(struct auth_admin *a, const char *login)
{
	static const char *props[] = {
		"cmusaslsecretCRAM-MD5",
		"cmusaslsecretDIGEST-MD5",
		"cmusaslsecretPLAIN",
		"authPassword",		/* a SCRAM secret for an old password */
		NULL,
	};
	struct propctx *pc;
	const char *one[2];
	size_t i;

	/* one property per store, so one failure cannot skip the rest */
	for (i = 0; props[i] != NULL; i++) {
		if ((pc = prop_new(0)) == NULL)
			return;
		one[0] = props[i];
		one[1] = NULL;
		if (prop_request(pc, one) == SASL_OK &&
		    prop_set(pc, props[i], NULL, 0) == SASL_OK)
			(void)sasl_auxprop_store(a->conn, pc, login);
		prop_dispose(&pc);
	}
}

/* auth_setpass - sasl_setpass with umask 077, so a new file is 0600 */
static int
auth_setpass(struct auth_admin *a, const char *login, const char *password,
    unsigned flags)
{
	mode_t old;
	int r;

	old = umask(077);
	r = sasl_setpass(a->conn, login, password,
	    password ? (unsigned)strlen(password) : 0, NULL, 0, flags);
	if (r == SASL_OK)
		auth_user_wipe(a, login);
	umask(old);
	if (r != SASL_OK)
		log_warnx("auth: sasl_setpass: %s", sasl_errdetail(a->conn));
	return r;
}

static int	auth_user_find(const struct config *, const char *,
		    const char **);

/* auth_user_set - create (!replace) or change (replace) a password */
int
auth_user_set(const struct config *cfg, const char *login,
    const char *password, bool replace, const char **err)
{
	struct auth_admin a;
	int found, r;

	if (!auth_login_valid(login)) {
		*err = "invalid login";
		return -1;
	}
	if (password == NULL || password[0] == '\0') {
		*err = "empty password";
		return -1;
	}
	if (strlen(password) > AUTH_PASSWORD_MAX) {
		*err = "password too long";
		return -1;
	}
	if (auth_admin_open(&a, cfg, err) == -1)
		return -1;
	/* XXX check-then-set: two concurrent CLI runs may race */
	if ((found = auth_user_find(cfg, login, err)) == -1) {
		auth_admin_close(&a);
		return -1;
	}
	if (found && !replace) {
		auth_admin_close(&a);
		*err = "user already exists";
		return -1;
	}
	if (!found && replace) {
		auth_admin_close(&a);
		*err = "no such user";
		return -1;
	}
	r = auth_setpass(&a, login, password, replace ? 0 : SASL_SET_CREATE);
	auth_admin_close(&a);
	if (r != SASL_OK) {
		*err = "cannot store the password in the sasldb";
		return -1;
	}
	return 0;
}

/* auth_user_delete - remove every entry of a user, as saslpasswd2 -d */
int
auth_user_delete(const struct config *cfg, const char *login,
    const char **err)
{
	struct auth_admin a;
	int found, r;

	if (!auth_login_valid(login)) {
		*err = "invalid login";
		return -1;
	}
	if (auth_admin_open(&a, cfg, err) == -1)
		return -1;
	if ((found = auth_user_find(cfg, login, err)) == -1) {
		auth_admin_close(&a);
		return -1;
	}
	if (!found) {
		auth_admin_close(&a);
		*err = "no such user";
		return -1;
	}
	r = auth_setpass(&a, login, NULL, SASL_SET_DISABLE);
	/* saslpasswd2 -d also wipes the mechanism secrets on failure */
	if (r != SASL_OK)
		auth_user_wipe(&a, login);
	auth_admin_close(&a);
	if (r != SASL_OK || (found = auth_user_find(cfg, login, err)) != 0) {
		if (found != -1)
			*err = "cannot delete the user from the sasldb";
		return -1;
	}
	return 0;
}

/*
 * auth_run_list - run `sasldblistusers2 -f FILE` and collect its stdout
 * into out (bounded). Anything on stderr or a bad exit is an error: the
 * tool exits 0 even when it fails ("listusers failed" on stderr).
 * Blocks until the tool exits: for the CLI, never the event loop.
 */
static int
auth_run_list(const char *sasldb, struct buf *out, const char **err)
{
	struct pollfd pfd[2];
	struct buf errs;
	char chunk[4096], esc[256];
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 }, status, devnull;
	int nopen, failed = 0;
	pid_t pid;
	ssize_t n;
	size_t i;

	if (pipe2(opipe, O_CLOEXEC) == -1 || pipe2(epipe, O_CLOEXEC) == -1) {
		log_warn("auth: pipe");
		*err = "cannot run sasldblistusers2";
		goto fail_pipes;
	}
	if ((pid = fork()) == -1) {
		log_warn("auth: fork");
		*err = "cannot run sasldblistusers2";
		goto fail_pipes;
	}
	if (pid == 0) {
		static const char msg[] = "cannot execute sasldblistusers2\n";
		char *const argv[] = { "sasldblistusers2", "-f",
		    (char *)sasldb, NULL };	/* absolute: no option */

		if ((devnull = open("/dev/null", O_RDONLY)) == -1 ||
		    dup2(devnull, STDIN_FILENO) == -1 ||
		    dup2(opipe[1], STDOUT_FILENO) == -1 ||
		    dup2(epipe[1], STDERR_FILENO) == -1)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		execv(AUTH_LISTUSERS, argv);
		execvp("sasldblistusers2", argv);
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(127);
	}
	close(opipe[1]);
	close(epipe[1]);
	buf_init(&errs, 4096);
	pfd[0].fd = opipe[0];
	pfd[1].fd = epipe[0];
	pfd[0].events = pfd[1].events = POLLIN;
	nopen = 2;
	while (nopen > 0) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("auth: poll");
			failed = 1;
			break;
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				nopen--;
				continue;
			}
			/* past either bound: keep draining, but fail */
			if (buf_append(i == 0 ? out : &errs, chunk,
			    (size_t)n) == -1)
				failed = 1;
		}
	}
	for (i = 0; i < 2; i++)
		if (pfd[i].fd != -1)
			close(pfd[i].fd);
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			log_warn("auth: waitpid");
			failed = 1;
			status = 0;
			break;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || errs.len > 0)
		failed = 1;
	if (errs.len > 0)
		log_warnx("auth: sasldblistusers2: %s",
		    log_escape(errs.data, errs.len, esc, sizeof(esc)));
	buf_free(&errs);
	if (failed) {
		*err = "sasldblistusers2 failed";
		return -1;
	}
	return 0;

fail_pipes:
	for (i = 0; i < 2; i++) {
		if (opipe[i] != -1)
			close(opipe[i]);
		if (epipe[i] != -1)
			close(epipe[i]);
	}
	return -1;
}

/* auth_cmp - qsort comparator for strings */
static int
auth_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * auth_users - the distinct "user@realm" names in the sasldb, sorted,
 * in new memory (free each and the vector). A missing file has none.
 */
static int
auth_users(const struct config *cfg, char ***users, size_t *nusers,
    const char **err)
{
	struct stat st;
	struct buf out;
	char **v = NULL, *line, *next, *sep;
	size_t n = 0, i, j;

	*users = NULL;
	*nusers = 0;
	if (cfg->sasldb == NULL || cfg->sasldb[0] != '/') {
		*err = "auth sasldb must be an absolute path";
		return -1;
	}
	if (stat(cfg->sasldb, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("auth: %s", cfg->sasldb);
		*err = "cannot access the sasldb";
		return -1;
	}
	buf_init(&out, AUTH_LIST_MAX);
	if (auth_run_list(cfg->sasldb, &out, err) == -1) {
		buf_free(&out);
		return -1;
	}
	/* lines are "user@realm: property" */
	for (line = out.data; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == '\0')
			continue;
		if ((sep = strrchr(line, ':')) == NULL || sep[1] != ' ' ||
		    sep == line || memchr(line, '@', (size_t)(sep - line)) ==
		    NULL) {
			for (i = 0; i < n; i++)
				free(v[i]);
			free(v);
			buf_free(&out);
			*err = "unexpected sasldblistusers2 output";
			return -1;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrndup(line, (size_t)(sep - line));
	}
	buf_free(&out);
	if (n > 1)
		qsort(v, n, sizeof(*v), auth_cmp);
	for (i = j = 0; i < n; i++) {
		if (j > 0 && strcmp(v[j - 1], v[i]) == 0)
			free(v[i]);
		else
			v[j++] = v[i];
	}
	*users = v;
	*nusers = j;
	return 0;
}

/* auth_user_find - 1 if login is in the sasldb, 0 if not, -1 on error */
static int
auth_user_find(const struct config *cfg, const char *login,
    const char **err)
{
	char **v, *key;
	size_t n, i;
	int found = 0;

	if (cfg->hostname == NULL) {
		*err = "hostname is not set";
		return -1;
	}
	if (auth_users(cfg, &v, &n, err) == -1)
		return -1;
	key = auth_login_key(cfg, login);
	for (i = 0; i < n; i++) {
		if (strcmp(v[i], key) == 0)
			found = 1;
		free(v[i]);
	}
	free(v);
	free(key);
	return found;
}

/* auth_user_exists - true if the login has an entry (false on error) */
bool
auth_user_exists(const struct config *cfg, const char *login)
{
	const char *err;
	int r;

	if (!auth_login_valid(login))
		return false;
	if ((r = auth_user_find(cfg, login, &err)) == -1)
		log_warnx("auth: %s", err);
	return r == 1;
}

/* auth_user_list - call fn for each distinct login, sorted */
int
auth_user_list(const struct config *cfg, void (*fn)(const char *, void *),
    void *arg, const char **err)
{
	char **v;
	size_t n, i;

	if (auth_users(cfg, &v, &n, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		fn(v[i], arg);
		free(v[i]);
	}
	free(v);
	return 0;
}
