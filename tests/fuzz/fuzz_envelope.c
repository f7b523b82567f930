/*
 * fuzz_envelope - envelope_parse, the queue-file reader
 *
 * A parsed envelope must format (envelope_format refuses only what
 * envelope_parse rejects), parse back to the same envelope, and format
 * to the same bytes again. A refused one must leave *e empty and say why.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "queue/envelope.h"
#include "tests/fuzz/fuzz.h"

/* ev_streq - both NULL, or both set and equal */
static bool
ev_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* ev_same - every field of a and b */
static void
ev_same(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	FUZZ_CHECK(strcmp(a->id, b->id) == 0);
	FUZZ_CHECK(a->time == b->time);
	FUZZ_CHECK(ev_streq(a->sender, b->sender));
	FUZZ_CHECK(ev_streq(a->login, b->login));
	FUZZ_CHECK(ev_streq(a->client, b->client));
	FUZZ_CHECK(ev_streq(a->helo, b->helo));
	FUZZ_CHECK(a->body_8bit == b->body_8bit);
	FUZZ_CHECK(a->smtputf8 == b->smtputf8);
	FUZZ_CHECK(a->size == b->size);
	FUZZ_CHECK(a->prepend_len == b->prepend_len);
	FUZZ_CHECK((a->prepend == NULL) == (b->prepend == NULL));
	if (a->prepend != NULL)
		FUZZ_CHECK(memcmp(a->prepend, b->prepend,
		    a->prepend_len) == 0);
	FUZZ_CHECK(a->attempts == b->attempts);
	FUZZ_CHECK(a->next_attempt == b->next_attempt);
	FUZZ_CHECK(strcmp(a->dsn, b->dsn) == 0);
	FUZZ_CHECK(a->nrcpts == b->nrcpts);
	for (i = 0; i < a->nrcpts; i++) {
		FUZZ_CHECK(ev_streq(a->rcpts[i].addr, b->rcpts[i].addr));
		FUZZ_CHECK(a->rcpts[i].status == b->rcpts[i].status);
		FUZZ_CHECK(a->rcpts[i].code == b->rcpts[i].code);
		FUZZ_CHECK(strcmp(a->rcpts[i].enhanced,
		    b->rcpts[i].enhanced) == 0);
		FUZZ_CHECK(ev_streq(a->rcpts[i].text, b->rcpts[i].text));
	}
}

int
fuzz_envelope(const uint8_t *data, size_t size)
{
	struct envelope e, back;
	struct buf b1, b2;
	const char *err;
	char *text;

	if ((text = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(text, data, size);

	err = NULL;
	if (envelope_parse(text, size, &e, &err) != 0) {
		FUZZ_CHECK(err != NULL);
		FUZZ_CHECK(e.rcpts == NULL && e.nrcpts == 0);
		FUZZ_CHECK(e.sender == NULL && e.prepend == NULL);
		free(text);
		return 0;
	}
	FUZZ_CHECK(queue_id_valid(e.id));
	FUZZ_CHECK(e.nrcpts > 0 && e.rcpts != NULL);

	buf_init(&b1, 1 << 22);
	buf_init(&b2, 1 << 22);
	FUZZ_CHECK(envelope_format(&e, &b1) == 0);
	err = NULL;
	FUZZ_CHECK(envelope_parse(b1.data, b1.len, &back, &err) == 0);
	ev_same(&e, &back);
	FUZZ_CHECK(envelope_format(&back, &b2) == 0);
	FUZZ_CHECK(b1.len == b2.len);
	FUZZ_CHECK(memcmp(b1.data, b2.data, b1.len) == 0);

	envelope_free(&back);
	envelope_free(&e);
	buf_free(&b1);
	buf_free(&b2);
	free(text);
	return 0;
}

#ifdef FUZZ_LIBFUZZER
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_envelope(data, size);
}
#endif
