/* master.c - the warrend master (root): its set-up, in order (state_dir and
 * warren-init, the workers' and sandboxes' seccomp filters, the pre-auth
 * jail, the audit log, the host key and listeners, cgroups), and its loop:
 * accept, signals (SIGHUP reload, SIGTERM drain), status requests, reaping.
 * It never parses SSH itself: every connection is a fork (accept.c). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/fmt.h"
#include "../sandbox/policy.h"
#include "../sandbox/seccomp.h"
#include "../sandbox/workspace.h"
#include "audit.h"
#include "confine.h"
#include "conn.h"
#include "hostkey.h"
#include "log.h"
#include "master.h"
#include "preauth.h"
#include "procinfo.h"
#include "status.h"
#include "warm.h"

/* Modern algorithms only: no SHA-1, no CBC, no DSA. */
#define KEX_ALGOS                                                                                  \
	"curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"    \
	"ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512"
#define CIPHERS                                                                                    \
	"chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"  \
	"aes192-ctr,aes128-ctr"
#define MACS          "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com"
#define HOSTKEY_ALGOS "ssh-ed25519,rsa-sha2-512,rsa-sha2-256"
#define PUBKEY_ALGOS                                                                               \
	"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"                 \
	"sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"

/* The file service is OpenSSH's sftp-server, whose SYMLINK takes its two
 * paths in the reverse of the draft's order. OpenSSH's sftp sends them that
 * way to anyone; other clients (asyncssh, paramiko users) reverse them only
 * when the version string names OpenSSH, so it does, as a comment after our
 * own software version (RFC 4253 4.2). */
#define SERVER_BANNER "warren_0.2 OpenSSH-sftp-server"

static struct cg cg;  /* the master's view, for sweeping reaped monitors' leaves */
static int stfd = -1; /* status socket; connection processes close it */

/* Copies src to dst (0755, root) through a temporary file and rename. */
static int install_file(const char *src, const char *dst)
{
	char tmp[PATH_MAX + 8];
	if (snprintf(tmp, sizeof tmp, "%.4000s.tmp", dst) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	unlink(tmp);
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0755);
	if (out < 0) {
		int e = errno;
		close(in);
		return -e;
	}
	char buf[65536];
	ssize_t n;
	int rc = 0;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	if (n < 0)
		rc = -errno;
	close(in);
	if (fchmod(out, 0755) < 0 || close(out) < 0)
		rc = rc ? rc : -errno;
	if (rc == 0 && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int open_listeners(const struct server_conf *srv, int *fds, int max)
{
	int n = 0;
	for (int i = 0; i < srv->nlisten; i++) {
		struct addrinfo hints = {.ai_family = AF_UNSPEC,
		                         .ai_socktype = SOCK_STREAM,
		                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
		struct addrinfo *res;
		const char *host =
		    strcmp(srv->listen[i].host, "*") == 0 ? NULL : srv->listen[i].host;
		int rc = getaddrinfo(host, srv->listen[i].port, &hints, &res);
		if (rc != 0) {
			log_err("%s: listen %s:%s: %s", srv->path, srv->listen[i].host,
			        srv->listen[i].port, gai_strerror(rc));
			return -1;
		}
		for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
			int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
			int one = 1;
			if (fd < 0)
				continue;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
			if (ai->ai_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
				log_err("%s: listen %s:%s: %s", srv->path, srv->listen[i].host,
				        srv->listen[i].port, strerror(errno));
				close(fd);
				freeaddrinfo(res);
				return -1;
			}
			fcntl(fd, F_SETFL, O_NONBLOCK);
			fds[n++] = fd;
		}
		freeaddrinfo(res);
	}
	return n;
}

/* libssh's own lines (debug level only) quote what a client sent, e.g. a
 * bad banner: through log_msg, which escapes them, never raw to stderr */
static void libssh_log(int priority, const char *function, const char *buffer, void *ud)
{
	(void)priority;
	(void)function;
	(void)ud;
	log_debug("libssh: %s", buffer);
}

static ssh_bind make_bind(ssh_key hostkey)
{
	ssh_set_log_callback(libssh_log);
	ssh_bind b = ssh_bind_new();
	if (b == NULL)
		return NULL;
	bool no = false;
	int verbosity = log_get_level() >= LOG_DEBUG_ ? SSH_LOG_WARNING : SSH_LOG_NOLOG;
	if (ssh_bind_options_set(b, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_IMPORT_KEY, hostkey) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_KEY_EXCHANGE, KEX_ALGOS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_CIPHERS_C_S, CIPHERS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_CIPHERS_S_C, CIPHERS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HMAC_C_S, MACS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HMAC_S_C, MACS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, HOSTKEY_ALGOS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, PUBKEY_ALGOS) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_BANNER, SERVER_BANNER) < 0 ||
	    ssh_bind_options_set(b, SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity) < 0) {
		log_err("libssh rejected an option: %s", ssh_get_error(b));
		ssh_bind_free(b);
		return NULL;
	}
	return b;
}

