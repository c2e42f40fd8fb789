/* chanreq.c - session requests on a session channel (RFC 4254 6.2-6.10): pty,
 * window change, env, agent forwarding, shell, exec, subsystem and signal;
 * starting the command in the environment or in a sandbox of its own. */
#include "chan.h"
#include "../sandbox/fmt.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <libssh/callbacks.h>
#include <libssh/server.h>
#include "../sandbox/env.h"
#include "../sandbox/fdpass.h"
#include "../sandbox/initproto.h"
#include "../sandbox/ring.h"
#include "../sandbox/spawn.h"
#include "../egress/apigw.h"
#include "audit.h"
#include "confine.h"
#include "envd.h"
#include "evfd.h"
#include "../egress/forward.h"
#include "log.h"
#include "warm.h"
#include "monitor_wrap.h"
#include "record.h"

static const char *const rfc_signals[] = {"ABRT", "ALRM", "FPE",  "HUP",  "ILL",  "INT", "KILL",
                                          "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2"};

static int signal_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof rfc_signals / sizeof rfc_signals[0]; i++)
		if (strcmp(name, rfc_signals[i]) == 0)
			for (int s = 1; s < NSIG; s++) {
				const char *ab = sigabbrev_np(s);
				if (ab && strcmp(ab, name) == 0)
					return s;
			}
	return 0;
}

static void on_signal(ssh_session s, ssh_channel ch, const char *name, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	int sig = signal_from_name(name);
	if (sig == 0) {
		log_info("channel %d: ignoring unknown signal '%.16s'", c->id, name);
		return;
	}
	if (c->started)
		chan_ctl_send(c, INIT_MSG_SIGNAL, sig);
}

static int on_pty(ssh_session s, ssh_channel ch, const char *term, int w, int h, int pw, int ph,
                  void *ud)
{
	(void)s;
	(void)ch;
	(void)pw;
	(void)ph;
	struct chan *c = ud;
	if (c->started || c->pty)
		return -1;
	size_t tl = strlen(term);
	if (tl >= sizeof c->term)
		return -1;
	for (size_t i = 0; i < tl; i++)
		if (term[i] <= ' ' || term[i] > '~' || term[i] == '\'')
			return -1;
	memcpy(c->term, term, tl + 1);
	c->pty = true;
	c->rows = h > 0 && h < 10000 ? h : 24;
	c->cols = w > 0 && w < 10000 ? w : 80;
	return 0;
}

static int on_window_change(ssh_session s, ssh_channel ch, int w, int h, int pw, int ph, void *ud)
{
	(void)s;
	(void)ch;
	(void)pw;
	(void)ph;
	struct chan *c = ud;
	if (!c->pty)
		return -1;
	c->rows = h > 0 && h < 10000 ? h : c->rows;
	c->cols = w > 0 && w < 10000 ? w : c->cols;
	if (c->out.fd >= 0) {
		struct winsize ws = {.ws_row = (unsigned short)c->rows,
		                     .ws_col = (unsigned short)c->cols};
		ioctl(c->out.fd, TIOCSWINSZ, &ws);
	}
	return 0;
}

/* ssh -A: the environment's agent socket (one path for the tenant) now
 * leads to this connection's client, the latest that forwards one */
static void on_agent_req(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	struct session_ctx *sx = c->sx;
	if (sx->agent_fwd)
		return;
	const char *why = !sx->tenant->sandbox.agent_forwarding
	                      ? "allow_agent_forwarding forbids it"
	                  : sx->env_member < 0 ? "no environment (sandbox_scope = channel)"
	                                       : NULL;
	if (why == NULL && envd_agent(sx->env_member) < 0)
		why = "the environment did not answer";
	if (why) {
		log_info("tenant=%s: agent forwarding refused: %s", sx->tenant->name, why);
		waudit_event("forward_refused", "tenant", sx->tenant->name, "type", "auth-agent",
		             "reason", why, NULL);
		return;
	}
	sx->agent_fwd = true;
	log_info("tenant=%s: agent forwarding", sx->tenant->name);
}

