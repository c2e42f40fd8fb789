/* initenv.c - warren-init's environment mode (sandbox_scope = tenant): pid 1
 * of a tenant's long-lived sandbox. It accepts connections from the tenant's
 * session processes on a listening socket passed in by warrend, starts each
 * channel's command inside the running sandbox, connects forwarded streams
 * from inside its network namespace, reaps everything, and exits `linger`
 * seconds after its last connection closed (the kernel then ends every
 * process in the PID namespace).
 *
 * Every request comes from a warrend session process running as the tenant;
 * nothing here trusts more than that: counts and sizes are bounded, and a
 * bad request only closes its own connection. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "fork.h"
#include "initdetach.h"
#include "initenv.h"
#include "initproto.h"
#include "strblob.h"

#define MAX_CLIENTS 1024

struct client {
	int fd;
	pid_t child;    /* the channel's command, 0 when none (member, or exited) */
	pid_t sid;      /* its session, kept after it exited: what KILL reaches */
	unsigned agent; /* > 0: forwards an agent; the highest is the latest */
};

static struct client clients[MAX_CLIENTS];
static int nclients;
static int agent_fd = -1; /* listening at INIT_AGENT_SOCK once a member asked */
static unsigned agent_seq;

static int send_msg(int sock, int type, int value, int fd)
{
	struct init_msg m = {.type = type, .value = value};
	return fdpass_send(sock, &m, sizeof m, fd);
}

/* sessions of channels that have ended: what they left behind is reclaimed
 * when the environment nears its pids.max (make_room) */
#define MAX_ENDED 256
static pid_t ended[MAX_ENDED];
static unsigned nended;
static long pids_cap; /* the sandbox's pids.max; 0 = unknown */

static void hang_up(pid_t sid);
static void make_room(void);
static void watch_room(void);

/* a channel's (or a detached session's) session has ended: what it left
 * is on record, and watched for a while (watch_room) */
static void note_ended(pid_t sid)
{
	ended[nended++ % MAX_ENDED] = sid;
	watch_room();
}

static void drop_client(int i)
{
	/* its session process went away with the command still running
	 * (killed by its monitor at session_timeout, or crashed): a hangup,
	 * as when the client leaves */
	if (clients[i].child > 0 && clients[i].sid > 0)
		hang_up(clients[i].sid);
	if (clients[i].sid > 0) /* not a member's or a forwarded stream's */
		note_ended(clients[i].sid);
	close(clients[i].fd);
	clients[i] = clients[--nclients];
	make_room();
}

/* The channel's command: a session and process group of its own, the pty
 * slave (opened here, in the sandbox's devpts) or the three passed fds. */
static void exec_child(char **argv, char **envp, const char *slave, const int *stdio)
{
	sigset_t none;
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (slave) {
		char id[48];
		snprintf(id, sizeof id, "%s=%d", INIT_SESSION_ENV, (int)getpid());
		size_t n = 0;
		while (envp[n])
			n++;
		char **e = calloc(n + 2, sizeof *e);
		if (e) { /* the command learns its id: warren-attach ID reaches it */
			memcpy(e, envp, n * sizeof *e);
			e[n] = id;
			envp = e;
		}
		int fd = open(slave, O_RDWR);
		if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
			_exit(126);
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	} else {
		for (int i = 0; i < 3; i++)
			if (dup2(stdio[i], i) < 0)
				_exit(126);
	}
	execvpe(argv[0], argv, envp);
	int e = errno;
	dprintf(2, "warren: %s: %s\n", argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

static int open_pty(const struct init_req *r, char *name, size_t len)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, len) != 0) {
		if (master >= 0)
			close(master);
		return -1;
	}
	if (r->rows > 0 && r->cols > 0 && r->rows < 10000 && r->cols < 10000) {
		struct winsize ws = {.ws_row = (unsigned short)r->rows,
		                     .ws_col = (unsigned short)r->cols};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	return master;
}

/* /proc/PID/stat into buf: the fields after the command's name, or NULL */
static const char *proc_stat(long pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return rp ? rp + 1 : NULL;
}

/* fn for every process of the environment, with its stat fields
 * (proc_stat); the sum of what fn returned. */
static long proc_walk(long (*fn)(long pid, const char *stat, void *ud), void *ud)
{
	long total = 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char buf[512];
		long pid = strtol(e->d_name, NULL, 10);
		const char *rp = pid > 0 ? proc_stat(pid, buf, sizeof buf) : NULL;
		if (rp)
			total += fn(pid, rp, ud);
	}
	closedir(d);
	return total;
}

