/* init.c - warren-init, pid 1 inside every sandbox (bwrap --as-pid-1).
 * It opens the session's PTY from the sandbox's own devpts (so `tty` names
 * /dev/pts/N and no host pty is visible), starts the command, forwards
 * signals the client asks for, reaps orphans, and reports the command's raw
 * wait status to the session process over a SOCK_SEQPACKET control socket.
 *
 * With --proxy PORT it also opens a listening socket on 127.0.0.1:PORT in the
 * sandbox's own network namespace and hands it to the session process, which
 * serves the egress proxy from outside. Each --api PORT does the same for
 * one API gateway endpoint, which warren's gateway process serves.
 *
 * Nothing warrend gets from here is trusted: the session process checks each
 * message (sshd-frontend/session.c, on_ctl_ready).
 *
 * With --env FD it runs no command of its own: it is pid 1 of the tenant's
 * environment and serves channels on the listening socket FD (initenv.c).
 * --pids N tells it the sandbox's pids.max, so that it can make room for a
 * new channel before the cap is hit.
 *
 * usage: warren-init --ctl FD [--pty ROWSxCOLS] [--proxy PORT] [--api PORT]...
 *                    (-- PROG [ARGS...] | --env FD --linger SECONDS [--pids N]) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <termios.h>
#include <unistd.h>

#include "fdpass.h"
#include "fork.h"
#include "initenv.h"
#include "initproto.h"

static void die(const char *what)
{
	dprintf(2, "warren-init: %s: %s\n", what, strerror(errno));
	_exit(126);
}

static int send_msg(int ctl, char type, int value, int fd)
{
	struct init_msg m = {.type = type, .value = value};
	return fdpass_send(ctl, &m, sizeof m, fd);
}

/* a listening socket on 127.0.0.1:port of the sandbox's network namespace */
static int loopback_listener(int port, const char *what)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0)
		die(what);
	return fd;
}

#define MAX_API 8

/* the egress proxy's and the API endpoints' listeners go to warrend */
static int send_listeners(int ctl, int proxy_fd, int proxy_port, const int *api_fd,
                          const int *api_port, int napi)
{
	if (proxy_fd >= 0) {
		if (send_msg(ctl, INIT_MSG_PROXY, proxy_port, proxy_fd) < 0)
			return -1;
		close(proxy_fd);
	}
	for (int k = 0; k < napi; k++) {
		if (api_fd[k] < 0)
			continue;
		if (send_msg(ctl, INIT_MSG_API, api_port[k], api_fd[k]) < 0)
			return -1;
		close(api_fd[k]);
	}
	return 0;
}

struct init_args {
	int ctl, rows, cols, pty, env_fd, proxy_port, napi;
	int api_port[MAX_API];
	long linger, pids;
	char **cmd; /* after "--"; NULL in environment mode */
};

/* 0, or the exit code for a bad command line */
static int parse_args(int argc, char **argv, struct init_args *a)
{
	int i;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ctl") == 0 && i + 1 < argc) {
			a->ctl = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--pty") == 0 && i + 1 < argc) {
			a->pty = 1;
			if (sscanf(argv[++i], "%dx%d", &a->rows, &a->cols) != 2)
				a->rows = a->cols = 0;
		} else if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc) {
			a->proxy_port = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc && a->napi < MAX_API) {
			a->api_port[a->napi++] = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--env") == 0 && i + 1 < argc) {
			a->env_fd = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--linger") == 0 && i + 1 < argc) {
			a->linger = atol(argv[++i]);
		} else if (strcmp(argv[i], "--pids") == 0 && i + 1 < argc) {
			a->pids = atol(argv[++i]);
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			dprintf(2, "warren-init: bad argument '%s'\n", argv[i]);
			return 126;
		}
	}
	a->cmd = i < argc ? argv + i : NULL;
	if (a->ctl < 0 || (a->cmd == NULL && a->env_fd < 0) || a->linger < 0 || a->pids < 0) {
		dprintf(2, "usage: warren-init --ctl FD [--pty RxC] -- PROG [ARGS...]\n");
		return 126;
	}
	return 0;
}

