/* chanpump.c - the data pump between a channel and what runs behind it:
 * client input to the child's stdin, the child's stdout/stderr to the
 * client within its window, and init's control messages. */
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

int chan_on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len, int is_stderr, void *ud)
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
	session_activity(c->sx);
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

void chan_on_eof(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	c->client_eof = true;
}

void chan_on_close(ssh_session s, ssh_channel ch, void *ud)
{
	(void)s;
	(void)ch;
	struct chan *c = ud;
	c->client_closed = true;
}

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
		if (chan_buf(&c->inbuf) == NULL)
			return; /* no memory: libssh keeps the data, and the window closes */
		int r = ssh_channel_read_nonblocking(c->ch, c->inbuf, CHAN_IOBUF, 0);
		if (r <= 0) {
			c->in_blocked = false; /* libssh's buffer is empty: back to callbacks */
			return;
		}
		session_activity(c->sx);
		c->inlen = (size_t)r;
	}
}

static int chan_on_in_ready_body(socket_t fd, int revents, void *ud)
{
	(void)fd;
	(void)revents;
	struct chan *c = ud;
	if (c->in_fd >= 0)
		drain_stdin(c);
	return 0;
}

/* Send buffered output; true when nothing is left. */
bool chan_flush(struct chan *c, struct stream *st, bool is_err)
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
		 * (into the stream's buffer when it has one: a 64 KiB frame would
		 * be probed, and kept, on every call) */
		char sink[4096];
		ssize_t n =
		    read(st->fd, st->buf ? st->buf : sink, st->buf ? CHAN_IOBUF : sizeof sink);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			st->eof = true;
		return;
	}
	if (!chan_flush(c, st, is_err))
		return;
	uint32_t win = ssh_channel_window_size(c->ch);
	if (win == 0)
		return;
	if (chan_buf(&st->buf) == NULL)
		return; /* no memory now: polled again on the next pass */
	size_t want = win < CHAN_IOBUF ? win : CHAN_IOBUF;
	ssize_t n = read(st->fd, st->buf, want);
	if (n > 0) {
		session_activity(c->sx);
		c->bytes_out += (uint64_t)n;
		record_event(&c->rec, "o", st->buf, (size_t)n);
		if (c->ops->in_env && c->pty && st == &c->out &&
		    ring_put(&c->screen, st->buf, (size_t)n) < 0)
			log_debug("channel %d: no memory for the reattach screen", c->id);
		st->len = (size_t)n;
		st->off = 0;
		chan_flush(c, st, is_err);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		st->eof = true; /* EIO from a PTY master means the slave side closed */
	}
}

static int chan_on_out_ready_body(socket_t fd, int revents, void *ud)
{
	(void)fd;
	(void)revents;
	struct chan *c = ud;
	pump_out(c, &c->out, false);
	return 0;
}

static int chan_on_err_ready_body(socket_t fd, int revents, void *ud)
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

static int chan_on_ctl_ready_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct chan *c = ud;
	for (;;) {
		struct init_msg m;
		int passed;
		int got = init_msg_recv(fd, &m, &passed);
		if (got == 0)
			return 0;
		if (got < 0) {
			c->ctl_done = true;
			if (c->ops->ctl_ends && !c->bwrap_exited) {
				/* the environment, or the channel's sandbox, has ended */
				c->bwrap_exited = true;
				c->bwrap_status = c->have_exit ? c->exit_status : SIGKILL;
			}
			return 0;
		}
		/* init runs as the tenant: each message is checked as the
		 * tenant's own (type, state, and what kind of fd it passes) */
		if (m.type == INIT_MSG_PTY && passed >= 0 && c->pty && c->out.fd < 0 &&
		    is_pty_master(passed)) {
			got_master(c, passed);
			passed = -1;
		} else if (m.type == INIT_MSG_REPLAY && passed >= 0 && c->attach_id >= 0 &&
		           c->out.fd < 0) {
			reattach_replay(c, passed);
		} else if (m.type == INIT_MSG_STARTED) {
			if (c->ops->in_env)
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
			if (c->ops->in_env) {
				c->bwrap_exited = c->ctl_done =
				    true; /* init keeps no more to say */
				c->bwrap_status = m.value;
			}
		} else if (m.type == INIT_MSG_ERROR && c->attach_id >= 0) {
			reattach_failed(c, m.value);
		} else if (m.type == INIT_MSG_ERROR && c->ops->in_env && m.value == EAGAIN) {
			snprintf(
			    c->fail_msg, sizeof c->fail_msg,
			    "cannot start the command: your environment is at its process limit "
			    "(pids_max = %ld)",
			    c->sx->tenant->sandbox.pids_max);
		} else if (m.type == INIT_MSG_ERROR && c->ops->in_env) {
			snprintf(c->fail_msg, sizeof c->fail_msg,
			         "cannot start the command in your environment: %s",
			         strerror(m.value > 0 && m.value < 4096 ? m.value : EIO));
		}
		if (passed >= 0)
			close(passed);
	}
}

static void chan_on_proxy_listen_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct chan *c = ud;
	proxy_accept(&c->sx->proxy, fd);
}

GUARDED(chan_on_in_ready)

GUARDED(chan_on_out_ready)

GUARDED(chan_on_err_ready)

GUARDED(chan_on_ctl_ready)

GUARDED(chan_on_proxy_listen)
