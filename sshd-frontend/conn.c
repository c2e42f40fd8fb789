/* conn.c - the per-connection process, as a sequence (conn_handle):
 *   1. preauth: key exchange and authentication (root, bounded by
 *      login_grace_time and max_auth_tries);
 *   2. login: root preparation: tenant, workspace, profile, connection slot,
 *      cgroup, PAM session, environment, API gateway;
 *   3. fork: the parent stays root as the monitor (monitor_run: answers the
 *      session process's requests, root's session_timeout, PAM close, cgroup
 *      cleanup); the child drops to the tenant in one step (session_side,
 *      privdrop_to) and serves channels (session.c). */
#include "conn.h"
#include "../sandbox/fmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <time.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "../sandbox/disk.h"
#include "../sandbox/profile.h"
#include "../sandbox/workspace.h"
#include "../pam/pam.h"
#include "apigw.h"
#include "audit.h"
#include "authkeys.h"
#include "chanspawn.h"
#include "envd.h"
#include "record.h"
#include "log.h"
#include "monitor.h"
#include "privdrop.h"
#include "slots.h"
#include "session.h"
#include "tenant.h"

struct conn {
	const struct conn_env *env;
	ssh_session session;
	char peer[INET6_ADDRSTRLEN + 8];
	char user[CFG_NAME_MAX + 1];
	bool user_set;
	bool have_tenant;
	struct tenant_conf tenant;
	int failures;
	bool authenticated;
	struct auth_policy policy;
	unsigned done; /* methods passed so far (AM_*) */
	const char *method;
	char peer_host[INET6_ADDRSTRLEN];
	struct wpam *pam;        /* account + session handle, kept by the monitor */
	struct wpam_kbdint *kbd; /* keyboard-interactive conversation in progress */
	struct timespec kbd_started;
	struct session_ctx *sx; /* set after the drop; channels are refused before */
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

static void count_failure(struct conn *cx, const char *user, const char *method, const char *why)
{
	cx->failures++;
	log_info("auth failure: user=%.32s from=%s method=%s (%s) [%d/%d]", user, cx->peer, method,
	         why, cx->failures, cx->env->srv->max_auth_tries);
	waudit_event("auth_failure", "user", user, "source", cx->peer, "method", method, "reason",
	             why, NULL);
	if (cx->failures >= cx->env->srv->max_auth_tries) {
		/* as sshd: disconnect instead of answering the last failure */
		log_warn("%s: too many authentication failures for %.32s", cx->peer, user);
		waudit_event("limit_refused", "limit", "max_auth_tries", "user", user, "source",
		             cx->peer, NULL);
		wpam_kbdint_free(cx->kbd);
		ssh_disconnect(cx->session);
		_exit(0);
	}
}

/* A tenant file, or with allow_system_users a system account (uid != 0)
 * that becomes a tenant with the [sandbox] defaults. */
static bool load_tenant(struct conn *cx, const char *user)
{
	if (cx->user_set)
		return cx->have_tenant;
	cx->user_set = true;
	snprintf(cx->user, sizeof cx->user, "%s", user);
	const struct server_conf *srv = cx->env->srv;
	struct cfg_error e = {{0}};
	int rc = config_load_tenant(srv, user, &cx->tenant, &e);
	if (rc == -EINVAL)
		log_err("%s", e.msg); /* the operator's file is broken: say where */
	cx->have_tenant = rc == 0;
	if (rc == -ENOENT && srv->allow_system_users && tenant_name_valid(user)) {
		struct passwd *pw = getpwnam(user);
		if (pw && pw->pw_uid != 0) {
			memset(&cx->tenant, 0, sizeof cx->tenant);
			snprintf(cx->tenant.name, sizeof cx->tenant.name, "%s", user);
			cx->tenant.path = strdup("(system user)");
			cx->tenant.has_uid = true;
			cx->tenant.uid = pw->pw_uid;
			cx->tenant.sandbox = srv->sandbox;
			cx->have_tenant = cx->tenant.path != NULL;
		}
	}
	cx->policy = cx->have_tenant && cx->tenant.has_auth ? cx->tenant.auth : srv->auth;
	if (!srv->use_pam)
		/* password and keyboard-interactive exist only through PAM */
		for (int a = 0; a < cx->policy.nalts; a++)
			for (int i = 0; i < cx->policy.nsteps[a]; i++)
				if (cx->policy.steps[a][i] != AM_PUBLICKEY)
					cx->policy.steps[a][i] = 0x100; /* never offered */
	return cx->have_tenant;
}

static int ssh_methods(unsigned m)
{
	return (m & AM_PUBLICKEY ? SSH_AUTH_METHOD_PUBLICKEY : 0) |
	       (m & AM_PASSWORD ? SSH_AUTH_METHOD_PASSWORD : 0) |
	       (m & AM_KBDINT ? SSH_AUTH_METHOD_INTERACTIVE : 0);
}

static bool user_ok(struct conn *cx, const char *user, const char *method)
{
	if (cx->user_set && strcmp(user, cx->user) != 0) {
		/* OpenSSH refuses a change of user within one connection */
		count_failure(cx, user, method, "user changed during authentication");
		return false;
	}
	load_tenant(cx, user);
	return true;
}

/* Each failed password or keyboard-interactive attempt takes at least this
 * long, known user or not, so timing tells nothing about who exists. */
#define FAIL_FLOOR_MS 500

static void fail_floor(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
	if (ms < FAIL_FLOOR_MS) {
		struct timespec d = {0, (FAIL_FLOOR_MS - ms) * 1000000L};
		nanosleep(&d, NULL);
	}
}

/* A method passed: the login is done, or another method is still required.
 * Returns SSH_AUTH_SUCCESS, SSH_AUTH_PARTIAL or SSH_AUTH_DENIED. */
static int method_passed(struct conn *cx, unsigned method, const char *name)
{
	cx->done |= method;
	if (!cx->have_tenant) {
		count_failure(cx, cx->user, name, "no such tenant");
		return SSH_AUTH_DENIED;
	}
	if (!auth_policy_complete(&cx->policy, cx->done)) {
		ssh_set_auth_methods(cx->session,
		                     ssh_methods(auth_policy_next(&cx->policy, cx->done)));
		log_info("partial success: user=%s from=%s method=%s", cx->user, cx->peer, name);
		return SSH_AUTH_PARTIAL;
	}
	const struct server_conf *srv = cx->env->srv;
	if (srv->use_pam) {
		char msg[512] = "";
		cx->pam = wpam_open(srv->pam_service, cx->user, cx->peer_host);
		if (cx->pam == NULL || wpam_account(cx->pam, msg, sizeof msg) < 0) {
			/* expired or locked: refused, with PAM's words on the client */
			log_warn("account refused by PAM: user=%s from=%s: %s", cx->user, cx->peer,
			         msg);
			char line[600];
			snprintf(line, sizeof line, "warren: %s\r\n",
			         msg[0] ? msg : "account unavailable");
			ssh_string b = ssh_string_from_char(line);
			if (b) {
				ssh_send_issue_banner(cx->session, b);
				ssh_string_free(b);
			}
			/* as sshd: tell the user why, then disconnect */
			wpam_end(cx->pam);
			ssh_disconnect(cx->session);
			_exit(0);
		}
	}
	cx->authenticated = true;
	cx->method = name;
	return SSH_AUTH_SUCCESS;
}

static int auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *pubkey,
                       char signature_state, void *ud)
{
	(void)s;
	struct conn *cx = ud;
	if (!user_ok(cx, user, "publickey"))
		return SSH_AUTH_DENIED;
	if (!(auth_policy_next(&cx->policy, cx->done) & AM_PUBLICKEY)) {
		count_failure(cx, user, "publickey", "method not allowed now");
		return SSH_AUTH_DENIED;
	}
	if (!cx->have_tenant) {
		count_failure(cx, user, "publickey", "no such tenant");
		return SSH_AUTH_DENIED;
	}
	if (!authkeys_match(&cx->tenant, pubkey)) {
		count_failure(cx, user, "publickey", "key not authorized");
		return SSH_AUTH_DENIED;
	}
	if (signature_state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS; /* a query: libssh answers PK_OK */
	if (signature_state != SSH_PUBLICKEY_STATE_VALID) {
		count_failure(cx, user, "publickey", "bad signature");
		return SSH_AUTH_DENIED;
	}
	return method_passed(cx, AM_PUBLICKEY, "publickey");
}

static int auth_password(ssh_session s, const char *user, const char *password, void *ud)
{
	(void)s;
	struct conn *cx = ud;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!user_ok(cx, user, "password"))
		return SSH_AUTH_DENIED;
	const struct server_conf *srv = cx->env->srv;
	bool allowed = srv->use_pam && (auth_policy_next(&cx->policy, cx->done) & AM_PASSWORD);
	char msg[256];
	/* PAM runs for unknown users too: same work, same time, same answer */
	int rc =
	    allowed && tenant_name_valid(user)
	        ? wpam_password(srv->pam_service, user, cx->peer_host, password, msg, sizeof msg)
	        : -1;
	explicit_bzero((char *)password, strlen(password));
	if (rc < 0 || !cx->have_tenant) {
		fail_floor(&t0);
		count_failure(cx, user, "password",
		              allowed ? "wrong password" : "method not allowed");
		return SSH_AUTH_DENIED;
	}
	return method_passed(cx, AM_PASSWORD, "password");
}

