/* apigw.h - warren's API gateway: per connection, a process of its own (the
 * server's api_uid, no capabilities, not dumpable) that holds the operator's
 * API keys. The session process hands it the listening sockets init opened
 * in each sandbox (127.0.0.1:SANDBOX_API_PORT+i); it forwards each request
 * to the upstream over TLS with the tenant's credentials replaced by the
 * operator's key, streams the response back, and reports every request's
 * usage to the root monitor, which keeps the tenant's daily totals and
 * answers whether the tenant is within budget. */
#ifndef WARREN_APIGW_H
#define WARREN_APIGW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../sshd-frontend/config.h"

/* gateway <-> monitor (SOCK_SEQPACKET). GW_BUDGET reserves reserve_tokens
 * for the request about to go (reserve.h), answered by gw_budget; GW_USAGE
 * reports what it used and settles its reservation. */
enum { GW_BUDGET = 1, GW_USAGE = 2 };

struct gw_msg {
	int32_t type;
	int32_t api; /* index of the server's [api] */
	int32_t status;
	int32_t duration_ms;
	int64_t bytes_up, bytes_down;
	int64_t input, output, cache_read, cache_creation;
	char model[64];
	char method[16];
	char path[160];
	int64_t reservation; /* GW_USAGE: the one GW_BUDGET took; 0: none */
};

struct gw_budget {
	int64_t used, budget; /* tokens today; budget 0 = none */
	int64_t reserved;     /* tokens reserved by requests in flight */
	int64_t reservation;  /* ok: this request's, to settle with GW_USAGE */
	int32_t ok;
	int32_t inflight; /* not ok for max_inflight, not for the budget */
};

/* session -> gateway: a listener for api `api` (SCM_RIGHTS) from channel
 * `channel`, or with type GW_CLOSE the end of that channel's listeners.
 * A listener on the host's own loopback (network = host) is reachable by
 * anyone there: each peer's socket owner (sock_diag) must be peer_uid. */
enum { GW_LISTEN = 1, GW_CLOSE = 2 };
struct gw_fdmsg {
	int32_t type;
	int32_t api;
	int32_t channel; /* -1: the connection's (network = host) */
	int32_t pad;
	int64_t peer_uid; /* >= 0: serve only peers whose socket has this uid */
};

/* The one checker of each message (gwcheck.c, pure; fuzz_gateway drives
 * them). gw_msg_check: a gw_msg of n bytes from the gateway, for one of
 * the tenant's apis (mask, of napis): NULL when it may be served (its
 * strings are then terminated in place), else why not. gw_fdmsg_check: a
 * gw_fdmsg of n bytes, with a descriptor or not, for apis in mask. */
const char *gw_msg_check(struct gw_msg *m, size_t n, int napis, unsigned mask);
const char *gw_fdmsg_check(const struct gw_fdmsg *m, size_t n, bool has_fd, unsigned mask);

struct apigw {
	pid_t pid;
	int monitor_fd; /* kept by the monitor */
	int session_fd; /* given to the session process */
};

/* Called by the root monitor: forks the gateway for this tenant's APIs
 * (mask), which reads the keys, drops to srv->api_uid and serves until the
 * session process closes its end. 0, or -1 (logged). */
int apigw_start(struct apigw *gw, const struct server_conf *srv, const char *tenant, unsigned mask);

/* main() of the re-executed gateway (warrend --api-gateway ...) */
int apigw_exec_main(int argc, char **argv);

/* monitor side: answer one message from the gateway on fd */
void apigw_serve_monitor(int fd, const struct server_conf *srv, const char *tenant, unsigned mask);

#endif
