/* session.c - session channels after login, running as the tenant.
 *
 * Flow control, both ways, never buffers without bound:
 *  - client -> child: the data callback writes straight into the child's
 *    stdin and returns what it wrote; the rest stays in libssh's channel
 *    buffer (bounded by the window we advertise). When the pipe fills we
 *    wait for POLLOUT and drain libssh with ssh_channel_read_nonblocking().
 *  - child -> client: we read only as much as the client's window allows
 *    and stop polling the child while the window is closed.
 * Callbacks only set state; fd (de)registration happens in reconcile(),
 * outside ssh_event_dopoll(), so libssh never sees its poll set change
 * under its feet. */
#include "session.h"
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
#include "apigw.h"
#include "audit.h"
#include "confine.h"
#include "envd.h"
#include "evfd.h"
#include "forward.h"
#include "log.h"
#include "warm.h"
#include "monitor.h"
#include "record.h"

#define IOBUF       65536
#define MAX_COMMAND (120 * 1024) /* one execve argument is capped at 128 KiB */

struct stream {
	int fd;
	short reg; /* events currently registered with the ssh_event */
	bool eof;
	char buf[IOBUF]; /* child -> client leftovers not yet accepted */
	size_t len, off;
};

struct chan {
	struct chan *next;
	struct session_ctx *sx;
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb;
	int id;

	bool pty;
	char term[64];
	int rows, cols;
	struct client_env env;

	bool started;
	char fail_msg[256]; /* set when starting failed; reported on stderr */
	struct sandbox_proc proc;
	struct timespec t_request;

	/* client -> child */
	int in_fd;
	short in_reg;
	char inbuf[IOBUF];
	size_t inlen, inoff;
	bool in_blocked; /* libssh may hold data for us: drain on POLLOUT */
	bool client_eof;

	struct stream out, err;
	short ctl_reg;
	bool ctl_done;
	int proxy_listen; /* egress proxy listener inside this sandbox's netns */
	short proxy_reg;
	bool api_given; /* the gateway holds listeners of this channel's sandbox */

	bool in_env;        /* started in the tenant's environment: no bwrap of its own */
	bool via_monitor;   /* sandbox_scope = channel: bwrap started by the root monitor;
	                     * the sandbox has ended when init's control socket closes */
	int attach_id;      /* warren-attach: the detached session to take over; -1: not */
	pid_t env_pid;      /* in_env: the command's pid in the environment (its session id) */
	struct ring screen; /* in_env with a pty: the last output, for reattaching */
	bool detached;      /* the connection dropped; init keeps the command running */
	bool fwd;           /* a forwarded stream: in_fd/out.fd are one socket */
	int opening;        /* OPEN_*: a channel we open to the client, not yet confirmed */
	char o_host[64], o_src[64];
	int o_port, o_srcport;
	bool bwrap_exited; /* in_env: the command ended, or the environment did */
	int bwrap_status;
	bool have_exit;
	int exit_status;

	bool eof_sent;
	bool close_sent;
	bool timed_out;
	struct recording rec;
	char kind[16]; /* shell, exec, subsystem */
	bool slot;     /* holds one of max_sessions (the monitor counts) */
	uint64_t bytes_in, bytes_out;
	bool client_closed;
};

enum { OPEN_NONE, OPEN_FORWARDED, OPEN_AGENT };

static int next_chan_id;
static void activity(struct session_ctx *sx);

/* libssh runs the event's whole poll context from inside ssh_channel_write()
 * and ssh_channel_read_nonblocking() (the session socket lives in it), so our
 * fd callbacks can be re-entered mid-pump. Poll is level-triggered: an event
 * skipped here is reported again by the next dopoll. */
static bool pumping;

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

static void ctl_send(struct chan *c, int type, int value)
{
	if (c->proc.ctl_fd < 0)
		return;
	struct init_req r = {.type = type, .value = value}; /* the environment's format */
	struct init_msg m = {.type = type, .value = value};
	ssize_t n = c->in_env ? send(c->proc.ctl_fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT)
	                      : send(c->proc.ctl_fd, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		log_debug("channel %d: control message: %s", c->id, strerror(errno));
}

/* Ends a channel's command: its bwrap (and with it the sandbox), or in the
 * environment every process of its session: SIGKILL for limits and the
 * operator, SIGHUP when the client hung up (as a terminal hangup: what nohup,
 * setsid and tmux shelter keeps running). */
static void end_child(struct chan *c, int sig)
{
	if (c->in_env) /* init knows the session even after the command exited */
		ctl_send(c, INIT_REQ_KILL, sig);
	else if (c->via_monitor && c->proc.ctl_fd >= 0)
		shutdown(c->proc.ctl_fd, SHUT_RDWR); /* init (pid 1) exits: the sandbox ends */
	else if (c->proc.pid > 0)
		kill(c->proc.pid, SIGKILL);
}

static bool child_running(const struct chan *c)
{
	return c->started && !c->bwrap_exited && (c->in_env || c->via_monitor || c->proc.pid > 0);
}

/* ---- libssh channel callbacks: they record state, nothing more ---- */

static int on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len, int is_stderr, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	if (is_stderr)
		return (int)len; /* clients have no business sending stderr */
	if (c->client_closed)
		return (int)len;
	if (c->in_fd < 0) {
		if (c->started && c->ctl_done)
			return (int)len; /* the child is gone: discard, like a closed pipe */
		c->in_blocked = true;    /* keep it in libssh until the child can take it */
		return 0;
	}
	if (c->in_blocked)
		return 0; /* keep order: older data is still waiting */
	activity(c->sx);
	ssize_t n = write(c->in_fd, data, len);
	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		if (c->sx->tenant->sandbox.record_input)
			record_event(&c->rec, "i", data, (size_t)n);
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR) {
			c->in_blocked = true;
			return 0;
		}
		/* EPIPE: the child closed its stdin; drop input as sshd does */
		return (int)len;
	}
	if ((uint32_t)n < len)
		c->in_blocked = true;
	return (int)n;
}

static void on_eof(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	c->client_eof = true;
}

