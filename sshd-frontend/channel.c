/* channel.c - a channel's life in the session process: its creation under
 * max_channels, the kinds' ops tables, the per-pass reconcile that registers
 * its descriptors and finishes it (EOF, exit status, close), and its end. */
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

void chan_ctl_send(struct chan *c, int type, int value)
{
	if (c->proc.ctl_fd < 0)
		return;
	struct init_req r = {.type = type, .value = value}; /* the environment's format */
	struct init_msg m = {.type = type, .value = value};
	ssize_t n = c->ops->in_env
	                ? send(c->proc.ctl_fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT)
	                : send(c->proc.ctl_fd, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		log_debug("channel %d: control message: %s", c->id, strerror(errno));
}

bool chan_running(const struct chan *c)
{
	return c->started && !c->bwrap_exited && (c->ops->ctl_ends || c->proc.pid > 0);
}

/* ---- the kinds of channel ---- */

static void end_nothing(struct chan *c, int sig)
{
	(void)c;
	(void)sig;
}

/* in the environment: init ends every process of the command's session
 * (it knows the session even after the command exited) */
static void end_in_env(struct chan *c, int sig)
{
	chan_ctl_send(c, INIT_REQ_KILL, sig);
}

/* a sandbox of its own: init (pid 1) exits when its control socket closes,
 * and the sandbox ends with it */
static void end_sandbox(struct chan *c, int sig)
{
	(void)sig;
	if (c->proc.ctl_fd >= 0)
		shutdown(c->proc.ctl_fd, SHUT_RDWR);
	else if (c->proc.pid > 0)
		kill(c->proc.pid, SIGKILL);
}

const struct chan_ops chan_pending_ops = {.name = "session", .end = end_nothing};
const struct chan_ops chan_env_ops = {
    .name = "session", .in_env = true, .ctl_ends = true, .end = end_in_env};
const struct chan_ops chan_sandbox_ops = {.name = "session", .ctl_ends = true, .end = end_sandbox};
const struct chan_ops chan_direct_ops = {
    .name = "direct-tcpip", .stream = true, .end = end_nothing};
const struct chan_ops chan_reverse_ops = {
    .name = "forwarded", .stream = true, .end = end_nothing, .confirm = fwd_confirm_reverse};
const struct chan_ops chan_agent_ops = {
    .name = "auth-agent", .stream = true, .end = end_nothing, .confirm = fwd_confirm_agent};

char *chan_buf(char **buf)
{
	if (*buf == NULL)
		*buf = malloc(CHAN_IOBUF);
	return *buf;
}

static void chan_send_exit(struct chan *c)
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

static void chan_audit_end(struct chan *c)
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

void chan_free(struct session_ctx *sx, struct chan *c)
{
	bool detached = reattach_detach(sx, c);
	if (c->started && !c->eof_sent && !c->ops->stream)
		chan_audit_end(c); /* the client left first */
	if (!detached && (c->ops->in_env ? c->started && !c->eof_sent : chan_running(c)))
		c->ops->end(c, SIGHUP); /* bwrap: --die-with-parent takes the sandbox down */
	chan_release_slot(c);
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
	free(c->inbuf);
	free(c->out.buf);
	free(c->err.buf);
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
bool chan_reconcile(struct session_ctx *sx, struct chan *c)
{
	if (c->ops->confirm && !c->confirmed && !c->client_closed && !c->ops->confirm(c) &&
	    !c->client_closed)
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
		if (c->ops->in_env ? !c->eof_sent : chan_running(c))
			c->ops->end(c, SIGHUP);
		ssh_channel_close(c->ch);
		c->close_sent = true;
	}
	if (c->client_closed && c->close_sent) {
		chan_free(sx, c);
		return false;
	}

	if (c->client_eof && !c->in_blocked && c->inoff >= c->inlen && c->in_fd >= 0) {
		if (c->ops->stream)
			shutdown(c->in_fd, SHUT_WR);          /* the far end sees our half-close */
		evfd_close(sx->event, &c->in_fd, &c->in_reg); /* child sees EOF on stdin */
	}
	uint32_t win = ssh_channel_window_size(c->ch);
	short in_ev = c->in_blocked ? POLLOUT : 0;
	evfd_want(sx->event, c->in_fd, &c->in_reg, in_ev, chan_on_in_ready, c);
	struct stream *ss[2] = {&c->out, &c->err};
	ssh_event_callback cbs[2] = {chan_on_out_ready, chan_on_err_ready};
	for (int i = 0; i < 2; i++) {
		struct stream *st = ss[i];
		if (st->fd >= 0 && st->eof && st->off >= st->len) {
			evfd_close(sx->event, &st->fd, &st->reg);
			continue;
		}
		if (st->off < st->len && win > 0) /* leftovers can go now */
			chan_flush(c, st, i == 1);
		bool can = win > 0 && st->off >= st->len && !st->eof;
		if (c->close_sent)
			can = !st->eof;
		evfd_want(sx->event, st->fd, &st->reg, can ? POLLIN : 0, cbs[i], c);
	}
	if (c->bwrap_exited)
		evfd_close(sx->event, &c->proxy_listen, &c->proxy_reg);
	else
		evfd_want(sx->event, c->proxy_listen, &c->proxy_reg, POLLIN, chan_on_proxy_listen,
		          c);
	if (c->ctl_done && c->ops->in_env)
		evfd_want(sx->event, c->proc.ctl_fd, &c->ctl_reg, 0, chan_on_ctl_ready,
		          c); /* kept */
	else if (c->ctl_done)
		evfd_close(sx->event, &c->proc.ctl_fd, &c->ctl_reg);
	else
		evfd_want(sx->event, c->proc.ctl_fd, &c->ctl_reg, POLLIN, chan_on_ctl_ready, c);

	bool outputs_done =
	    c->out.fd < 0 && c->err.fd < 0 && c->out.off >= c->out.len && c->err.off >= c->err.len;
	if (c->started && !c->eof_sent && c->bwrap_exited && c->ctl_done && outputs_done) {
		ssh_channel_send_eof(c->ch);
		if (c->ops->stream) {
			ssh_channel_close(c->ch);
			c->eof_sent = c->close_sent = true;
			return true;
		}
		chan_send_exit(c);
		ssh_channel_close(c->ch);
		c->eof_sent = c->close_sent = true;
		log_info("session end: tenant=%s channel=%d status=0x%x", sx->tenant->name, c->id,
		         (unsigned)(c->have_exit ? c->exit_status : c->bwrap_status));
		chan_audit_end(c);
	}
	return true;
}

bool chan_room(struct session_ctx *sx)
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

static int next_chan_id;

struct chan *chan_new(struct session_ctx *sx, ssh_channel ch)
{
	struct chan *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->ch = ch;
	c->sx = sx;
	c->id = next_chan_id++;
	c->ops = &chan_pending_ops;
	c->in_fd = c->out.fd = c->err.fd = c->proc.ctl_fd = c->proxy_listen = -1;
	c->rec.fd = -1;
	c->attach_id = -1;
	c->rows = 24;
	c->cols = 80;
	c->cb.userdata = c;
	c->cb.channel_data_function = chan_on_data;
	c->cb.channel_eof_function = chan_on_eof;
	c->cb.channel_close_function = chan_on_close;
	c->next = sx->chans;
	sx->chans = c;
	sx->nchans++;
	return c;
}
