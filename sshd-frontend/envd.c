/* envd.c - the tenant's environment (sandbox_scope = tenant): one running
 * sandbox per tenant on this host, shared by all of the tenant's channels
 * and connections, ending `linger` seconds after its last connection closed.
 *
 *   env monitor (root): forked by the first connection's monitor and handed
 *     to the master (a child subreaper), which lists, drains and kills it.
 *     Owns the environment's cgroup and API gateway, answers the gateway's
 *     budget questions, cleans up. SIGTERM (drain): linger becomes 0;
 *     SIGUSR2: the environment ends now.
 *   env process (the tenant, no capabilities): starts bwrap with
 *     warren-init --env, serves the egress proxy on init's listener, hands
 *     the API listeners to the gateway; ends when the sandbox ends.
 *   session processes (the tenant): one MEMBER connection to init for their
 *     lifetime, one connection per channel (envd_spawn) or forwarded stream
 *     (envd_connect), on state_dir/envs/<tenant>.sock (root's directory,
 *     the socket the tenant's uid's alone; no sandbox sees it). */
#include "envd.h"

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
#include "apigw.h"
#include "audit.h"
#include "confine.h"
#include "evfd.h"
#include "log.h"
#include "monitor.h"
#include "privdrop.h"
#include "procinfo.h"
#include "proxy.h"

#define READY_TIMEOUT_MS 30000

static int unix_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	return fmt_into(a->sun_path, sizeof a->sun_path, "%s", path);
}