static void on_close(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	c->client_closed = true;
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
		ctl_send(c, INIT_MSG_SIGNAL, sig);
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

/* Status lines for the master (warrend --status), through the monitor:
 * "C<command>" when a session starts, "T" at most every 2 s of traffic. */
static void note_master(struct session_ctx *sx, char kind, const char *text)
{
	if (sx->mon_sock >= 0)
		mon_note(sx->mon_sock, kind, text);
}

static void activity(struct session_ctx *sx)
{
	clock_gettime(CLOCK_MONOTONIC, &sx->last_activity);
	if (sx->last_activity.tv_sec - sx->last_note.tv_sec >= 2) {
		sx->last_note = sx->last_activity;
		note_master(sx, 'T', NULL);
	}
}

/* max_sessions: counted by the root monitor (monitor.c), in a directory
 * the tenant cannot touch */
static int claim_session_slot(struct chan *c)
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

static void release_session_slot(struct chan *c)
{
	if (c->slot)
		mon_release(c->sx->mon_sock, c->id);
	c->slot = false;
}

/* the channel's request is taken (or refused) now: its kind and the start
 * of its duration, for the log and the audit record either way */
static void begin(struct chan *c, const char *kind)
{
	clock_gettime(CLOCK_MONOTONIC, &c->t_request);
	c->started = true;
	snprintf(c->kind, sizeof c->kind, "%s", kind);
}

/* record = pty|all: the recording starts before the sandbox does, and a
 * session that should be recorded but cannot be does not start */
static int start_recording(struct chan *c, const char *command, const char *subsystem)
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

/* command NULL: login shell; subsystem set: run that program directly. */

/* variables a sandbox gets besides the usual ones: the profile's, the
 * egress proxy's (network = allowlist), and for each API the tenant may use
 * the gateway's endpoint and a placeholder key (the real one stays with the
 * gateway) */
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

static void announce_start(struct chan *c, const char *command, const char *subsystem);
static void detached_notice(struct chan *c);

/* sandbox_scope = channel: a bwrap of the channel's own, which the root
 * monitor starts for us (chanspawn.c): this process execs nothing. */
static int spawn_via_monitor(struct chan *c, char *const argv[], char *const envp[], char *err,
                             size_t errlen)
{
	bool sane = c->rows > 0 && c->cols > 0 && c->rows <= 10000 && c->cols <= 10000;
	struct mon_spawn req = {
	    .pty = c->pty, .rows = sane ? c->rows : 0, .cols = sane ? c->cols : 0};
	c->via_monitor = true;
	if (c->sx->mon_sock < 0) {
		snprintf(err, errlen, "no monitor");
		return -1;
	}
	return mon_spawn(c->sx->mon_sock, c->id, &req, argv, envp, &c->proc, err, errlen);
}

static void start_child(struct chan *c, const char *command, const char *subsystem)
{
	struct session_ctx *sx = c->sx;
	const struct tenant_conf *t = sx->tenant;
	struct strv env = {0};
	char err[256] = "";

	begin(c, subsystem ? "subsystem" : command ? "exec" : "shell");
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
	if (claim_session_slot(c) < 0 || start_recording(c, command, subsystem) < 0) {
		strv_free(&env);
		release_session_slot(c);
		return;
	}
	c->in_env = sx->env_member >= 0;
	if (c->in_env ? envd_spawn(sx->env_sock, argv, env.v, c->pty, c->rows, c->cols, &c->proc,
	                           err, sizeof err) < 0
	              : spawn_via_monitor(c, argv, env.v, err, sizeof err) < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg, "cannot start the sandbox: %.200s", err);
		strv_free(&env);
		return;
	}
	strv_free(&env);
	if (c->pty && !command)
		detached_notice(c);
	announce_start(c, command, subsystem);
}

/* The channel's command started: audit, the master's status line, the pipes
 * registered, the log. */
static void announce_start(struct chan *c, const char *command, const char *subsystem)
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
	note_master(sx, 'C', note);
	if (!c->pty) {
		c->in_fd = c->proc.stdin_fd;
		c->out.fd = c->proc.stdout_fd;
		c->in_blocked = true; /* pick up anything the client sent early */
	}
	c->err.fd = c->proc.stderr_fd;
	log_info("session start: tenant=%s channel=%d pid=%d type=%s pty=%s", t->name, c->id,
	         (int)c->proc.pid, c->kind, c->pty ? "yes" : "no");
}

/* ---- resumable PTY sessions: warren-attach [ID | -l] (README) ---- */

/* The detached sessions, escaped (their commands are the tenant's), one per
 * line with prefix; the count, or -1 when the environment did not answer. */
static int detached_lines(struct session_ctx *sx, const char *prefix, const char *eol, char *out,
                          size_t len)
{
	char list[2048];
	ssize_t n = envd_list(sx->env_sock, list, sizeof list);
	if (n < 0)
		return -1;
	int count = 0;
	size_t used = 0;
	out[0] = '\0';
	for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
		char esc[160];
		fmt_escape(esc, sizeof esc, line);
		int w = snprintf(out + used, len - used, "%s%s%s", prefix, esc, eol);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
		count++;
	}
	return count;
}

/* A login shell on a terminal: tell the tenant what is waiting for them. */
static void detached_notice(struct chan *c)
{
	/* listed in place, then moved up behind the header: a 64 KiB buffer on
	 * the stack would make every login shell's session process keep 64 KiB
	 * of probed stack pages */
	char head[200];
	char *lines = c->err.buf + sizeof head;
	int n = detached_lines(c->sx, "  ", "\r\n", lines, sizeof c->err.buf - sizeof head);
	if (n <= 0)
		return;
	int h = snprintf(head, sizeof head,
	                 "warren: %d detached session%s (ID SECONDS COMMAND); "
	                 "reattach with warren-attach [ID]:\r\n",
	                 n, n == 1 ? "" : "s");
	size_t len = strlen(lines);
	memmove(c->err.buf + h, lines, len);
	memcpy(c->err.buf, head, (size_t)h);
	c->err.len = (size_t)h + len;
}

/* warren-attach -l: the list on stdout, exit 0, no command run */
static void list_detached(struct chan *c)
{
	int n = detached_lines(c->sx, "", c->pty ? "\r\n" : "\n", c->out.buf, sizeof c->out.buf);
	if (n < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: your environment is not reachable (%s)", strerror(errno));
		return;
	}
	c->out.len = strlen(c->out.buf);
	c->ctl_done = c->bwrap_exited = c->out.eof = c->err.eof = true;
	c->bwrap_status = 0;
}

