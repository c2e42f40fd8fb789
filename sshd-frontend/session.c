/* session.c - the session process's event loop after login, running as the
 * tenant: signals, timeouts, keepalives, and one reconcile pass per poll over
 * the channels (chan.h has the flow-control rules). */
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

bool session_pumping;

/* Status lines for the master (warrend --status), through the monitor:
 * "C<command>" when a session starts, "T" at most every 2 s of traffic. */
void session_note(struct session_ctx *sx, char kind, const char *text)
{
	if (sx->mon_sock >= 0)
		mon_note(sx->mon_sock, kind, text);
}

void session_activity(struct session_ctx *sx)
{
	clock_gettime(CLOCK_MONOTONIC, &sx->last_activity);
	if (sx->last_activity.tv_sec - sx->last_note.tv_sec >= 2) {
		sx->last_note = sx->last_activity;
		session_note(sx, 'T', NULL);
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

static int session_on_sigchld_body(socket_t fd, int revents, void *ud)
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
				if (chan_running(c)) {
					c->ops->end(c, SIGKILL);
					c->timed_out = true; /* report the kill, not init's view */
				}
		}
	}
	reap_children(sx);
	return 0;
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

long session_elapsed_s(const struct timespec *since)
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
	bool idle =
	    sb->idle_timeout > 0 && session_elapsed_s(&sx->last_activity) >= sb->idle_timeout;
	for (struct chan *c = sx->chans; c; c = c->next) {
		if (!chan_running(c) || c->timed_out)
			continue;
		const char *why = NULL;
		long limit = 0;
		if (sb->session_timeout > 0 &&
		    session_elapsed_s(&c->t_request) >= sb->session_timeout) {
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
		c->ops->end(c, SIGKILL); /* bwrap: --die-with-parent takes the whole tree */
		c->timed_out = true;
	}
}

static void reconcile(struct session_ctx *sx)
{
	session_pumping = true; /* chan_flush() may run the poll context too */
	enforce_timeouts(sx);   /* children are reaped on SIGCHLD (signalfd) only */
	for (struct chan *c = sx->chans, *next; c; c = next) {
		next = c->next;
		chan_reconcile(sx, c);
	}
	evfd_want(sx->event, sx->sigfd, &sx->sig_reg, POLLIN, session_on_sigchld, sx);
	for (int i = 0; i < sx->nrfwd; i++)
		evfd_want(sx->event, sx->rfwd[i].fd, &sx->rfwd[i].reg, POLLIN, fwd_on_rfwd,
		          &sx->rfwd[i]);
	if (sx->env_member >= 0)
		evfd_want(sx->event, sx->env_member, &sx->member_reg, POLLIN, fwd_on_member, sx);
	proxy_reconcile(&sx->proxy);
	session_pumping = false;
}

/* client_alive_*: like sshd, probe a silent client and give up after
 * client_alive_count_max unanswered probes */
struct alive {
	int interval; /* client_alive_interval, s; 0: off */
	struct ssh_counter_struct rx;
	uint64_t rx_seen;
	int probes;
	struct timespec rx_at;
};

/* false: the client has not answered enough probes */
static bool client_alive(struct session_ctx *sx, struct alive *al)
{
	if (al->interval <= 0)
		return true;
	/* libssh 0.10 counts bytes only (in_packets stays 0) */
	if (al->rx.in_bytes != al->rx_seen) {
		al->rx_seen = al->rx.in_bytes;
		al->probes = 0;
		clock_gettime(CLOCK_MONOTONIC, &al->rx_at);
	} else if (session_elapsed_s(&al->rx_at) >= al->interval) {
		if (al->probes >= sx->srv->client_alive_count_max) {
			log_info("tenant=%s: client not responding to %d keepalives; closing",
			         sx->tenant->name, al->probes);
			waudit_event("timeout", "tenant", sx->tenant->name, "limit", "client_alive",
			             NULL);
			return false;
		}
		send_alive_probe(sx->session);
		al->probes++;
		clock_gettime(CLOCK_MONOTONIC, &al->rx_at);
	}
	return true;
}

/* libssh's callbacks from here on are the session's: channel opens and
 * global requests (the pre-auth process's authentication ones go) */
static ssh_channel on_channel_open(ssh_session s, void *ud)
{
	(void)s;
	return session_channel_open(ud);
}

static int on_message(ssh_session s, ssh_message msg, void *ud)
{
	(void)s;
	int type = ssh_message_type(msg);
	if (type == SSH_REQUEST_CHANNEL_OPEN)
		return session_channel_request(ud, msg);
	if (type == SSH_REQUEST_GLOBAL)
		return session_global_request(ud, msg);
	return 1; /* libssh answers with a failure */
}

static void take_callbacks(struct session_ctx *sx)
{
	static struct ssh_server_callbacks_struct cb;
	cb = (struct ssh_server_callbacks_struct){
	    .userdata = sx, .channel_open_request_session_function = on_channel_open};
	ssh_callbacks_init(&cb);
	ssh_set_server_callbacks(sx->session, &cb);
	ssh_set_message_callback(sx->session, on_message, sx);
}

/* A login that failed (sx->fail: a limit, a workspace that could not be
 * prepared) answers each channel with its one line; with no channel open
 * FAIL_GRACE_S after the login (ssh -N, or the client has read the line),
 * the connection ends, the line as the disconnect's reason: it holds no
 * monitor and session process, nor a max_connections place, for nothing. */
#define FAIL_GRACE_S 5
static bool refused_and_idle(struct session_ctx *sx)
{
	if (!sx->fail[0] || sx->nchans > 0 || session_elapsed_s(&sx->started) < FAIL_GRACE_S)
		return false;
	char why[sizeof sx->fail + 16];
	snprintf(why, sizeof why, "warren: %s", sx->fail);
	ssh_session_set_disconnect_message(sx->session, why);
	log_info("tenant=%s: the login was refused (%s); disconnecting", sx->tenant->name,
	         sx->fail);
	return true;
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
	take_callbacks(sx);
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
	sx->started = sx->last_activity;
	const struct sandbox_conf *sb = &sx->tenant->sandbox;
	int tick = sb->session_timeout > 0 || sb->idle_timeout > 0 || sx->fail[0] ? 1000 : 10000;

	proxy_init(&sx->proxy, sx->event, &sb->egress, sx->tenant->name, sb->proxy_max_connections,
	           sb->proxy_idle_timeout);
	struct alive al = {.interval = sx->srv->client_alive_interval};
	ssh_set_counters(sx->session, &al.rx, NULL);
	if (al.interval > 0 && al.interval * 1000 < tick)
		tick = al.interval * 1000;
	clock_gettime(CLOCK_MONOTONIC, &al.rx_at);

	ssh_set_blocking(sx->session, 0);
	reconcile(sx);
	bool busy = false;
	for (;;) {
		int rc = evfd_dopoll(sx->event, &busy, sx->proxy.resolving ? 5 : tick);
		reconcile(sx);
		if (!client_alive(sx, &al) || refused_and_idle(sx))
			break;
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

GUARDED(session_on_sigchld)
