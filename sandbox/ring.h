/* ring.h - the last bytes a terminal showed, kept so that a detached PTY
 * session can be reattached with its screen: a fixed-size byte ring, and a
 * snapshot of it that starts on a line boundary. Pure; used by warrend's
 * session process (while attached) and by warren-init (while detached). */
#ifndef WARREN_RING_H
#define WARREN_RING_H

#include <stddef.h>

#define RING_SIZE 32768

struct ring {
	char *buf;   /* RING_SIZE bytes once something was put; NULL before */
	size_t head; /* next write position */
	size_t len;  /* bytes held, <= RING_SIZE */
};

/* Appends, dropping the oldest bytes; -1 when the buffer cannot be allocated. */
int ring_put(struct ring *r, const void *data, size_t n);

/* Copies the held bytes, oldest first, into out (RING_SIZE bytes). When the
 * ring has wrapped, the copy starts after the first newline so that replay
 * does not begin inside a line or an escape sequence. Returns the length. */
size_t ring_snapshot(const struct ring *r, char *out);

void ring_free(struct ring *r);

#endif