static void start_attach(struct chan *c, const char *command, const char *arg)
{
	struct session_ctx *sx = c->sx;
	char *end;
	long id = *arg ? strtol(arg, &end, 10) : 0;
	begin(c, "attach");
	if (sx->fail[0])
		snprintf(c->fail_msg, sizeof c->fail_msg, "%s", sx->fail);
	else if (sx->env_member < 0)
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: sessions are kept only in a tenant environment "
		         "(sandbox_scope = tenant)");
	else if (strcmp(arg, "-l") == 0)
		list_detached(c);
	else if (*arg && (*end != '\0' || id <= 0 || id > 1 << 22))
		snprintf(c->fail_msg, sizeof c->fail_msg, "usage: warren-attach [ID | -l]");
	else if (!c->pty)
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: needs a terminal (ssh -t)");
	if (c->fail_msg[0] || c->bwrap_exited)
		return;
	c->attach_id = (int)id;
	if (claim_session_slot(c) < 0 || start_recording(c, command, NULL) < 0) {
		release_session_slot(c);
		return;
	}
	c->in_env = true;
	if (envd_attach(sx->env_sock, c->attach_id, c->rows, c->cols, &c->proc) < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: your environment is not reachable (%s)", strerror(errno));
		return;
	}
	announce_start(c, command, NULL);
}

/* "warren-attach" alone or followed by a space: handled here, not run */
static const char *attach_arg(const char *command)
{
	static const char verb[] = "warren-attach";
	if (strncmp(command, verb, sizeof verb - 1) != 0)
		return NULL;
	const char *p = command + sizeof verb - 1;
	if (*p != '\0' && *p != ' ')
		return NULL;
	while (*p == ' ')
		p++;
	return p;
}

static int on_shell(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	if (c->started)
		return 1;
	start_child(c, NULL, NULL);
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
		begin(c, "exec");
		snprintf(c->fail_msg, sizeof c->fail_msg, "command longer than %d bytes refused",
		         MAX_COMMAND);
		return 0;
	}
	const char *arg = attach_arg(command);
	if (arg)
		start_attach(c, command, arg);
	else
		start_child(c, command, NULL);
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
		start_child(c, NULL, c->sx->srv->sftp_server);
		return 0;
	}
	log_info("channel %d: subsystem '%.32s' refused: not available", c->id, name);
	return 1;
}

/* ---- fd readiness, called from ssh_event_dopoll ---- */

static void drain_stdin(struct chan *c)
{
	for (;;) {
		if (c->inoff < c->inlen) {
			ssize_t n = write(c->in_fd, c->inbuf + c->inoff, c->inlen - c->inoff);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				c->inoff = c->inlen = 0; /* EPIPE: reader gone, discard */
				c->in_blocked = false;
				return;
			}
			if (c->sx->tenant->sandbox.record_input)
				record_event(&c->rec, "i", c->inbuf + c->inoff, (size_t)n);
			c->inoff += (size_t)n;
			c->bytes_in += (uint64_t)n;
			continue;
		}
		c->inoff = c->inlen = 0;
		int r = ssh_channel_read_nonblocking(c->ch, c->inbuf, sizeof c->inbuf, 0);
		if (r <= 0) {
			c->in_blocked = false; /* libssh's buffer is empty: back to callbacks */
			return;
		}
		activity(c->sx);
		c->inlen = (size_t)r;
	}
}

static int on_in_ready_body(socket_t fd, int revents, void *ud)
{
	(void)fd;
	(void)revents;
	struct chan *c = ud;
	if (c->in_fd >= 0)
		drain_stdin(c);
	return 0;
}

/* Send buffered output; true when nothing is left. */
static bool flush_stream(struct chan *c, struct stream *st, bool is_err)
{
	while (st->off < st->len) {
		uint32_t win = ssh_channel_window_size(c->ch);
		if (win == 0)
			return false;
		size_t want = st->len - st->off;
		if (want > win)
			want = win;
		int n = is_err ? ssh_channel_write_stderr(c->ch, st->buf + st->off, (uint32_t)want)
		               : ssh_channel_write(c->ch, st->buf + st->off, (uint32_t)want);
		if (n == SSH_ERROR) {
			st->off = st->len = 0; /* the channel is gone; drop output */
			return true;
		}
		if (n == 0)
			return false;
		st->off += (size_t)n;
	}
	st->off = st->len = 0;
	return true;
}

static void pump_out(struct chan *c, struct stream *st, bool is_err)
{
	if (c->client_closed || c->close_sent) {
		/* nobody to deliver to: keep draining so the child never blocks
		 * (into the stream's own buffer: a 64 KiB frame would be probed,
		 * and kept, on every call) */
		ssize_t n = read(st->fd, st->buf, sizeof st->buf);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			st->eof = true;
		return;
	}
	if (!flush_stream(c, st, is_err))
		return;
	uint32_t win = ssh_channel_window_size(c->ch);
	if (win == 0)
		return;
	size_t want = win < sizeof st->buf ? win : sizeof st->buf;
	ssize_t n = read(st->fd, st->buf, want);
	if (n > 0) {
		activity(c->sx);
		c->bytes_out += (uint64_t)n;
		record_event(&c->rec, "o", st->buf, (size_t)n);
		if (c->in_env && c->pty && st == &c->out &&
		    ring_put(&c->screen, st->buf, (size_t)n) < 0)
			log_debug("channel %d: no memory for the reattach screen", c->id);
		st->len = (size_t)n;
		st->off = 0;
		flush_stream(c, st, is_err);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		st->eof = true; /* EIO from a PTY master means the slave side closed */
	}
}

static int on_out_ready_body(socket_t fd, int revents, void *ud)
{
	(void)fd;
	(void)revents;
	struct chan *c = ud;
	pump_out(c, &c->out, false);
	return 0;
}

static int on_err_ready_body(socket_t fd, int revents, void *ud)
{
	(void)fd;
	(void)revents;
	struct chan *c = ud;
	pump_out(c, &c->err, true);
	return 0;
}

static void got_master(struct chan *c, int master)
{
	fcntl(master, F_SETFD, FD_CLOEXEC);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	c->out.fd = master;
	c->in_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
	c->in_blocked = true;
	struct winsize ws = {.ws_row = (unsigned short)c->rows, .ws_col = (unsigned short)c->cols};
	ioctl(master, TIOCSWINSZ, &ws);
}

static bool is_pty_master(int fd)
{
	unsigned int n;
	return ioctl(fd, TIOCGPTN, &n) == 0;
}

