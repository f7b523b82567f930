/*
 * fuzz_dataread - the DATA byte state machine, fed the whole input at
 * once and again in chunks
 *
 * The first byte picks the size limit (0-255 bytes, or 0xff: 1 MB), the
 * second the chunk sizes; the rest is the stream after "354". Checks:
 * output never longer than the input consumed; *consumed within the
 * chunk and equal to it for DATAREAD_MORE; after DONE the consumed input
 * ends in CRLF.CRLF (or is ".CRLF" alone); output lines end in CRLF and
 * hold no bare CR or LF; output stops at the size limit; and chunking
 * changes nothing (status, bytes used, output, size, flags).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "submit/dataread.h"
#include "tests/fuzz/fuzz.h"

struct dr_result {
	enum dataread_status	 status;
	size_t			 used;		/* input bytes consumed */
	size_t			 outlen;
	struct dataread		 st;
};

/* dr_run - feed in[0..len) in chunks of at most step bytes (0: whole) */
static void
dr_run(const char *in, size_t len, uint64_t max, size_t step, char *out,
    struct dr_result *r)
{
	size_t off = 0, n, outlen, consumed;
	enum dataread_status s = DATAREAD_MORE;

	dataread_init(&r->st, max);
	r->outlen = 0;
	while (off < len) {
		n = len - off;
		if (step != 0 && n > step)
			n = step;
		outlen = r->outlen;
		consumed = (size_t)-1;
		s = dataread_feed(&r->st, in + off, n, out, &outlen,
		    &consumed);
		FUZZ_CHECK(consumed <= n);
		FUZZ_CHECK(outlen >= r->outlen);
		FUZZ_CHECK(outlen - r->outlen <= consumed);
		FUZZ_CHECK(s == DATAREAD_MORE || s == DATAREAD_DONE ||
		    s == DATAREAD_BARE);
		if (s == DATAREAD_MORE)
			FUZZ_CHECK(consumed == n);
		r->outlen = outlen;
		off += consumed;
		if (s != DATAREAD_MORE)
			break;
	}
	r->status = s;
	r->used = off;
	FUZZ_CHECK(r->outlen <= r->used);
	FUZZ_CHECK(r->st.size >= r->outlen || r->st.too_big);
}

/* dr_check_out - CRLF line ends only; after DONE every line is whole */
static void
dr_check_out(const char *out, size_t len, bool done)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (out[i] == '\n')
			FUZZ_CHECK(i > 0 && out[i - 1] == '\r');
		if (out[i] == '\r' && i + 1 < len)
			FUZZ_CHECK(out[i + 1] == '\n');
	}
	if (done && len > 0)
		FUZZ_CHECK(len >= 2 && out[len - 2] == '\r' &&
		    out[len - 1] == '\n');
}

int
fuzz_dataread(const uint8_t *data, size_t size)
{
	struct dr_result whole, chunked;
	const char *in;
	char *out1, *out2;
	uint64_t max;
	size_t len, step;

	if (size < 2)
		return 0;
	max = data[0] == 0xff ? 1 << 20 : data[0];
	step = (size_t)(data[1] % 16) + 1;
	in = (const char *)data + 2;
	len = size - 2;
	out1 = malloc(len + 1);
	out2 = malloc(len + 1);
	if (out1 == NULL || out2 == NULL) {
		free(out1);
		free(out2);
		return 0;
	}

	dr_run(in, len, max, 0, out1, &whole);
	dr_run(in, len, max, step, out2, &chunked);

	if (whole.status == DATAREAD_DONE) {
		FUZZ_CHECK(whole.used >= 3);
		FUZZ_CHECK(memcmp(in + whole.used - 3, ".\r\n", 3) == 0);
		FUZZ_CHECK(whole.used == 3 || (whole.used >= 5 &&
		    memcmp(in + whole.used - 5, "\r\n", 2) == 0));
	}
	if (whole.status == DATAREAD_BARE)
		FUZZ_CHECK(whole.used < len);
	if (!whole.st.too_big)
		FUZZ_CHECK(whole.outlen == whole.st.size);
	FUZZ_CHECK(whole.outlen <= max);
	dr_check_out(out1, whole.outlen, whole.status == DATAREAD_DONE &&
	    !whole.st.too_big);

	FUZZ_CHECK(whole.status == chunked.status);
	FUZZ_CHECK(whole.used == chunked.used);
	FUZZ_CHECK(whole.outlen == chunked.outlen);
	FUZZ_CHECK(memcmp(out1, out2, whole.outlen) == 0);
	FUZZ_CHECK(whole.st.size == chunked.st.size);
	FUZZ_CHECK(whole.st.too_big == chunked.st.too_big);
	FUZZ_CHECK(whole.st.line_too_long == chunked.st.line_too_long);

	free(out1);
	free(out2);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_dataread(data, size);
}
#endif