/* keyboard-interactive: libssh 0.10 has no callback for it, so it arrives
 * here as a message. Each call sends the next round or the final answer. */
static int kbdint_prompt(ssh_message msg, struct wpam_prompts *p)
{
	const char *prompts[WPAM_MAX_PROMPTS];
	char echo[WPAM_MAX_PROMPTS];
	for (int i = 0; i < p->n; i++) {
		prompts[i] = p->text[i];
		echo[i] = p->echo[i];
	}
	ssh_message_auth_interactive_request(msg, "", p->info, (unsigned)p->n, prompts, echo);
	return 0;
}

static int kbdint_finish(struct conn *cx, ssh_message msg, bool ok, const struct timespec *t0)
{
	wpam_kbdint_free(cx->kbd);
	cx->kbd = NULL;
	int rc = SSH_AUTH_DENIED;
	if (ok && cx->have_tenant)
		rc = method_passed(cx, AM_KBDINT, "keyboard-interactive");
	else {
		fail_floor(t0);
		count_failure(cx, cx->user, "keyboard-interactive", "PAM refused");
	}
	if (rc == SSH_AUTH_SUCCESS || rc == SSH_AUTH_PARTIAL) {
		ssh_message_auth_reply_success(msg, rc == SSH_AUTH_PARTIAL);
	} else {
		ssh_message_reply_default(msg);
	}
	return 0;
}