/* A session cgroup is named after its monitor's pid (a connection's, or an
 * environment's): alive if that pid is still a warren process. */
static bool session_alive(long pid)
{
	char comm[32];
	return procinfo_comm(pid, comm, sizeof comm) == 0 &&
	       strncmp(comm, "warren", 6) == 0; /* warrend, warren-env */
}

/* SIGHUP: a new configuration for new logins; running sessions keep theirs.
 * A bad file changes nothing and says where it is wrong. */
static void reload(struct server_conf *srv)
{
	struct server_conf next;
	struct cfg_error err;
	if (config_load_server(srv->path, &next, &err) < 0) {
		log_err("reload failed, keeping the running configuration: %s", err.msg);
		return;
	}
	bool same_listen = next.nlisten == srv->nlisten;
	for (int i = 0; same_listen && i < next.nlisten; i++)
		same_listen = !strcmp(next.listen[i].host, srv->listen[i].host) &&
		              !strcmp(next.listen[i].port, srv->listen[i].port);
	if (!same_listen)
		log_warn("reload: listen addresses changed; they take effect at the next restart");
	if (strcmp(next.host_key, srv->host_key) || strcmp(next.state_dir, srv->state_dir) ||
	    strcmp(next.cgroup_root, srv->cgroup_root))
		log_warn(
		    "reload: host_key, state_dir and cgroup_root take effect at the next restart");
	/* keep what only a restart may change */
	free(next.host_key);
	next.host_key = srv->host_key;
	srv->host_key = NULL;
	free(next.state_dir);
	next.state_dir = srv->state_dir;
	srv->state_dir = NULL;
	free(next.cgroup_root);
	next.cgroup_root = srv->cgroup_root;
	srv->cgroup_root = NULL;
	memcpy(next.listen, srv->listen, sizeof next.listen);
	next.nlisten = srv->nlisten;
	config_free_server(srv);
	*srv = next;
	accept_reload(srv);
	if (log_get_level() < LOG_DEBUG_ || srv->log_level == LOG_DEBUG_)
		log_set_level(srv->log_level); /* -d keeps debug logging across reloads */
	log_info("reloaded %s", srv->path);
}

/* warren-init, installed into state_dir/lib: sandboxes bind it from there,
 * so they never depend on where warrend itself lives (a build tree may sit
 * under /root). helper gets its path. */
static int install_helper(const struct server_conf *srv, char *helper, size_t len)
{
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0) {
		log_err("cannot find my own binary: %s", strerror(errno));
		return -1;
	}
	self[sl] = '\0';
	fmt_into(helper, len, "%s/warren-init", dirname(self));
	if (access(helper, X_OK) < 0) {
		log_err("%s: %s (it is installed next to warrend)", helper, strerror(errno));
		return -1;
	}
	int rc = state_mkdir(srv->state_dir, 0711);
	char err[512] = "";
	if (rc < 0) {
		log_err("%s: state_dir %s: %s", srv->path, srv->state_dir, strerror(-rc));
		return -1;
	}
	if (check_traversable(srv->state_dir, err, sizeof err) < 0) {
		log_err("%s (tenants could not reach their workspaces)", err);
		return -1;
	}
	char libdir[PATH_MAX], installed[PATH_MAX + 16];
	fmt_into(libdir, sizeof libdir, "%s/lib", srv->state_dir);
	fmt_into(installed, sizeof installed, "%s/warren-init", libdir);
	if ((rc = state_mkdir(libdir, 0755)) < 0 || (rc = install_file(helper, installed)) < 0) {
		log_err("installing %s into %s: %s", helper, libdir, strerror(-rc));
		return -1;
	}
	fmt_into(helper, len, "%s", installed);
	return 0;
}

