/* chanspawn.h - the root monitor's answer to MON_SPAWN (sandbox_scope =
 * channel): the channel's bwrap, started by a helper that joins the session
 * cgroup and becomes the tenant, so the session process never execs. */
#ifndef WARREN_CHANSPAWN_H
#define WARREN_CHANSPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "../sandbox/cgroup.h"
#include "monproto.h"

struct session_ctx;
struct sandbox_proc;

struct chanspawn {
	const struct session_ctx *sx; /* the tenant, its identity, policy inputs, filter */
	const struct cg *cg;
	long cg_id; /* the session cgroup */
	bool have_cg;
	int close_fds[4]; /* root's, closed in the helper before it drops */
	int nclose;
	int log_fd;        /* the helper's stderr: a pipe the monitor relays (log.h) */
	pid_t helpers[64]; /* running helpers, for the monitor to reap */
	int nhelpers;
};

/* struct monitor's spawn hook: ud is a struct chanspawn. */
int chanspawn_start(void *ud, const struct mon_spawn *req, char **argv, char **envp,
                    struct sandbox_proc *proc);
/* Reaps the helpers whose sandboxes have ended. */
void chanspawn_reap(struct chanspawn *cs);

#endif