static int on_env(ssh_session s, ssh_channel ch, const char *name, const char *value, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	if (c->started)
		return 1;
	int rc = env_client_add(&c->env, name, value);
	if (rc < 0) {
		log_debug("channel %d: env %.64s refused (%s)", c->id, name,
		          rc == -EPERM ? "not allowed" : "too large");
		return 1;
	}
	return 0;
}

/* max_sessions: counted by the root monitor (monitor.c), in a directory
 * the tenant cannot touch */
int chan_claim_slot(struct chan *c)
{
	struct session_ctx *sx = c->sx;
	long running = 0;
	int rc = sx->mon_sock < 0 ? 0 : mon_claim(sx->mon_sock, c->id, &running);
	c->slot = rc > 0;
	if (rc >= 0)
		return 0;
	snprintf(c->fail_msg, sizeof c->fail_msg,
	         "session limit reached: %ld sessions are running (max_sessions = %ld)", running,
	         sx->tenant->sandbox.max_sessions);
	return -1;
}

void chan_release_slot(struct chan *c)
{
	if (c->slot)
		mon_release(c->sx->mon_sock, c->id);
	c->slot = false;
}

/* the channel's request is taken (or refused) now: its kind and the start
 * of its duration, for the log and the audit record either way */
void chan_begin(struct chan *c, const char *kind)
{
	clock_gettime(CLOCK_MONOTONIC, &c->t_request);
	c->started = true;
	snprintf(c->kind, sizeof c->kind, "%s", kind);
}

/* record = pty|all: the recording starts before the sandbox does, and a
 * session that should be recorded but cannot be does not start */
int chan_start_recording(struct chan *c, const char *command, const char *subsystem)
{
	struct session_ctx *sx = c->sx;
	const struct tenant_conf *t = sx->tenant;
	int rec = t->sandbox.record;
	c->rec.fd = -1;
	if (!(rec == 2 || (rec == 1 && c->pty)))
		return 0;
	char title[160];
	snprintf(title, sizeof title, "%s: %s%s%.120s", t->name, c->kind,
	         command || subsystem ? ": " : "",
	         command     ? command
	         : subsystem ? subsystem
	                     : "");
	int rc = sx->mon_sock < 0
	             ? -1
	             : record_start(&c->rec, sx->mon_sock, c->id, c->cols, c->rows,
	                            c->pty ? c->term : NULL, title, t->sandbox.record_max_bytes);
	if (rc == -2) {
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "session not started: recordings are required and yours are full "
		         "(record_total_max); ask the operator");
		waudit_event("limit_refused", "limit", "record_total_max", "tenant", t->name, NULL);
	} else if (rc < 0) {
		snprintf(
		    c->fail_msg, sizeof c->fail_msg,
		    "session not started: it must be recorded and the recording could not start");
	}
	return rc < 0 ? -1 : 0;
}

#define EXTRA_ENV_MAX (PROFILE_MAX_ENV + 9 + 2 * SANDBOX_MAX_APIS)
static void extra_env(const struct session_ctx *sx, const struct profile *prof, char (*buf)[600],
                      char **extra)
{
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	int ne = 0;
	for (int i = 0; prof && i < prof->nenv; i++)
		snprintf(buf[ne++], sizeof buf[0], "%s=%s", prof->env_name[i], prof->env_value[i]);
	/* network = allowlist: everything that honours proxy variables goes
	 * through warren's proxy (its SOCKS5 too: names resolved by warren,
	 * socks5h); the rest has no route out */
	static const char *const proxy_vars[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
	                                         "https_proxy"};
	if (sb->network == NET_ALLOWLIST) {
		for (size_t i = 0; i < sizeof proxy_vars / sizeof proxy_vars[0]; i++)
			snprintf(buf[ne++], sizeof buf[0], "%s=http://127.0.0.1:%d", proxy_vars[i],
			         EGRESS_PROXY_PORT);
		snprintf(buf[ne++], sizeof buf[0], "ALL_PROXY=socks5h://127.0.0.1:%d",
		         EGRESS_PROXY_PORT);
		snprintf(buf[ne++], sizeof buf[0], "all_proxy=socks5h://127.0.0.1:%d",
		         EGRESS_PROXY_PORT);
		snprintf(buf[ne++], sizeof buf[0], "NO_PROXY=localhost,127.0.0.1,::1");
		snprintf(buf[ne++], sizeof buf[0], "no_proxy=localhost,127.0.0.1,::1");
	}
	/* the environment's endpoints (its own gateway), or this connection's */
	bool apis = sx->api_sock >= 0 || (sx->env_member >= 0 && envd_serves_apis(sb));
	for (int i = 0; apis && i < sx->srv->napis; i++) {
		const struct api_conf *a = &sx->srv->apis[i];
		int port = sb->network == NET_HOST ? sx->host_api_port[i] : SANDBOX_API_PORT + i;
		if (!(sb->api_mask & (1u << i)) || port <= 0)
			continue;
		if (a->base_url_env[0])
			snprintf(buf[ne++], sizeof buf[0], "%s=http://127.0.0.1:%d",
			         a->base_url_env, port);
		if (a->key_env[0])
			snprintf(buf[ne++], sizeof buf[0], "%s=%s", a->key_env, a->placeholder);
	}
	if (sx->agent_fwd)
		snprintf(buf[ne++], sizeof buf[0], "SSH_AUTH_SOCK=%s", INIT_AGENT_SOCK);
	for (int i = 0; i < ne; i++)
		extra[i] = buf[i];
	extra[ne] = NULL;
}

