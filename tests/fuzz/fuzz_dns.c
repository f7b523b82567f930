/*
 * fuzz_dns - dns_txt_parse and dns_mx_parse on one rdata
 *
 * Both parsers get every input, in a buffer of exactly its size so a
 * read outside the rdata shows under ASan. Checks: a TXT value is the
 * strings without their length bytes (so shorter than the rdata) and has
 * no NUL inside; an MX name is "." or lower-case labels of letters,
 * digits, '-' and '_' joined by single dots, at most 253 characters, and
 * a refusal leaves *name NULL and *pref 0.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dns.h"
#include "tests/fuzz/fuzz.h"

/* dns_fz_name_ok - what dns_mx_parse promises about a name */
static bool
dns_fz_name_ok(const char *name)
{
	size_t i, n = strlen(name);
	char c;

	if (strcmp(name, ".") == 0)
		return true;
	if (n == 0 || n > 253 || name[0] == '.' || name[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		c = name[i];
		if (c == '.') {
			if (name[i + 1] == '.')
				return false;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return false;
	}
	return true;
}

int
fuzz_dns(const uint8_t *data, size_t size)
{
	unsigned char *rdata;
	char *out, *name;
	unsigned pref;

	if ((rdata = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(rdata, data, size);

	out = (char *)1;
	if (dns_txt_parse(rdata, size, &out) == 0) {
		FUZZ_CHECK(out != NULL);
		FUZZ_CHECK(strlen(out) < size);
		free(out);
	} else
		FUZZ_CHECK(out == NULL);

	name = (char *)1;
	pref = 12345678;
	if (dns_mx_parse(rdata, size, &pref, &name) == 0) {
		FUZZ_CHECK(name != NULL);
		FUZZ_CHECK(size >= 3);
		FUZZ_CHECK(pref == ((unsigned)rdata[0] << 8 | rdata[1]));
		FUZZ_CHECK(dns_fz_name_ok(name));
		free(name);
	} else
		FUZZ_CHECK(name == NULL && pref == 0);

	free(rdata);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_dns(data, size);
}
#endif
