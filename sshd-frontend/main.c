/* main.c - the warrend master: reads the config, loads the host key once,
 * listens, forks one process per connection, reaps them, and enforces
 * max_startups. It never parses SSH itself. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/fmt.h"
#include "admit.h"
#include "confine.h"
#include "warm.h"
#include "../sandbox/profile.h"
#include "../sandbox/policy.h"
#include "../sandbox/seccomp.h"
#include "../sandbox/workspace.h"
#include "config.h"
#include "conn.h"
#include "preauth.h"
#include "hostkey.h"
#include "audit.h"
#include "log.h"
#include "procinfo.h"
#include "status.h"
#include "../sandbox/disk.h"
#include "apigw.h"
#include "usage.h"

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

struct child {
	pid_t pid;
	int notify_fd; /* -1 once the child authenticated or closed it */
	bool preauth;
	char source[INET6_ADDRSTRLEN];
	char key[ADMIT_KEY_MAX]; /* the source as admission counts it (IPv6: its /64) */
	char tenant[CFG_NAME_MAX + 1];
	char command[200];
	time_t started;
	struct timespec active; /* last traffic the session reported */
	char line[256];         /* partial status line from the pipe */
	size_t linelen;
	bool env;      /* a tenant's environment (envd.c), not a connection */
	bool env_told; /* the connection's one "E" line came */
};

static struct child *children;
static struct cg cg;  /* the master's view, for sweeping reaped monitors' leaves */
static int stfd = -1; /* status socket; connection processes close it */
static size_t nchildren, capchildren;
static int unauth;
static struct penalties *penalties; /* per source; NULL when penalties are off */
static struct refusals refusals = {.window = 10};
static const struct server_conf *admit_conf; /* the config accept_one last used */
static void penalise(const char *key);

static void usage(void)
{
	fprintf(stderr, "usage: warrend [-t] [-d] -f CONFIG\n"
	                "       warrend -f CONFIG --status | --kill ID | --usage[=YYYY-MM-DD]\n"
	                "  -f CONFIG  server configuration file (INI)\n"
	                "  -t         check the configuration and tenant files, then exit\n"
	                "  -d         debug logging\n");
}

/* Tenants (bwrap runs as them) must be able to reach their workspace. */
static int check_traversable(const char *path, char *err, size_t len)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + strlen(buf); p > buf; p = strrchr(buf, '/')) {
		*p = '\0';
		const char *dir = buf[0] ? buf : "/";
		struct stat st;
		if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			snprintf(err, len, "%s is not searchable by tenants (mode %04o)", dir,
			         (unsigned)(st.st_mode & 07777));
			return -1;
		}
		if (!buf[0])
			break;
	}
	return 0;
}

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

struct check_ctx {
	const struct server_conf *srv;
	int bad;
	char checked[64][64]; /* profiles evaluated already */
	int nchecked;
};

/* Evaluates a profile once per -t run; reports where it is named. */
static void check_profile(struct check_ctx *cc, const char *where, const char *name)
{
	const struct server_conf *srv = cc->srv;
	if (srv->profiles_dir == NULL || !strcmp(name, "none"))
		return;
	for (int i = 0; i < cc->nchecked; i++)
		if (!strcmp(cc->checked[i], name))
			return;
	if (cc->nchecked < 64)
		snprintf(cc->checked[cc->nchecked++], sizeof cc->checked[0], "%s", name);
	char flake[PATH_MAX];
	if (fmt_into(flake, sizeof flake, "%s/%s/flake.nix", srv->profiles_dir, name) < 0 ||
	    access(flake, R_OK) < 0) {
		fprintf(stderr, "%s: profile '%s': %s: %s\n", where, name, flake, strerror(errno));
		cc->bad = 1;
		return;
	}
	struct profile_builder b = {.profiles_dir = srv->profiles_dir,
	                            .state_dir = srv->state_dir,
	                            .nix = srv->nix,
	                            .offline = srv->nix_offline};
	char detail[1500] = "";
	if (profile_evaluate(&b, name, detail, sizeof detail) < 0) {
		/* nix's last line says why (an input it cannot fetch, a syntax error) */
		char *last = detail;
		for (char *nl; (nl = strchr(last, '\n')) && nl[1];)
			last = nl + 1;
		fprintf(stderr, "%s: profile '%s' does not evaluate: %s%s", where, name, last,
		        last[0] && last[strlen(last) - 1] == '\n' ? "" : "\n");
		cc->bad = 1;
	}
}

