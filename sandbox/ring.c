/* ring.c - the last bytes a terminal showed (see ring.h). */
#include <stdlib.h>
#include <string.h>

#include "ring.h"

int ring_put(struct ring *r, const void *data, size_t n)
{
	const char *p = data;
	if (n == 0)
		return 0;
	if (r->buf == NULL && (r->buf = malloc(RING_SIZE)) == NULL)
		return -1;
	if (n >= RING_SIZE) { /* only the tail fits */
		memcpy(r->buf, p + n - RING_SIZE, RING_SIZE);
		r->head = 0;
		r->len = RING_SIZE;
		return 0;
	}
	size_t first = RING_SIZE - r->head < n ? RING_SIZE - r->head : n;
	memcpy(r->buf + r->head, p, first);
	memcpy(r->buf, p + first, n - first);
	r->head = (r->head + n) % RING_SIZE;
	r->len = r->len + n > RING_SIZE ? RING_SIZE : r->len + n;
	return 0;
}

size_t ring_snapshot(const struct ring *r, char *out)
{
	if (r->buf == NULL || r->len == 0)
		return 0;
	size_t start = (r->head + RING_SIZE - r->len) % RING_SIZE;
	size_t first = RING_SIZE - start < r->len ? RING_SIZE - start : r->len;
	memcpy(out, r->buf + start, first);
	memcpy(out + first, r->buf, r->len - first);
	if (r->len < RING_SIZE)
		return r->len; /* nothing was dropped: the very start */
	char *nl = memchr(out, '\n', r->len);
	if (nl == NULL)
		return r->len;
	size_t skip = (size_t)(nl + 1 - out);
	memmove(out, out + skip, r->len - skip);
	return r->len - skip;
}

void ring_free(struct ring *r)
{
	free(r->buf);
	*r = (struct ring){0};
}