/* an API gateway endpoint init opened: checked like the proxy's, then
 * handed to the gateway, which serves it (apigw.c) */
static void give_api_listener(struct chan *c, int port, int fd)
{
	struct session_ctx *sx = c->sx;
	int rc = envd_give_api(sx->api_sock, sx->tenant->sandbox.api_mask, port, c->id, fd);
	if (rc < 0)
		log_warn("channel %d: API gateway endpoint not handed over: %s", c->id,
		         strerror(errno));
	c->api_given |= rc > 0;
}

/* warren-attach: the screen init kept (a memfd: a regular file, bounded),
 * sent to the client after a clear, ahead of anything the terminal prints */
static void load_replay(struct chan *c, int fd)
{
	static const char clear[] = "\033[H\033[2J";
	struct stat st;
	size_t room = sizeof c->out.buf - (sizeof clear - 1);
	ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
	                ? pread(fd, c->out.buf + sizeof clear - 1,
	                        (size_t)st.st_size < room ? (size_t)st.st_size : room, 0)
	                : -1;
	if (n < 0)
		return;
	memcpy(c->out.buf, clear, sizeof clear - 1);
	ring_put(&c->screen, c->out.buf + sizeof clear - 1, (size_t)n);
	c->out.off = 0;
	c->out.len = sizeof clear - 1 + (size_t)n;
}

static void attach_failed(struct chan *c, int err)
{
	if (err != ESRCH)
		snprintf(c->fail_msg, sizeof c->fail_msg, "warren-attach: %s", strerror(err));
	else if (c->attach_id == 0)
		snprintf(c->fail_msg, sizeof c->fail_msg, "warren-attach: no detached session");
	else
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: no detached session %d (warren-attach -l lists them)",
		         c->attach_id);
}

static int on_ctl_ready_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct chan *c = ud;
	for (;;) {
		struct init_msg m;
		int passed;
		ssize_t n = fdpass_recv(fd, &m, sizeof m, &passed, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			c->ctl_done = true;
			if ((c->in_env || c->via_monitor) && !c->bwrap_exited) {
				/* the environment, or the channel's sandbox, has ended */
				c->bwrap_exited = true;
				c->bwrap_status = c->have_exit ? c->exit_status : SIGKILL;
			}
			return 0;
		}
		if (n != (ssize_t)sizeof m) {
			if (passed >= 0)
				close(passed);
			continue;
		}
		/* init runs as the tenant: each message is checked as the
		 * tenant's own (type, state, and what kind of fd it passes) */
		if (m.type == INIT_MSG_PTY && passed >= 0 && c->pty && c->out.fd < 0 &&
		    is_pty_master(passed)) {
			got_master(c, passed);
			passed = -1;
		} else if (m.type == INIT_MSG_REPLAY && passed >= 0 && c->attach_id >= 0 &&
		           c->out.fd < 0) {
			load_replay(c, passed);
		} else if (m.type == INIT_MSG_STARTED) {
			if (c->in_env)
				c->env_pid = m.value;
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long us = (now.tv_sec - c->t_request.tv_sec) * 1000000L +
			          (now.tv_nsec - c->t_request.tv_nsec) / 1000L;
			log_debug("channel %d: sandbox spawn %ld us (request to command start)",
			          c->id, us);
		} else if (m.type == INIT_MSG_PROXY && passed >= 0 && c->proxy_listen < 0 &&
		           c->sx->tenant->sandbox.network == NET_ALLOWLIST &&
		           envd_loopback_listener(passed)) {
			fcntl(passed, F_SETFL, fcntl(passed, F_GETFL) | O_NONBLOCK);
			c->proxy_listen = passed;
			passed = -1;
		} else if (m.type == INIT_MSG_API && passed >= 0) {
			give_api_listener(c, m.value, passed);
		} else if (m.type == INIT_MSG_EXIT) {
			c->have_exit = true;
			c->exit_status = m.value;
			if (c->in_env) {
				c->bwrap_exited = c->ctl_done =
				    true; /* init keeps no more to say */
				c->bwrap_status = m.value;
			}
		} else if (m.type == INIT_MSG_ERROR && c->attach_id >= 0) {
			attach_failed(c, m.value);
		} else if (m.type == INIT_MSG_ERROR && c->in_env && m.value == EAGAIN) {
			snprintf(
			    c->fail_msg, sizeof c->fail_msg,
			    "cannot start the command: your environment is at its process limit "
			    "(pids_max = %ld)",
			    c->sx->tenant->sandbox.pids_max);
		} else if (m.type == INIT_MSG_ERROR && c->in_env) {
			snprintf(c->fail_msg, sizeof c->fail_msg,
			         "cannot start the command in your environment: %s",
			         strerror(m.value > 0 && m.value < 4096 ? m.value : EIO));
		}
		if (passed >= 0)
			close(passed);
	}
}

static void reap_children(struct session_ctx *sx)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (struct chan *c = sx->chans; c; c = c->next)
			if (c->proc.pid == pid) {
				c->bwrap_exited = true;
				c->bwrap_status = status;
			}
}

static void notify_all(struct session_ctx *sx, const char *line)
{
	for (struct chan *c = sx->chans; c; c = c->next)
		if (c->started && !c->eof_sent && !c->client_closed)
			ssh_channel_write_stderr(c->ch, line, (uint32_t)strlen(line));
}

static int on_sigchld_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct session_ctx *sx = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGUSR1 && !sx->draining) {
			/* the host is draining: say so; the master ends us at drain_timeout */
			char line[200];
			snprintf(line, sizeof line,
			         "\r\nwarren: this host is draining for maintenance; sessions end "
			         "in %d s\r\n",
			         sx->srv->drain_timeout);
			sx->draining = true;
			notify_all(sx, line);
		} else if (si.ssi_signo == SIGUSR2) {
			notify_all(sx, "\r\nwarren: session ended by the operator\r\n");
			for (struct chan *c = sx->chans; c; c = c->next)
				if (child_running(c)) {
					end_child(c, SIGKILL);
					c->timed_out = true; /* report the kill, not init's view */
				}
		}
	}
	reap_children(sx);
	return 0;
}

#define GUARDED(name)                                                                              \
	static int name(socket_t fd, int revents, void *ud)                                        \
	{                                                                                          \
		if (pumping)                                                                       \
			return 0;                                                                  \
		pumping = true;                                                                    \
		name##_body(fd, revents, ud);                                                      \
		pumping = false;                                                                   \
		return 0;                                                                          \
	}
