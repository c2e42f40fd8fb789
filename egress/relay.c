/* relay.c - bounded one-way byte relay with back-pressure (see relay.h). */
#include "relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int relay_init(struct relay *r, size_t cap)
{
	memset(r, 0, sizeof *r);
	r->buf = malloc(cap);
	if (r->buf == NULL)
		return -1;
	r->cap = cap;
	return 0;
}

void relay_free(struct relay *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->off = r->len = 0;
}

int relay_grow(struct relay *r, size_t cap)
{
	if (cap <= r->cap)
		return 0;
	char *b = realloc(r->buf, cap);
	if (b == NULL)
		return -1;
	r->buf = b;
	r->cap = cap;
	return 0;
}

size_t relay_pending(const struct relay *r)
{
	return r->len - r->off;
}

size_t relay_room(const struct relay *r)
{
	return r->cap - relay_pending(r);
}

/* moves pending bytes to the front, so all the room is at the end */
static void compact(struct relay *r)
{
	if (r->off == 0)
		return;
	memmove(r->buf, r->buf + r->off, r->len - r->off);
	r->len -= r->off;
	r->off = 0;
}

ssize_t relay_fill(struct relay *r, int fd, size_t max)
{
	if (r->eof)
		return 0;
	if (r->len == r->cap)
		compact(r);
	size_t room = r->cap - r->len;
	if (room == 0 || max == 0)
		return -1;
	ssize_t n = recv(fd, r->buf + r->len, room < max ? room : max, MSG_DONTWAIT);
	if (n > 0) {
		r->len += (size_t)n;
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -1;
	r->eof = true;
	return 0;
}

int relay_put(struct relay *r, const void *data, size_t n, bool counted)
{
	if (n > relay_room(r))
		return -1;
	if (r->cap - r->len < n)
		compact(r);
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	if (!counted && r->off + r->uncounted + n <= r->len)
		r->uncounted += n;
	return 0;
}

void relay_unput(struct relay *r, size_t n)
{
	r->len -= n <= relay_pending(r) ? n : relay_pending(r);
}

ssize_t relay_flush(struct relay *r, int fd)
{
	ssize_t total = 0;
	while (r->off < r->len) {
		ssize_t n = send(fd, r->buf + r->off, r->len - r->off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return -1;
		}
		size_t skip = (size_t)n < r->uncounted ? (size_t)n : r->uncounted;
		r->uncounted -= skip;
		r->bytes += (size_t)n - skip;
		r->off += (size_t)n;
		total += n;
	}
	if (r->off == r->len)
		r->off = r->len = 0;
	return total;
}
