/* forward.c - where a direct-tcpip channel (ssh -L, -D, -W, ProxyJump) may
 * go, and the connected socket for it. 127.0.0.1, ::1 and localhost are the
 * sandbox's own loopback: the environment's init connects from inside its
 * network namespace. Anything else follows the tenant's network mode: none
 * refuses, allowlist checks the name and every resolved address as the
 * egress proxy does, host connects as the tenant. */
#include "forward.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../sshd-frontend/envd.h"
#include "decide.h"

#define CONNECT_TIMEOUT_MS 5000

static int loopback_family(const char *host)
{
	if (!strcasecmp(host, "localhost") || !strcmp(host, "127.0.0.1"))
		return 4;
	if (!strcmp(host, "::1") || !strcmp(host, "[::1]") || !strcasecmp(host, "ip6-localhost"))
		return 6;
	return 0;
}

/* a blocking connect, bounded */
static int connect_bounded(const struct sockaddr *sa, socklen_t sl)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, sa, sl) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		int soerr = ETIMEDOUT;
		socklen_t el = sizeof soerr;
		if (poll(&pf, 1, CONNECT_TIMEOUT_MS) == 1)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
		if (soerr == 0)
			return fd;
		errno = soerr;
	}
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int dial_outside(const struct forward_ctx *f, const char *host, int port, char *why,
                        size_t len)
{
	char reason[400];
	if (f->network == NET_ALLOWLIST &&
	    !egress_allow_name(f->rules, host, port, reason, sizeof reason)) {
		snprintf(why, len, "%s:%d: %s", host, port, reason);
		return -1;
	}
	char ps[8];
	snprintf(ps, sizeof ps, "%d", port);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int gr = getaddrinfo(host, ps, &hints, &res);
	if (gr != 0) {
		snprintf(why, len, "%s: %s", host, gai_strerror(gr));
		return -1;
	}
	int fd = -1;
	snprintf(why, len, "%s:%d: no address", host, port);
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		if (f->network == NET_ALLOWLIST &&
		    !egress_allow_addr(f->rules, f->local, a->ai_addr, port, reason,
		                       sizeof reason)) {
			snprintf(why, len, "%s:%d: %s", host, port, reason);
			continue;
		}
		fd = connect_bounded(a->ai_addr, a->ai_addrlen);
		if (fd < 0)
			snprintf(why, len, "%s:%d: %s", host, port, strerror(errno));
	}
	freeaddrinfo(res);
	return fd;
}

int forward_dial(const struct forward_ctx *f, const char *host, int port, char *why, size_t len)
{
	if (port <= 0 || port > 65535) {
		snprintf(why, len, "bad port %d", port);
		return -1;
	}
	int family = loopback_family(host);
	if (family) {
		if (f->env_sock == NULL) {
			snprintf(why, len,
			         "no environment to forward into (sandbox_scope = channel)");
			return -1;
		}
		int fd = envd_connect(f->env_sock, family, port);
		if (fd < 0)
			snprintf(why, len, "%s:%d in your sandbox: %s", host, port,
			         strerror(errno));
		return fd;
	}
	if (f->network == NET_NONE) {
		snprintf(why, len, "%s:%d: this tenant has no network (network = none)", host,
		         port);
		return -1;
	}
	return dial_outside(f, host, port, why, len);
}
