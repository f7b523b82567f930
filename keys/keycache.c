/*
 * keycache - DKIM private keys parsed once; see keycache.h.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/alloc.h"
#include "common/log.h"
#include "keys/keycache.h"

#define KEYCACHE_HASH	32		/* SHA-256 */

struct keycache_entry {
	unsigned char	 hash[KEYCACHE_HASH];	/* of the PEM text */
	size_t		 len;			/* its length */
	EVP_PKEY	*pk;
	unsigned	 refs;
};

typedef EVP_PKEY *pem_read_fn(BIO *, EVP_PKEY **, pem_password_cb *, void *);

static pthread_rwlock_t		 keycache_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct keycache_entry	*keycache_v;	/* under keycache_lock */
static size_t			 keycache_n;
static atomic_bool		 keycache_off;
static atomic_uint_fast64_t	 keycache_nhits;
static _Thread_local bool	 keycache_bypassed;
static _Thread_local uint64_t	 keycache_thread_nhits;
static pthread_once_t		 keycache_once = PTHREAD_ONCE_INIT;
static pem_read_fn		*keycache_real;
static _Atomic enum keycache_fault keycache_faulty;

/* keycache_resolve - OpenSSL's own PEM_read_bio_PrivateKey */
static void
keycache_resolve(void)
{
	keycache_real = (pem_read_fn *)dlsym(RTLD_NEXT,
	    "PEM_read_bio_PrivateKey");
}

/* keycache_openssl - the real function; a broken invariant if missing */
static pem_read_fn *
keycache_openssl(void)
{
	pthread_once(&keycache_once, keycache_resolve);
	if (keycache_real == NULL)
		log_panic("keycache: OpenSSL's PEM_read_bio_PrivateKey not "
		    "found (dlsym RTLD_NEXT)");
	return keycache_real;
}

/* keycache_digest - SHA-256 of p[0..len) */
static void
keycache_digest(const void *p, size_t len, unsigned char *out)
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != KEYCACHE_HASH)
		log_panic("keycache: SHA-256 failed");
}

/* keycache_find - the entry of (hash, len), or NULL; lock held */
static struct keycache_entry *
keycache_find(const unsigned char *hash, size_t len)
{
	size_t i;

	for (i = 0; i < keycache_n; i++)
		if (keycache_v[i].len == len &&
		    memcmp(keycache_v[i].hash, hash, KEYCACHE_HASH) == 0)
			return &keycache_v[i];
	return NULL;
}

/* keycache_add - parse and keep, or count one more user */
int
keycache_add(const char *pem, size_t len)
{
	unsigned char hash[KEYCACHE_HASH];
	struct keycache_entry *e;
	EVP_PKEY *pk;
	BIO *bio;

	keycache_digest(pem, len, hash);
	pthread_rwlock_wrlock(&keycache_lock);
	if ((e = keycache_find(hash, len)) != NULL) {
		e->refs++;
		pthread_rwlock_unlock(&keycache_lock);
		return 0;
	}
	pthread_rwlock_unlock(&keycache_lock);

	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return -1;
	pk = keycache_openssl()(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		return -1;

	pthread_rwlock_wrlock(&keycache_lock);
	if ((e = keycache_find(hash, len)) != NULL) {	/* raced */
		e->refs++;
		EVP_PKEY_free(pk);
	} else {
		keycache_v = xreallocarray(keycache_v, keycache_n + 1,
		    sizeof(*keycache_v));
		e = &keycache_v[keycache_n++];
		memcpy(e->hash, hash, KEYCACHE_HASH);
		e->len = len;
		e->pk = pk;
		e->refs = 1;
	}
	pthread_rwlock_unlock(&keycache_lock);
	return 0;
}

/* keycache_drop - one user fewer */
void
keycache_drop(const char *pem, size_t len)
{
	unsigned char hash[KEYCACHE_HASH];
	struct keycache_entry *e;
	EVP_PKEY *pk = NULL;

	keycache_digest(pem, len, hash);
	pthread_rwlock_wrlock(&keycache_lock);
	if ((e = keycache_find(hash, len)) != NULL && --e->refs == 0) {
		pk = e->pk;
		*e = keycache_v[--keycache_n];
		if (keycache_n == 0) {
			free(keycache_v);
			keycache_v = NULL;
		}
	}
	pthread_rwlock_unlock(&keycache_lock);
	EVP_PKEY_free(pk);	/* signatures in flight hold their own */
}

/* keycache_disable - off for good */
void
keycache_disable(void)
{
	atomic_store(&keycache_off, true);
}

/* keycache_enabled - on? */
bool
keycache_enabled(void)
{
	return !atomic_load(&keycache_off);
}

/* keycache_bypass - this thread asks OpenSSL itself */
void
keycache_bypass(bool on)
{
	keycache_bypassed = on;
}

/* keycache_fault - tests: misbehave */
void
keycache_fault(enum keycache_fault f)
{
	atomic_store(&keycache_faulty, f);
}

/* keycache_reset - tests: on again, no fault */
void
keycache_reset(void)
{
	atomic_store(&keycache_faulty, KEYCACHE_FAULT_NONE);
	atomic_store(&keycache_off, false);
}

/* keycache_hits - answers from the cache */
uint64_t
keycache_hits(void)
{
	return atomic_load(&keycache_nhits);
}

/* keycache_thread_hits - answers from the cache on this thread */
uint64_t
keycache_thread_hits(void)
{
	return keycache_thread_nhits;
}

/* keycache_size - keys kept */
size_t
keycache_size(void)
{
	size_t n;

	pthread_rwlock_rdlock(&keycache_lock);
	n = keycache_n;
	pthread_rwlock_unlock(&keycache_lock);
	return n;
}

/*
 * PEM_read_bio_PrivateKey - OpenSSL's function, as libopendkim calls it:
 * a registered key's parsed object (one more reference) when the BIO
 * holds exactly its PEM text, else OpenSSL's own answer. The BIO is left
 * unread on a hit: libopendkim only frees it afterwards.
 */
EVP_PKEY *
PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
	unsigned char hash[KEYCACHE_HASH];
	struct keycache_entry *e;
	EVP_PKEY *pk = NULL;
	char *data = NULL;
	long len;

	if (x == NULL && cb == NULL && u == NULL && bp != NULL &&
	    !keycache_bypassed && !atomic_load(&keycache_off) &&
	    atomic_load(&keycache_faulty) != KEYCACHE_FAULT_SILENT &&
	    BIO_method_type(bp) == BIO_TYPE_MEM &&
	    (len = BIO_get_mem_data(bp, &data)) > 0 && data != NULL) {
		keycache_digest(data, (size_t)len, hash);
		pthread_rwlock_rdlock(&keycache_lock);
		if ((e = keycache_find(hash, (size_t)len)) != NULL &&
		    atomic_load(&keycache_faulty) == KEYCACHE_FAULT_WRONG &&
		    keycache_n > 1)
			e = e == &keycache_v[0] ? &keycache_v[1] : &keycache_v[0];
		if (e != NULL && EVP_PKEY_up_ref(e->pk) == 1)
			pk = e->pk;
		pthread_rwlock_unlock(&keycache_lock);
		if (pk != NULL) {
			atomic_fetch_add(&keycache_nhits, 1);
			keycache_thread_nhits++;
			return pk;
		}
	}
	return keycache_openssl()(bp, x, cb, u);
}