static int on_message(ssh_session s, ssh_message msg, void *ud)
{
	(void)s;
	struct conn *cx = ud;
	if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN && cx->sx)
		return session_channel_request(cx->sx, msg);
	if (ssh_message_type(msg) == SSH_REQUEST_GLOBAL && cx->sx)
		return session_global_request(cx->sx, msg);
	if (ssh_message_type(msg) != SSH_REQUEST_AUTH ||
	    ssh_message_subtype(msg) != SSH_AUTH_METHOD_INTERACTIVE)
		return 1; /* libssh answers with a failure */
	const struct server_conf *srv = cx->env->srv;
	int timeout = srv->login_grace_time * 1000;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct wpam_prompts p;
	if (!ssh_message_auth_kbdint_is_response(msg)) {
		const char *user = ssh_message_auth_user(msg);
		if (!user_ok(cx, user ? user : "", "keyboard-interactive"))
			return 1;
		if (!srv->use_pam || !(auth_policy_next(&cx->policy, cx->done) & AM_KBDINT)) {
			count_failure(cx, cx->user, "keyboard-interactive", "method not allowed");
			return 1;
		}
		wpam_kbdint_free(cx->kbd);
		cx->kbd_started = t0;
		/* unknown users get a real PAM conversation too (PAM fails them) */
		cx->kbd = tenant_name_valid(cx->user)
		              ? wpam_kbdint_start(srv->pam_service, cx->user, cx->peer_host)
		              : NULL;
		if (cx->kbd == NULL)
			return kbdint_finish(cx, msg, false, &t0);
	} else {
		if (cx->kbd == NULL)
			return kbdint_finish(cx, msg, false, &t0);
		int n = ssh_userauth_kbdint_getnanswers(cx->session);
		const char *ans[WPAM_MAX_PROMPTS];
		if (n < 0 || n > WPAM_MAX_PROMPTS)
			return kbdint_finish(cx, msg, false, &cx->kbd_started);
		for (int i = 0; i < n; i++)
			ans[i] = ssh_userauth_kbdint_getanswer(cx->session, (unsigned)i);
		int rc = wpam_kbdint_answer(cx->kbd, n, ans);
		for (int i = 0; i < n; i++)
			if (ans[i])
				explicit_bzero((char *)ans[i], strlen(ans[i]));
		if (rc < 0)
			return kbdint_finish(cx, msg, false, &cx->kbd_started);
	}
	switch (wpam_kbdint_next(cx->kbd, &p, timeout)) {
	case WPAM_PROMPTS:
		return kbdint_prompt(msg, &p);
	case WPAM_SUCCESS:
		return kbdint_finish(cx, msg, true, &cx->kbd_started);
	default:
		return kbdint_finish(cx, msg, false, &cx->kbd_started);
	}
}

