/*
 * fuzz_keystate - keystate_parse, the DKIM rotation-state reader
 *
 * A parsed state must format, parse back to the same selectors, and
 * format to the same bytes again. A refused one leaves the list empty
 * and an allocated error (freed here).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "keys/keystate.h"
#include "tests/fuzz/fuzz.h"

int
fuzz_keystate(const uint8_t *data, size_t size)
{
	struct keysels s = { NULL, 0 }, back = { NULL, 0 };
	struct buf b1, b2;
	char *text, *err;
	size_t i;

	if ((text = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(text, data, size);

	err = NULL;
	if (keystate_parse(text, size, &s, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(s.n == 0);
		free(err);
		keysels_free(&s);
		free(text);
		return 0;
	}
	FUZZ_CHECK(s.n <= KEYSTATE_MAX_SELECTORS);
	FUZZ_CHECK(size <= KEYSTATE_MAX_SIZE);

	buf_init(&b1, 1 << 20);
	buf_init(&b2, 1 << 20);
	FUZZ_CHECK(keystate_format(&s, &b1) == 0);
	err = NULL;
	if (keystate_parse(b1.data, b1.len, &back, &err) != 0) {
		fprintf(stderr, "reparse: %s\n", err ? err : "?");
		FUZZ_CHECK(!"formatted state parses back");
	}
	FUZZ_CHECK(back.n == s.n);
	for (i = 0; i < s.n; i++) {
		FUZZ_CHECK(strcmp(s.v[i].selector, back.v[i].selector) == 0);
		FUZZ_CHECK(s.v[i].alg == back.v[i].alg);
		FUZZ_CHECK(s.v[i].state == back.v[i].state);
		FUZZ_CHECK(s.v[i].since == back.v[i].since);
		FUZZ_CHECK(strcmp(s.v[i].key, back.v[i].key) == 0);
		FUZZ_CHECK(keysels_find(&s, s.v[i].selector) == &s.v[i]);
	}
	FUZZ_CHECK(keystate_format(&back, &b2) == 0);
	FUZZ_CHECK(b1.len == b2.len);
	FUZZ_CHECK(memcmp(b1.data, b2.data, b1.len) == 0);

	keysels_free(&back);
	keysels_free(&s);
	buf_free(&b1);
	buf_free(&b2);
	free(text);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_keystate(data, size);
}
#endif
