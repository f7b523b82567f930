/*
 * fuzz - the shared contract of the fuzz targets in tests/fuzz/
 *
 * Each tests/fuzz/fuzz_NAME.c defines fuzz_NAME(data, size): it runs one
 * untrusted input through a parser and checks the parser's documented
 * invariants with FUZZ_CHECK. It frees everything the parser returned.
 * Built with -DFUZZ_LIBFUZZER (make fuzz, clang), each file also defines
 * LLVMFuzzerTestOneInput. tests/unit/test_fuzz_corpus.c #includes the same
 * files (gcc, no sanitizers) and replays every kept input through them.
 *
 * FUZZ_FAIL(msg) decides what a broken invariant does: abort() here (a
 * crash libFuzzer records), a cmocka failure in the replay test, which
 * defines FUZZ_FAIL before including this header.
 */
#ifndef POSTERN_FUZZ_H
#define POSTERN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_FAIL
#define FUZZ_FAIL(msg)	do {						\
	fprintf(stderr, "%s\n", (msg));					\
	abort();							\
} while (0)
#endif

#define FUZZ_STR2(x)	#x
#define FUZZ_STR(x)	FUZZ_STR2(x)
/* FUZZ_CHECK - an invariant of the parser under test */
#define FUZZ_CHECK(cond)	do {					\
	if (!(cond))							\
		FUZZ_FAIL(__FILE__ ":" FUZZ_STR(__LINE__)		\
		    ": invariant broken: " #cond);			\
} while (0)

int	fuzz_address(const uint8_t *, size_t);
int	fuzz_auth(const uint8_t *, size_t);
int	fuzz_dataread(const uint8_t *, size_t);
int	fuzz_dns(const uint8_t *, size_t);
int	fuzz_envelope(const uint8_t *, size_t);
int	fuzz_keystate(const uint8_t *, size_t);
int	fuzz_msghdr(const uint8_t *, size_t);
int	fuzz_smtp_parse(const uint8_t *, size_t);

#ifdef FUZZ_LIBFUZZER
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
#endif

#endif
