/* conn.h - one SSH connection, in its own process forked by the master:
 * key exchange and authentication as root within login_grace_time, tenant
 * preparation, then a root monitor and an unprivileged session process. */
#ifndef WARREN_CONN_H
#define WARREN_CONN_H

#include <libssh/server.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/policy.h"
#include "../sandbox/spawn.h"
#include "config.h"

struct conn_env {
	const struct server_conf *srv;
	ssh_bind bind;
	const char *init_helper;
	const struct host_facts *facts;
	const struct cg *cg;
	const struct bpf_blob *filters; /* [0] default, [1] nested_sandbox */
	int notify_fd; /* write 'A' here once authenticated (frees a max_startups slot) */
};

/* Never returns: exits the process. */
void conn_handle(int fd, const struct conn_env *env) __attribute__((noreturn));

#endif