/* The environment is at (or near) pids_max: the leftovers of ended
 * channels' sessions (not nohup'd, not setsid'd: a fork bomb that outlived
 * its channel, say) go, so that the tenant can work again. True when there
 * were any. */
static void signal_sessions(const pid_t *sids, unsigned n, int sig, bool only_default);
static void reap(void);

static bool reclaim_ended(void)
{
	unsigned n = nended < MAX_ENDED ? nended : MAX_ENDED;
	signal_sessions(ended, n, SIGKILL, true); /* one walk of /proc for them all */
	nended = 0; /* what is left ignores SIGHUP: it may stay; the ids may be reused */
	reap();
	return n > 0;
}

/* a process's tasks, threads included (pids.max counts them) */
static long tasks_of(long pid, const char *stat, void *ud)
{
	(void)pid;
	(void)ud;
	long threads = 1;
	/* state ppid pgrp session tty tpgid flags, 4 fault counts, 4 times,
	 * priority nice, num_threads */
	if (sscanf(stat, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld",
	           &threads) != 1 ||
	    threads < 1)
		threads = 1;
	return threads;
}

static long count_tasks(void)
{
	return proc_walk(tasks_of, NULL);
}

/* Before a new channel starts and after one ends: leftovers of ended
 * channels that hold the environment near pids.max go. Without this, a fork
 * bomb whose channel ended keeps the environment full until linger, and the
 * tenant's next command cannot fork (init's own fork may still succeed). */
static void make_room(void)
{
	if (pids_cap <= 0 || nended == 0)
		return;
	long room = pids_cap / 8 > 8 ? pids_cap / 8 : 8;
	if (count_tasks() + 2 + room > pids_cap) /* + 2: bwrap's, outside */
		reclaim_ended();
}

/* What a channel left can reach pids.max after the channel ended rather than
 * at its end: a fork bomb whose last holder of the channel's stdout gave up
 * while the rest, below the mark for a moment, filled the environment again.
 * So make_room looks again 0.25, 0.5, 1 ... 16 s after each channel's end. */
static long room_check_at, room_check_step; /* ms, CLOCK_MONOTONIC; 0: none due */
static long now_ms(void);

static void watch_room(void)
{
	room_check_step = 250;
	room_check_at = nended ? now_ms() + room_check_step : 0;
}

static void check_room(void)
{
	if (room_check_at == 0 || now_ms() < room_check_at)
		return;
	make_room();
	room_check_step *= 2;
	room_check_at = nended && room_check_step <= 16000 ? now_ms() + room_check_step : 0;
}

static void forget_ended(pid_t sid)
{
	unsigned n = nended < MAX_ENDED ? nended : MAX_ENDED;
	for (unsigned i = 0; i < n; i++)
		if (ended[i] == sid)
			ended[i] = -1; /* a reused id: a live session now */
}

/* Returns -1 when the connection is to be dropped. */
static int do_spawn(struct client *cl, const struct init_req *r, const int *fds, int nfds)
{
	if (cl->child != 0 || nfds != (r->pty ? 1 : 4))
		return -1;
	char *blob = NULL;
	char **v = strblob_read(fds[0], r->argc, r->envc, &blob);
	if (v == NULL)
		return -1;
	char slave[64] = "";
	int master = r->pty ? open_pty(r, slave, sizeof slave) : -1;
	make_room();
	pid_t pid = r->pty && master < 0 ? -1 : fork_child(0, NULL, 0);
	if (pid < 0 && errno == EAGAIN && reclaim_ended())
		pid = fork_child(0, NULL, 0);
	if (pid == 0)
		exec_child(v, v + r->argc + 1, r->pty ? slave : NULL, fds + 1);
	free(v);
	free(blob);
	if (pid < 0) {
		if (master >= 0)
			close(master);
		send_msg(cl->fd, INIT_MSG_ERROR, errno ? errno : EIO, -1);
		return 0;
	}
	cl->child = cl->sid = pid;
	forget_ended(pid);
	if (master >= 0) {
		send_msg(cl->fd, INIT_MSG_PTY, 0, master); /* the session holds the only master */
		close(master);
	}
	send_msg(cl->fd, INIT_MSG_STARTED, (int)pid, -1);
	return 0;
}

