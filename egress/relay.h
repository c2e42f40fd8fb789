/* relay.h - one direction of a byte relay: a bounded buffer between a source
 * fd and a sink fd. Back-pressure: read only while there is room; a slow
 * sink stops its source instead of growing memory. Every relay of warren
 * (egress proxy, tunnels) moves bytes through this. */
#ifndef WARREN_RELAY_H
#define WARREN_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct relay {
	char *buf;
	size_t cap, off, len; /* pending bytes are buf[off..len) */
	size_t uncounted;     /* leading pending bytes warren made itself (not counted) */
	bool eof;             /* the source said EOF (or failed) */
	bool shut;            /* the sink's write side was shut after draining */
	uint64_t bytes;       /* bytes of the source delivered to the sink */
};

int relay_init(struct relay *r, size_t cap);
void relay_free(struct relay *r);
/* a bigger buffer (a bulk tunnel's), pending bytes kept; -1: unchanged */
int relay_grow(struct relay *r, size_t cap);
size_t relay_room(const struct relay *r);
size_t relay_pending(const struct relay *r);
/* recv up to max (and the room) from fd into the buffer: >0 bytes read,
 * 0 at EOF or error (eof set), -1 when nothing is there yet */
ssize_t relay_fill(struct relay *r, int fd, size_t max);
/* appends bytes of warren's own (a status line, a rewritten head); counted
 * says whether they count as the source's; -1 when they do not fit */
int relay_put(struct relay *r, const void *data, size_t n, bool counted);
/* drops the last n pending bytes (past the end of a message) */
void relay_unput(struct relay *r, size_t n);
/* sends what is pending to fd; the number sent, -1 when fd failed */
ssize_t relay_flush(struct relay *r, int fd);

#endif
