/*
 * keycache - DKIM private keys parsed once, not once per signature
 *
 * libopendkim takes a signing key as PEM text (dkim_sign) and turns it
 * into an OpenSSL key object again for every message: dkim_eom() ->
 * dkim_privkey_load() -> BIO_new_mem_buf() + PEM_read_bio_PrivateKey(),
 * then EVP_PKEY_free() when the handle is freed. With OpenSSL 3 that
 * decode costs more than the RSA signature itself, and libopendkim has no
 * call that takes a parsed key. So this module keeps the parsed key of
 * every registered PEM text and answers libopendkim's
 * PEM_read_bio_PrivateKey() with it (a new reference, as if just parsed):
 * this file defines PEM_read_bio_PrivateKey, which the dynamic linker
 * binds libopendkim's call to, and passes every call it does not
 * recognise to OpenSSL's (dlsym RTLD_NEXT).
 *
 * A call is answered from the cache only when all of this holds: the
 * cache is on; the caller asks for nothing but the key (no object to
 * fill, no password callback); the BIO is a memory BIO whose whole
 * content is a registered key's PEM text, compared by its SHA-256 and
 * length (no second copy of the secret is kept); and this thread did not
 * ask to bypass the cache (keycache_bypass: the self-test's reference
 * signature). Anything else is OpenSSL's as before.
 *
 * Registration follows the keys in use: keycache_add() when a key set is
 * loaded (start, reload, rotation), keycache_drop() when it is freed;
 * entries are counted, so a key in two generations stays until both are
 * gone. A reloaded or rotated key is other text, so the very next message
 * gets the new key whatever the cache holds.
 *
 * Whether libopendkim still behaves as this relies on is checked, not
 * assumed: keys/dkim.c (dkim_keycache_check) signs a fixed message with
 * each key twice, once bypassing the cache, and the cache stays on only
 * if the second one was answered from it and both signatures are the
 * same bytes. Otherwise keycache_disable() turns it off for good (logged
 * by the caller): keys are then parsed per message, slower but correct.
 *
 * Thread-safe: lookups take a read lock, so signing may run on any
 * thread. Out of memory aborts (common/alloc.h).
 */
#ifndef POSTERN_KEYCACHE_H
#define POSTERN_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * keycache_add - parse pem[0..len) (PKCS#8 or traditional PEM, as
 * libopendkim would) and keep it, or count one more user of it if it is
 * kept already. 0, or -1 if OpenSSL cannot parse it (nothing kept).
 */
int	keycache_add(const char *pem, size_t len);

/* keycache_drop - one user fewer of pem; the key goes with the last */
void	keycache_drop(const char *pem, size_t len);

/* keycache_disable - answer nothing from the cache from now on;
   keycache_enabled - is it on? (on until disabled) */
void	keycache_disable(void);
bool	keycache_enabled(void);

/* keycache_bypass - on this thread only, answer nothing from the cache
   (on) or as usual (off); for the self-test's reference signature */
void	keycache_bypass(bool on);

/*
 * For tests: keycache_fault makes the cache misbehave the way a changed
 * libopendkim or a broken cache would, so the self-test can be seen to
 * catch it: SILENT answers nothing (as if libopendkim no longer asked
 * PEM_read_bio_PrivateKey), WRONG answers with another kept key.
 * keycache_reset turns the cache on again, without a fault.
 */
enum keycache_fault {
	KEYCACHE_FAULT_NONE,
	KEYCACHE_FAULT_SILENT,
	KEYCACHE_FAULT_WRONG,
};
void	keycache_fault(enum keycache_fault);
void	keycache_reset(void);

/* keycache_hits - calls answered from the cache since start (all
   threads); keycache_thread_hits - by this thread; keycache_size - keys
   kept */
uint64_t keycache_hits(void);
uint64_t keycache_thread_hits(void);
size_t	keycache_size(void);

#endif