/* rc 0: the socket goes to the session; else ERROR with err (fd closed) */
static void reply_socket(struct client *cl, int fd, int err, int rc)
{
	if (rc == 0)
		send_msg(cl->fd, INIT_MSG_SOCKET, 0, fd);
	else
		send_msg(cl->fd, INIT_MSG_ERROR, err, -1);
	if (fd >= 0)
		close(fd);
}

static socklen_t loopback(const struct init_req *r, struct sockaddr_storage *out)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	if (r->family == 6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)r->value);
		a->sin6_addr = in6addr_loopback;
		sl = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)r->value);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *a;
	}
	*out = ss;
	return sl;
}

/* ssh -R: a listener on the sandbox's loopback, for the session to serve */
static void do_listen(struct client *cl, const struct init_req *r)
{
	struct sockaddr_storage ss;
	socklen_t sl = loopback(r, &ss);
	int one = 1;
	int fd = r->value < 0 || r->value > 65535
	             ? -1
	             : socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0)
		reply_socket(cl, fd, r->value < 0 || r->value > 65535 ? EINVAL : errno, -1);
	else
		reply_socket(cl, fd, 0, 0);
}

/* ssh -A: one socket at a fixed path for the whole environment */
static void do_agent(struct client *cl)
{
	cl->agent = ++agent_seq;
	if (agent_fd >= 0)
		return;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", INIT_AGENT_SOCK);
	mkdir(INIT_AGENT_DIR, 0700);
	unlink(INIT_AGENT_SOCK);
	agent_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (agent_fd < 0 || bind(agent_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    chmod(INIT_AGENT_SOCK, 0600) < 0 || listen(agent_fd, 64) < 0) {
		if (agent_fd >= 0)
			close(agent_fd);
		agent_fd = -1;
	}
}

/* a connection to the agent socket goes to the latest member that forwards */
static void agent_accept(void)
{
	int c;
	while ((c = accept4(agent_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct client *best = NULL;
		for (int i = 0; i < nclients; i++)
			if (clients[i].agent && (!best || clients[i].agent > best->agent))
				best = &clients[i];
		if (best)
			send_msg(best->fd, INIT_MSG_AGENT, 0, c);
		close(c); /* none: the client sees the agent go away */
	}
}

/* A forwarded stream: connect from inside the sandbox's network namespace,
 * to its loopback only; the session process checked the port already. */
static void do_connect(struct client *cl, const struct init_req *r)
{
	struct sockaddr_storage ss;
	if (r->value <= 0 || r->value > 65535) {
		send_msg(cl->fd, INIT_MSG_ERROR, EINVAL, -1);
		return;
	}
	socklen_t sl = loopback(r, &ss);
	/* a listener with a full backlog must not stall the environment */
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&ss, sl);
	if (rc < 0 && errno == EINPROGRESS) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		int soerr = ETIMEDOUT;
		socklen_t el = sizeof soerr;
		if (poll(&pf, 1, 2000) == 1)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
		errno = soerr;
		rc = soerr ? -1 : 0;
	}
	reply_socket(cl, fd, errno, rc);
}

static void reap(void);

/* Does pid not ignore SIGHUP (nohup's mark)? */
static bool hup_default(long pid)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	unsigned long long ign = 0, cgt = 0;
	while (fgets(line, sizeof line, f)) {
		sscanf(line, "SigIgn: %llx", &ign);
		sscanf(line, "SigCgt: %llx", &cgt);
	}
	fclose(f);
	(void)cgt; /* a handler is no shelter: bash's, blocked while fork fails, never runs */
	return !(ign & 1ULL); /* bit 0: SIGHUP */
}

struct session_signal {
	const pid_t *sids; /* ids <= 0: none */
	unsigned n;
	int sig;
	bool only_default;
};

/* 1 when pid (not init) is in one of the sessions and was signalled */
static long signal_one(long pid, const char *stat, void *ud)
{
	const struct session_signal *s = ud;
	long psid = 0;
	char state = 0;
	if (pid <= 1 || sscanf(stat, " %c %*d %*d %ld", &state, &psid) != 2 || state == 'Z')
		return 0; /* a zombie: dead already, its parent's (or our reap's) to clear */
	for (unsigned i = 0; i < s->n; i++)
		if (s->sids[i] > 0 && psid == s->sids[i])
			return (!s->only_default || hup_default(pid)) &&
			       kill((pid_t)pid, s->sig) == 0;
	return 0;
}

