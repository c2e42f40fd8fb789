/* forward.h - destinations of direct-tcpip channels (forward.c). */
#ifndef WARREN_FORWARD_H
#define WARREN_FORWARD_H

#include <stddef.h>

#include "rules.h"
#include "../sandbox/policy.h"

struct forward_ctx {
	const char *env_sock; /* the tenant's environment, or NULL (channel scope) */
	enum net_mode network;
	const struct egress_rules *rules;
	const struct egress_local *local;
};

/* A connected TCP socket to host:port as the tenant may reach it, or -1
 * with a one-line reason in why. May block up to a few seconds. */
int forward_dial(const struct forward_ctx *f, const char *host, int port, char *why, size_t len);

#endif