/* A request on a fresh connection to init: the connected socket, or -1. */
static int dial(const char *path, const struct init_req *r, const int *fds, int nfds)
{
	struct sockaddr_un a;
	if (unix_addr(path, &a) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    fdpass_sendv(fd, r, sizeof *r, fds, nfds) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* One reply from init within ms; its fd (if any) in *fd. 0 or -1 (errno). */
static int await(int sock, struct init_msg *m, int *fd, int ms)
{
	struct pollfd pf = {.fd = sock, .events = POLLIN};
	int pr;
	do
		pr = poll(&pf, 1, ms);
	while (pr < 0 && errno == EINTR);
	if (pr == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	ssize_t n = fdpass_recv(sock, m, sizeof *m, fd, MSG_DONTWAIT);
	if (n != (ssize_t)sizeof *m) {
		if (n >= 0 && *fd >= 0)
			close(*fd);
		errno = n == 0 ? ECONNRESET : n < 0 ? errno : EPROTO;
		return -1;
	}
	return 0;
}

int envd_member(const char *path, int ms)
{
	struct init_req r = {.type = INIT_REQ_MEMBER};
	int fd = dial(path, &r, NULL, 0);
	if (fd < 0)
		return -1;
	struct init_msg m;
	int passed = -1;
	if (await(fd, &m, &passed, ms) < 0 || m.type != INIT_MSG_STARTED) {
		if (passed >= 0)
			close(passed);
		close(fd);
		return -1;
	}
	return fd;
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

int envd_spawn(const char *path, char *const argv[], char *const envp[], bool pty, int rows,
               int cols, struct sandbox_proc *out, char *err, size_t errlen)
{
	int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
	struct init_req r = {.type = INIT_REQ_SPAWN, .pty = pty, .rows = rows, .cols = cols};
	int mfd = strblob_memfd(argv, envp, &r.argc, &r.envc);
	if (mfd < 0) {
		snprintf(err, errlen, "command and environment: %s", strerror(errno));
		return -1;
	}
	if (!pty &&
	    (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(mfd);
		close_pair(in);
		close_pair(o);
		return -1;
	}
	int bulk[] = {in[1], o[0], e[0]};
	for (int i = 0; !pty && i < 3; i++)
		fcntl(bulk[i], F_SETPIPE_SZ, 1 << 20);
	int fds[4] = {mfd, in[0], o[1], e[1]};
	int sock = dial(path, &r, fds, pty ? 1 : 4);
	int saved = errno;
	close(mfd);
	if (!pty) {
		close(in[0]);
		close(o[1]);
		close(e[1]);
	}
	if (sock < 0) {
		snprintf(err, errlen, "your environment is not reachable (%s); log in again",
		         strerror(saved));
		if (!pty) {
			close(in[1]);
			close(o[0]);
			close(e[0]);
		}
		return -1;
	}
	*out = (struct sandbox_proc){.pid = 0,
	                             .stdin_fd = pty ? -1 : in[1],
	                             .stdout_fd = pty ? -1 : o[0],
	                             .stderr_fd = pty ? -1 : e[0],
	                             .ctl_fd = sock};
	int all[] = {out->stdin_fd, out->stdout_fd, out->stderr_fd, out->ctl_fd};
	for (int i = 0; i < 4; i++)
		if (all[i] >= 0)
			fcntl(all[i], F_SETFL, fcntl(all[i], F_GETFL) | O_NONBLOCK);
	return 0;
}

int envd_attach(const char *path, int id, int rows, int cols, struct sandbox_proc *out)
{
	struct init_req r = {.type = INIT_REQ_ATTACH, .value = id, .rows = rows, .cols = cols};
	int sock = dial(path, &r, NULL, 0);
	if (sock < 0)
		return -1;
	fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
	*out =
	    (struct sandbox_proc){.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .ctl_fd = sock};
	return 0;
}

int envd_detach(int ctl_fd, int master, const char *screen, size_t len)
{
	int mfd = memfd_create("warren-screen", MFD_CLOEXEC);
	if (mfd < 0)
		return -1;
	struct init_req r = {.type = INIT_REQ_DETACH};
	int fds[2] = {master, mfd};
	int rc = write(mfd, screen, len) == (ssize_t)len
	             ? fdpass_sendv(ctl_fd, &r, sizeof r, fds, 2)
	             : -1;
	close(mfd);
	return rc;
}

/* One request on a fresh connection, one answer within 5 s: 0 with *m and
 * the fd it passed (or -1), or -1 with errno. */
static int ask(const char *path, const struct init_req *r, struct init_msg *m, int *fd)
{
	int sock = dial(path, r, NULL, 0);
	if (sock < 0)
		return -1;
	*fd = -1;
	int rc = await(sock, m, fd, 5000);
	close(sock);
	return rc;
}

ssize_t envd_list(const char *path, char *buf, size_t len)
{
	struct init_req r = {.type = INIT_REQ_LIST};
	struct init_msg m;
	int fd;
	if (ask(path, &r, &m, &fd) < 0)
		return -1;
	struct stat st;
	ssize_t n = -1; /* a regular file (memfd) only: a pipe could hold us */
	if (m.type == INIT_MSG_LIST && fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = pread(fd, buf, len - 1, 0);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static int request_socket(const char *path, int type, int family, int port)
{
	struct init_req r = {.type = type, .value = port, .family = family};
	struct init_msg m;
	int fd;
	if (ask(path, &r, &m, &fd) < 0)
		return -1;
	if (m.type == INIT_MSG_SOCKET && fd >= 0)
		return fd;
	if (fd >= 0)
		close(fd);
	errno = m.type == INIT_MSG_ERROR && m.value > 0 ? m.value : EPROTO;
	return -1;
}

int envd_connect(const char *path, int family, int port)
{
	return request_socket(path, INIT_REQ_CONNECT, family, port);
}

int envd_listen(const char *path, int family, int port)
{
	return request_socket(path, INIT_REQ_LISTEN, family, port);
}

int envd_agent(int member_fd)
{
	struct init_req r = {.type = INIT_REQ_AGENT};
	return send(member_fd, &r, sizeof r, MSG_NOSIGNAL) == (ssize_t)sizeof r ? 0 : -1;
}

bool envd_loopback_listener(int fd)
{
	int listening = 0, type = 0;
	struct sockaddr_in a;
	socklen_t l = sizeof listening, lt = sizeof type, la = sizeof a;
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) == 0 && listening &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &lt) == 0 && type == SOCK_STREAM &&
	       getsockname(fd, (struct sockaddr *)&a, &la) == 0 && la == sizeof a &&
	       a.sin_family == AF_INET && a.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

/* ---- the env process: the tenant, outside the sandbox ---- */

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

int envd_give_api(int gw_sock, unsigned api_mask, int port, int channel, int fd)
{
	int api = port - SANDBOX_API_PORT;
	if (gw_sock < 0 || api < 0 || api >= SANDBOX_MAX_APIS || !(api_mask & (1u << api)) ||
	    !envd_loopback_listener(fd))
		return 0;
	struct gw_fdmsg m = {.type = GW_LISTEN, .api = api, .channel = channel, .peer_uid = -1};
	return fdpass_send(gw_sock, &m, sizeof m, fd) < 0 ? -1 : 1;
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
		ssize_t n = fdpass_recv(fd, &m, sizeof m, &passed, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			evfd_close(e->ev, &e->proc.ctl_fd, &e->ctl_reg);
			return -1; /* removed: libssh must not touch its handle again */
		}
		if (n == (ssize_t)sizeof m && m.type == INIT_MSG_PROXY && passed >= 0 &&
		    e->proxy_listen < 0 && e->ctx->tenant->sandbox.network == NET_ALLOWLIST &&
		    envd_loopback_listener(passed)) {
			fcntl(passed, F_SETFL, fcntl(passed, F_GETFL) | O_NONBLOCK);
			e->proxy_listen = passed;
			passed = -1;
			evfd_want(e->ev, e->proxy_listen, &e->listen_reg, POLLIN, on_listen, e);
		} else if (n == (ssize_t)sizeof m && m.type == INIT_MSG_API && passed >= 0) {
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

static int env_process(const struct envd_ctx *ctx, int listen_fd, int gw_fd)
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

/* ---- the env monitor: root ---- */

static volatile sig_atomic_t got_signal;

static unsigned long long read_number(const char *path, int base);

/* state_dir/envs/<tenant>.lock and .pid: who may replace the tenant's
 * environment (envd_join holds the lock) and which one runs */
static int env_files(const struct envd_ctx *ctx, char lock[PATH_MAX], char pidfile[PATH_MAX])
{
	const char *d = ctx->srv->state_dir, *t = ctx->tenant->name;
	return fmt_into(lock, PATH_MAX, "%s/envs/%s.lock", d, t) < 0 ||
	               fmt_into(pidfile, PATH_MAX, "%s/envs/%s.pid", d, t) < 0
	           ? -1
	           : 0;
}

/* The socket goes with its environment, unless a newer environment has the
 * path now. The inode alone cannot tell (ext4 gives a freed inode's number
 * to the next file: a login that retired this environment and bound a new
 * socket lost it to this unlink); the pid file, written under the lock the
 * login holds while it replaces us, can. */
static void remove_socket(const struct envd_ctx *ctx, const struct stat *mine)
{
	char lock[PATH_MAX], pidfile[PATH_MAX];
	struct stat st;
	if (env_files(ctx, lock, pidfile) < 0)
		return;
	int lfd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (lfd < 0)
		return;
	if (flock(lfd, LOCK_EX) == 0 && read_number(pidfile, 10) == (unsigned long long)getpid() &&
	    lstat(ctx->sock_path, &st) == 0 && st.st_ino == mine->st_ino &&
	    st.st_dev == mine->st_dev)
		unlink(ctx->sock_path);
	close(lfd);
}

/* Waits for the env process; serves the gateway; passes on drain and kill. */
static int monitor_loop(const struct envd_ctx *ctx, pid_t child, struct apigw *gw,
                        struct monitor *mon, const sigset_t *mask)
{
	int sfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int status = 0;
	for (;;) {
		struct pollfd pf[3] = {{.fd = sfd, .events = POLLIN},
		                       {.fd = gw->monitor_fd, .events = POLLIN},
		                       {.fd = mon->sock, .events = POLLIN}};
		int pr = poll(pf, 3, sfd >= 0 ? -1 : 500);
		if (pr > 0 && pf[2].revents)
			monitor_serve(mon); /* the env process's audit events (its proxy's) */
		if (pr > 0 && (pf[1].revents & POLLIN))
			apigw_serve_monitor(gw->monitor_fd, ctx->srv, ctx->tenant->name,
			                    ctx->tenant->sandbox.api_mask);
		else if (pr > 0 && pf[1].revents) {
			close(gw->monitor_fd);
			gw->monitor_fd = -1;
		}
		struct signalfd_siginfo si;
		while (sfd >= 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo == SIGTERM)
				kill(child, SIGTERM);
			else if (si.ssi_signo == SIGUSR2)
				kill(child,
				     SIGKILL); /* bwrap --die-with-parent; the cgroup the rest */
		}
		if (waitpid(child, &status, WNOHANG) == child)
			return status;
	}
}

static void __attribute__((noreturn))
env_monitor(const struct envd_ctx *ctx, int listen_fd, const struct stat *sock_st)
{
	const struct tenant_conf *t = ctx->tenant;
	long id = (long)getpid();
	/* the master's drain (SIGTERM) and kill (SIGUSR2) come by signalfd */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	prctl(PR_SET_NAME, "warren-env");
	struct cg_limits lim = policy_cg_limits(&t->sandbox);
	bool have_cg = false;
	int crc = cgroup_session_create(ctx->cg, t->name, id, &lim);
	if (crc < 0)
		log_err("environment %s: cgroup limits: %s", t->name, strerror(-crc));
	else {
		have_cg = ctx->cg->mode != CG_NONE;
		/* this monitor counts against the tenant too */
		if ((crc = cgroup_monitor_join(ctx->cg, t->name, getpid())) < 0)
			log_err("environment %s: monitor cgroup: %s", t->name, strerror(-crc));
		privdrop_oom_protect();
	}
	struct apigw gw = {.pid = -1, .monitor_fd = -1, .session_fd = -1};
	if (t->sandbox.api_mask && envd_serves_apis(&t->sandbox)) {
		if (apigw_start(&gw, ctx->srv, t->name, t->sandbox.api_mask) < 0)
			log_err("environment %s: API gateway: %s", t->name, strerror(errno));
		else if (have_cg && cgroup_attach(ctx->cg, t->name, id, gw.pid) < 0)
			log_warn("environment %s: API gateway outside its cgroup", t->name);
	}
	pid_t me = getpid();
	int msock[2] = {-1, -1};
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, msock) < 0)
		log_warn("environment %s: monitor socket: %s", t->name, strerror(errno));
	pid_t child = crc < 0 ? -1 : fork();
	if (child == 0) {
		if ((have_cg && cgroup_attach(ctx->cg, t->name, id, getpid()) < 0) ||
		    privdrop_to(ctx->uid, ctx->gid) < 0)
			_exit(1);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != me)
			_exit(1);
		if (gw.monitor_fd >= 0)
			close(gw.monitor_fd);
		if (msock[0] >= 0)
			close(msock[0]);
		waudit_forward(msock[1]); /* no audit fd in a tenant's process */
		prctl(PR_SET_NAME, "warren-envproxy");
		sigprocmask(SIG_UNBLOCK, &mask, NULL);
		_exit(env_process(ctx, listen_fd, gw.session_fd));
	}
	close(listen_fd);
	if (gw.session_fd >= 0)
		close(gw.session_fd);
	char lg[24];
	snprintf(lg, sizeof lg, "%ld", t->sandbox.linger);
	log_info("environment for %s started (linger %ld s)", t->name, t->sandbox.linger);
	waudit_event("env_start", "tenant", t->name, "#linger", lg, NULL);
	if (msock[1] >= 0)
		close(msock[1]);
	static struct monitor mon; /* zero; field by field (conn.c monitor_run) */
	mon.sock = msock[0];
	mon.audit_only = true;
	mon.tenant = t->name;
	mon.peer = child;
	mon.notify_fd = -1;
	int status = child > 0 ? monitor_loop(ctx, child, &gw, &mon, &mask) : 0;
	remove_socket(ctx, sock_st);
	if (gw.pid > 0) {
		kill(gw.pid, SIGKILL);
		waitpid(gw.pid, NULL, 0);
	}
	if (have_cg)
		cgroup_session_destroy(ctx->cg, t->name, id);
	int wfd = open(ctx->workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd >= 0) {
		syncfs(wfd); /* the environment's workspace writes, on disk */
		close(wfd);
	}
	log_info("environment for %s ended%s", t->name, WIFSIGNALED(status) ? " (killed)" : "");
	waudit_event("env_end", "tenant", t->name, NULL);
	_exit(0);
}

static void fnv(unsigned long long *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		*h ^= p[i];
		*h *= 1099511628211ULL;
	}
}

/* What an environment is built from: its bwrap options (mounts, tmpfs
 * sizes, network, the profile's mappings), its files, linger, limits, the
 * egress rules its proxy applies, disk_max. A login whose fingerprint
 * differs (a reload, a new profile) retires the running environment. */
static unsigned long long fingerprint(const struct envd_ctx *ctx)
{
	/* on the heap, given back after the login (malloc_trim): as a static
	 * it would keep 50 KiB dirty in every connection's monitor */
	struct sandbox_policy *pol = malloc(sizeof *pol);
	const struct sandbox_conf *sb = &ctx->tenant->sandbox;
	struct sandbox_identity sid = {.tenant = ctx->tenant->name,
	                               .uid = ctx->uid,
	                               .gid = ctx->gid,
	                               .workspace = ctx->workspace,
	                               .init_helper = ctx->init_helper};
	unsigned long long h = 1469598103934665603ULL;
	if (pol == NULL || policy_build(pol, sb, &sid, ctx->facts, ctx->profile) < 0) {
		free(pol);
		return h;
	}
	for (int i = 0; i < pol->nfiles; i++) {
		pol->files[i].fd = 100 + i;
		fnv(&h, pol->files[i].content, strlen(pol->files[i].content) + 1);
	}
	pol->seccomp_fd = 99;
	struct init_opts io = {.ctl_fd = 98,
	                       .env = true,
	                       .env_fd = 97,
	                       .linger = sb->linger,
	                       .api_mask = pol->api_mask};
	struct strv args = {0};
	char *none[] = {NULL};
	if (policy_render(pol, &io, none, &args) == 0)
		for (size_t i = 0; i < args.n; i++)
			fnv(&h, args.v[i], strlen(args.v[i]) + 1);
	strv_free(&args);
	free(pol);
	long nums[] = {(long)sb->disk_max, (long)sb->memory_max,      sb->pids_max,
	               sb->cpu_max_milli,  sb->proxy_max_connections, sb->proxy_idle_timeout,
	               sb->nested_sandbox};
	fnv(&h, nums, sizeof nums);
	for (int i = 0; i < sb->egress.n; i++) {
		char rule[300];
		egress_rule_text(&sb->egress.r[i], rule, sizeof rule);
		fnv(&h, rule, strlen(rule) + 1);
	}
	return h;
}

static unsigned long long read_number(const char *path, int base)
{
	char buf[32] = "";
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (!fgets(buf, sizeof buf, f))
		buf[0] = '\0';
	fclose(f);
	return strtoull(buf, NULL, base);
}

static void write_number(const char *path, int base, unsigned long long v)
{
	FILE *f = fopen(path, "we");
	if (f == NULL)
		return;
	fprintf(f, base == 16 ? "%llx\n" : "%llu\n", v);
	fclose(f);
}

/* The running environment was built from another configuration: it takes
 * no new members (its socket goes) and ends with its last connection. */
static void retire(const struct envd_ctx *ctx, const char *pidfile)
{
	long pid = (long)read_number(pidfile, 10);
	char comm[32];
	if (procinfo_ppid(pid) == (long)ctx->master_pid &&
	    procinfo_comm(pid, comm, sizeof comm) == 0 && strcmp(comm, "warren-env") == 0)
		kill((pid_t)pid, SIGTERM);
	log_info("environment for %s: configuration changed; new logins get a new one, the "
	         "running one ends with its last connection",
	         ctx->tenant->name);
}

/* A listening socket at path, the tenant's uid's alone. */
static int make_listener(const char *path, uid_t uid, gid_t gid, struct stat *st)
{
	struct sockaddr_un a;
	if (unix_addr(path, &a) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (rc < 0 || listen(fd, 128) < 0 || chown(path, uid, gid) < 0 || lstat(path, st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Forks the env monitor twice removed, so that it becomes the master's
 * child at once; returns its pid. Not inlined: the env monitor's frame
 * would be probed on the stack of every login. */
__attribute__((noinline)) static pid_t start_environment(const struct envd_ctx *ctx, int lfd,
                                                         const struct stat *st)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t mid = fork();
	if (mid < 0) {
		close_pair(p);
		return -1;
	}
	if (mid == 0) {
		close(p[0]);
		pid_t parent = getpid();
		pid_t pid = fork();
		if (pid == 0) {
			close(p[1]);
			/* wait until the middle process is gone, then we are the master's */
			for (int i = 0; i < 2000 && getppid() == parent; i++)
				nanosleep(&(struct timespec){0, 1000000}, NULL);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != ctx->master_pid)
				_exit(1);
			ssh_free(ctx->session); /* no client bytes and no host key here */
			ssh_bind_free(ctx->bind);
			for (int i = 0; i < ctx->nclose; i++)
				close(ctx->close_fds[i]);
			env_monitor(ctx, lfd, st);
		}
		ssize_t w = write(p[1], &pid, sizeof pid);
		(void)w;
		_exit(0);
	}
	close(p[1]);
	pid_t pid = -1;
	if (read(p[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
		pid = -1;
	close(p[0]);
	waitpid(mid, NULL, 0);
	return pid;
}

int envd_join(const struct envd_ctx *ctx, pid_t *started, char *err, size_t errlen)
{
	char dir[PATH_MAX], lock[PATH_MAX], fpfile[PATH_MAX], pidfile[PATH_MAX];
	*started = 0;
	if (fmt_into(dir, sizeof dir, "%s/envs", ctx->srv->state_dir) < 0 ||
	    fmt_into(fpfile, sizeof fpfile, "%s/%s.conf-hash", dir, ctx->tenant->name) < 0 ||
	    env_files(ctx, lock, pidfile) < 0 || state_mkdir(dir, 0711) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	unsigned long long fp = fingerprint(ctx);
	/* a running environment answers a member; one that is only slow (a
	 * burst of logins on a busy host) is waited for, never replaced: only
	 * a refused connection or a closing init means there is none */
	int member = envd_member(ctx->sock_path, READY_TIMEOUT_MS);
	if (member < 0 && errno == ETIMEDOUT) {
		snprintf(err, errlen, "%s: the environment did not answer within %d s",
		         ctx->sock_path, READY_TIMEOUT_MS / 1000);
		flock(lfd, LOCK_UN);
		close(lfd);
		return -1;
	}
	if (member >= 0 && read_number(fpfile, 16) != fp) {
		retire(ctx, pidfile);
		close(member);
		member = -1;
	}
	if (member < 0) {
		struct stat st;
		int listen_fd = make_listener(ctx->sock_path, ctx->uid, ctx->gid, &st);
		pid_t pid = listen_fd < 0 ? -1 : start_environment(ctx, listen_fd, &st);
		if (listen_fd >= 0)
			close(listen_fd);
		if (pid > 0) {
			*started = pid;
			write_number(fpfile, 16, fp);
			write_number(pidfile, 10, (unsigned long long)pid);
			member = envd_member(ctx->sock_path, READY_TIMEOUT_MS);
		}
		if (member < 0)
			snprintf(err, errlen, "%s: %s", ctx->sock_path, strerror(errno));
	}
	flock(lfd, LOCK_UN);
	close(lfd);
	return member;
}
