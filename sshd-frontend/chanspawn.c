/* chanspawn.c - MON_SPAWN served by the root monitor: the helper it forks
 * closes root's descriptors, joins the session cgroup, drops to the tenant
 * (privdrop_to: no capabilities, no_new_privs), starts bwrap for the
 * channel's policy, hands its descriptors back and stays as bwrap's parent
 * (--die-with-parent) until the sandbox ends. The session process gets the
 * descriptors and never forks or execs (it runs under confine.c). */
#include "chanspawn.h"
#include "../sandbox/fork.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/policy.h"
#include "../sandbox/spawn.h"
#include "audit.h"
#include "log.h"
#include "privdrop.h"
#include "session.h"
#include "spawnproto.h"

static int send_proc(int sock, const struct sandbox_proc *p, int rc, const char *err)
{
	struct spawn_reply r = {.rc = rc};
	snprintf(r.err, sizeof r.err, "%s", err);
	int fds[4], mask = 0;
	int n = rc == 0 ? sandbox_proc_pack(p, fds, &mask) : 0;
	r.mask = mask;
	return fdpass_sendv(sock, &r, sizeof r, fds, n);
}

static _Noreturn void helper(const struct chanspawn *cs, const struct mon_spawn *req, char **argv,
                             char **envp, int sock, pid_t monitor)
{
	const struct session_ctx *sx = cs->sx;
	for (int i = 0; i < cs->nclose; i++)
		if (cs->close_fds[i] >= 0)
			close(cs->close_fds[i]);
	if (cs->log_fd >= 0) { /* not the log file: the tenant's uid comes next */
		dup2(cs->log_fd, 1);
		dup2(cs->log_fd, 2);
	}
	waudit_forward(-1); /* no audit fd in a tenant's process */
	if ((cs->have_cg && cgroup_attach(cs->cg, sx->tenant->name, cs->cg_id, getpid()) < 0) ||
	    privdrop_to(sx->id.uid, sx->id.gid) < 0)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the drop: setuid clears it */
	if (getppid() != monitor)
		_exit(1);
	prctl(PR_SET_NAME, "warren-spawn");
	struct sandbox_identity sid = {.tenant = sx->tenant->name,
	                               .uid = sx->id.uid,
	                               .gid = sx->id.gid,
	                               .workspace = sx->workspace,
	                               .init_helper = sx->init_helper};
	struct sandbox_policy *pol = malloc(sizeof *pol);
	struct sandbox_proc proc = {
	    .pid = -1, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .ctl_fd = -1};
	char err[200] = "sandbox policy too large";
	int rc = pol == NULL ||
	                 policy_build(pol, &sx->tenant->sandbox, &sid, &sx->facts, sx->profile) < 0
	             ? -E2BIG
	             : spawn_sandbox(sx->srv->bwrap, pol, sx->filter, req->pty, req->rows,
	                             req->cols, argv, envp, &proc, err, sizeof err);
	send_proc(sock, &proc, rc < 0 ? rc : 0, err);
	close(sock);
	if (rc < 0)
		_exit(1);
	sandbox_proc_close_fds(&proc); /* the monitor's now */
	int status = 0;
	while (waitpid(proc.pid, &status, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* the helper's answer: its descriptors into proc */
static int take_proc(int sock, struct sandbox_proc *proc)
{
	struct spawn_reply r = {.rc = -EIO};
	int fds[4], n = 0;
	struct timeval tmo = {30, 0};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	ssize_t got = fdpass_recvv(sock, &r, sizeof r, fds, 4, &n, 0);
	const char *why = got < 0 ? "no reply" : spawn_reply_check(&r, (size_t)got, n);
	if (why) {
		log_warn("channel sandbox: the spawn helper's reply refused: %s", why);
		r.rc = -EIO;
	}
	if (sandbox_proc_unpack(proc, r.rc == 0 ? r.mask : 0, fds, n) == 0)
		return 0;
	if (r.rc < 0 && !why)
		log_warn("channel sandbox: %s", r.err); /* bwrap's or the policy's words */
	return r.rc < 0 ? r.rc : -EIO;
}

int chanspawn_start(void *ud, const struct mon_spawn *req, char **argv, char **envp,
                    struct sandbox_proc *proc)
{
	struct chanspawn *cs = ud;
	if (cs->nhelpers == (int)(sizeof cs->helpers / sizeof cs->helpers[0]))
		return -EAGAIN; /* that many channel sandboxes at once: enough */
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	pid_t monitor = getpid();
	pid_t pid = fork_child(0, NULL, 0);
	if (pid == 0) {
		close(sp[0]);
		helper(cs, req, argv, envp, sp[1], monitor);
	}
	close(sp[1]);
	if (pid < 0) {
		int e = errno;
		close(sp[0]);
		return -e;
	}
	cs->helpers[cs->nhelpers++] = pid;
	int rc = take_proc(sp[0], proc);
	close(sp[0]);
	return rc;
}

void chanspawn_reap(struct chanspawn *cs)
{
	for (int i = cs->nhelpers - 1; i >= 0; i--)
		if (waitpid(cs->helpers[i], NULL, WNOHANG) == cs->helpers[i])
			cs->helpers[i] = cs->helpers[--cs->nhelpers];
}
