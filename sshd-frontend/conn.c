/* conn.c - the per-connection process. Order of events:
 *   1. key exchange and public-key authentication (root, bounded by
 *      login_grace_time and max_auth_tries);
 *   2. tenant preparation while still root: uid, workspace;
 *   3. fork: the parent stays root as the monitor (it will own PAM session
 *      close and cgroup cleanup) and only waits; the child drops to the
 *      tenant in one step (privdrop_to) and serves channels (session.c). */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "../sandbox/workspace.h"
#include "authkeys.h"
#include "log.h"
#include "privdrop.h"
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
	bool too_many;
	struct session_ctx *sx; /* set after the drop; channels are refused before */
};

static void grace_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "warrend: login grace time exceeded, closing\n";
	ssize_t w = write(2, msg, sizeof msg - 1);
	(void)w;
	_exit(1);
}

static void count_failure(struct conn *cx, const char *user, const char *why)
{
	cx->failures++;
	log_info("auth failure: user=%.32s from=%s method=publickey (%s) [%d/%d]", user, cx->peer,
	         why, cx->failures, cx->env->srv->max_auth_tries);
	if (cx->failures >= cx->env->srv->max_auth_tries)
		cx->too_many = true;
}

static bool load_tenant(struct conn *cx, const char *user)
{
	if (cx->user_set)
		return cx->have_tenant;
	cx->user_set = true;
	snprintf(cx->user, sizeof cx->user, "%s", user);
	struct cfg_error e = {{0}};
	int rc = config_load_tenant(cx->env->srv, user, &cx->tenant, &e);
	if (rc == -EINVAL)
		log_err("%s", e.msg); /* the operator's file is broken: say where */
	cx->have_tenant = rc == 0;
	return cx->have_tenant;
}