static void check_tenant(const char *path, const char *name, void *ud)
{
	struct check_ctx *cc = ud;
	const struct server_conf *srv = cc->srv;
	if (!tenant_name_valid(name)) {
		fprintf(stderr, "%s: '%s' is not a valid tenant name\n", path, name);
		cc->bad = 1;
		return;
	}
	struct tenant_conf t;
	struct cfg_error e;
	if (config_load_tenant_file(path, name, &srv->sandbox, &t, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		cc->bad = 1;
		return;
	}
	if (config_check_tenant(srv, &t, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		cc->bad = 1;
	}
	if (!srv->use_pam && t.has_auth && (auth_policy_all(&t.auth) & (AM_PASSWORD | AM_KBDINT))) {
		fprintf(stderr,
		        "%s: auth names password or keyboard-interactive, which need "
		        "use_pam = yes in %s\n",
		        path, srv->path);
		cc->bad = 1;
	}
	check_profile(cc, path, t.sandbox.profile);
	const char *why;
	if (t.sandbox.disk_max && !disk_supported(&why)) {
		fprintf(stderr, "%s: disk_max is set, but %s: tenant %s cannot log in\n", path, why,
		        name);
		cc->bad = 1;
	}
	if (t.nkeys == 0 && t.authorized_keys == NULL)
		fprintf(stderr, "%s: warning: no keys; tenant %s cannot log in\n", path, name);
	config_free_tenant(&t);
}

static int check_tenants(const struct server_conf *srv)
{
	struct check_ctx cc = {.srv = srv};
	check_profile(&cc, srv->path, srv->sandbox.profile);
	int rc = config_for_each_tenant(srv, check_tenant, &cc);
	if (rc < 0) {
		fprintf(stderr, "%s: tenants_dir %s: %s\n", srv->path, srv->tenants_dir,
		        strerror(-rc));
		return 1;
	}
	return cc.bad;
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

/* The file service is OpenSSH's sftp-server, whose SYMLINK takes its two
 * paths in the reverse of the draft's order. OpenSSH's sftp sends them that
 * way to anyone; other clients (asyncssh, paramiko users) reverse them only
 * when the version string names OpenSSH, so it does, as a comment after our
 * own software version (RFC 4253 4.2). */
#define SERVER_BANNER "warren_0.2 OpenSSH-sftp-server"

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
	if (penalties)
		penalties->conf = srv->penalty; /* sources keep what they accrued */
	if (log_get_level() < LOG_DEBUG_ || srv->log_level == LOG_DEBUG_)
		log_set_level(srv->log_level); /* -d keeps debug logging across reloads */
	log_info("reloaded %s", srv->path);
}

/* an authenticated connection no longer counts against max_startups */
static void leave_preauth(struct child *c)
{
	if (c->preauth) {
		c->preauth = false;
		unauth--;
	}
}

static void close_status(struct child *c);
static struct child *child_add(pid_t pid, int notify_fd, const char *source, const char *key);

/* "E<pid>": the connection's root monitor started its tenant's environment,
 * whose env monitor is now our child (we are a subreaper). Only the line
 * right after "A" counts: later ones come from the tenant's session. */
static void add_environment(struct child *c, const char *arg)
{
	c->env_told = true;
	char *end;
	long pid = strtol(arg, &end, 10);
	if (pid <= 0 || *end != '\0' || procinfo_ppid(pid) != (long)getpid())
		return;
	char tenant[sizeof c->tenant];
	snprintf(tenant, sizeof tenant, "%s", c->tenant);
	struct child *e = child_add((pid_t)pid, -1, "-", "");
	if (e == NULL) /* c may have moved: use the copies */
		return;
	leave_preauth(e);
	e->env = true;
	snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
	snprintf(e->command, sizeof e->command, "(environment)");
}

/* Lines from a connection: "A<tenant>" once authenticated, then from the
 * session process "C<command>" and "T" (traffic). EOF: it is gone. */
static void read_status(struct child *c)
{
	char buf[512];
	ssize_t r = read(c->notify_fd, buf, sizeof buf);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close_status(c); /* the connection is gone or going */
		return;
	}
	for (ssize_t i = 0; i < r; i++) {
		if (buf[i] != '\n') {
			if (c->linelen < sizeof c->line - 1)
				c->line[c->linelen++] = buf[i];
			continue;
		}
		c->line[c->linelen] = '\0';
		if (c->line[0] == 'A' && !c->tenant[0]) {
			/* only the first: later lines come from the tenant's session process */
			snprintf(c->tenant, sizeof c->tenant, "%s", c->line + 1);
			leave_preauth(c);
		} else if (c->line[0] == 'E' && c->tenant[0] && !c->env_told) {
			size_t at = (size_t)(c - children);
			add_environment(c, c->line + 1);
			c = &children[at]; /* child_add may have moved the array */
		} else if (c->line[0] == 'C') {
			/* the tenant's command: escaped before any operator sees it */
			fmt_escape(c->command, sizeof c->command, c->line + 1);
			clock_gettime(CLOCK_MONOTONIC, &c->active);
		} else if (c->line[0] == 'T') {
			clock_gettime(CLOCK_MONOTONIC, &c->active);
		}
		c->linelen = 0;
	}
}

static size_t list_sessions(char *buf, size_t len)
{
	size_t used = (size_t)snprintf(buf, len, "%-8s %-16s %-22s %-20s %6s  %s\n", "ID", "TENANT",
	                               "SOURCE", "START", "IDLE", "COMMAND");
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < nchildren && used < len; i++) {
		const struct child *c = &children[i];
		if (!c->tenant[0])
			continue; /* not authenticated yet */
		struct tm tm;
		char start[32];
		gmtime_r(&c->started, &tm);
		strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm);
		used += (size_t)snprintf(
		    buf + used, len - used, "%-8d %-16s %-22s %-20s %5lds  %s\n", (int)c->pid,
		    c->tenant, c->source, start, (long)(now.tv_sec - c->active.tv_sec),
		    c->command[0] ? c->command : "-");
	}
	return used < len ? used : len;
}

