/* initcheck.c - the checkers of initproto.h's two messages (pure: linked
 * into warren-init (static) and warrend, driven by the fuzz target), and
 * the one receiver of init_msgs that applies its checker. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"
#include "initproto.h"

static bool signal_ok(int32_t v)
{
	return v > 0 && v < NSIG;
}

const char *init_msg_check(const void *msg, size_t n, bool has_fd)
{
	struct init_msg m;
	if (n != sizeof m)
		return "bad length";
	memcpy(&m, msg, sizeof m);
	switch (m.type) {
	case INIT_MSG_PTY:
	case INIT_MSG_PROXY:
	case INIT_MSG_REPLAY:
	case INIT_MSG_LIST:
	case INIT_MSG_SOCKET:
	case INIT_MSG_AGENT:
		return has_fd ? NULL : "a descriptor is missing";
	case INIT_MSG_API:
		if (!has_fd)
			return "a descriptor is missing";
		return m.value > 0 && m.value < 65536 ? NULL : "bad port";
	case INIT_MSG_STARTED:
	case INIT_MSG_EXIT:
		return NULL;
	case INIT_MSG_ERROR:
		return m.value > 0 && m.value < 4096 ? NULL : "bad errno";
	case INIT_MSG_SIGNAL:
		return signal_ok(m.value) ? NULL : "bad signal";
	default:
		return "unknown type";
	}
}

const char *init_req_check(const void *req, size_t n, int nfds)
{
	struct init_req r;
	if (n != sizeof r)
		return "bad length";
	memcpy(&r, req, sizeof r);
	switch (r.type) {
	case INIT_REQ_SPAWN:
		if (r.pty != 0 && r.pty != 1)
			return "bad pty";
		if (nfds != (r.pty ? 1 : 4))
			return "wrong descriptors";
		if (r.argc < 1 || r.envc < 0 || r.argc > INIT_SPAWN_MAX_STRS ||
		    r.envc > INIT_SPAWN_MAX_STRS - r.argc)
			return "bad string counts";
		return r.rows >= 0 && r.cols >= 0 && r.rows <= 10000 && r.cols <= 10000
		           ? NULL
		           : "bad window size";
	case INIT_REQ_DETACH:
		return nfds == 2 ? NULL : "wrong descriptors";
	case INIT_MSG_SIGNAL:
	case INIT_REQ_KILL:
		if (nfds != 0)
			return "wrong descriptors";
		return signal_ok(r.value) ? NULL : "bad signal";
	case INIT_REQ_CONNECT:
	case INIT_REQ_LISTEN:
	case INIT_REQ_ATTACH:
	case INIT_REQ_LIST:
	case INIT_REQ_LINGER:
	case INIT_REQ_AGENT:
	case INIT_REQ_MEMBER:
		return nfds == 0 ? NULL : "wrong descriptors";
	default:
		return "unknown type";
	}
}

int init_msg_recv(int fd, struct init_msg *m, int *passed)
{
	for (;;) {
		ssize_t n = fdpass_recv(fd, m, sizeof *m, passed, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		if (init_msg_check(m, (size_t)n, *passed >= 0) == NULL)
			return 1;
		if (*passed >= 0)
			close(*passed);
	}
}
