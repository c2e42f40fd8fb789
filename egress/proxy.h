/* proxy.h - the egress proxy for network = allowlist: an HTTP proxy (CONNECT
 * and absolute-URI requests) served by the unprivileged session process, as
 * the tenant, on a listener warren-init opened inside the sandbox's network
 * namespace. Every request is checked against the tenant's rules by name and
 * again after resolution. */
#ifndef WARREN_PROXY_H
#define WARREN_PROXY_H

#include <libssh/libssh.h>
#include <stdint.h>

#include "rules.h"

struct pconn;

struct proxy {
	ssh_event event;
	const struct egress_rules *rules;
	const char *tenant;
	long max_conns;
	long idle_timeout;
	struct pconn *conns;
	struct pconn *orphans; /* closed, but a lookup may still write into them */
	int nconns;
	int resolving; /* lookups in flight: the session loop polls faster meanwhile */
	uint64_t bytes_up, bytes_down; /* totals for the session */
	/* this host's addresses, refused like loopback: allocated when there
	 * are rules (NULL: none) */
	struct egress_local *local;
};

void proxy_init(struct proxy *px, ssh_event ev, const struct egress_rules *rules,
                const char *tenant, long max_conns, long idle_timeout);
/* Accepts every pending connection on a sandbox's listener. */
void proxy_accept(struct proxy *px, int listen_fd);
/* Outside dopoll: (de)register fds, enforce idle timeouts, free closed conns. */
void proxy_reconcile(struct proxy *px);
void proxy_shutdown(struct proxy *px);

#endif
