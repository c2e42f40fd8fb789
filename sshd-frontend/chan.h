/* chan.h - a connection's channels inside the session process (tenant uid,
 * no capabilities): the channel struct, the ops table of each channel kind,
 * and the functions the session files share. Private to session.c,
 * channel.c, chanreq.c, chanpump.c, chanfwd.c and reattach.c.
 *
 * Flow control, both ways, never buffers without bound:
 *  - client -> child: the data callback writes straight into the child's
 *    stdin and returns what it wrote; the rest stays in libssh's channel
 *    buffer (bounded by the window we advertise). When the pipe fills we
 *    wait for POLLOUT and drain libssh with ssh_channel_read_nonblocking().
 *  - child -> client: we read only as much as the client's window allows
 *    and stop polling the child while the window is closed.
 * Callbacks only set state; fd (de)registration happens in reconcile
 * (session.c, chan_reconcile), outside ssh_event_dopoll(), so libssh never
 * sees its poll set change under its feet. */
#ifndef WARREN_CHAN_H
#define WARREN_CHAN_H

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../sandbox/env.h"
#include "../sandbox/ring.h"
#include "../sandbox/spawn.h"
#include "record.h"
#include "session.h"

#define CHAN_IOBUF  65536
#define MAX_COMMAND (120 * 1024) /* one execve argument is capped at 128 KiB */

struct stream {
	int fd;
	short reg; /* events currently registered with the ssh_event */
	bool eof;
	char *buf; /* CHAN_IOBUF: child -> client leftovers; allocated on first use */
	size_t len, off;
};

struct chan;

/* What differs between the kinds of channel (as dropbear's chansess and
 * svr-tcpfwd): how what runs behind it ends, and how it finishes. */
struct chan_ops {
	const char *name;
	bool in_env;   /* its command runs in the tenant's environment (init spawned it) */
	bool ctl_ends; /* the control socket's close means the command, or its sandbox, ended */
	bool stream;   /* one socket both ways (forwarding): no command, no exit status */
	/* ends what runs behind the channel: SIGHUP when the client hung up (as
	 * a terminal hangup: nohup, setsid and tmux shelter keep running),
	 * SIGKILL for limits and the operator */
	void (*end)(struct chan *c, int sig);
	/* a channel warren opens to the client: true once the client confirmed
	 * it (NULL: the client opened it) */
	bool (*confirm)(struct chan *c);
};

extern const struct chan_ops chan_pending_ops; /* a session channel, nothing started yet */
extern const struct chan_ops chan_env_ops;     /* command in the tenant's environment */
extern const struct chan_ops chan_sandbox_ops; /* bwrap of its own, started by the monitor */
extern const struct chan_ops chan_direct_ops;  /* direct-tcpip: ssh -L, -D, -W */
extern const struct chan_ops chan_reverse_ops; /* forwarded-tcpip: ssh -R, opened by us */
extern const struct chan_ops chan_agent_ops;   /* auth-agent: ssh -A, opened by us */

struct chan {
	struct chan *next;
	struct session_ctx *sx;
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb;
	const struct chan_ops *ops;
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
	char *inbuf; /* CHAN_IOBUF, allocated on first use */
	size_t inlen, inoff;
	bool in_blocked; /* libssh may hold data for us: drain on POLLOUT */
	bool client_eof;

	struct stream out, err;
	short ctl_reg;
	bool ctl_done;
	int proxy_listen; /* egress proxy listener inside this sandbox's netns */
	short proxy_reg;
	bool api_given; /* the gateway holds listeners of this channel's sandbox */

	int attach_id;      /* warren-attach: the detached session to take over; -1: not */
	pid_t env_pid;      /* in_env: the command's pid in the environment (its session id) */
	struct ring screen; /* in_env with a pty: the last output, for reattaching */
	bool detached;      /* the connection dropped; init keeps the command running */
	bool confirmed;     /* ops->confirm: the client accepted the channel */
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

/* libssh runs the event's whole poll context from inside ssh_channel_write()
 * and ssh_channel_read_nonblocking() (the session socket lives in it), so our
 * fd callbacks can be re-entered mid-pump. Poll is level-triggered: an event
 * skipped here is reported again by the next dopoll. */
extern bool session_pumping;

/* An fd callback that does nothing while a pump is under way. */
#define GUARDED(name)                                                                              \
	int name(socket_t fd, int revents, void *ud)                                               \
	{                                                                                          \
		if (session_pumping)                                                               \
			return 0;                                                                  \
		session_pumping = true;                                                            \
		name##_body(fd, revents, ud);                                                      \
		session_pumping = false;                                                           \
		return 0;                                                                          \
	}

/* session.c: the event loop */
void session_note(struct session_ctx *sx, char kind, const char *text);
void session_activity(struct session_ctx *sx);
long session_elapsed_s(const struct timespec *since);
int session_on_sigchld(socket_t fd, int revents, void *ud);

/* channel.c: a channel's life */
struct chan *chan_new(struct session_ctx *sx, ssh_channel ch);
bool chan_room(struct session_ctx *sx);
bool chan_reconcile(struct session_ctx *sx, struct chan *c);
void chan_free(struct session_ctx *sx, struct chan *c);
bool chan_running(const struct chan *c);
void chan_ctl_send(struct chan *c, int type, int value);
/* the stream's or stdin's buffer, allocated on first use; NULL: no memory */
char *chan_buf(char **buf);

/* chanreq.c: session requests (pty, env, shell, exec, subsystem, signal) */
void chan_begin(struct chan *c, const char *kind);
int chan_claim_slot(struct chan *c);
void chan_release_slot(struct chan *c);
int chan_start_recording(struct chan *c, const char *command, const char *subsystem);
void chan_announce(struct chan *c, const char *command, const char *subsystem);

/* chanpump.c: the data pump between a channel and its sandbox */
int chan_on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len, int is_stderr, void *ud);
void chan_on_eof(ssh_session s, ssh_channel ch, void *ud);
void chan_on_close(ssh_session s, ssh_channel ch, void *ud);
bool chan_flush(struct chan *c, struct stream *st, bool is_err);
int chan_on_in_ready(socket_t fd, int revents, void *ud);
int chan_on_out_ready(socket_t fd, int revents, void *ud);
int chan_on_err_ready(socket_t fd, int revents, void *ud);
int chan_on_ctl_ready(socket_t fd, int revents, void *ud);
int chan_on_proxy_listen(socket_t fd, int revents, void *ud);

/* chanfwd.c: forwarding (direct-tcpip, tcpip-forward, agent) */
bool fwd_confirm_reverse(struct chan *c);
bool fwd_confirm_agent(struct chan *c);
int fwd_on_rfwd(socket_t fd, int revents, void *ud);
int fwd_on_member(socket_t fd, int revents, void *ud);

/* reattach.c: resumable PTY sessions (warren-attach) */
const char *reattach_arg(const char *command);
void reattach_start(struct chan *c, const char *command, const char *arg);
void reattach_notice(struct chan *c);
void reattach_replay(struct chan *c, int fd);
void reattach_failed(struct chan *c, int err);
bool reattach_detach(struct session_ctx *sx, struct chan *c);

#endif