GUARDED(on_in_ready)
GUARDED(on_out_ready)
GUARDED(on_err_ready)
GUARDED(on_ctl_ready)
GUARDED(on_sigchld)

static void on_proxy_listen_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct chan *c = ud;
	proxy_accept(&c->sx->proxy, fd);
}
GUARDED(on_proxy_listen)
static void on_rfwd_body(socket_t fd, int revents, void *ud);
static void on_member_body(socket_t fd, int revents, void *ud);
static bool reconcile_opening(struct chan *c);
GUARDED(on_rfwd)
GUARDED(on_member)

/* ---- registration and channel lifecycle, outside dopoll ---- */

static void send_exit(struct chan *c)
{
	int st = c->have_exit && !c->timed_out ? c->exit_status : c->bwrap_status;
	if (c->fail_msg[0]) {
		ssh_channel_request_send_exit_status(c->ch, 1);
	} else if (WIFSIGNALED(st)) {
		const char *name = sigabbrev_np(WTERMSIG(st));
		ssh_channel_request_send_exit_signal(c->ch, name ? name : "KILL",
		                                     WCOREDUMP(st) ? 1 : 0, "", "");
	} else {
		ssh_channel_request_send_exit_status(c->ch, WIFEXITED(st) ? WEXITSTATUS(st) : 255);
	}
}

static void audit_session_end(struct chan *c)
{
	int st = c->have_exit && !c->timed_out ? c->exit_status : c->bwrap_status;
	char id[16], status[16], ms[32], in[32], out[32];
	snprintf(id, sizeof id, "%d", c->id);
	const char *sig = NULL;
	if (c->fail_msg[0])
		snprintf(status, sizeof status, "1");
	else if (WIFSIGNALED(st))
		sig = sigabbrev_np(WTERMSIG(st));
	else
		snprintf(status, sizeof status, "%d", WIFEXITED(st) ? WEXITSTATUS(st) : 255);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(ms, sizeof ms, "%ld",
	         (long)((now.tv_sec - c->t_request.tv_sec) * 1000 +
	                (now.tv_nsec - c->t_request.tv_nsec) / 1000000));
	snprintf(in, sizeof in, "%llu", (unsigned long long)c->bytes_in);
	snprintf(out, sizeof out, "%llu", (unsigned long long)c->bytes_out);
	waudit_event("session_end", "tenant", c->sx->tenant->name, "#channel", id, "type", c->kind,
	             sig ? "signal" : "#exit_status", sig ? sig : status, "#duration_ms", ms,
	             "#bytes_in", in, "#bytes_out", out, "reason",
	             c->timed_out     ? "timeout"
	             : c->detached    ? "detached"
	             : c->fail_msg[0] ? c->fail_msg
	                              : NULL,
	             NULL);
}

/* The connection dropped under a running PTY command in the environment:
 * init keeps it, with its terminal and screen, for warren-attach. */
static bool detach(struct session_ctx *sx, struct chan *c)
{
	if (!sx->ending || !c->in_env || !c->pty || !c->started || c->eof_sent || c->timed_out ||
	    c->bwrap_exited || c->out.fd < 0 || c->env_pid <= 0)
		return false;
	static char snap[RING_SIZE];
	size_t n = ring_snapshot(&c->screen, snap);
	if (envd_detach(c->proc.ctl_fd, c->out.fd, snap, n) < 0) {
		log_warn("channel %d: cannot detach: %s", c->id, strerror(errno));
		return false;
	}
	char id[16];
	snprintf(id, sizeof id, "%d", (int)c->env_pid);
	log_info("channel %d: tenant=%s connection dropped; session %d detached", c->id,
	         sx->tenant->name, (int)c->env_pid);
	waudit_event("session_detach", "tenant", sx->tenant->name, "#session", id, NULL);
	return c->detached = true;
}