/* sandbox_scope = channel: a bwrap of the channel's own, which the root
 * monitor starts for us (chanspawn.c): this process execs nothing. */
static int spawn_via_monitor(struct chan *c, char *const argv[], char *const envp[], char *err,
                             size_t errlen)
{
	bool sane = c->rows > 0 && c->cols > 0 && c->rows <= 10000 && c->cols <= 10000;
	struct mon_spawn req = {
	    .pty = c->pty, .rows = sane ? c->rows : 0, .cols = sane ? c->cols : 0};
	if (c->sx->mon_sock < 0) {
		snprintf(err, errlen, "no monitor");
		return -1;
	}
	return mon_spawn(c->sx->mon_sock, c->id, &req, argv, envp, &c->proc, err, errlen);
}

static void chan_start_child(struct chan *c, const char *command, const char *subsystem)
{
	struct session_ctx *sx = c->sx;
	const struct tenant_conf *t = sx->tenant;
	struct strv env = {0};
	char err[256] = "";

	chan_begin(c, subsystem ? "subsystem" : command ? "exec" : "shell");
	if (sx->fail[0]) {
		snprintf(c->fail_msg, sizeof c->fail_msg, "%s", sx->fail);
		return;
	}
	const struct profile *prof = sx->profile;
	char home[300];
	policy_home(t->name, home, sizeof home);
	/* the tenant's own ~/.local/bin (pip --user, npm prefix, native
	 * installers), then the profile's bin/, then the system; the profile's
	 * variables come along */
	char path[PATH_MAX + 64];
	fmt_into(path, sizeof path, "%s/.local/bin:%s%s/usr/local/bin:/usr/bin:/bin", home,
	         prof ? prof->store : "", prof ? "/bin:" : "");
	char *extra[EXTRA_ENV_MAX + 1] = {0};
	static char extra_buf[EXTRA_ENV_MAX][600];
	extra_env(sx, prof, extra_buf, extra);
	struct session_env_info info = {.user = t->name,
	                                .home = home,
	                                .shell = t->sandbox.shell,
	                                .path = path,
	                                .extra = extra,
	                                .term = c->pty ? c->term : NULL,
	                                .ssh_connection = sx->ssh_connection};
	if (env_build(&info, &c->env, &env) < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg, "out of memory");
		return;
	}
	char *argv_shell[] = {(char *)t->sandbox.shell, (char *)"-l", NULL};
	char *argv_cmd[] = {(char *)t->sandbox.shell, (char *)"-c", (char *)command, NULL};
	char *argv_sub[] = {(char *)subsystem, NULL};
	char **argv = subsystem ? argv_sub : command ? argv_cmd : argv_shell;
	if (subsystem)
		c->pty = false; /* a subsystem speaks a binary protocol over pipes */
	if (chan_claim_slot(c) < 0 || chan_start_recording(c, command, subsystem) < 0) {
		strv_free(&env);
		chan_release_slot(c);
		return;
	}
	c->ops = sx->env_member >= 0 ? &chan_env_ops : &chan_sandbox_ops;
	if (c->ops->in_env ? envd_spawn(sx->env_sock, argv, env.v, c->pty, c->rows, c->cols,
	                                &c->proc, err, sizeof err) < 0
	                   : spawn_via_monitor(c, argv, env.v, err, sizeof err) < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg, "cannot start the sandbox: %.200s", err);
		strv_free(&env);
		return;
	}
	strv_free(&env);
	if (c->pty && !command)
		reattach_notice(c);
	chan_announce(c, command, subsystem);
}

