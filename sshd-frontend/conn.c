/* conn.c - the per-connection process, as a sequence (conn_handle):
 *   1. fork: the child is the pre-auth process (preauth.c: its own uid, a
 *      user namespace, an empty root, seccomp), which alone speaks to the
 *      client; this process stays root as its monitor;
 *   2. preauth: key exchange in the child, authentication decided here
 *      (monauth.c: policy, PAM, max_auth_tries), bounded by
 *      login_grace_time;
 *   3. login: root preparation: tenant, workspace, profile, connection slot,
 *      cgroup, PAM session, environment, API gateway;
 *   4. hand over: the child's cgroup, the tenant's ids mapped into its
 *      namespace, the login sent (handover.h); it becomes the tenant and
 *      serves channels (session.c);
 *   5. monitor_run: answers the session process's requests, root's
 *      session_timeout, PAM close, cgroup cleanup. */
#include "conn.h"
#include "../sandbox/fork.h"
#include "../sandbox/fmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "../sandbox/disk.h"
#include "../sandbox/fdpass.h"
#include "../sandbox/profile.h"
#include "../sandbox/workspace.h"
#include "../pam/pam.h"
#include "../egress/apigw.h"
#include "audit.h"
#include "chanspawn.h"
#include "envd.h"
#include "handover.h"
#include "monauth.h"
#include "preauth.h"
#include "record.h"
#include "log.h"
#include "monitor.h"
#include "notify.h"
#include "privdrop.h"
#include "slots.h"
#include "session.h"
#include "warm.h"
#include "tenant.h"

struct conn {
	const struct conn_env *env;
	struct auth_ctx a; /* what authentication found: tenant, methods, PAM */
};

static volatile pid_t monitor_child;

static void monitor_forward(int sig)
{
	if (monitor_child > 0)
		kill(monitor_child, sig == SIGTERM ? SIGUSR1 : SIGUSR2);
}

static void grace_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "warrend: login grace time exceeded, closing\n";
	ssize_t w = write(2, msg, sizeof msg - 1);
	(void)w;
	_exit(1);
}