static void chan_free(struct session_ctx *sx, struct chan *c)
{
	bool detached = detach(sx, c);
	if (c->started && !c->eof_sent && !c->fwd)
		audit_session_end(c); /* the client left first */
	if (!detached && (c->in_env ? c->started && !c->eof_sent : child_running(c)))
		end_child(c, SIGHUP); /* bwrap: --die-with-parent takes the sandbox down */
	release_session_slot(c);
	record_stop(&c->rec);
	evfd_close(sx->event, &c->in_fd, &c->in_reg);
	evfd_close(sx->event, &c->out.fd, &c->out.reg);
	evfd_close(sx->event, &c->err.fd, &c->err.reg);
	evfd_close(sx->event, &c->proc.ctl_fd, &c->ctl_reg);
	evfd_close(sx->event, &c->proxy_listen, &c->proxy_reg);
	if (c->api_given) {
		struct gw_fdmsg m = {.type = GW_CLOSE, .channel = c->id};
		if (send(sx->api_sock, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("channel %d: API gateway not told: %s", c->id, strerror(errno));
	}
	ssh_remove_channel_callbacks(c->ch, &c->cb);
	ssh_channel_free(c->ch);
	env_client_free(&c->env);
	ring_free(&c->screen);
	struct chan **pp = &sx->chans;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	sx->nchans--;
	free(c);
}

/* Returns false when the channel was freed. */
static bool reconcile_chan(struct session_ctx *sx, struct chan *c)
{
	if (c->opening && !c->client_closed && !reconcile_opening(c) && !c->client_closed)
		return true; /* nothing flows until the client confirms */
	if (c->fail_msg[0] && !c->eof_sent && !c->client_closed) {
		char line[300];
		int n = snprintf(line, sizeof line, "warren: %s\r\n", c->fail_msg);
		ssh_channel_write_stderr(c->ch, line, (uint32_t)n);
		log_warn("channel %d: %s", c->id, c->fail_msg);
		c->ctl_done = c->bwrap_exited = c->out.eof = c->err.eof = true;
	}
	if (c->client_closed && !c->close_sent) {
		/* the client hung up on a running session: end it */
		if (c->in_env ? !c->eof_sent : child_running(c))
			end_child(c, SIGHUP);
		ssh_channel_close(c->ch);
		c->close_sent = true;
	}
	if (c->client_closed && c->close_sent) {
		chan_free(sx, c);
		return false;
	}

	if (c->client_eof && !c->in_blocked && c->inoff >= c->inlen && c->in_fd >= 0) {
		if (c->fwd)
			shutdown(c->in_fd, SHUT_WR);          /* the far end sees our half-close */
		evfd_close(sx->event, &c->in_fd, &c->in_reg); /* child sees EOF on stdin */
	}
	uint32_t win = ssh_channel_window_size(c->ch);
	short in_ev = c->in_blocked ? POLLOUT : 0;
	evfd_want(sx->event, c->in_fd, &c->in_reg, in_ev, on_in_ready, c);
	struct stream *ss[2] = {&c->out, &c->err};
	ssh_event_callback cbs[2] = {on_out_ready, on_err_ready};
	for (int i = 0; i < 2; i++) {
		struct stream *st = ss[i];
		if (st->fd >= 0 && st->eof && st->off >= st->len) {
			evfd_close(sx->event, &st->fd, &st->reg);
			continue;
		}
		if (st->off < st->len && win > 0) /* leftovers can go now */
			flush_stream(c, st, i == 1);
		bool can = win > 0 && st->off >= st->len && !st->eof;
		if (c->close_sent)
			can = !st->eof;
		evfd_want(sx->event, st->fd, &st->reg, can ? POLLIN : 0, cbs[i], c);
	}
	if (c->bwrap_exited)
		evfd_close(sx->event, &c->proxy_listen, &c->proxy_reg);
	else
		evfd_want(sx->event, c->proxy_listen, &c->proxy_reg, POLLIN, on_proxy_listen, c);
	if (c->ctl_done && c->in_env)
		evfd_want(sx->event, c->proc.ctl_fd, &c->ctl_reg, 0, on_ctl_ready, c); /* kept */
	else if (c->ctl_done)
		evfd_close(sx->event, &c->proc.ctl_fd, &c->ctl_reg);
	else
		evfd_want(sx->event, c->proc.ctl_fd, &c->ctl_reg, POLLIN, on_ctl_ready, c);

	bool outputs_done =
	    c->out.fd < 0 && c->err.fd < 0 && c->out.off >= c->out.len && c->err.off >= c->err.len;
	if (c->started && !c->eof_sent && c->bwrap_exited && c->ctl_done && outputs_done) {
		ssh_channel_send_eof(c->ch);
		if (c->fwd) {
			ssh_channel_close(c->ch);
			c->eof_sent = c->close_sent = true;
			return true;
		}
		send_exit(c);
		ssh_channel_close(c->ch);
		c->eof_sent = c->close_sent = true;
		log_info("session end: tenant=%s channel=%d status=0x%x", sx->tenant->name, c->id,
		         (unsigned)(c->have_exit ? c->exit_status : c->bwrap_status));
		audit_session_end(c);
	}
	return true;
}

/* One keepalive@openssh.com request with want_reply. Non-blocking, libssh
 * keeps its single global-request slot busy until a call collects the answer,
 * and that call sends nothing: so the first call collects the previous probe's
 * answer (or sends, if the slot is free) and the second sends. While the
 * client has not answered the last probe, neither sends: it is still owed. */
static void send_alive_probe(ssh_session session)
{
	ssh_send_keepalive(session);
	ssh_send_keepalive(session);
}

static long elapsed_s(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec);
}

/* session_timeout per channel, idle_timeout per connection: tell the client
 * on stderr, then end the sandbox; the exit path reports exit-signal KILL. */
static void enforce_timeouts(struct session_ctx *sx)
{
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	bool idle = sb->idle_timeout > 0 && elapsed_s(&sx->last_activity) >= sb->idle_timeout;
	for (struct chan *c = sx->chans; c; c = c->next) {
		if (!child_running(c) || c->timed_out)
			continue;
		const char *why = NULL;
		long limit = 0;
		if (sb->session_timeout > 0 && elapsed_s(&c->t_request) >= sb->session_timeout) {
			why = "session_timeout";
			limit = sb->session_timeout;
		} else if (idle) {
			why = "idle_timeout";
			limit = sb->idle_timeout;
		}
		if (why == NULL)
			continue;
		char line[160];
		int n =
		    snprintf(line, sizeof line,
		             "\r\nwarren: %s of %ld s reached; ending the session\r\n", why, limit);
		ssh_channel_write_stderr(c->ch, line, (uint32_t)n);
		log_info("channel %d: tenant=%s %s (%ld s): ending the sandbox", c->id,
		         sx->tenant->name, why, limit);
		waudit_event("timeout", "tenant", sx->tenant->name, "limit", why, NULL);
		end_child(c, SIGKILL); /* bwrap: --die-with-parent takes the whole tree */
		c->timed_out = true;
	}
}

static void reconcile(struct session_ctx *sx)
{
	pumping = true;       /* flush_stream() may run the poll context too */
	enforce_timeouts(sx); /* children are reaped on SIGCHLD (signalfd) only */
	for (struct chan *c = sx->chans, *next; c; c = next) {
		next = c->next;
		reconcile_chan(sx, c);
	}
	evfd_want(sx->event, sx->sigfd, &sx->sig_reg, POLLIN, on_sigchld, sx);
	for (int i = 0; i < sx->nrfwd; i++)
		evfd_want(sx->event, sx->rfwd[i].fd, &sx->rfwd[i].reg, POLLIN, on_rfwd,
		          &sx->rfwd[i]);
	if (sx->env_member >= 0)
		evfd_want(sx->event, sx->env_member, &sx->member_reg, POLLIN, on_member, sx);
	proxy_reconcile(&sx->proxy);
	pumping = false;
}

static bool channel_room(struct session_ctx *sx)
{
	if (sx->draining)
		return false;
	if (sx->nchans >= sx->srv->max_channels) {
		log_info("channel refused: %d channels already open (max_channels)", sx->nchans);
		waudit_event("limit_refused", "limit", "max_channels", "tenant", sx->tenant->name,
		             "source", sx->ssh_connection, NULL);
		return false;
	}
	return true;
}

static struct chan *chan_new(struct session_ctx *sx, ssh_channel ch)
{
	struct chan *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->ch = ch;
	c->sx = sx;
	c->id = next_chan_id++;
	c->in_fd = c->out.fd = c->err.fd = c->proc.ctl_fd = c->proxy_listen = -1;
	c->rec.fd = -1;
	c->attach_id = -1;
	c->rows = 24;
	c->cols = 80;
	c->cb.userdata = c;
	c->cb.channel_data_function = on_data;
	c->cb.channel_eof_function = on_eof;
	c->cb.channel_close_function = on_close;
	c->next = sx->chans;
	sx->chans = c;
	sx->nchans++;
	return c;
}

ssh_channel session_channel_open(struct session_ctx *sx)
{
	if (!channel_room(sx))
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

/* A refused forward: the log, the audit trail, and the reason for the
 * client (libssh 0.10 cannot put it in the open failure itself: it goes
 * as an SSH debug message, which `ssh -v` shows). */
static int refuse_forward(struct session_ctx *sx, const char *kind, const char *dest,
                          const char *why)
{
	char safe[300];
	fmt_escape(safe, sizeof safe, dest);
	log_info("tenant=%s: %s to %s refused: %s", sx->tenant->name, kind, safe, why);
	waudit_event("forward_refused", "tenant", sx->tenant->name, "type", kind, "destination",
	             dest, "reason", why, NULL);
	char line[400];
	snprintf(line, sizeof line, "warren: %s to %s refused: %s", kind, safe, why);
	ssh_send_debug(sx->session, line, 1);
	return 1; /* libssh answers "administratively prohibited" */
}

/* A channel that carries one socket both ways (forwarded streams): fd for
 * input, a duplicate for output (each has its place in the event loop). On
 * failure the socket and the channel are closed and NULL is returned. */
static struct chan *socket_chan(struct session_ctx *sx, ssh_channel ch, int fd, const char *kind)
{
	int fd2 = ch ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	struct chan *c = fd2 >= 0 ? chan_new(sx, ch) : NULL;
	if (c == NULL) {
		close(fd);
		if (fd2 >= 0)
			close(fd2);
		if (ch)
			ssh_channel_free(ch);
		return NULL;
	}
	ssh_callbacks_init(&c->cb);
	ssh_set_channel_callbacks(c->ch, &c->cb);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->fwd = c->started = c->bwrap_exited = c->ctl_done = true;
	snprintf(c->kind, sizeof c->kind, "%s", kind);
	c->in_fd = fd;
	c->out.fd = fd2;
	clock_gettime(CLOCK_MONOTONIC, &c->t_request);
	return c;
}

/* direct-tcpip (ssh -L, -D, -W, ProxyJump): dial, then accept the channel */
static int direct_tcpip(struct session_ctx *sx, ssh_message msg)
{
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	const char *host = ssh_message_channel_request_open_destination(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	char dest[300], why[300];
	snprintf(dest, sizeof dest, "%.255s:%d", host ? host : "", port);
	if (!(sb->tcp_forwarding & FWD_LOCAL))
		return refuse_forward(sx, "direct-tcpip", dest, "allow_tcp_forwarding forbids it");
	if (sx->fail[0])
		return refuse_forward(sx, "direct-tcpip", dest, sx->fail);
	if (host == NULL || !channel_room(sx))
		return refuse_forward(sx, "direct-tcpip", dest, "too many channels");
	struct forward_ctx f = {.env_sock = sx->env_member >= 0 ? sx->env_sock : NULL,
	                        .network = sb->network,
	                        .rules = &sb->egress,
	                        .local = &sx->proxy.local};
	int fd = forward_dial(&f, host, port, why, sizeof why);
	if (fd < 0)
		return refuse_forward(sx, "direct-tcpip", dest, why);
	struct chan *c =
	    socket_chan(sx, ssh_message_channel_request_open_reply_accept(msg), fd, "direct-tcpip");
	if (c == NULL) {
		log_warn("tenant=%s: direct-tcpip: out of resources", sx->tenant->name);
		return 0;
	}
	char id[16];
	snprintf(id, sizeof id, "%d", c->id);
	char safe[300];
	fmt_escape(safe, sizeof safe, dest); /* the client's words */
	log_info("tenant=%s channel=%d: direct-tcpip to %s", sx->tenant->name, c->id, safe);
	waudit_event("forward_open", "tenant", sx->tenant->name, "#channel", id, "type",
	             "direct-tcpip", "destination", dest, NULL);
	return 0;
}

/* A stream that arrived in the sandbox (ssh -R, ssh -A): a channel we open
 * to the client; pumped once the client confirms it (reconcile_opening). */
static void open_to_client(struct session_ctx *sx, int fd, int kind, const char *host, int port,
                           const char *src, int srcport)
{
	ssh_channel ch = channel_room(sx) ? ssh_channel_new(sx->session) : NULL;
	struct chan *c = socket_chan(sx, ch, fd, kind == OPEN_AGENT ? "auth-agent" : "forwarded");
	if (c == NULL)
		return;
	c->opening = kind;
	snprintf(c->o_host, sizeof c->o_host, "%s", host);
	snprintf(c->o_src, sizeof c->o_src, "%s", src);
	c->o_port = port;
	c->o_srcport = srcport;
}

/* Returns false while the client has not answered (or refused: then the
 * channel is marked closed and freed by the caller's next pass). */
static bool reconcile_opening(struct chan *c)
{
	int rc = c->opening == OPEN_AGENT
	             ? ssh_channel_open_auth_agent(c->ch)
	             : ssh_channel_open_reverse_forward(c->ch, c->o_host, c->o_port, c->o_src,
	                                                c->o_srcport);
	if (rc == SSH_AGAIN)
		return false;
	if (rc != SSH_OK) {
		log_info("tenant=%s: the client refused a %s channel", c->sx->tenant->name,
		         c->kind);
		c->client_closed = c->close_sent = true;
		return false;
	}
	c->opening = OPEN_NONE;
	return true;
}

static void on_rfwd_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct rfwd *r = ud;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (c < 0)
		return;
	char src[64] = "127.0.0.1", sp[8] = "0";
	getnameinfo((struct sockaddr *)&ss, sl, src, sizeof src, sp, sizeof sp,
	            NI_NUMERICHOST | NI_NUMERICSERV);
	open_to_client(r->sx, c, OPEN_FORWARDED, r->addr, r->port, src, atoi(sp));
}

/* init's messages on our MEMBER connection: agent connections */
static void on_member_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct session_ctx *sx = ud;
	struct init_msg m;
	int passed = -1;
	ssize_t n = fdpass_recv(fd, &m, sizeof m, &passed, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		evfd_close(sx->event, &sx->env_member, &sx->member_reg);
		return;
	}
	if (n == (ssize_t)sizeof m && m.type == INIT_MSG_AGENT && passed >= 0 && sx->agent_fwd) {
		open_to_client(sx, passed, OPEN_AGENT, "", 0, "", 0);
		passed = -1;
	}
	if (passed >= 0)
		close(passed);
}

static int tcpip_forward(struct session_ctx *sx, ssh_message msg)
{
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	const char *addr = ssh_message_global_request_address(msg);
	int port = ssh_message_global_request_port(msg);
	char dest[100];
	snprintf(dest, sizeof dest, "%.63s:%d", addr ? addr : "", port);
	if (!(sb->tcp_forwarding & FWD_REMOTE))
		return refuse_forward(sx, "tcpip-forward", dest, "allow_tcp_forwarding forbids it");
	if (sx->env_member < 0)
		return refuse_forward(sx, "tcpip-forward", dest,
		                      "no environment to listen in (sandbox_scope = channel)");
	if (sx->nrfwd == SESSION_MAX_RFWD)
		return refuse_forward(sx, "tcpip-forward", dest, "too many remote forwards");
	/* loopback only, like sshd's GatewayPorts no: the sandbox's own */
	int family = addr && (!strcmp(addr, "::1") || !strcmp(addr, "[::1]")) ? 6 : 4;
	int fd = envd_listen(sx->env_sock, family, port);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		char why[160];
		snprintf(why, sizeof why, "cannot listen in your sandbox: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return refuse_forward(sx, "tcpip-forward", dest, why);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	struct rfwd *r = &sx->rfwd[sx->nrfwd++];
	*r = (struct rfwd){.fd = fd, .sx = sx};
	snprintf(r->addr, sizeof r->addr, "%s", addr ? addr : "");
	r->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                         : ((struct sockaddr_in *)&ss)->sin_port);
	ssh_message_global_request_reply_success(msg, (uint16_t)r->port);
	log_info("tenant=%s: tcpip-forward on the sandbox's loopback port %d", sx->tenant->name,
	         r->port);
	waudit_event("forward_open", "tenant", sx->tenant->name, "type", "tcpip-forward",
	             "destination", dest, NULL);
	return 0;
}

int session_global_request(struct session_ctx *sx, ssh_message msg)
{
	int type = ssh_message_subtype(msg);
	if (type == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
		return tcpip_forward(sx, msg);
	if (type != SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD)
		return 1;
	int port = ssh_message_global_request_port(msg);
	for (int i = 0; i < sx->nrfwd; i++)
		if (sx->rfwd[i].port == port) {
			evfd_close(sx->event, &sx->rfwd[i].fd, &sx->rfwd[i].reg);
			sx->rfwd[i] = sx->rfwd[--sx->nrfwd];
			ssh_message_global_request_reply_success(msg, 0);
			return 0;
		}
	return 1;
}

int session_channel_request(struct session_ctx *sx, ssh_message msg)
{
	if (ssh_message_subtype(msg) == SSH_CHANNEL_DIRECT_TCPIP)
		return direct_tcpip(sx, msg);
	return 1;
}

/* network = host: the sandbox shares the host's loopback, so the endpoints
 * are made here, once per connection, on ports the kernel picks; the
 * gateway serves only connections whose peer socket is the tenant's uid */
void session_host_api_endpoints(struct session_ctx *sx)
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

int session_run(struct session_ctx *sx)
{
	/* its channels run in the environment (init spawns them) or in
	 * sandboxes the monitor starts: from here on it speaks SSH to the client
	 * with no exec, no new process, no file written, no listen (confine.c) */
	if (confine_worker() < 0) {
		log_err("tenant %s: seccomp for the session process failed", sx->tenant->name);
		return 1;
	}
	warm_trim(); /* what authentication and the hand-over left */
	signal(SIGPIPE, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigaddset(&chld, SIGUSR1); /* drain notice, from the monitor */
	sigaddset(&chld, SIGUSR2); /* end now */
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sx->sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sx->sigfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &sx->last_activity);
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	int tick = sb->session_timeout > 0 || sb->idle_timeout > 0 ? 1000 : 10000;

	proxy_init(&sx->proxy, sx->event, &sb->egress, sx->tenant->name, sb->proxy_max_connections,
	           sb->proxy_idle_timeout);
	/* client_alive_*: like sshd, probe a silent client and give up after
	 * client_alive_count_max unanswered probes */
	struct ssh_counter_struct rx = {0};
	ssh_set_counters(sx->session, &rx, NULL);
	int alive_iv = sx->srv->client_alive_interval;
	if (alive_iv > 0 && alive_iv * 1000 < tick)
		tick = alive_iv * 1000;
	uint64_t rx_seen = 0;
	int probes = 0;
	struct timespec rx_at;
	clock_gettime(CLOCK_MONOTONIC, &rx_at);

	ssh_set_blocking(sx->session, 0);
	reconcile(sx);
	bool busy = false;
	for (;;) {
		int rc = evfd_dopoll(sx->event, &busy, sx->proxy.resolving ? 5 : tick);
		reconcile(sx);
		if (alive_iv > 0) {
			/* libssh 0.10 counts bytes only (in_packets stays 0) */
			if (rx.in_bytes != rx_seen) {
				rx_seen = rx.in_bytes;
				probes = 0;
				clock_gettime(CLOCK_MONOTONIC, &rx_at);
			} else if (elapsed_s(&rx_at) >= alive_iv) {
				if (probes >= sx->srv->client_alive_count_max) {
					log_info(
					    "tenant=%s: client not responding to %d keepalives; "
					    "closing",
					    sx->tenant->name, probes);
					waudit_event("timeout", "tenant", sx->tenant->name, "limit",
					             "client_alive", NULL);
					break;
				}
				send_alive_probe(sx->session);
				probes++;
				clock_gettime(CLOCK_MONOTONIC, &rx_at);
			}
		}
		if (rc == SSH_ERROR || !ssh_is_connected(sx->session) ||
		    (ssh_get_status(sx->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
			break;
	}
	proxy_shutdown(&sx->proxy);
	/* the client went away: sandboxes end with us (--die-with-parent);
	 * in the environment, PTY sessions detach */
	sx->ending = true;
	while (sx->chans) {
		struct chan *c = sx->chans;
		c->client_closed = c->close_sent = true;
		chan_free(sx, c);
	}
	log_info("connection closed: tenant=%s", sx->tenant->name);
	return 0;
}
