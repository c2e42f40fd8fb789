/* spawncheck.c - the checker of the spawn helper's reply (spawnproto.h);
 * pure. */
#include "spawnproto.h"

const char *spawn_reply_check(struct spawn_reply *r, size_t n, int nfds)
{
	if (n != sizeof *r)
		return "bad length";
	r->err[sizeof r->err - 1] = '\0';
	if (r->rc < 0)
		return r->rc >= -4095 && nfds == 0 ? NULL : "bad failure";
	if (r->rc != 0 || r->mask < 0 || r->mask > 15 || !(r->mask & 8))
		return "bad descriptor mask";
	int bits = (r->mask & 1) + (r->mask >> 1 & 1) + (r->mask >> 2 & 1) + 1;
	return bits == nfds ? NULL : "descriptors do not match the mask";
}