static int kill_session(long id)
{
	for (size_t i = 0; i < nchildren; i++)
		if (children[i].pid == id && children[i].tenant[0]) {
			log_info("status: ending session %ld (%s) on request", id,
			         children[i].tenant);
			waudit_event("session_killed", "tenant", children[i].tenant, "source",
			             children[i].source, NULL);
			return kill((pid_t)id, SIGUSR2);
		}
	return -1;
}

static struct child *child_add(pid_t pid, int notify_fd, const char *source, const char *key)
{
	if (nchildren == capchildren) {
		size_t cap = capchildren ? capchildren * 2 : 64;
		struct child *v = realloc(children, cap * sizeof *v);
		if (v == NULL)
			return NULL;
		children = v;
		capchildren = cap;
	}
	struct child *c = &children[nchildren++];
	c->pid = pid;
	c->notify_fd = notify_fd;
	c->preauth = true;
	snprintf(c->source, sizeof c->source, "%s", source);
	snprintf(c->key, sizeof c->key, "%s", key);
	c->tenant[0] = c->command[0] = '\0';
	c->linelen = 0;
	c->env = c->env_told = false;
	c->started = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &c->active);
	unauth++;
	return c;
}

static void close_status(struct child *c)
{
	leave_preauth(c);
	if (c->notify_fd >= 0) {
		close(c->notify_fd);
		c->notify_fd = -1;
	}
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			if (!children[i].tenant[0])
				penalise(children[i].key);
			close_status(&children[i]);
			children[i] = children[--nchildren];
			break;
		}
		cgroup_monitor_remove(&cg, pid); /* a connection or env monitor's leaf */
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			log_warn("connection process %d died of signal %d", (int)pid,
			         WTERMSIG(status));
	}
}

static bool exempt(const struct server_conf *srv, const char *key)
{
	for (int i = 0; i < srv->npenalty_exempt; i++)
		if (!strcmp(srv->penalty_exempt[i], key))
			return true;
	return false;
}

