/* fuzz_initproto.c - libFuzzer target: the checkers of warren-init's two
 * protocols (sandbox/initcheck.c). The first byte picks the direction and
 * the descriptor count; a message that passes must have the shape its
 * receivers rely on. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/initproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int nfds = data[0] & 7;
	bool req = data[0] & 8;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	if (req) {
		if (init_req_check(p, n, nfds) != NULL)
			return 0;
		struct init_req r;
		memcpy(&r, p, sizeof r); /* it passed: the size is exact */
		if (r.type == INIT_REQ_SPAWN &&
		    (r.argc < 1 || r.envc < 0 || r.argc + r.envc > INIT_SPAWN_MAX_STRS ||
		     nfds != (r.pty ? 1 : 4)))
			abort();
		if ((r.type == INIT_REQ_KILL || r.type == INIT_MSG_SIGNAL) &&
		    (r.value <= 0 || r.value >= NSIG))
			abort();
		return 0;
	}
	bool has_fd = nfds > 0;
	if (init_msg_check(p, n, has_fd) != NULL)
		return 0;
	struct init_msg m;
	memcpy(&m, p, sizeof m);
	if ((m.type == INIT_MSG_PTY || m.type == INIT_MSG_API || m.type == INIT_MSG_SOCKET) &&
	    !has_fd)
		abort();
	if (m.type == INIT_MSG_ERROR && (m.value <= 0 || m.value >= 4096))
		abort();
	return 0;
}