/* Every process of the channels' sessions (a command called setsid; what
 * it started stays in that session unless it left it, as tmux's server and
 * `setsid` do): the hangup of a terminal, applied to pipes as well.
 * only_default: just those that take SIGHUP's default action. SIGKILL is
 * repeated until a pass finds none alive (a fork bomb's child born behind a
 * pass is found by the next), for at most a second. */
static void signal_sessions(const pid_t *sids, unsigned n, int sig, bool only_default)
{
	struct session_signal s = {sids, n, sig, only_default};
	long until = now_ms() + 1000;
	for (int pass = 0;; pass++) {
		if (n == 0 || proc_walk(signal_one, &s) == 0)
			break;
		reap();
		if (sig != SIGKILL || now_ms() >= until)
			break;
		if (pass >= 3) /* what is left is dying (exit takes its time): no spinning */
			nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
	}
}

static void signal_session(pid_t sid, int sig, bool only_default)
{
	signal_sessions(&sid, 1, sig, only_default);
}

/* A hangup: SIGHUP now; a second later SIGKILL for what should have died of
 * it and did not (a process that blocks signals while fork keeps failing at
 * pids_max would otherwise hold the environment's process slots forever).
 * What ignores SIGHUP (nohup) or left the session (setsid, tmux) is spared. */
#define MAX_HANGUPS 64
static struct {
	pid_t sid;
	long at;
} hangups[MAX_HANGUPS];
static int nhangups;

static void hang_up(pid_t sid)
{
	signal_session(sid, SIGHUP, false);
	if (nhangups < MAX_HANGUPS)
		hangups[nhangups++] = (typeof(hangups[0])){sid, now_ms() + 1000};
}

static void finish_hangups(void)
{
	for (int i = nhangups - 1; i >= 0; i--)
		if (now_ms() >= hangups[i].at) {
			signal_session(hangups[i].sid, SIGKILL, true);
			hangups[i] = hangups[--nhangups];
		}
}

/* The client's connection dropped with its PTY command running: fds are the
 * master and the screen so far. The command keeps running, detached. */
static int do_detach(struct client *cl, int *fds, int nfds)
{
	pid_t evicted = 0;
	if (cl->child <= 0 || nfds != 2 ||
	    detach_add(cl->child, cl->sid, fds[0], fds[1], &evicted) < 0)
		return -1; /* dropped: the session is hung up as usual */
	if (evicted > 0)
		hang_up(evicted);
	cl->child = cl->sid = 0; /* no longer this connection's: not hung up with it */
	return 0;
}

static void do_attach(struct client *cl, const struct init_req *r)
{
	int master, screen;
	pid_t child, sid;
	if (detach_take(r->value, r->rows, r->cols, &master, &screen, &child, &sid) < 0) {
		send_msg(cl->fd, INIT_MSG_ERROR, ESRCH, -1);
		return;
	}
	cl->child = child;
	cl->sid = sid;
	if (screen >= 0) {
		send_msg(cl->fd, INIT_MSG_REPLAY, 0, screen);
		close(screen);
	}
	send_msg(cl->fd, INIT_MSG_PTY, 0, master);
	close(master);
	send_msg(cl->fd, INIT_MSG_STARTED, (int)child, -1);
}

static void do_list(struct client *cl)
{
	int fd = detach_list();
	if (fd < 0)
		send_msg(cl->fd, INIT_MSG_ERROR, errno, -1);
	else
		send_msg(cl->fd, INIT_MSG_LIST, 0, fd);
	if (fd >= 0)
		close(fd);
}