/* a connection from key ended before it authenticated */
static void penalise(const char *key)
{
	if (penalties && admit_conf && !exempt(admit_conf, key))
		penalty_noauth(penalties, key, time(NULL));
}

static void refusal_report(enum admit_reason why, unsigned long count)
{
	char n[32];
	snprintf(n, sizeof n, "%lu", count);
	log_warn("refused %lu more connection(s) in the last %d s: %s", count, refusals.window,
	         admit_reason_name(why));
	waudit_event("limit_refused", "limit", admit_reason_name(why), "#count", n, NULL);
}

/* one refusal: logged and audited when it is the first of its kind in a
 * window, counted otherwise (a flood must not flood the logs) */
static void refuse_conn(int fd, enum admit_reason why, const char *host, const char *detail,
                        const char *line)
{
	if (refusal_note(&refusals, why, time(NULL))) {
		log_warn("refusing connection from %s: %s (%s); further refusals of this kind "
		         "are counted for %d s",
		         host, admit_reason_name(why), detail, refusals.window);
		waudit_event("limit_refused", "limit", admit_reason_name(why), "source", host,
		             NULL);
	}
	if (line) {
		ssize_t w = write(fd, line, strlen(line));
		(void)w;
	}
}

/* per source first (a flood from one source must not spend the slots
 * others need), then max_startups' random early drop */
static bool admitted(int fd, const struct server_conf *srv, const char *host, const char *key)
{
	char detail[96];
	long left = penalties ? penalty_left(penalties, key, time(NULL)) : 0;
	if (left > 0 && !exempt(srv, key)) {
		char line[128];
		snprintf(detail, sizeof detail, "%ld s left", left);
		snprintf(line, sizeof line,
		         "warren: too many unauthenticated connections from your "
		         "address; try again in %ld s\r\n",
		         left);
		refuse_conn(fd, R_PENALTY, host, detail, line);
		return false;
	}
	int same = 0, same_unauth = 0;
	for (size_t i = 0; i < nchildren; i++)
		if (!strcmp(children[i].key, key)) {
			same++;
			same_unauth += !children[i].tenant[0];
		}
	if (srv->max_connections_per_source > 0 && same >= srv->max_connections_per_source) {
		snprintf(detail, sizeof detail, "%d", srv->max_connections_per_source);
		refuse_conn(fd, R_PER_SOURCE, host, detail,
		            "warren: too many connections from your address\r\n");
		return false;
	}
	if (srv->max_startups_per_source > 0 && same_unauth >= srv->max_startups_per_source) {
		snprintf(detail, sizeof detail, "%d unauthenticated", srv->max_startups_per_source);
		refuse_conn(fd, R_SOURCE_STARTUPS, host, detail, NULL);
		return false;
	}
	if (admit_early_drop(&srv->max_startups, unauth, (int)(random() % 100))) {
		snprintf(detail, sizeof detail, "%d unauthenticated, %d:%d:%d", unauth,
		         srv->max_startups.start, srv->max_startups.rate, srv->max_startups.full);
		refuse_conn(fd, R_STARTUPS, host, detail, NULL);
		return false;
	}
	return true;
}

