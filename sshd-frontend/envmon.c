/* envmon.c - the env monitor (root): forked by the first connection's
 * monitor (envd_join) and handed to the master, it owns the environment's
 * cgroup and API gateway, answers the gateway's budget questions, retires
 * an environment whose configuration changed, and cleans up. SIGTERM
 * (drain): linger becomes 0; SIGUSR2: the environment ends now. envd.c
 * tells the whole design. */
#include "envd.h"
#include "../sandbox/fork.h"
#include "../sandbox/lockfile.h"
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
                        struct monitor *mon, const sigset_t *mask, struct log_relay *relay)
{
	int sfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int status = 0;
	for (;;) {
		struct pollfd pf[4] = {{.fd = sfd, .events = POLLIN},
		                       {.fd = gw->monitor_fd, .events = POLLIN},
		                       {.fd = mon->sock, .events = POLLIN},
		                       {.fd = relay->fd, .events = POLLIN}};
		int pr = poll(pf, 4, sfd >= 0 ? -1 : 500);
		if (pr > 0 && pf[3].revents)
			log_relay_pump(relay); /* the env process's stderr */
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
		if (waitpid(child, &status, WNOHANG) == child) {
			log_relay_pump(relay); /* what it wrote last */
			return status;
		}
	}
}

/* The env process: the tenant's uid in the environment's cgroup (cg_id;
 * 0: none), its audit events to this monitor (msock), its stderr a pipe
 * this monitor relays (relay), never the log file. Its pid, or -1. */
static pid_t start_env_process(const struct envd_ctx *ctx, int listen_fd, const struct apigw *gw,
                               long cg_id, const sigset_t *mask, int msock[2],
                               struct log_relay *relay)
{
	const struct tenant_conf *t = ctx->tenant;
	pid_t me = getpid();
	int logp[2] = {-1, -1};
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, msock) < 0)
		log_warn("environment %s: monitor socket: %s", t->name, strerror(errno));
	if (pipe2(logp, O_CLOEXEC) < 0)
		log_warn("environment %s: log pipe: %s", t->name, strerror(errno));
	pid_t child = fork_child(0, NULL, 0);
	if (child == 0) {
		if (logp[1] >= 0) {
			dup2(logp[1], 1); /* stdout too: warrend's may be the log as well */
			dup2(logp[1], 2);
		}
		if ((cg_id && cgroup_attach(ctx->cg, t->name, cg_id, getpid()) < 0) ||
		    privdrop_to(ctx->uid, ctx->gid) < 0)
			_exit(1);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != me)
			_exit(1);
		if (gw->monitor_fd >= 0)
			close(gw->monitor_fd);
		if (msock[0] >= 0)
			close(msock[0]);
		waudit_forward(msock[1]); /* no audit fd in a tenant's process */
		prctl(PR_SET_NAME, "warren-envproxy");
		sigprocmask(SIG_UNBLOCK, mask, NULL);
		_exit(env_process(ctx, listen_fd, gw->session_fd));
	}
	if (logp[1] >= 0)
		close(logp[1]);
	relay->fd = logp[0];
	if (relay->fd >= 0)
		fcntl(relay->fd, F_SETFL, O_NONBLOCK);
	return child;
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
	int msock[2] = {-1, -1};
	struct log_relay relay = {.fd = -1};
	pid_t child = crc < 0 ? -1
	                      : start_env_process(ctx, listen_fd, &gw, have_cg ? id : 0, &mask,
	                                          msock, &relay);
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
	int status = child > 0 ? monitor_loop(ctx, child, &gw, &mon, &mask, &relay) : 0;
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
	if (envd_unix_addr(path, &a) < 0) {
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
	pid_t mid = fork_child(0, NULL, 0);
	if (mid < 0) {
		envd_close_pair(p);
		return -1;
	}
	if (mid == 0) {
		close(p[0]);
		pid_t parent = getpid();
		pid_t pid = fork_child(0, NULL, 0);
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
	int lfd = lockfile_take(lock);
	if (lfd < 0) {
		snprintf(err, errlen, "%s: %s", lock, strerror(-lfd));
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
