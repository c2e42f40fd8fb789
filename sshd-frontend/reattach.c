/* reattach.c - resumable PTY sessions: a PTY command in the environment
 * detaches when its connection drops, and warren-attach [ID | -l] lists or
 * takes one over with the screen init kept (README). */
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
void reattach_notice(struct chan *c)
{
	/* listed in place, then moved up behind the header: a 64 KiB buffer on
	 * the stack would make every login shell's session process keep 64 KiB
	 * of probed stack pages */
	char head[200];
	if (chan_buf(&c->err.buf) == NULL)
		return;
	char *lines = c->err.buf + sizeof head;
	int n = detached_lines(c->sx, "  ", "\r\n", lines, CHAN_IOBUF - sizeof head);
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
	int n = chan_buf(&c->out.buf) == NULL
	            ? -1
	            : detached_lines(c->sx, "", c->pty ? "\r\n" : "\n", c->out.buf, CHAN_IOBUF);
	if (n < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: your environment is not reachable (%s)", strerror(errno));
		return;
	}
	c->out.len = strlen(c->out.buf);
	c->ctl_done = c->bwrap_exited = c->out.eof = c->err.eof = true;
	c->bwrap_status = 0;
}

void reattach_start(struct chan *c, const char *command, const char *arg)
{
	struct session_ctx *sx = c->sx;
	char *end;
	long id = *arg ? strtol(arg, &end, 10) : 0;
	chan_begin(c, "attach");
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
	if (chan_claim_slot(c) < 0 || chan_start_recording(c, command, NULL) < 0) {
		chan_release_slot(c);
		return;
	}
	c->ops = &chan_env_ops;
	if (envd_attach(sx->env_sock, c->attach_id, c->rows, c->cols, &c->proc) < 0) {
		snprintf(c->fail_msg, sizeof c->fail_msg,
		         "warren-attach: your environment is not reachable (%s)", strerror(errno));
		return;
	}
	chan_announce(c, command, NULL);
}

/* "warren-attach" alone or followed by a space: handled here, not run */
const char *reattach_arg(const char *command)
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

/* warren-attach: the screen init kept (a memfd: a regular file, bounded),
 * sent to the client after a clear, ahead of anything the terminal prints */
void reattach_replay(struct chan *c, int fd)
{
	static const char clear[] = "\033[H\033[2J";
	struct stat st;
	size_t room = CHAN_IOBUF - (sizeof clear - 1);
	ssize_t n = chan_buf(&c->out.buf) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
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

void reattach_failed(struct chan *c, int err)
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

/* The connection dropped under a running PTY command in the environment:
 * init keeps it, with its terminal and screen, for warren-attach. */
bool reattach_detach(struct session_ctx *sx, struct chan *c)
{
	if (!sx->ending || !c->ops->in_env || !c->pty || !c->started || c->eof_sent ||
	    c->timed_out || c->bwrap_exited || c->out.fd < 0 || c->env_pid <= 0)
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