static void describe_peer(int fd, struct conn *cx, char *conn_str, size_t len)
{
	struct sockaddr_storage pa, la;
	socklen_t pl = sizeof pa, ll = sizeof la;
	char ph[INET6_ADDRSTRLEN] = "?", pp[8] = "0", lh[INET6_ADDRSTRLEN] = "?", lp[8] = "0";
	if (getpeername(fd, (struct sockaddr *)&pa, &pl) == 0)
		getnameinfo((struct sockaddr *)&pa, pl, ph, sizeof ph, pp, sizeof pp,
		            NI_NUMERICHOST | NI_NUMERICSERV);
	if (getsockname(fd, (struct sockaddr *)&la, &ll) == 0)
		getnameinfo((struct sockaddr *)&la, ll, lh, sizeof lh, lp, sizeof lp,
		            NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(cx->a.peer, sizeof cx->a.peer, "%s:%s", ph, pp);
	snprintf(cx->a.peer_host, sizeof cx->a.peer_host, "%s", ph);
	snprintf(conn_str, len, "%s %s %s %s", ph, pp, lh, lp);
}

/* Root, after authentication: the last privileged work for this login. */
static int prepare_tenant(struct conn *cx, struct session_ctx *sx)
{
	char err[512], ws[PATH_MAX], dir[PATH_MAX];
	if (tenant_resolve(cx->env->srv, &cx->a.tenant, &sx->id, err, sizeof err) < 0) {
		log_err("tenant %s: %s", cx->a.tenant.name, err);
		return -1;
	}
	if (workspace_ensure(cx->env->srv->state_dir, cx->a.tenant.name, sx->id.uid, sx->id.gid,
	                     cx->env->srv->template_dir, ws, sizeof ws, err, sizeof err) < 0) {
		log_err("tenant %s: %s", cx->a.tenant.name, err);
		return -1;
	}
	if ((sx->workspace = strdup(ws)) == NULL) {
		log_err("tenant %s: out of memory", cx->a.tenant.name);
		return -1;
	}
	if (cx->a.tenant.sandbox.disk_max &&
	    disk_ensure(cx->env->srv->state_dir, cx->a.tenant.name, sx->workspace, sx->id.uid,
	                sx->id.gid, cx->a.tenant.sandbox.disk_max, err, sizeof err) < 0) {
		log_err("tenant %s: workspace filesystem (disk_max): %s", cx->a.tenant.name, err);
		return -1;
	}
	/* running sessions of this tenant, one file each, counted for max_sessions */
	char top[PATH_MAX];
	if (fmt_into(top, sizeof top, "%s/sessions", cx->env->srv->state_dir) < 0 ||
	    fmt_into(dir, sizeof dir, "%s/%s", top, cx->a.tenant.name) < 0) {
		log_err("tenant %s: state_dir path too long", cx->a.tenant.name);
		return -1;
	}
	if ((sx->sessions_dir = strdup(dir)) == NULL) {
		log_err("tenant %s: out of memory", cx->a.tenant.name);
		return -1;
	}
	/* root's: the monitor counts max_sessions there (older versions gave
	 * it to the tenant: taken back) */
	if (state_mkdir(top, 0711) < 0 || (mkdir(sx->sessions_dir, 0700) < 0 && errno != EEXIST) ||
	    chown(sx->sessions_dir, 0, 0) < 0 || chmod(sx->sessions_dir, 0700) < 0) {
		log_err("tenant %s: %s: %s", cx->a.tenant.name, sx->sessions_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* max_connections: one slot per connection in a root-owned directory,
 * named after this (the monitor's) pid; the monitor frees it at the end */
static void claim_connection(struct conn *cx, struct session_ctx *sx, char *dir, size_t len)
{
	char top[PATH_MAX];
	long max = cx->a.tenant.sandbox.max_connections, held = 0;
	if (max <= 0)
		return;
	if (fmt_into(top, sizeof top, "%s/connections", cx->env->srv->state_dir) < 0 ||
	    fmt_into(dir, len, "%s/%s", top, cx->a.tenant.name) < 0 || state_mkdir(top, 0700) < 0 ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		log_warn("tenant %s: connection slots: %s", cx->a.tenant.name, strerror(errno));
		dir[0] = '\0';
		return;
	}
	if (slots_claim(dir, max, getpid(), &held) < 0) {
		dir[0] = '\0';
		snprintf(
		    sx->fail, sizeof sx->fail,
		    "connection limit reached: %ld connections are open (max_connections = %ld)",
		    held, max);
		log_warn("tenant %s from %s: max_connections (%ld) reached", cx->a.tenant.name,
		         cx->a.peer, max);
		waudit_event("limit_refused", "limit", "max_connections", "tenant",
		             cx->a.tenant.name, "source", cx->a.peer, NULL);
	}
}

/* The tenant's toolchain: built by root from the admin's flake on a cache
 * miss, never from anything the tenant controls. */
static void prepare_profile(struct conn *cx, struct session_ctx *sx)
{
	const struct server_conf *srv = cx->env->srv;
	const char *name = cx->a.tenant.sandbox.profile;
	if (srv->profiles_dir == NULL || !strcmp(name, "none"))
		return;
	struct profile_builder b = {.profiles_dir = srv->profiles_dir,
	                            .state_dir = srv->state_dir,
	                            .nix = srv->nix,
	                            .offline = srv->nix_offline};
	char err[600], detail[1500];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct profile *prof = calloc(1, sizeof *prof);
	if (prof == NULL) {
		snprintf(sx->fail, sizeof sx->fail, "profile '%.60s': out of memory", name);
		return;
	}
	if (profile_activate(&b, name, prof, err, sizeof err, detail, sizeof detail) < 0) {
		free(prof);
		log_err("tenant %s: %s", cx->a.tenant.name, err);
		/* nix's own words, last lines only, one log line each */
		for (char *line = strtok(detail, "\n"); line; line = strtok(NULL, "\n"))
			log_err("  nix: %s", line);
		snprintf(sx->fail, sizeof sx->fail,
		         "profile '%.60s' is not available; the operator's log has details", name);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000L;
	sx->profile = prof;
	log_info("profile %s for %s: %s (%s, %ld us)", name, cx->a.tenant.name, prof->store,
	         prof->cache_hit ? "cache hit" : "built", us);
}

/* sandbox_scope = tenant: join the tenant's running environment, or start
 * it; the master learns of a new one ("E<pid>", right after "A<tenant>"). */
static void join_environment(struct conn *cx, struct session_ctx *sx, const struct conn_env *env)
{
	const struct server_conf *srv = cx->env->srv;
	char line[NOTE_MAX];
	pid_t started = 0;
	if (!sx->fail[0] && !cx->a.tenant.sandbox.scope_channel) {
		static struct envd_ctx ctx;
		ctx = (struct envd_ctx){.srv = srv,
		                        .tenant = &cx->a.tenant,
		                        .uid = sx->id.uid,
		                        .gid = sx->id.gid,
		                        .workspace = sx->workspace,
		                        .init_helper = sx->init_helper,
		                        .facts = &sx->facts,
		                        .profile = sx->profile,
		                        .filter = sx->filter,
		                        .cg = env->cg,
		                        .master_pid = getppid(),
		                        .close_fds = {env->notify_fd, cx->a.sock},
		                        .nclose = 2,
		                        .session = NULL,
		                        .bind = NULL};
		char err[PATH_MAX + 100];
		if (fmt_into(ctx.sock_path, sizeof ctx.sock_path, "%s/envs/%s.sock", srv->state_dir,
		             cx->a.tenant.name) < 0 ||
		    (sx->env_member = envd_join(&ctx, &started, err, sizeof err)) < 0) {
			log_err("tenant %s: environment: %s", cx->a.tenant.name, err);
			snprintf(sx->fail, sizeof sx->fail,
			         "your environment could not be started; the operator's log has "
			         "details");
		}
		if ((sx->env_sock = strdup(ctx.sock_path)) == NULL) {
			sx->env_sock = "";
			snprintf(sx->fail, sizeof sx->fail, "out of memory");
		}
	}
	char pid[24];
	snprintf(pid, sizeof pid, "%ld", (long)started);
	size_t n = notify_line(line, NOTE_ENV, pid);
	if (write(env->notify_fd, line, n) < 0)
		log_debug("notify master: %s", strerror(errno));
}

/* What login prepared, shared by the monitor and the session process. */
struct login {
	struct log_relay relay; /* the pre-auth, then session, process's stderr */
	int logw;               /* its write end: kept for the spawn helpers */
	long cg_id;             /* the session cgroup, named after the monitor's pid */
	bool have_cg;
	char conn_dir[PATH_MAX]; /* max_connections slot */
	struct apigw gw;
	int monsock[2]; /* monitor <-> session process */
	sigset_t chld;  /* SIGCHLD, blocked: the monitor waits on a signalfd */
	pid_t monitor;
};

static void log_accepted(const struct conn *cx)
{
	char methods[64] = "";
	static const unsigned bits[] = {AM_PUBLICKEY, AM_PASSWORD, AM_KBDINT};
	static const char *const names[] = {"publickey", "password", "keyboard-interactive"};
	for (int i = 0; i < 3; i++)
		if (cx->a.done & bits[i])
			snprintf(methods + strlen(methods), sizeof methods - strlen(methods),
			         "%s%s", methods[0] ? "+" : "", names[i]);
	log_info("accepted %s for %s from %s", methods, cx->a.tenant.name, cx->a.peer);
	waudit_event("auth_success", "tenant", cx->a.tenant.name, "source", cx->a.peer, "method",
	             methods, NULL);
}

/* Limits for this session (and the tenant's total), named after the
 * monitor's pid so a restart can tell live sessions from leftovers. */
static void login_limits(struct conn *cx, struct session_ctx *sx, struct login *lg)
{
	const struct conn_env *env = cx->env;
	const struct sandbox_conf *sb = &cx->a.tenant.sandbox;
	struct cg_limits lim = policy_cg_limits(sb);
	int crc = cgroup_session_create(env->cg, cx->a.tenant.name, lg->cg_id, &lim);
	if (crc < 0) {
		log_err("tenant %s: cgroup limits: %s", cx->a.tenant.name, strerror(-crc));
		snprintf(sx->fail, sizeof sx->fail,
		         "resource limits could not be applied; the operator's log has details");
		cgroup_session_destroy(env->cg, cx->a.tenant.name, lg->cg_id);
	} else if (cgroup_tenant_pids_free(env->cg, cx->a.tenant.name) < 2) {
		/* this monitor and its session process count against the tenant
		 * too: no room for them, no session */
		log_warn("tenant %s: pids_max (%ld) reached; connection refused", cx->a.tenant.name,
		         sb->pids_max);
		snprintf(sx->fail, sizeof sx->fail,
		         "process limit reached: pids_max = %ld processes are running",
		         sb->pids_max);
		cgroup_session_destroy(env->cg, cx->a.tenant.name, lg->cg_id);
	} else {
		lg->have_cg = env->cg->mode != CG_NONE;
	}
}

/* Root preparation after authentication: tenant, workspace, profile,
 * connection slot, cgroup, PAM session, environment, API gateway. A step
 * that fails sets sx->fail: each request is then answered with one line. */
static void login(struct conn *cx, struct session_ctx *sx, struct login *lg)
{
	const struct conn_env *env = cx->env;
	if (prepare_tenant(cx, sx) < 0) {
		/* Authenticated, but no session can be had: answer each request
		 * with one clear line, as nobody, rather than drop the connection. */
		snprintf(sx->fail, sizeof sx->fail,
		         "your workspace could not be prepared; the operator's log has details");
		sx->id.uid = 65534;
		sx->id.gid = 65534;
		sx->id.source = "nobody (tenant preparation failed)";
	} else {
		prepare_profile(cx, sx);
	}
	if (!sx->fail[0])
		claim_connection(cx, sx, lg->conn_dir, sizeof lg->conn_dir);
	if (!sx->fail[0])
		login_limits(cx, sx, lg);
	/* PAM session: opened here, closed by the monitor after the session */
	if (cx->a.pam && !sx->fail[0]) {
		char msg[256];
		if (wpam_session_open(cx->a.pam, msg, sizeof msg) < 0) {
			log_err("tenant %s: pam_open_session: %s", cx->a.tenant.name, msg);
			/* the client's line may be cut; the log above has it whole */
			snprintf(sx->fail, sizeof sx->fail, "session refused: %.160s", msg);
		}
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	/* tell the master who this is (frees a max_startups slot) */
	char note[NOTE_MAX];
	size_t nl = notify_line(note, NOTE_AUTH, cx->a.tenant.name);
	if (write(env->notify_fd, note, nl) < 0)
		log_debug("notify master: %s", strerror(errno));
	sx->filter = &env->filters[cx->a.tenant.sandbox.nested_sandbox ? 1 : 0];
	sx->env_member = -1;
	join_environment(cx, sx, env);
	/* the tenant's APIs: a gateway process of their own holds the keys */
	lg->gw = (struct apigw){.pid = -1, .monitor_fd = -1, .session_fd = -1};
	if (!sx->fail[0] && cx->a.tenant.sandbox.api_mask &&
	    !envd_serves_apis(&cx->a.tenant.sandbox)) {
		if (apigw_start(&lg->gw, env->srv, cx->a.tenant.name,
		                cx->a.tenant.sandbox.api_mask) < 0)
			log_err("tenant %s: API gateway: %s", cx->a.tenant.name, strerror(errno));
		else if (lg->have_cg &&
		         cgroup_attach(env->cg, cx->a.tenant.name, lg->cg_id, lg->gw.pid) < 0)
			log_warn("tenant %s: API gateway outside the session cgroup",
			         cx->a.tenant.name);
	}
}

/* A recording outgrew record_max_bytes: the session process wrote past the
 * cap it keeps itself; the monitor cut the file back (monitor_record_over). */
static void record_enforced(struct conn *cx, const struct monitor *mon)
{
	char cap[24];
	snprintf(cap, sizeof cap, "%llu", mon->record_max);
	log_warn("tenant %s: a recording grew past record_max_bytes (%s); the monitor cut it "
	         "back and ends the session process",
	         cx->a.tenant.name, cap);
	waudit_event("limit_enforced", "tenant", cx->a.tenant.name, "limit", "record_max_bytes",
	             "#max", cap, "by", "monitor", NULL);
}

/* The monitor's loop: requests from the session process, the gateway's
 * metering, root's session_timeout and record_max_bytes; returns the session
 * process's status. */
static int monitor_wait(struct conn *cx, struct login *lg, struct monitor *mon, pid_t child,
                        struct chanspawn *cs)
{
	const struct server_conf *srv = cx->env->srv;
	int status = 0;
	int cfd = signalfd(-1, &lg->chld, SFD_CLOEXEC | SFD_NONBLOCK);
	bool ended = false;
	for (;;) {
		struct pollfd pf[4] = {{.fd = mon->sock, .events = POLLIN},
		                       {.fd = cfd, .events = POLLIN},
		                       {.fd = lg->gw.monitor_fd, .events = POLLIN},
		                       {.fd = lg->relay.fd, .events = POLLIN}};
		int dl = ended ? -1 : monitor_wake_ms(mon);
		int pr = poll(pf, 4, cfd < 0 ? 500 : dl);
		if (pr > 0 && pf[3].revents)
			log_relay_pump(&lg->relay);
		if (pr > 0 && (pf[2].revents & POLLIN))
			apigw_serve_monitor(lg->gw.monitor_fd, srv, cx->a.tenant.name,
			                    cx->a.tenant.sandbox.api_mask);
		else if (pr > 0 && (pf[2].revents & (POLLHUP | POLLERR))) {
			close(lg->gw.monitor_fd);
			lg->gw.monitor_fd = -1;
		}
		if (pr > 0 && pf[0].revents)
			monitor_serve(mon); /* closes it at EOF */
		if (pr > 0 && (pf[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			while (read(cfd, &si, sizeof si) > 0)
				;
		}
		if (!ended && monitor_overdue(mon)) {
			/* the session process did not end a channel at
			 * session_timeout: root ends the whole session */
			log_warn("tenant %s: a channel outlived session_timeout (%ld s) by %d s; "
			         "the monitor ends the session process",
			         cx->a.tenant.name, mon->session_timeout, MON_TIMEOUT_GRACE_S);
			waudit_event("timeout_enforced", "tenant", cx->a.tenant.name, "limit",
			             "session_timeout", "by", "monitor", NULL);
			kill(child, SIGKILL);
			ended = true;
		}
		if (!ended && monitor_record_over(mon, false)) {
			record_enforced(cx, mon);
			kill(child, SIGKILL);
			ended = true;
		}
		chanspawn_reap(cs);
		pid_t w = waitpid(child, &status, WNOHANG);
		if (w == child) {
			log_relay_pump(&lg->relay); /* what it wrote last */
			return status;
		}
		if (w < 0 && errno != EINTR)
			return 0; /* no child to report on */
	}
}

/* The monitor: root, holds no tenant traffic. Waits for the session
 * process; then PAM close and cgroup cleanup. The master's SIGTERM (drain)
 * and SIGUSR2 (end now) are passed on. */
static _Noreturn void monitor_run(struct conn *cx, struct session_ctx *sx, struct login *lg,
                                  pid_t child)
{
	const struct conn_env *env = cx->env;
	monitor_child = child;
	/* this monitor counts against the tenant's pids too (its session
	 * process was born outside, and moves into the session cgroup) */
	int jrc = lg->have_cg ? cgroup_monitor_join(env->cg, cx->a.tenant.name, getpid()) : 0;
	if (jrc < 0)
		log_warn("tenant %s: monitor cgroup: %s", cx->a.tenant.name, strerror(-jrc));
	else if (lg->have_cg)
		privdrop_oom_protect();
	/* the connection's one monitor; its per-channel table grows as
	 * channels claim slots (mon_apply) */
	static struct monitor mon;
	mon.sock = lg->monsock[0];
	mon.tenant = cx->a.tenant.name;
	mon.peer = child;
	mon.state_dir = env->srv->state_dir;
	mon.max_sessions = cx->a.tenant.sandbox.max_sessions;
	mon.record_total_max = cx->a.tenant.sandbox.record_total_max;
	mon.record_max = cx->a.tenant.sandbox.record_max_bytes;
	mon.record_mode = cx->a.tenant.sandbox.record;
	mon.record_max_files = cx->a.tenant.sandbox.record_max_files;
	mon.session_timeout = cx->a.tenant.sandbox.session_timeout;
	mon.source = sx->ssh_connection;
	mon.notify_fd = env->notify_fd;
	snprintf(mon.slots_dir, sizeof mon.slots_dir, "%s", sx->sessions_dir);
	/* sandbox_scope = channel: the session process asks for each sandbox */
	static struct chanspawn cs;
	cs = (struct chanspawn){.sx = sx,
	                        .cg = env->cg,
	                        .cg_id = lg->cg_id,
	                        .have_cg = lg->have_cg,
	                        .close_fds = {env->notify_fd, lg->monsock[0], lg->gw.monitor_fd},
	                        .nclose = 3,
	                        .log_fd = lg->logw};
	if (cx->a.tenant.sandbox.scope_channel) {
		mon.spawn = chanspawn_start;
		mon.spawn_ud = &cs;
	}
	fcntl(mon.notify_fd, F_SETFL, fcntl(mon.notify_fd, F_GETFL) | O_NONBLOCK);
	struct sigaction sa = {.sa_handler = monitor_forward};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	/* what went to the session process is its own; the memory that
	 * authentication and login took is given back */
	warm_trim();
	if (sx->env_member >= 0)
		close(sx->env_member);
	if (lg->gw.session_fd >= 0)
		close(lg->gw.session_fd);
	int status = monitor_wait(cx, lg, &mon, child, &cs);
	if (monitor_record_over(&mon, true)) /* written just before it ended */
		record_enforced(cx, &mon);
	if (WIFSIGNALED(status))
		log_warn("session process for %s killed by signal %d", cx->a.tenant.name,
		         WTERMSIG(status));
	if (lg->gw.pid > 0) {
		kill(lg->gw.pid, SIGKILL); /* requests in flight end with the connection */
		waitpid(lg->gw.pid, NULL, 0);
	}
	if (lg->have_cg)
		cgroup_session_destroy(env->cg, cx->a.tenant.name, lg->cg_id);
	/* the session is over: get its workspace writes to disk */
	int wfd = sx->workspace[0] ? open(sx->workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (wfd >= 0) {
		syncfs(wfd);
		close(wfd);
	}
	if (cx->a.pam) {
		wpam_session_close(cx->a.pam);
		wpam_end(cx->a.pam);
	}
	monitor_release_all(&mon);
	if (lg->conn_dir[0])
		slots_release(lg->conn_dir, lg->monitor);
	log_info("session closed for %s", cx->a.tenant.name);
	_exit(0);
}

/* The session process's ids in its user namespace (preauth.c), written
 * once by root: until now it could take no uid but its own. */
static int map_ids(pid_t child, uid_t uid, gid_t gid)
{
	struct stat mine, its;
	char path[64], line[64];
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)child);
	if (stat("/proc/self/ns/user", &mine) < 0 || stat(path, &its) < 0)
		return -1;
	if (mine.st_ino == its.st_ino && mine.st_dev == its.st_dev) {
		errno = EPERM; /* it never left ours */
		return -1;
	}
	const char *const files[] = {"uid_map", "gid_map"};
	const unsigned ids[] = {(unsigned)uid, (unsigned)gid};
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "/proc/%d/%s", (int)child, files[i]);
		int n = snprintf(line, sizeof line, "%u %u 1\n", ids[i], ids[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		ssize_t w = fd < 0 ? -1 : write(fd, line, (size_t)n);
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (w != n) {
			errno = w < 0 ? e : EIO;
			return -1;
		}
	}
	return 0;
}

/* network = host: the sandbox shares the host's loopback, so the endpoints
 * are made here, once per connection, on ports the kernel picks; the
 * gateway serves only connections whose peer socket is the tenant's uid */
static void host_api_endpoints(struct session_ctx *sx)
{
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	if (sx->api_sock < 0 || sb->network != NET_HOST)
		return;
	for (int i = 0; i < SANDBOX_MAX_APIS; i++) {
		if (!(sb->api_mask & (1u << i)))
			continue;
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t al = sizeof a;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
		    listen(fd, 128) < 0 || getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
			log_warn("API gateway endpoint on the host's loopback: %s",
			         strerror(errno));
		} else {
			struct gw_fdmsg m = {.type = GW_LISTEN,
			                     .api = i,
			                     .channel = -1,
			                     .peer_uid = (int64_t)sx->id.uid};
			if (fdpass_send(sx->api_sock, &m, sizeof m, fd) == 0)
				sx->host_api_port[i] = ntohs(a.sin_port);
		}
		if (fd >= 0)
			close(fd);
	}
}

/* The login as the session process gets it: settings by value, pointers
 * cleared (the tenant's key lines stay with root). */
static void fill_handover(struct conn *cx, struct session_ctx *sx, struct handover *h)
{
	tenant_conf_copy(&h->tenant, &cx->a.tenant); /* h is zero: calloc */
	h->tenant.path = NULL;
	h->tenant.authorized_keys = NULL;
	memset(h->tenant.keys, 0, sizeof h->tenant.keys);
	h->tenant.nkeys = 0;
	h->tenant.sandbox.api_file = NULL;
	h->uid = sx->id.uid;
	h->gid = sx->id.gid;
	snprintf(h->id_source, sizeof h->id_source, "%s", sx->id.source ? sx->id.source : "");
	snprintf(h->workspace, sizeof h->workspace, "%s", sx->workspace);
	snprintf(h->sessions_dir, sizeof h->sessions_dir, "%s", sx->sessions_dir);
	snprintf(h->env_sock, sizeof h->env_sock, "%s", sx->env_sock);
	snprintf(h->fail, sizeof h->fail, "%s", sx->fail);
	h->have_profile = sx->profile != NULL;
	if (sx->profile != NULL)
		h->profile = *sx->profile;
	h->filter = cx->a.tenant.sandbox.nested_sandbox ? 1 : 0;
	memcpy(h->host_api_port, sx->host_api_port, sizeof h->host_api_port);
}

/* Root's last steps for the session process: its cgroup, its ids, its
 * API endpoints, then the login handed over. 0, or -1 (it is then ended). */
static int hand_over(struct conn *cx, struct session_ctx *sx, struct login *lg)
{
	const struct conn_env *env = cx->env;
	const struct server_conf *srv = env->srv;
	pid_t child = cx->a.child;
	if (lg->have_cg && cgroup_attach(env->cg, cx->a.tenant.name, lg->cg_id, child) < 0) {
		log_err("tenant %s: cannot move the session process into its cgroup",
		        cx->a.tenant.name);
		return -1;
	}
	if (sx->id.uid >= srv->preauth_uid_min && sx->id.uid <= srv->preauth_uid_max) {
		log_err("tenant %s: uid %u is inside preauth_uids; refused", cx->a.tenant.name,
		        (unsigned)sx->id.uid);
		return -1;
	}
	if (map_ids(child, sx->id.uid, sx->id.gid) < 0) {
		log_err("tenant %s: mapping %u:%u into the session process: %s", cx->a.tenant.name,
		        (unsigned)sx->id.uid, (unsigned)sx->id.gid, strerror(errno));
		return -1;
	}
	sx->api_sock = lg->gw.session_fd;
	host_api_endpoints(sx); /* it may not listen itself */
	/* on the heap while it is sent: a monitor lives as long as its session */
	struct handover *h = calloc(1, sizeof *h);
	int fds[HO_NFDS] = {open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), sx->env_member,
	                    lg->gw.session_fd};
	int rc = -1;
	if (h && fds[HO_ROOT] >= 0) {
		fill_handover(cx, sx, h);
		rc = handover_send(cx->a.sock, h, fds);
	}
	if (rc < 0)
		log_err("tenant %s: handing the login over: %s", cx->a.tenant.name,
		        strerror(errno));
	free(h);
	if (fds[HO_ROOT] >= 0)
		close(fds[HO_ROOT]);
	return rc;
}

/* One connection: pre-auth in an unprivileged child, answered by this
 * process (root, the monitor) -> login (root preparation) -> the login
 * handed over, the child becomes the session process -> monitor loop. */
void conn_handle(int fd, const struct conn_env *env)
{
	static struct conn cx;
	static struct session_ctx sx;
	static struct login lg;
	/* zero (static, untouched in this new process): set what differs only,
	 * so that the pages nothing writes stay shared zero pages */
	cx.env = env;
	cx.a.srv = env->srv;

	signal(SIGALRM, grace_alarm);
	alarm((unsigned)env->srv->login_grace_time);
	describe_peer(fd, &cx, sx.ssh_connection, sizeof sx.ssh_connection);
	/* Small replies (sftp status, prompts) must not wait for Nagle behind
	 * the client's delayed ACKs; libssh already writes whole packets. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* SIGCHLD stays blocked so the monitor can wait for it on a signalfd */
	sigemptyset(&lg.chld);
	sigaddset(&lg.chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &lg.chld, NULL);
	int logp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lg.monsock) < 0 ||
	    pipe2(logp, O_CLOEXEC) < 0) {
		log_err("%s: monitor socket: %s", cx.a.peer, strerror(errno));
		_exit(1);
	}
	fcntl(logp[0], F_SETFL, O_NONBLOCK);
	lg.relay.fd = logp[0];
	lg.logw = logp[1];
	warm_fill_holes(); /* what the master freed since, before the session's own */
	pid_t pid = fork_child(0, NULL, 0);
	if (pid < 0) {
		log_err("%s: pre-auth process: fork: %s", cx.a.peer, strerror(errno));
		_exit(1);
	}
	if (pid == 0) {
		close(lg.monsock[0]);
		/* no tenant-uid process holds the log file: its stderr is ours to relay */
		dup2(lg.logw, 1); /* stdout too: warrend's may be the log as well */
		dup2(lg.logw, 2);
		preauth_run(env, fd, lg.monsock[1], cx.a.peer, sx.ssh_connection);
	}
	close(fd); /* the client's bytes are the child's alone */
	close(lg.monsock[1]);
	ssh_bind_free(env->bind); /* and so is the host key */
	cx.a.sock = lg.monsock[0];
	cx.a.child = pid;
	cx.a.log = &lg.relay;
	monauth_serve(&cx.a);
	log_accepted(&cx);

	sx.srv = env->srv;
	sx.tenant = &cx.a.tenant;
	sx.facts = *env->facts;
	sx.init_helper = env->init_helper;
	/* until the login sets them; a login whose preparation fails keeps them */
	sx.workspace = sx.sessions_dir = sx.env_sock = "";
	alarm(0); /* authenticated: a profile build may take longer than the grace time */
	lg.cg_id = (long)getpid();
	lg.monitor = getpid();
	login(&cx, &sx, &lg);
	if (hand_over(&cx, &sx, &lg) < 0)
		kill(pid, SIGKILL);
	monitor_run(&cx, &sx, &lg, pid);
}