static int auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *pubkey,
                       char signature_state, void *ud)
{
	(void)s;
	struct conn *cx = ud;
	if (cx->too_many)
		return SSH_AUTH_DENIED;
	if (cx->user_set && strcmp(user, cx->user) != 0) {
		/* OpenSSH refuses a change of user within one connection */
		count_failure(cx, user, "user changed during authentication");
		return SSH_AUTH_DENIED;
	}
	if (!load_tenant(cx, user)) {
		count_failure(cx, user, "no such tenant");
		return SSH_AUTH_DENIED;
	}
	bool ok = authkeys_match(&cx->tenant, pubkey);
	if (!ok) {
		count_failure(cx, user, "key not authorized");
		return SSH_AUTH_DENIED;
	}
	if (signature_state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS; /* a query: libssh answers PK_OK */
	if (signature_state != SSH_PUBLICKEY_STATE_VALID) {
		count_failure(cx, user, "bad signature");
		return SSH_AUTH_DENIED;
	}
	cx->authenticated = true;
	return SSH_AUTH_SUCCESS;
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
	return 0;
}

void conn_handle(int fd, const struct conn_env *env)
{
	struct conn cx = {.env = env};
	static struct session_ctx sx;
	const struct server_conf *srv = env->srv;

	signal(SIGALRM, grace_alarm);
	alarm((unsigned)srv->login_grace_time);
	describe_peer(fd, &cx, sx.ssh_connection, sizeof sx.ssh_connection);

	ssh_session session = ssh_new();
	if (session == NULL || ssh_bind_accept_fd(env->bind, session, fd) != SSH_OK) {
		log_err("%s: cannot set up the SSH session", cx.peer);
		_exit(1);
	}
	cx.session = session;
	struct ssh_server_callbacks_struct cb = {
	    .userdata = &cx,
	    .auth_pubkey_function = auth_pubkey,
	    .channel_open_request_session_function = open_session,
	};
	ssh_callbacks_init(&cb);
	ssh_set_server_callbacks(session, &cb);
	ssh_set_auth_methods(session, SSH_AUTH_METHOD_PUBLICKEY);

	if (ssh_handle_key_exchange(session) != SSH_OK) {
		log_info("%s: key exchange failed: %s", cx.peer, ssh_get_error(session));
		_exit(1);
	}
	ssh_event event = ssh_event_new();
	if (event == NULL || ssh_event_add_session(event, session) != SSH_OK) {
		log_err("%s: cannot create the event loop", cx.peer);
		_exit(1);
	}
	while (!cx.authenticated) {
		if (ssh_event_dopoll(event, 1000) == SSH_ERROR) {
			log_info("%s: disconnected before authentication", cx.peer);
			_exit(0);
		}
		if (cx.too_many) {
			log_warn("%s: too many authentication failures for %.32s", cx.peer,
			         cx.user);
			ssh_disconnect(session);
			_exit(0);
		}
	}
	log_info("accepted publickey for %s from %s", cx.tenant.name, cx.peer);

	sx.session = session;
	sx.event = event;
	sx.srv = srv;
	sx.tenant = &cx.tenant;
	sx.facts = *env->facts;
	snprintf(sx.init_helper, sizeof sx.init_helper, "%s", env->init_helper);
	if (prepare_tenant(&cx, &sx) < 0) {
		/* Authenticated, but no session can be had: answer each request
		 * with one clear line, as nobody, rather than drop the connection. */
		snprintf(sx.fail, sizeof sx.fail,
		         "your workspace could not be prepared; the operator's log has details");
		sx.id.uid = 65534;
		sx.id.gid = 65534;
		sx.id.source = "nobody (tenant preparation failed)";
	}
	/* Limits for this session (and the tenant's total), named after the
	 * monitor's pid so a restart can tell live sessions from leftovers. */
	long cg_id = (long)getpid();
	bool have_cg = false;
	if (!sx.fail[0]) {
		const struct sandbox_conf *sb = &cx.tenant.sandbox;
		struct cg_limits lim = {.memory_max = sb->memory_max,
					.pids_max = sb->pids_max,
					.cpu_max_milli = sb->cpu_max_milli};
		int crc = cgroup_session_create(env->cg, cx.tenant.name, cg_id, &lim);
		if (crc < 0) {
			log_err("tenant %s: cgroup limits: %s", cx.tenant.name, strerror(-crc));
			snprintf(sx.fail, sizeof sx.fail,
				 "resource limits could not be applied; the operator's log has details");
			cgroup_session_destroy(env->cg, cx.tenant.name, cg_id);
		} else {
			have_cg = env->cg->mode != CG_NONE;
		}
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	if (write(env->notify_fd, "A", 1) < 0)
		log_debug("notify master: %s", strerror(errno));
	close(env->notify_fd);

	pid_t pid_monitor = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		log_err("fork: %s", strerror(errno));
		_exit(1);
	}
	if (pid > 0) {
		/* Monitor: root, holds no tenant traffic. Waits for the session
		 * process; the place for PAM close and cgroup cleanup. */
		close(ssh_get_fd(session));
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(status))
			log_warn("session process for %s killed by signal %d", cx.tenant.name,
			         WTERMSIG(status));
		if (have_cg)
			cgroup_session_destroy(env->cg, cx.tenant.name, cg_id);
		_exit(0);
	}
	/* the session process and all it spawns are counted in the cgroup */
	if (have_cg && cgroup_attach(env->cg, cx.tenant.name, cg_id, getpid()) < 0) {
		log_err("tenant %s: cannot join the session cgroup", cx.tenant.name);
		_exit(1);
	}
	/* ---- the privilege drop: after this line nothing runs as root ---- */
	if (privdrop_to(sx.id.uid, sx.id.gid) < 0)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* set after the drop: setuid clears it */
	if (getppid() != pid_monitor)
		_exit(1);
	log_debug("session process for %s runs as %u:%u (%s)", cx.tenant.name, (unsigned)sx.id.uid,
	          (unsigned)sx.id.gid, sx.id.source);
	cx.sx = &sx;
	int rc = session_run(&sx);
	ssh_disconnect(session);
	ssh_free(session);
	_exit(rc);
}