static void accept_one(int lfd, const struct conn_env *tmpl, int *lfds, int nl, int sfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	char host[INET6_ADDRSTRLEN] = "?", key[ADMIT_KEY_MAX];
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, NULL, 0, NI_NUMERICHOST);
	admit_source_key((struct sockaddr *)&ss, sl, key, sizeof key);
	admit_conf = tmpl->srv;
	if (!admitted(fd, tmpl->srv, host, key)) {
		close(fd);
		return;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(fd);
		return;
	}
	pid_t master_pid = getpid();
	warm_fill_holes();
	pid_t pid = fork();
	if (pid < 0) {
		log_err("fork: %s", strerror(errno));
		close(fd);
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		/* a killed master takes its connections (and their sandboxes) with it:
		 * a restart never finds orphans */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != master_pid) /* the master died before the prctl */
			_exit(1);
		close(p[0]);
		for (int i = 0; i < nl; i++)
			close(lfds[i]);
		close(sfd);
		for (size_t i = 0; i < nchildren; i++)
			if (children[i].notify_fd >= 0)
				close(children[i].notify_fd);
		/* other connections' tenants, sources and commands are none of
		 * this connection's business */
		if (children)
			explicit_bzero(children, capchildren * sizeof *children);
		free(children);
		children = NULL;
		nchildren = capchildren = 0;
		if (stfd >= 0)
			close(stfd);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_IGN);
		struct conn_env env = *tmpl;
		env.notify_fd = p[1];
		conn_handle(fd, &env);
	}
	close(fd);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (child_add(pid, p[0], host, key) == NULL) {
		close(p[0]);
		kill(pid, SIGKILL);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--api-gateway") == 0)
		return apigw_exec_main(argc, argv);
	warm_exec_tuned(argv);
	const char *cfgpath = NULL;
	bool check = false, debug = false;
	int opt;
	const char *status_req = NULL;
	char killreq[64];
	bool usage_req = false;
	const char *usage_date = NULL;
	static const struct option longopts[] = {{"status", no_argument, NULL, 'S'},
	                                         {"kill", required_argument, NULL, 'K'},
	                                         {"usage", optional_argument, NULL, 'U'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	while ((opt = getopt_long(argc, argv, "f:tdh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			cfgpath = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'S':
			status_req = "list\n";
			break;
		case 'U':
			usage_req = true;
			usage_date = optarg;
			break;
		case 'K':
			snprintf(killreq, sizeof killreq, "kill %ld\n", strtol(optarg, NULL, 10));
			status_req = killreq;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (cfgpath == NULL || optind != argc) {
		usage();
		return 2;
	}
	/* fds 0-2 must exist so no socket or pipe lands on them */
	int nullfd;
	while ((nullfd = open("/dev/null", O_RDWR)) >= 0 && nullfd <= 2)
		;
	if (nullfd > 2)
		close(nullfd);
	/* SIGHUP re-reads the file after the chdir below */
	char cfgabs[PATH_MAX];
	if (realpath(cfgpath, cfgabs) == NULL) {
		fprintf(stderr, "warrend: %s: %s\n", cfgpath, strerror(errno));
		return 1;
	}
	cfgpath = cfgabs;
	/* no working directory pins a mount or a tenant's path */
	if (chdir("/") < 0) {
		fprintf(stderr, "warrend: chdir /: %s\n", strerror(errno));
		return 1;
	}

	struct server_conf srv;
	struct cfg_error err;
	if (config_load_server(cfgpath, &srv, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	log_set_level(debug ? LOG_DEBUG_ : srv.log_level);
	if (usage_req) {
		int rc = usage_print(srv.state_dir, usage_date, stdout);
		if (rc == -EINVAL)
			fprintf(stderr,
			        "warrend: --usage: expected a UTC day as YYYY-MM-DD, got '%s'\n",
			        usage_date);
		else if (rc < 0)
			fprintf(stderr, "warrend: usage: %s\n", strerror(-rc));
		config_free_server(&srv);
		return rc < 0;
	}
	if (status_req) {
		int rc = status_client(srv.state_dir, status_req);
		config_free_server(&srv);
		return rc;
	}
	if (check) {
		int bad = check_tenants(&srv);
		if (access(srv.bwrap, X_OK) < 0) {
			fprintf(stderr, "%s: bwrap %s: %s\n", srv.path, srv.bwrap, strerror(errno));
			bad = 1;
		}
		char e2[512] = "";
		struct stat st;
		if (stat(srv.state_dir, &st) == 0 &&
		    check_traversable(srv.state_dir, e2, sizeof e2) < 0) {
			fprintf(stderr, "%s: state_dir: %s\n", srv.path, e2);
			bad = 1;
		}
		if (!bad)
			printf("%s: OK\n", cfgpath);
		config_free_server(&srv);
		return bad;
	}

	char self[PATH_MAX], helper[PATH_MAX + 32];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0) {
		log_err("cannot find my own binary: %s", strerror(errno));
		return 1;
	}
	self[sl] = '\0';
	fmt_into(helper, sizeof helper, "%s/warren-init", dirname(self));
	if (access(helper, X_OK) < 0) {
		log_err("%s: %s (it is installed next to warrend)", helper, strerror(errno));
		return 1;
	}
	int rc = state_mkdir(srv.state_dir, 0711);
	char e2[512] = "";
	if (rc < 0) {
		log_err("%s: state_dir %s: %s", srv.path, srv.state_dir, strerror(-rc));
		return 1;
	}
	if (check_traversable(srv.state_dir, e2, sizeof e2) < 0) {
		log_err("%s (tenants could not reach their workspaces)", e2);
		return 1;
	}
	/* Sandboxes bind warren-init from state_dir, so they never depend on
	 * where warrend itself lives (a build tree may sit under /root). */
	char libdir[PATH_MAX], installed[PATH_MAX + 16];
	fmt_into(libdir, sizeof libdir, "%s/lib", srv.state_dir);
	fmt_into(installed, sizeof installed, "%s/warren-init", libdir);
	if ((rc = state_mkdir(libdir, 0755)) < 0 || (rc = install_file(helper, installed)) < 0) {
		log_err("installing %s into %s: %s", helper, libdir, strerror(-rc));
		return 1;
	}
	fmt_into(helper, sizeof helper, "%s", installed);
	/* the workers' seccomp filters, compiled once for every connection */
	if ((rc = confine_prepare()) < 0) {
		log_err("cannot build the workers' seccomp filters: %s", strerror(-rc));
		return 1;
	}
	/* pre-auth runs jailed: the empty root, and whether this kernel lets it */
	if (preauth_prepare(&srv, e2, sizeof e2) < 0) {
		log_err("%s: %s", srv.path, e2);
		return 1;
	}

	if ((rc = waudit_open(srv.audit_log)) < 0) {
		log_err("%s: audit_log %s: %s", srv.path, srv.audit_log, strerror(-rc));
		return 1;
	}
	ssh_init();
	warm_master(); /* OpenSSL's tables, NSS modules: shared by every connection process */
	ssh_key hostkey = NULL;
	if (hostkey_load_or_generate(srv.host_key, &hostkey, e2, sizeof e2) < 0) {
		log_err("%s", e2);
		return 1;
	}
	ssh_bind bind = make_bind(hostkey);
	if (bind == NULL)
		return 1;
	int lfds[CFG_MAX_LISTEN * 2];
	int nl = open_listeners(&srv, lfds, CFG_MAX_LISTEN * 2);
	if (nl <= 0)
		return 1;

	struct host_facts facts;
	host_facts_probe(&facts);
	snprintf(cg.root, sizeof cg.root, "%s", srv.cgroup_root);
	cg.mode = cgroup_detect(cg.root);
	if (cg.mode == CG_NONE &&
	    (srv.sandbox.memory_max || srv.sandbox.pids_max || srv.sandbox.cpu_max_milli)) {
		log_err("%s: [sandbox] sets resource limits but no usable cgroup hierarchy "
		        "(memory and pids controllers) is mounted at %s",
		        srv.path, cg.root);
		return 1;
	}
	log_info("cgroups: %s at %s",
	         cg.mode == CG_V2   ? "v2"
	         : cg.mode == CG_V1 ? "v1"
	                            : "none",
	         cg.root);
	int swept = cgroup_sweep(&cg, session_alive);
	if (swept > 0)
		log_info("removed %d session cgroup(s) left by an earlier run", swept);
	/* the two seccomp filters a sandbox can get, built once for every login */
	static struct bpf_blob filters[2];
	for (int i = 0; i < 2; i++) {
		struct seccomp_opts so = {.nested_sandbox = i == 1};
		void *data;
		if ((rc = seccomp_export(&so, &data, &filters[i].len)) < 0) {
			log_err("cannot build the seccomp filter: %s", strerror(-rc));
			return 1;
		}
		filters[i].data = data;
	}
	struct conn_env tmpl = {.srv = &srv,
	                        .filters = filters,
	                        .bind = bind,
	                        .init_helper = helper,
	                        .facts = &facts,
	                        .cg = &cg,
	                        .notify_fd = -1};

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	/* tenants' environments outlive the connection that started them: they
	 * become our children (envd.c), listed, drained and killed like one */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	stfd = status_listen(srv.state_dir);
	if (stfd < 0)
		log_warn("status socket in %s: %s (warrend --status will not work)", srv.state_dir,
		         strerror(-stfd));
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < srv.nlisten; i++)
		log_info("listening on %s:%s", srv.listen[i].host, srv.listen[i].port);
	unsigned seed;
	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	srandom(seed); /* max_startups' early drop must not be predictable */
	penalties = calloc(1, sizeof *penalties);
	if (penalties)
		penalty_init(penalties, &srv.penalty);
	else
		log_warn("no memory for per-source penalties: they are off");

	struct pollfd *pfds = NULL;
	bool draining = false;
	struct timespec drain_end = {0};
	for (;;) {
		if (draining && nchildren == 0) {
			log_info("drained: all sessions ended; exiting");
			return 0;
		}
		refusal_flush(&refusals, time(NULL), refusal_report);
		/* wake to write the refusal summaries even when nothing happens */
		int timeout = 1000 * refusals.window;
		if (draining) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long left = (drain_end.tv_sec - now.tv_sec) * 1000 +
			            (drain_end.tv_nsec - now.tv_nsec) / 1000000;
			if (left <= 0) {
				log_info("drain_timeout reached: ending %zu session(s)", nchildren);
				for (size_t i = 0; i < nchildren; i++)
					kill(children[i].pid, SIGUSR2);
				drain_end.tv_sec = now.tv_sec + 3600; /* once */
				left = 1000;
			}
			timeout = (int)(left > 1000 ? 1000 : left);
		}
		size_t n = (size_t)nl + 2 + nchildren;
		struct pollfd *np = realloc(pfds, n * sizeof *np);
		if (np == NULL) {
			sleep(1);
			continue;
		}
		pfds = np;
		size_t k = 0;
		for (int i = 0; i < nl; i++)
			pfds[k++] =
			    (struct pollfd){.fd = draining ? -1 : lfds[i], .events = POLLIN};
		pfds[k++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfds[k++] = (struct pollfd){.fd = stfd, .events = POLLIN};
		for (size_t i = 0; i < nchildren; i++)
			pfds[k++] = (struct pollfd){.fd = children[i].notify_fd, .events = POLLIN};
		if (poll(pfds, k, timeout) < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			return 1;
		}
		if (pfds[nl].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGCHLD) {
					reap();
				} else if (si.ssi_signo == SIGHUP) {
					reload(&srv);
				} else if (!draining) {
					/* stop accepting, warn every session, end them at
					 * drain_timeout */
					draining = true;
					for (int i = 0; i < nl; i++)
						close(lfds[i]);
					clock_gettime(CLOCK_MONOTONIC, &drain_end);
					drain_end.tv_sec += srv.drain_timeout;
					log_info(
					    "signal %d: draining %zu connection(s) for up to %d s "
					    "(signal again to end them now)",
					    (int)si.ssi_signo, nchildren, srv.drain_timeout);
					for (size_t i = 0; i < nchildren; i++)
						kill(children[i].pid, SIGTERM);
				} else {
					log_info("signal %d again: ending all sessions now",
					         (int)si.ssi_signo);
					for (size_t i = 0; i < nchildren; i++)
						kill(children[i].pid, SIGUSR2);
					drain_end.tv_sec = 0;
				}
			}
		}
		/* status pipes: indices shift when children are reaped, so match by fd */
		for (size_t j = (size_t)nl + 2; j < k; j++) {
			if (!pfds[j].revents || pfds[j].fd < 0)
				continue;
			for (size_t i = 0; i < nchildren; i++)
				if (children[i].notify_fd == pfds[j].fd) {
					read_status(&children[i]);
					break;
				}
		}
		if (stfd >= 0 && (pfds[nl + 1].revents & POLLIN)) {
			int c = accept4(stfd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				status_serve(c, list_sessions, kill_session);
				close(c);
			}
		}
		for (int i = 0; !draining && i < nl; i++)
			if (pfds[i].revents & POLLIN)
				accept_one(lfds[i], &tmpl, lfds, nl, sfd);
	}
}