/* the workers' filters, the pre-auth jail, the audit log, OpenSSL's tables
 * and the host key: built once, shared by every connection process */
static ssh_bind prepare_login(const struct server_conf *srv)
{
	char err[512] = "";
	int rc;
	if ((rc = confine_prepare()) < 0) {
		log_err("cannot build the workers' seccomp filters: %s", strerror(-rc));
		return NULL;
	}
	/* pre-auth runs jailed: the empty root, and whether this kernel lets it */
	if (preauth_prepare(srv, err, sizeof err) < 0) {
		log_err("%s: %s", srv->path, err);
		return NULL;
	}
	if ((rc = waudit_open(srv->audit_log)) < 0) {
		log_err("%s: audit_log %s: %s", srv->path, srv->audit_log, strerror(-rc));
		return NULL;
	}
	ssh_init();
	warm_master(); /* OpenSSL's tables, NSS modules: shared by every connection process */
	ssh_key hostkey = NULL;
	if (hostkey_load_or_generate(srv->host_key, &hostkey, err, sizeof err) < 0) {
		log_err("%s", err);
		return NULL;
	}
	return make_bind(hostkey);
}

static int prepare_cgroups(const struct server_conf *srv)
{
	snprintf(cg.root, sizeof cg.root, "%s", srv->cgroup_root);
	cg.mode = cgroup_detect(cg.root);
	if (cg.mode == CG_NONE &&
	    (srv->sandbox.memory_max || srv->sandbox.pids_max || srv->sandbox.cpu_max_milli)) {
		log_err("%s: [sandbox] sets resource limits but no usable cgroup hierarchy "
		        "(memory and pids controllers) is mounted at %s",
		        srv->path, cg.root);
		return -1;
	}
	log_info("cgroups: %s at %s",
	         cg.mode == CG_V2   ? "v2"
	         : cg.mode == CG_V1 ? "v1"
	                            : "none",
	         cg.root);
	int swept = cgroup_sweep(&cg, session_alive);
	if (swept > 0)
		log_info("removed %d session cgroup(s) left by an earlier run", swept);
	return 0;
}

/* the two seccomp filters a sandbox can get, built once for every login */
static int build_filters(struct bpf_blob filters[2])
{
	for (int i = 0; i < 2; i++) {
		struct seccomp_opts so = {.nested_sandbox = i == 1};
		void *data;
		int rc = seccomp_export(&so, &data, &filters[i].len);
		if (rc < 0) {
			log_err("cannot build the seccomp filter: %s", strerror(-rc));
			return -1;
		}
		filters[i].data = data;
	}
	return 0;
}

/* signals come through a signalfd; the master is the subreaper of tenants'
 * environments (envd.c), which it lists, drains and kills like connections */
static int master_signals(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	return sfd;
}

struct loop {
	struct server_conf *srv;
	struct master_fds fds;
	struct conn_env tmpl;
	bool draining;
	struct timespec drain_end;
};

/* how long poll may wait; past drain_timeout, every session is ended */
static int drain_tick(struct loop *l, int timeout)
{
	if (!l->draining)
		return timeout;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long left = (l->drain_end.tv_sec - now.tv_sec) * 1000 +
	            (l->drain_end.tv_nsec - now.tv_nsec) / 1000000;
	if (left <= 0) {
		log_info("drain_timeout reached: ending %zu session(s)", children_count());
		children_signal(SIGUSR2);
		l->drain_end.tv_sec = now.tv_sec + 3600; /* once */
		left = 1000;
	}
	return (int)(left > 1000 ? 1000 : left);
}

