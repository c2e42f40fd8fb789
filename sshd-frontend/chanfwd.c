/* chanfwd.c - forwarding: direct-tcpip (ssh -L, -D, -W) dialled through
 * forward.c's decision, tcpip-forward (ssh -R) listeners in the environment,
 * and agent connections (ssh -A) opened back to the client. */
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
static struct chan *socket_chan(struct session_ctx *sx, ssh_channel ch, int fd,
                                const struct chan_ops *ops)
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
	c->ops = ops;
	c->started = c->bwrap_exited = c->ctl_done = true;
	snprintf(c->kind, sizeof c->kind, "%s", ops->name);
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
	if (host == NULL || !chan_room(sx))
		return refuse_forward(sx, "direct-tcpip", dest, "too many channels");
	struct forward_ctx f = {.env_sock = sx->env_member >= 0 ? sx->env_sock : NULL,
	                        .network = sb->network,
	                        .rules = &sb->egress,
	                        .local = sx->proxy.local};
	int fd = forward_dial(&f, host, port, why, sizeof why);
	if (fd < 0)
		return refuse_forward(sx, "direct-tcpip", dest, why);
	struct chan *c = socket_chan(sx, ssh_message_channel_request_open_reply_accept(msg), fd,
	                             &chan_direct_ops);
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
 * to the client; pumped once the client confirms it (chan_reconcile). */
static void open_to_client(struct session_ctx *sx, int fd, const struct chan_ops *ops,
                           const char *host, int port, const char *src, int srcport)
{
	ssh_channel ch = chan_room(sx) ? ssh_channel_new(sx->session) : NULL;
	struct chan *c = socket_chan(sx, ch, fd, ops);
	if (c == NULL)
		return;
	snprintf(c->o_host, sizeof c->o_host, "%s", host);
	snprintf(c->o_src, sizeof c->o_src, "%s", src);
	c->o_port = port;
	c->o_srcport = srcport;
}

/* The client's answer to a channel we open: false while it has not answered
 * (or refused: then the channel is marked closed and freed by the caller's
 * next pass). */
static bool confirmed(struct chan *c, int rc)
{
	if (rc == SSH_AGAIN)
		return false;
	if (rc != SSH_OK) {
		log_info("tenant=%s: the client refused a %s channel", c->sx->tenant->name,
		         c->kind);
		c->client_closed = c->close_sent = true;
		return false;
	}
	return c->confirmed = true;
}

bool fwd_confirm_reverse(struct chan *c)
{
	return confirmed(c, ssh_channel_open_reverse_forward(c->ch, c->o_host, c->o_port, c->o_src,
	                                                     c->o_srcport));
}

bool fwd_confirm_agent(struct chan *c)
{
	return confirmed(c, ssh_channel_open_auth_agent(c->ch));
}

static void fwd_on_rfwd_body(socket_t fd, int revents, void *ud)
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
	open_to_client(r->sx, c, &chan_reverse_ops, r->addr, r->port, src, atoi(sp));
}

/* init's messages on our MEMBER connection: agent connections */
static void fwd_on_member_body(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct session_ctx *sx = ud;
	struct init_msg m;
	int passed = -1;
	int got = init_msg_recv(fd, &m, &passed);
	if (got < 0) {
		evfd_close(sx->event, &sx->env_member, &sx->member_reg);
		return;
	}
	if (got > 0 && m.type == INIT_MSG_AGENT && sx->agent_fwd) {
		open_to_client(sx, passed, &chan_agent_ops, "", 0, "", 0);
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

GUARDED(fwd_on_rfwd)

GUARDED(fwd_on_member)
