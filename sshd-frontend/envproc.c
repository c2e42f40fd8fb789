/* envproc.c - the env process (the tenant, no capabilities, outside the
 * sandbox): starts bwrap with warren-init --env, serves the egress proxy on
 * init's listener, hands the API listeners to the gateway, and ends when
 * the sandbox ends. envd.h tells the whole design. */
#include "envd.h"
#include "envd_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/fmt.h"
#include "../sandbox/initproto.h"
#include "../sandbox/strblob.h"
#include "../sandbox/workspace.h"
#include "../egress/apigw.h"
#include "audit.h"
#include "confine.h"
#include "evfd.h"
#include "log.h"
#include "monitor.h"
#include "privdrop.h"
#include "procinfo.h"
#include "../egress/proxy.h"

#define READY_TIMEOUT_MS 30000

struct envproc {
	const struct envd_ctx *ctx;
	ssh_event ev;
	struct proxy px;
	struct sandbox_proc proc;
	int proxy_listen;
	short ctl_reg, err_reg, sig_reg, listen_reg;
	int sigfd;
	int gw_fd;
	bool done;
	char errline[512];
	size_t errlen;
};

static int on_listen(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct envproc *e = ud;
	proxy_accept(&e->px, fd);
	return 0;
}

static void give_api(struct envproc *e, int port, int fd)
{
	if (envd_give_api(e->gw_fd, e->ctx->tenant->sandbox.api_mask, port, 0, fd) < 0)
		log_warn("environment %s: API endpoint not handed over: %s", e->ctx->tenant->name,
		         strerror(errno));
}

/* init's messages: its listeners (each checked, init runs as the tenant) */
static int on_ctl(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct envproc *e = ud;
	for (;;) {
		struct init_msg m;
		int passed;
		int got = init_msg_recv(fd, &m, &passed);
		if (got == 0)
			return 0;
		if (got < 0) {
			evfd_close(e->ev, &e->proc.ctl_fd, &e->ctl_reg);
			return -1; /* removed: libssh must not touch its handle again */
		}
		if (m.type == INIT_MSG_PROXY && e->proxy_listen < 0 &&
		    e->ctx->tenant->sandbox.network == NET_ALLOWLIST &&
		    envd_loopback_listener(passed)) {
			fcntl(passed, F_SETFL, fcntl(passed, F_GETFL) | O_NONBLOCK);
			e->proxy_listen = passed;
			passed = -1;
			evfd_want(e->ev, e->proxy_listen, &e->listen_reg, POLLIN, on_listen, e);
		} else if (m.type == INIT_MSG_API) {
			give_api(e, m.value, passed);
		}
		if (passed >= 0)
			close(passed);
	}
}

/* bwrap's and init's own complaints, one log line each */
static int on_stderr(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct envproc *e = ud;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		evfd_close(e->ev, &e->proc.stderr_fd, &e->err_reg);
		return -1; /* removed (as above) */
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n' && e->errlen < sizeof e->errline - 1) {
			e->errline[e->errlen++] = buf[i];
			continue;
		}
		if (buf[i] == '\n') {
			e->errline[e->errlen] = '\0';
			char safe[600];
			fmt_escape(safe, sizeof safe, e->errline);
			log_warn("environment %s: %s", e->ctx->tenant->name, safe);
			e->errlen = 0;
		}
	}
	return 0;
}

static int on_signal(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct envproc *e = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGTERM && e->proc.ctl_fd >= 0) {
			/* draining: end as soon as no connection is left */
			struct init_req r = {.type = INIT_REQ_LINGER, .value = 0};
			send(e->proc.ctl_fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
	int status;
	if (waitpid(e->proc.pid, &status, WNOHANG) == e->proc.pid)
		e->done = true;
	return 0;
}

int env_process(const struct envd_ctx *ctx, int listen_fd, int gw_fd)
{
	static struct envproc e;
	e = (struct envproc){.ctx = ctx, .proxy_listen = -1, .gw_fd = gw_fd};
	const struct tenant_conf *t = ctx->tenant;
	/* static: inlined into envd_join, a policy on the stack would be probed
	 * (and kept) by every login */
	static struct sandbox_policy pol;
	struct sandbox_identity sid = {.tenant = t->name,
	                               .uid = ctx->uid,
	                               .gid = ctx->gid,
	                               .workspace = ctx->workspace,
	                               .init_helper = ctx->init_helper};
	if (policy_build(&pol, &t->sandbox, &sid, ctx->facts, ctx->profile) < 0) {
		log_err("environment %s: sandbox policy too large", t->name);
		return 1;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	e.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	char *envp[] = {(char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
	char err[256];
	struct cg_limits lim = policy_cg_limits(&t->sandbox);
	long pids = ctx->cg->mode != CG_NONE ? cgroup_sandbox_pids(&lim) : 0;
	if (e.sigfd < 0 ||
	    spawn_environment(ctx->srv->bwrap, &pol, ctx->filter, listen_fd, t->sandbox.linger,
	                      pids, envp, &e.proc, err, sizeof err) < 0) {
		log_err("environment %s: cannot start the sandbox: %s", t->name, err);
		return 1;
	}
	close(listen_fd);
	close(e.proc.stdin_fd);
	close(e.proc.stdout_fd);
	e.ev = ssh_event_new();
	if (e.ev == NULL)
		return 1;
	/* from here on it parses what the sandbox sends: no exec, no process,
	 * no file written (confine.c) */
	int crc = confine_worker();
	if (crc < 0) {
		log_err("environment %s: seccomp for the proxy: %s", t->name, strerror(-crc));
		return 1;
	}
	proxy_init(&e.px, e.ev, &t->sandbox.egress, t->name, t->sandbox.proxy_max_connections,
	           t->sandbox.proxy_idle_timeout);
	evfd_want(e.ev, e.proc.ctl_fd, &e.ctl_reg, POLLIN, on_ctl, &e);
	evfd_want(e.ev, e.proc.stderr_fd, &e.err_reg, POLLIN, on_stderr, &e);
	evfd_want(e.ev, e.sigfd, &e.sig_reg, POLLIN, on_signal, &e);
	bool busy = false;
	while (!e.done) {
		evfd_dopoll(e.ev, &busy, e.px.resolving ? 5 : 1000);
		proxy_reconcile(&e.px);
	}
	proxy_shutdown(&e.px);
	return 0;
}