/* the session's terminal, from the sandbox's own devpts: its master */
static int open_terminal(const struct init_args *a, char *slave_name, size_t len)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, slave_name, len) != 0)
		die("cannot open a pseudo-terminal");
	if (a->rows > 0 && a->cols > 0) {
		struct winsize ws = {.ws_row = (unsigned short)a->rows,
		                     .ws_col = (unsigned short)a->cols};
		ioctl(master, TIOCSWINSZ, &ws);
	}
	return master;
}

/* the command, in a session of its own (on the terminal, when there is one) */
static _Noreturn void run_command(char **cmd, const sigset_t *old, const char *slave_name)
{
	sigprocmask(SIG_SETMASK, old, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();
	if (slave_name[0]) {
		int slave = open(slave_name, O_RDWR);
		if (slave < 0)
			die(slave_name);
		if (ioctl(slave, TIOCSCTTY, 0) < 0)
			die("TIOCSCTTY");
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		if (slave > 2)
			close(slave);
	}
	execvp(cmd[0], cmd);
	int e = errno;
	dprintf(2, "warren: %s: %s\n", cmd[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

/* signals from the session to the command; the command's end, reported */
static _Noreturn void serve_command(int ctl, int sfd, pid_t child)
{
	int status = 0;
	for (;;) {
		struct pollfd pf[2] = {{.fd = ctl, .events = POLLIN},
		                       {.fd = sfd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pf[0].revents) {
			struct init_msg m;
			ssize_t n = recv(ctl, &m, sizeof m, 0);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				_exit(1); /* session gone: pid 1 exits, the kernel ends the rest */
			if (n > 0 && init_msg_check(&m, (size_t)n, false) == NULL &&
			    m.type == INIT_MSG_SIGNAL)
				kill(child, m.value);
		}
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			pid_t p;
			while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
				if (p == child) {
					send_msg(ctl, INIT_MSG_EXIT, status, -1);
					_exit(0);
				}
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct init_args a = {.ctl = -1, .env_fd = -1};
	/* init runs as the tenant and holds the control socket to warrend: not
	 * dumpable, so no tenant process can open /proc/1/mem (or take its fds)
	 * and speak for it. The command gets its own dumpable flag at exec. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("PR_SET_DUMPABLE");
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	fcntl(a.ctl, F_SETFD, FD_CLOEXEC);
	int master = -1;
	char slave_name[64] = "";
	if (a.pty)
		master = open_terminal(&a, slave_name, sizeof slave_name);
	int proxy_fd = -1, api_fd[MAX_API];
	if (a.proxy_port > 0 && a.proxy_port < 65536)
		proxy_fd = loopback_listener(a.proxy_port, "egress proxy listener");
	for (int k = 0; k < a.napi; k++)
		api_fd[k] = a.api_port[k] > 0 && a.api_port[k] < 65536
		                ? loopback_listener(a.api_port[k], "API gateway listener")
		                : -1;
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if (a.env_fd >= 0) {
		if (send_listeners(a.ctl, proxy_fd, a.proxy_port, api_fd, a.api_port, a.napi) < 0 ||
		    send_msg(a.ctl, INIT_MSG_STARTED, 1, -1) < 0)
			_exit(1);
		return initenv_run(a.ctl, a.env_fd, a.linger, a.pids);
	}
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die("signalfd");
	pid_t child = fork_child(0, NULL, 0);
	if (child < 0)
		die("fork");
	if (child == 0)
		run_command(a.cmd, &old, slave_name);
	if (a.pty) {
		/* The session gets the master; we keep no terminal handle. */
		if (send_msg(a.ctl, INIT_MSG_PTY, 0, master) < 0)
			die("sending the terminal");
		close(master);
	}
	if (send_listeners(a.ctl, proxy_fd, a.proxy_port, api_fd, a.api_port, a.napi) < 0)
		die("sending a listener");
	if (send_msg(a.ctl, INIT_MSG_STARTED, (int)child, -1) < 0)
		_exit(1);
	serve_command(a.ctl, sfd, child);
}
