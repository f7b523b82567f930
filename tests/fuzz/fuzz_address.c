/*
 * fuzz_address - address_parse_path, address_parse_addrspec,
 * address_header_mailboxes and address_strip_tag on one input
 *
 * The first byte chooses allow_null (bit 0) and allow_utf8 (bit 1); the
 * rest is the text, in a buffer of exactly its size so an overread shows
 * under ASan. Checks: limits, lower-case domain without a trailing dot,
 * no byte >= 0x80 unless UTF-8 is allowed, *consumed ends at '>', and a
 * parsed address, formatted and parsed again, is the same address.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/address.h"
#include "tests/fuzz/fuzz.h"

#define AD_MAILBOXES	4

/* ad_check - the invariants of any parsed address */
static void
ad_check(const struct address *a, bool utf8_ok)
{
	size_t i, dlen;
	bool high = false;

	FUZZ_CHECK(strlen(a->local) <= ADDRESS_LOCAL_MAX);
	dlen = strlen(a->domain);
	FUZZ_CHECK(dlen <= ADDRESS_DOMAIN_MAX);
	FUZZ_CHECK(dlen == 0 || a->domain[dlen - 1] != '.');
	for (i = 0; i < dlen; i++) {
		FUZZ_CHECK(!(a->domain[i] >= 'A' && a->domain[i] <= 'Z'));
		if ((unsigned char)a->domain[i] >= 0x80)
			high = true;
	}
	for (i = 0; a->local[i] != '\0'; i++)
		if ((unsigned char)a->local[i] >= 0x80)
			high = true;
	FUZZ_CHECK(!high || a->utf8);
	FUZZ_CHECK(!high || utf8_ok);
}

/* ad_reparse - format a (not the null path) and parse it again: same */
static void
ad_reparse(const struct address *a, bool utf8_ok)
{
	struct address b;
	const char *err = NULL;
	char out[ADDRESS_MAX + 1], tag[ADDRESS_LOCAL_MAX + 1];

	address_strip_tag(a->local, tag);
	FUZZ_CHECK(strlen(tag) <= strlen(a->local));
	FUZZ_CHECK(strncmp(tag, a->local, strlen(tag)) == 0);
	if (a->local[0] == '\0' || a->domain[0] == '\0')
		return;
	address_format(a, out, sizeof(out));
	FUZZ_CHECK(strlen(out) == strlen(a->local) + 1 + strlen(a->domain));
	memset(&b, 0, sizeof(b));
	FUZZ_CHECK(address_parse_addrspec(out, strlen(out), utf8_ok, &b,
	    &err) == 0);
	FUZZ_CHECK(strcmp(a->local, b.local) == 0);
	FUZZ_CHECK(strcmp(a->domain, b.domain) == 0);
	FUZZ_CHECK(a->utf8 == b.utf8);
}

int
fuzz_address(const uint8_t *data, size_t size)
{
	struct address a, boxes[AD_MAILBOXES];
	const char *err;
	char *s;
	size_t len, consumed, n, i;
	bool allow_null, allow_utf8;

	if (size < 1)
		return 0;
	allow_null = data[0] & 1;
	allow_utf8 = (data[0] & 2) != 0;
	len = size - 1;
	/* exactly len bytes: malloc(0) may return NULL, so keep one spare */
	if ((s = malloc(len ? len : 1)) == NULL)
		return 0;
	memcpy(s, data + 1, len);

	memset(&a, 0, sizeof(a));
	err = NULL;
	consumed = (size_t)-1;
	if (address_parse_path(s, len, allow_null, allow_utf8, &a,
	    &consumed, &err) == 0) {
		FUZZ_CHECK(consumed >= 2 && consumed <= len);
		FUZZ_CHECK(s[0] == '<' && s[consumed - 1] == '>');
		FUZZ_CHECK(allow_null || a.local[0] != '\0');
		ad_check(&a, allow_utf8);
		ad_reparse(&a, allow_utf8);
	} else
		FUZZ_CHECK(err != NULL && strpbrk(err, "\r\n") == NULL);

	memset(&a, 0, sizeof(a));
	err = NULL;
	if (address_parse_addrspec(s, len, allow_utf8, &a, &err) == 0) {
		FUZZ_CHECK(a.local[0] != '\0');
		ad_check(&a, allow_utf8);
		ad_reparse(&a, allow_utf8);
	} else
		FUZZ_CHECK(err != NULL && strpbrk(err, "\r\n") == NULL);

	memset(boxes, 0, sizeof(boxes));
	err = NULL;
	n = (size_t)-1;
	if (address_header_mailboxes(s, len, allow_utf8, boxes, AD_MAILBOXES,
	    &n, &err) == 0) {
		for (i = 0; i < n && i < AD_MAILBOXES; i++)
			ad_check(&boxes[i], allow_utf8);
	} else
		FUZZ_CHECK(err != NULL && strpbrk(err, "\r\n") == NULL);

	free(s);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_address(data, size);
}
#endif