static void on_signals(struct loop *l)
{
	struct signalfd_siginfo si;
	while (read(l->fds.sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			children_reap(&cg);
		} else if (si.ssi_signo == SIGHUP) {
			reload(l->srv);
		} else if (!l->draining) {
			/* stop accepting, warn every session, end them at drain_timeout */
			l->draining = true;
			for (int i = 0; i < l->fds.nl; i++)
				close(l->fds.lfds[i]);
			clock_gettime(CLOCK_MONOTONIC, &l->drain_end);
			l->drain_end.tv_sec += l->srv->drain_timeout;
			log_info("signal %d: draining %zu connection(s) for up to %d s "
			         "(signal again to end them now)",
			         (int)si.ssi_signo, children_count(), l->srv->drain_timeout);
			children_signal(SIGTERM);
		} else {
			log_info("signal %d again: ending all sessions now", (int)si.ssi_signo);
			children_signal(SIGUSR2);
			l->drain_end.tv_sec = 0;
		}
	}
}

/* one poll over the listeners, the signalfd, the status socket and the
 * children's status pipes; -1 on a poll error */
static int serve_once(struct loop *l, struct pollfd **pfds)
{
	int nl = l->fds.nl;
	size_t n = (size_t)nl + 2 + children_count();
	struct pollfd *np = realloc(*pfds, n * sizeof *np);
	if (np == NULL) {
		sleep(1);
		return 0;
	}
	*pfds = np;
	size_t k = 0;
	for (int i = 0; i < nl; i++)
		np[k++] =
		    (struct pollfd){.fd = l->draining ? -1 : l->fds.lfds[i], .events = POLLIN};
	np[k++] = (struct pollfd){.fd = l->fds.sfd, .events = POLLIN};
	np[k++] = (struct pollfd){.fd = stfd, .events = POLLIN};
	k += children_pollfds(np + k, n - k);
	if (poll(np, k, drain_tick(l, accept_flush())) < 0) {
		if (errno == EINTR)
			return 0;
		log_err("poll: %s", strerror(errno));
		return -1;
	}
	if (np[nl].revents & POLLIN)
		on_signals(l);
	for (size_t j = (size_t)nl + 2; j < k; j++)
		if (np[j].revents && np[j].fd >= 0)
			children_status_ready(np[j].fd);
	if (stfd >= 0 && (np[nl + 1].revents & POLLIN)) {
		int c = accept4(stfd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0) {
			status_serve(c, children_list, children_kill);
			close(c);
		}
	}
	for (int i = 0; !l->draining && i < nl; i++)
		if (np[i].revents & POLLIN)
			accept_one(l->fds.lfds[i], &l->tmpl, &l->fds);
	return 0;
}

int master_run(struct server_conf *srv)
{
	static char helper[PATH_MAX + 32];
	static struct bpf_blob filters[2];
	static int lfds[CFG_MAX_LISTEN * 2];
	static struct host_facts facts;
	if (install_helper(srv, helper, sizeof helper) < 0)
		return 1;
	ssh_bind bind = prepare_login(srv);
	if (bind == NULL)
		return 1;
	int nl = open_listeners(srv, lfds, CFG_MAX_LISTEN * 2);
	if (nl <= 0)
		return 1;
	host_facts_probe(&facts);
	if (prepare_cgroups(srv) < 0 || build_filters(filters) < 0)
		return 1;
	struct loop l = {.srv = srv,
	                 .fds = {.lfds = lfds, .nl = nl, .sfd = master_signals(), .stfd = -1},
	                 .tmpl = {.srv = srv,
	                          .filters = filters,
	                          .bind = bind,
	                          .init_helper = helper,
	                          .facts = &facts,
	                          .cg = &cg,
	                          .notify_fd = -1}};
	stfd = l.fds.stfd = status_listen(srv->state_dir);
	if (stfd < 0)
		log_warn("status socket in %s: %s (warrend --status will not work)", srv->state_dir,
		         strerror(-stfd));
	for (int i = 0; i < srv->nlisten; i++)
		log_info("listening on %s:%s", srv->listen[i].host, srv->listen[i].port);
	accept_init(srv);
	struct pollfd *pfds = NULL;
	for (;;) {
		if (l.draining && children_count() == 0) {
			log_info("drained: all sessions ended; exiting");
			return 0;
		}
		if (serve_once(&l, &pfds) < 0)
			return 1;
	}
}