/* The channel's command started: audit, the master's status line, the pipes
 * registered, the log. */
void chan_announce(struct chan *c, const char *command, const char *subsystem)
{
	struct session_ctx *sx = c->sx;
	const struct tenant_conf *t = sx->tenant;
	const struct profile *prof = sx->profile;
	char chan_id[16];
	snprintf(chan_id, sizeof chan_id, "%d", c->id);
	waudit_event("session_start", "tenant", t->name, "source", sx->ssh_connection, "#channel",
	             chan_id, "type", c->kind, "command", command, "subsystem", subsystem, "pty",
	             c->pty ? "yes" : "no", "profile", prof ? prof->name : "none", "store",
	             prof ? prof->store : NULL, NULL);
	char note[200];
	snprintf(note, sizeof note, "%s%s%s", c->kind, command || subsystem ? ": " : "",
	         command     ? command
	         : subsystem ? subsystem
	                     : "");
	session_note(sx, 'C', note);
	if (!c->pty) {
		c->in_fd = c->proc.stdin_fd;
		c->out.fd = c->proc.stdout_fd;
		c->in_blocked = true; /* pick up anything the client sent early */
	}
	c->err.fd = c->proc.stderr_fd;
	log_info("session start: tenant=%s channel=%d pid=%d type=%s pty=%s", t->name, c->id,
	         (int)c->proc.pid, c->kind, c->pty ? "yes" : "no");
}

static int on_shell(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	if (c->started)
		return 1;
	chan_start_child(c, NULL, NULL);
	return 0;
}

static int on_exec(ssh_session s, ssh_channel ch, const char *command, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	if (c->started)
		return 1;
	if (strlen(command) > MAX_COMMAND) {
		chan_begin(c, "exec");
		snprintf(c->fail_msg, sizeof c->fail_msg, "command longer than %d bytes refused",
		         MAX_COMMAND);
		return 0;
	}
	const char *arg = reattach_arg(command);
	if (arg)
		reattach_start(c, command, arg);
	else
		chan_start_child(c, command, NULL);
	return 0;
}

static int on_subsystem(ssh_session s, ssh_channel ch, const char *name, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	if (c->started)
		return 1;
	if (strcmp(name, "sftp") == 0) {
		chan_start_child(c, NULL, c->sx->srv->sftp_server);
		return 0;
	}
	log_info("channel %d: subsystem '%.32s' refused: not available", c->id, name);
	return 1;
}

ssh_channel session_channel_open(struct session_ctx *sx)
{
	if (!chan_room(sx))
		return NULL;
	ssh_channel ch = ssh_channel_new(sx->session);
	struct chan *c = ch ? chan_new(sx, ch) : NULL;
	if (c == NULL) {
		if (ch)
			ssh_channel_free(ch);
		return NULL;
	}
	c->cb.channel_signal_function = on_signal;
	c->cb.channel_pty_request_function = on_pty;
	c->cb.channel_pty_window_change_function = on_window_change;
	c->cb.channel_shell_request_function = on_shell;
	c->cb.channel_exec_request_function = on_exec;
	c->cb.channel_env_request_function = on_env;
	c->cb.channel_subsystem_request_function = on_subsystem;
	c->cb.channel_auth_agent_req_function = on_agent_req;
	ssh_callbacks_init(&c->cb);
	ssh_set_channel_callbacks(c->ch, &c->cb);
	return c->ch;
}