static ssh_channel open_session(ssh_session s, void *ud)
{
	(void)s;
	struct conn *cx = ud;
	if (cx->sx == NULL)
		return NULL;
	return session_channel_open(cx->sx);
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
	snprintf(cx->peer, sizeof cx->peer, "%s:%s", ph, pp);
	snprintf(cx->peer_host, sizeof cx->peer_host, "%s", ph);
	snprintf(conn_str, len, "%s %s %s %s", ph, pp, lh, lp);
}

/* Root, after authentication: the last privileged work for this login. */
static int prepare_tenant(struct conn *cx, struct session_ctx *sx)
{
	char err[512];
	if (tenant_resolve(cx->env->srv, &cx->tenant, &sx->id, err, sizeof err) < 0) {
		log_err("tenant %s: %s", cx->tenant.name, err);
		return -1;
	}
	if (workspace_ensure(cx->env->srv->state_dir, cx->tenant.name, sx->id.uid, sx->id.gid,
	                     cx->env->srv->template_dir, sx->workspace, sizeof sx->workspace, err,
	                     sizeof err) < 0) {
		log_err("tenant %s: %s", cx->tenant.name, err);
		return -1;
	}
	if (cx->tenant.sandbox.disk_max &&
	    disk_ensure(cx->env->srv->state_dir, cx->tenant.name, sx->workspace, sx->id.uid,
	                sx->id.gid, cx->tenant.sandbox.disk_max, err, sizeof err) < 0) {
		log_err("tenant %s: workspace filesystem (disk_max): %s", cx->tenant.name, err);
		return -1;
	}
	/* running sessions of this tenant, one file each, counted for max_sessions */
	char top[PATH_MAX];
	if (fmt_into(top, sizeof top, "%s/sessions", cx->env->srv->state_dir) < 0 ||
	    fmt_into(sx->sessions_dir, sizeof sx->sessions_dir, "%s/%s", top, cx->tenant.name) <
	        0) {
		log_err("tenant %s: state_dir path too long", cx->tenant.name);
		return -1;
	}
	/* root's: the monitor counts max_sessions there (older versions gave
	 * it to the tenant: taken back) */
	if (state_mkdir(top, 0711) < 0 || (mkdir(sx->sessions_dir, 0700) < 0 && errno != EEXIST) ||
	    chown(sx->sessions_dir, 0, 0) < 0 || chmod(sx->sessions_dir, 0700) < 0) {
		log_err("tenant %s: %s: %s", cx->tenant.name, sx->sessions_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* max_connections: one slot per connection in a root-owned directory,
 * named after this (the monitor's) pid; the monitor frees it at the end */
static void claim_connection(struct conn *cx, struct session_ctx *sx, char *dir, size_t len)
{
	char top[PATH_MAX];
	long max = cx->tenant.sandbox.max_connections, held = 0;
	if (max <= 0)
		return;
	if (fmt_into(top, sizeof top, "%s/connections", cx->env->srv->state_dir) < 0 ||
	    fmt_into(dir, len, "%s/%s", top, cx->tenant.name) < 0 || state_mkdir(top, 0700) < 0 ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		log_warn("tenant %s: connection slots: %s", cx->tenant.name, strerror(errno));
		dir[0] = '\0';
		return;
	}
	if (slots_claim(dir, max, getpid(), &held) < 0) {
		dir[0] = '\0';
		snprintf(sx->fail, sizeof sx->fail,
		         "connection limit reached: %ld connections are open (max_connections = %ld)",
		         held, max);
		log_warn("tenant %s from %s: max_connections (%ld) reached", cx->tenant.name,
		         cx->peer, max);
		waudit_event("limit_refused", "limit", "max_connections", "tenant", cx->tenant.name,
		             "source", cx->peer, NULL);
	}
}

/* The tenant's toolchain: built by root from the admin's flake on a cache
 * miss, never from anything the tenant controls. */
static void prepare_profile(struct conn *cx, struct session_ctx *sx)
{
	const struct server_conf *srv = cx->env->srv;
	const char *name = cx->tenant.sandbox.profile;
	if (srv->profiles_dir == NULL || !strcmp(name, "none"))
		return;
	struct profile_builder b = {.profiles_dir = srv->profiles_dir,
	                            .state_dir = srv->state_dir,
	                            .nix = srv->nix,
	                            .offline = srv->nix_offline};
	char err[600], detail[1500];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (profile_activate(&b, name, &sx->profile, err, sizeof err, detail, sizeof detail) < 0) {
		log_err("tenant %s: %s", cx->tenant.name, err);
		/* nix's own words, last lines only, one log line each */
		for (char *line = strtok(detail, "\n"); line; line = strtok(NULL, "\n"))
			log_err("  nix: %s", line);
		snprintf(sx->fail, sizeof sx->fail,
		         "profile '%.60s' is not available; the operator's log has details", name);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000L;
	sx->have_profile = true;
	log_info("profile %s for %s: %s (%s, %ld us)", name, cx->tenant.name, sx->profile.store,
	         sx->profile.cache_hit ? "cache hit" : "built", us);
}

/* sandbox_scope = tenant: join the tenant's running environment, or start
 * it; the master learns of a new one ("E<pid>", right after "A<tenant>"). */
static void join_environment(struct conn *cx, struct session_ctx *sx, const struct conn_env *env)
{
	const struct server_conf *srv = cx->env->srv;
	char line[32];
	pid_t started = 0;
	if (!sx->fail[0] && !cx->tenant.sandbox.scope_channel) {
		static struct envd_ctx ctx;
		ctx = (struct envd_ctx){.srv = srv,
		                        .tenant = &cx->tenant,
		                        .uid = sx->id.uid,
		                        .gid = sx->id.gid,
		                        .workspace = sx->workspace,
		                        .init_helper = sx->init_helper,
		                        .facts = &sx->facts,
		                        .profile = sx->have_profile ? &sx->profile : NULL,
		                        .filter = sx->filter,
		                        .cg = env->cg,
		                        .master_pid = getppid(),
		                        .close_fds = {env->notify_fd},
		                        .nclose = 1,
		                        .session = cx->session,
		                        .bind = env->bind};
		char err[PATH_MAX + 100];
		if (fmt_into(ctx.sock_path, sizeof ctx.sock_path, "%s/envs/%s.sock", srv->state_dir,
		             cx->tenant.name) < 0 ||
		    (sx->env_member = envd_join(&ctx, &started, err, sizeof err)) < 0) {
			log_err("tenant %s: environment: %s", cx->tenant.name, err);
			snprintf(sx->fail, sizeof sx->fail,
			         "your environment could not be started; the operator's log has "
			         "details");
		}
		snprintf(sx->env_sock, sizeof sx->env_sock, "%s", ctx.sock_path);
	}
	int n = snprintf(line, sizeof line, "E%ld\n", (long)started);
	if (write(env->notify_fd, line, (size_t)n) < 0)
		log_debug("notify master: %s", strerror(errno));
}

/* What login prepared, shared by the monitor and the session process. */
struct login {
	long cg_id; /* the session cgroup, named after the monitor's pid */
	bool have_cg;
	char conn_dir[PATH_MAX]; /* max_connections slot */
	struct apigw gw;
	int monsock[2];      /* monitor <-> session process */
	sigset_t chld;       /* SIGCHLD, blocked: the monitor waits on a signalfd */
	pid_t monitor;
};

/* pre-auth: key exchange, then the auth callbacks until one succeeds */
static ssh_event preauth(struct conn *cx, int fd)
{
	const struct conn_env *env = cx->env;
	ssh_session session = ssh_new();
	if (session == NULL || ssh_bind_accept_fd(env->bind, session, fd) != SSH_OK) {
		log_err("%s: cannot set up the SSH session", cx->peer);
		_exit(1);
	}
	cx->session = session;
	static struct ssh_server_callbacks_struct cb;
	cb = (struct ssh_server_callbacks_struct){
	    .userdata = cx,
	    .auth_pubkey_function = auth_pubkey,
	    .auth_password_function = auth_password,
	    .channel_open_request_session_function = open_session,
	};
	ssh_callbacks_init(&cb);
	ssh_set_server_callbacks(session, &cb);
	ssh_set_message_callback(session, on_message, cx);
	/* Offer every method the server has, to everyone: offering per-user
	 * methods would tell a prober which users exist. Each attempt is then
	 * checked against the user's own policy. */
	cx->policy = env->srv->auth;
	ssh_set_auth_methods(
	    session,
	    SSH_AUTH_METHOD_PUBLICKEY |
	        (env->srv->use_pam ? SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_INTERACTIVE : 0));
	if (ssh_handle_key_exchange(session) != SSH_OK) {
		log_info("%s: key exchange failed: %s", cx->peer, ssh_get_error(session));
		_exit(1);
	}
	ssh_event event = ssh_event_new();
	if (event == NULL || ssh_event_add_session(event, session) != SSH_OK) {
		log_err("%s: cannot create the event loop", cx->peer);
		_exit(1);
	}
	while (!cx->authenticated) {
		if (ssh_event_dopoll(event, 1000) == SSH_ERROR) {
			log_info("%s: disconnected before authentication", cx->peer);
			_exit(0);
		}
	}
	return event;
}

static void log_accepted(const struct conn *cx)
{
	char methods[64] = "";
	static const unsigned bits[] = {AM_PUBLICKEY, AM_PASSWORD, AM_KBDINT};
	static const char *const names[] = {"publickey", "password", "keyboard-interactive"};
	for (int i = 0; i < 3; i++)
		if (cx->done & bits[i])
			snprintf(methods + strlen(methods), sizeof methods - strlen(methods), "%s%s",
			         methods[0] ? "+" : "", names[i]);
	log_info("accepted %s for %s from %s", methods, cx->tenant.name, cx->peer);
	waudit_event("auth_success", "tenant", cx->tenant.name, "source", cx->peer, "method",
	             methods, NULL);
}

/* Limits for this session (and the tenant's total), named after the
 * monitor's pid so a restart can tell live sessions from leftovers. */
static void login_limits(struct conn *cx, struct session_ctx *sx, struct login *lg)
{
	const struct conn_env *env = cx->env;
	const struct sandbox_conf *sb = &cx->tenant.sandbox;
	struct cg_limits lim = policy_cg_limits(sb);
	int crc = cgroup_session_create(env->cg, cx->tenant.name, lg->cg_id, &lim);
	if (crc < 0) {
		log_err("tenant %s: cgroup limits: %s", cx->tenant.name, strerror(-crc));
		snprintf(sx->fail, sizeof sx->fail,
		         "resource limits could not be applied; the operator's log has details");
		cgroup_session_destroy(env->cg, cx->tenant.name, lg->cg_id);
	} else if (cgroup_tenant_pids_free(env->cg, cx->tenant.name) < 2) {
		/* this monitor and its session process count against the tenant
		 * too: no room for them, no session */
		log_warn("tenant %s: pids_max (%ld) reached; connection refused", cx->tenant.name,
		         sb->pids_max);
		snprintf(sx->fail, sizeof sx->fail,
		         "process limit reached: pids_max = %ld processes are running", sb->pids_max);
		cgroup_session_destroy(env->cg, cx->tenant.name, lg->cg_id);
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
	if (cx->pam && !sx->fail[0]) {
		char msg[256];
		if (wpam_session_open(cx->pam, msg, sizeof msg) < 0) {
			log_err("tenant %s: pam_open_session: %s", cx->tenant.name, msg);
			/* the client's line may be cut; the log above has it whole */
			snprintf(sx->fail, sizeof sx->fail, "session refused: %.160s", msg);
		}
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	/* tell the master who this is (frees a max_startups slot) */
	char note[64];
	int nl = snprintf(note, sizeof note, "A%s\n", cx->tenant.name);
	if (write(env->notify_fd, note, (size_t)nl) < 0)
		log_debug("notify master: %s", strerror(errno));
	sx->filter = &env->filters[cx->tenant.sandbox.nested_sandbox ? 1 : 0];
	sx->env_member = -1;
	join_environment(cx, sx, env);
	/* the tenant's APIs: a gateway process of their own holds the keys */
	lg->gw = (struct apigw){.pid = -1, .monitor_fd = -1, .session_fd = -1};
	if (!sx->fail[0] && cx->tenant.sandbox.api_mask &&
	    !envd_serves_apis(&cx->tenant.sandbox)) {
		if (apigw_start(&lg->gw, env->srv, cx->tenant.name, cx->tenant.sandbox.api_mask) < 0)
			log_err("tenant %s: API gateway: %s", cx->tenant.name, strerror(errno));
		else if (lg->have_cg &&
		         cgroup_attach(env->cg, cx->tenant.name, lg->cg_id, lg->gw.pid) < 0)
			log_warn("tenant %s: API gateway outside the session cgroup", cx->tenant.name);
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
	         cx->tenant.name, cap);
	waudit_event("limit_enforced", "tenant", cx->tenant.name, "limit", "record_max_bytes",
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
		struct pollfd pf[3] = {{.fd = mon->sock, .events = POLLIN},
		                       {.fd = cfd, .events = POLLIN},
		                       {.fd = lg->gw.monitor_fd, .events = POLLIN}};
		int dl = ended ? -1 : monitor_wake_ms(mon);
		int pr = poll(pf, 3, cfd < 0 ? 500 : dl);
		if (pr > 0 && (pf[2].revents & POLLIN))
			apigw_serve_monitor(lg->gw.monitor_fd, srv, cx->tenant.name,
			                    cx->tenant.sandbox.api_mask);
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
			         cx->tenant.name, mon->session_timeout, MON_TIMEOUT_GRACE_S);
			waudit_event("timeout_enforced", "tenant", cx->tenant.name, "limit",
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
		if (w == child)
			return status;
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
	int jrc = lg->have_cg ? cgroup_monitor_join(env->cg, cx->tenant.name, getpid()) : 0;
	if (jrc < 0)
		log_warn("tenant %s: monitor cgroup: %s", cx->tenant.name, strerror(-jrc));
	else if (lg->have_cg)
		privdrop_oom_protect();
	struct monitor mon = {.sock = lg->monsock[0],
	                      .tenant = cx->tenant.name,
	                      .peer = child,
	                      .state_dir = env->srv->state_dir,
	                      .max_sessions = cx->tenant.sandbox.max_sessions,
	                      .record_total_max = cx->tenant.sandbox.record_total_max,
	                      .record_max = cx->tenant.sandbox.record_max_bytes,
	                      .session_timeout = cx->tenant.sandbox.session_timeout,
	                      .source = sx->ssh_connection,
	                      .notify_fd = env->notify_fd};
	snprintf(mon.slots_dir, sizeof mon.slots_dir, "%s", sx->sessions_dir);
	/* sandbox_scope = channel: the session process asks for each sandbox */
	static struct chanspawn cs;
	cs = (struct chanspawn){.sx = sx,
	                        .cg = env->cg,
	                        .cg_id = lg->cg_id,
	                        .have_cg = lg->have_cg,
	                        .close_fds = {env->notify_fd, lg->monsock[0], lg->gw.monitor_fd},
	                        .nclose = 3};
	if (cx->tenant.sandbox.scope_channel) {
		mon.spawn = chanspawn_start;
		mon.spawn_ud = &cs;
	}
	fcntl(mon.notify_fd, F_SETFL, fcntl(mon.notify_fd, F_GETFL) | O_NONBLOCK);
	struct sigaction sa = {.sa_handler = monitor_forward};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	/* the client's socket, the session keys and the host key are the
	 * session process's: freed here (ssh_free closes the socket), and the
	 * memory given back, so an idle connection costs less */
	ssh_free(cx->session);
	cx->session = NULL;
	ssh_bind_free(env->bind);
	malloc_trim(0);
	if (lg->monsock[1] >= 0)
		close(lg->monsock[1]);
	if (sx->env_member >= 0)
		close(sx->env_member);
	if (lg->gw.session_fd >= 0)
		close(lg->gw.session_fd);
	int status = monitor_wait(cx, lg, &mon, child, &cs);
	if (monitor_record_over(&mon, true)) /* written just before it ended */
		record_enforced(cx, &mon);
	if (WIFSIGNALED(status))
		log_warn("session process for %s killed by signal %d", cx->tenant.name,
		         WTERMSIG(status));
	if (lg->gw.pid > 0) {
		kill(lg->gw.pid, SIGKILL); /* requests in flight end with the connection */
		waitpid(lg->gw.pid, NULL, 0);
	}
	if (lg->have_cg)
		cgroup_session_destroy(env->cg, cx->tenant.name, lg->cg_id);
	/* the session is over: get its workspace writes to disk */
	int wfd = sx->workspace[0] ? open(sx->workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (wfd >= 0) {
		syncfs(wfd);
		close(wfd);
	}
	if (cx->pam) {
		wpam_session_close(cx->pam);
		wpam_end(cx->pam);
	}
	monitor_release_all(&mon);
	if (lg->conn_dir[0])
		slots_release(lg->conn_dir, lg->monitor);
	log_info("session closed for %s", cx->tenant.name);
	_exit(0);
}

/* The session process: joins the session cgroup, drops to the tenant for
 * good, and serves the channels (session.c). */
static _Noreturn void session_side(struct conn *cx, struct session_ctx *sx, struct login *lg)
{
	const struct conn_env *env = cx->env;
	/* the session process and all it spawns are counted in the cgroup */
	if (lg->have_cg && cgroup_attach(env->cg, cx->tenant.name, lg->cg_id, getpid()) < 0) {
		log_err("tenant %s: cannot join the session cgroup", cx->tenant.name);
		_exit(1);
	}
	/* ---- the privilege drop: after this line nothing runs as root ---- */
	if (privdrop_to(sx->id.uid, sx->id.gid) < 0)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* set after the drop: setuid clears it */
	if (getppid() != lg->monitor)
		_exit(1);
	log_debug("session process for %s runs as %u:%u (%s)", cx->tenant.name,
	          (unsigned)sx->id.uid, (unsigned)sx->id.gid, sx->id.source);
	close(lg->monsock[0]);
	sx->mon_sock = lg->monsock[1];
	/* what root holds stays with root: audit events and status lines go
	 * through the monitor from here on */
	waudit_forward(sx->mon_sock);
	close(env->notify_fd);
	if (lg->gw.monitor_fd >= 0)
		close(lg->gw.monitor_fd);
	sx->api_sock = lg->gw.session_fd;
	cx->sx = sx;
	int rc = session_run(sx);
	ssh_disconnect(cx->session);
	ssh_free(cx->session);
	_exit(rc);
}

/* One connection: pre-auth -> login (root preparation) -> fork -> monitor
 * loop (root) | privilege drop -> session (the tenant). */
void conn_handle(int fd, const struct conn_env *env)
{
	static struct conn cx;
	static struct session_ctx sx;
	static struct login lg;
	cx = (struct conn){.env = env};

	signal(SIGALRM, grace_alarm);
	alarm((unsigned)env->srv->login_grace_time);
	describe_peer(fd, &cx, sx.ssh_connection, sizeof sx.ssh_connection);
	/* Small replies (sftp status, prompts) must not wait for Nagle behind
	 * the client's delayed ACKs; libssh already writes whole packets. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	ssh_event event = preauth(&cx, fd);
	log_accepted(&cx);

	sx.session = cx.session;
	sx.event = event;
	sx.srv = env->srv;
	sx.tenant = &cx.tenant;
	sx.facts = *env->facts;
	snprintf(sx.init_helper, sizeof sx.init_helper, "%s", env->init_helper);
	alarm(0); /* authenticated: a profile build may take longer than the grace time */
	lg.cg_id = (long)getpid();
	lg.monitor = getpid();
	login(&cx, &sx, &lg);

	/* the session process asks the monitor for slots, files, audit lines */
	lg.monsock[0] = lg.monsock[1] = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lg.monsock) < 0)
		log_warn("monitor socket: %s", strerror(errno));
	/* SIGCHLD stays blocked so the monitor can wait for it on a signalfd */
	sigemptyset(&lg.chld);
	sigaddset(&lg.chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &lg.chld, NULL);
	pid_t pid = fork();
	if (pid < 0) {
		log_err("tenant %s: session process: fork: %s", cx.tenant.name, strerror(errno));
		if (lg.have_cg)
			cgroup_session_destroy(env->cg, cx.tenant.name, lg.cg_id);
		_exit(1);
	}
	if (pid > 0)
		monitor_run(&cx, &sx, &lg, pid);
	session_side(&cx, &sx, &lg);
}
