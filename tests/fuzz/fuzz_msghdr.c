/*
 * fuzz_msghdr - msghdr_scan and msghdr_end on one message start
 *
 * The text sits in a buffer of exactly its size, so a read past the end
 * shows under ASan. Checks: the header length and the first From: value
 * lie within the text; the empty line msghdr_scan stops at is where
 * msghdr_end says the section ends, and the other way round.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/msghdr.h"
#include "tests/fuzz/fuzz.h"

int
fuzz_msghdr(const uint8_t *data, size_t size)
{
	struct msghdr_info mi;
	const char *err;
	char *text;
	size_t end;

	if ((text = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(text, data, size);

	end = msghdr_end(text, size);
	FUZZ_CHECK(end == 0 || (end >= 2 && end <= size &&
	    text[end - 2] == '\r' && text[end - 1] == '\n'));

	err = NULL;
	if (msghdr_scan(text, size, &mi, &err) == 0) {
		FUZZ_CHECK(mi.len <= size);
		FUZZ_CHECK((mi.nfrom == 0) == (mi.from == NULL));
		if (mi.from != NULL) {
			FUZZ_CHECK(mi.from > text && mi.from <= text + size);
			FUZZ_CHECK(mi.from_len <= (size_t)(text + size -
			    mi.from));
			FUZZ_CHECK(mi.from + mi.from_len <= text + mi.len);
		}
		if (end != 0)
			FUZZ_CHECK(mi.has_body && mi.len + 2 == end);
		if (mi.has_body && mi.len + 2 <= size &&
		    text[mi.len + 1] == '\n')
			FUZZ_CHECK(end == mi.len + 2);
		if (!mi.has_body)
			FUZZ_CHECK(mi.len == size);
	} else
		FUZZ_CHECK(err != NULL);

	free(text);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_msghdr(data, size);
}
#endif
