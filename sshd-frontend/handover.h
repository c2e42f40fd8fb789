/* handover.h - what the root monitor hands its pre-auth process when the
 * login is prepared (the answer to MON_LOGIN): the tenant's settings and the
 * session's paths by value in a sealed memfd, and the descriptors the
 * session needs. Root only writes it; it never reads anything back. */
#ifndef WARREN_HANDOVER_H
#define WARREN_HANDOVER_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../sandbox/policy.h"
#include "../sandbox/profile.h"
#include "config.h"

struct handover {
	struct tenant_conf tenant; /* its pointers are cleared */
	uid_t uid;
	gid_t gid;
	char id_source[48];
	char workspace[PATH_MAX];
	char sessions_dir[PATH_MAX];
	char env_sock[PATH_MAX];
	char fail[200];
	bool have_profile;
	struct profile profile;
	int filter; /* index into conn_env.filters */
	int host_api_port[SANDBOX_MAX_APIS];
};

/* the descriptors that go with it (-1: none) */
enum { HO_ROOT, HO_MEMBER, HO_API, HO_NFDS };

/* The one checker, on the receiving side: every string terminated within
 * its array, counts and indexes within bounds, a tenant's ids (never 0):
 * NULL, or why not. Root wrote it; the check keeps a root-side mistake
 * from reaching the tenant's process as out-of-bounds reads. */
const char *handover_check(const struct handover *h);

/* Monitor: 0, or -1 with errno. */
int handover_send(int sock, const struct handover *h, const int fds[HO_NFDS]);
/* Pre-auth process: 0 with *h and fds filled, or -1. */
int handover_recv(int sock, struct handover *h, int fds[HO_NFDS]);

#endif