/* Returns -1 when the connection is to be dropped. */
static int serve_client(struct client *cl)
{
	struct init_req r;
	int fds[FDPASS_MAX], nfds = 0;
	ssize_t n = fdpass_recvv(cl->fd, &r, sizeof r, fds, FDPASS_MAX, &nfds, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	int rc = -1;
	if (n > 0 && init_req_check(&r, (size_t)n, nfds) == NULL) {
		rc = 0;
		if (r.type == INIT_REQ_SPAWN)
			rc = do_spawn(cl, &r, fds, nfds);
		else if (r.type == INIT_REQ_CONNECT && nfds == 0)
			do_connect(cl, &r);
		else if (r.type == INIT_REQ_LISTEN && nfds == 0)
			do_listen(cl, &r);
		else if (r.type == INIT_REQ_AGENT && cl->child == 0)
			do_agent(cl);
		else if (r.type == INIT_MSG_SIGNAL && cl->child > 0 && r.value > 0 &&
		         r.value < NSIG)
			kill(cl->child, r.value);
		else if (r.type == INIT_REQ_KILL && cl->sid > 0 && r.value == SIGHUP)
			hang_up(cl->sid);
		else if (r.type == INIT_REQ_KILL && cl->sid > 0 && r.value > 0 && r.value < NSIG)
			signal_session(cl->sid, r.value, false);
		else if (r.type == INIT_REQ_DETACH)
			rc = do_detach(cl, fds, nfds);
		else if (r.type == INIT_REQ_ATTACH && nfds == 0 && cl->child == 0 && cl->sid == 0)
			do_attach(cl, &r);
		else if (r.type == INIT_REQ_LIST && nfds == 0)
			do_list(cl);
		else if (r.type == INIT_REQ_MEMBER && cl->child == 0)
			send_msg(cl->fd, INIT_MSG_STARTED, 0, -1); /* joined */
		else
			rc = -1;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return rc;
}

static void reap(void)
{
	int status;
	pid_t p, sid;
	while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
		if (detach_reaped(p, &sid))
			note_ended(sid); /* its leftovers, as for any channel */
		for (int i = 0; i < nclients; i++)
			if (clients[i].child == p) {
				send_msg(clients[i].fd, INIT_MSG_EXIT, status, -1);
				clients[i].child = 0;
			}
	}
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* Commands from the env process (outside): linger changes. Its going away
 * ends the environment. */
static int serve_ctl(int ctl, long *linger_ms)
{
	struct init_req r;
	ssize_t n = recv(ctl, &r, sizeof r, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	if (init_req_check(&r, (size_t)n, 0) == NULL && r.type == INIT_REQ_LINGER && r.value >= 0)
		*linger_ms = (long)r.value * 1000L;
	return 0;
}

int initenv_run(int ctl, int lfd, long linger_s, long pids_max)
{
	pids_cap = pids_max;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return 1;
	fcntl(lfd, F_SETFD, FD_CLOEXEC);
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	long linger_ms = linger_s * 1000L;
	/* the first member is on its way: give it time even with linger = 0 */
	long idle_since = now_ms() + 30000;
	static struct pollfd pf[MAX_CLIENTS + 4 + MAX_DETACHED];
	for (;;) {
		if (nclients == 0 && now_ms() >= idle_since + linger_ms)
			return 0; /* pid 1 exits: the kernel ends the rest */
		pf[0] = (struct pollfd){.fd = ctl, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pf[2] = (struct pollfd){.fd = nclients < MAX_CLIENTS ? lfd : -1, .events = POLLIN};
		for (int i = 0; i < nclients; i++)
			pf[3 + i] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
		pf[3 + nclients] = (struct pollfd){.fd = agent_fd, .events = POLLIN};
		int nd = detach_pollfds(pf + 4 + nclients);
		finish_hangups();
		check_room();
		long wait = -1;
		if (nclients == 0) {
			wait = idle_since + linger_ms - now_ms();
			wait = wait < 0 ? 0 : wait > 60000 ? 60000 : wait;
		}
		if (nhangups && (wait < 0 || wait > 200))
			wait = 200;
		if (room_check_at) {
			long due = room_check_at - now_ms();
			due = due < 0 ? 0 : due;
			wait = wait < 0 || wait > due ? due : wait;
		}
		int n = nclients;
		if (poll(pf, (nfds_t)(4 + n + nd), (int)wait) < 0 && errno != EINTR)
			return 1;
		detach_service(pf + 4 + n, nd);
		if (pf[3 + n].revents & POLLIN)
			agent_accept();
		if (pf[0].revents && serve_ctl(ctl, &linger_ms) < 0)
			return 0;
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			reap();
		}
		/* back to front: drop_client moves the last entry into the gap */
		for (int i = n - 1; i >= 0; i--) {
			if (!pf[3 + i].revents)
				continue;
			if (serve_client(&clients[i]) < 0) {
				drop_client(i);
				if (nclients == 0)
					idle_since = now_ms();
			}
		}
		if (pf[2].revents & POLLIN) {
			int c;
			while (nclients < MAX_CLIENTS &&
			       (c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
				clients[nclients++] = (struct client){.fd = c};
		}
	}
}
