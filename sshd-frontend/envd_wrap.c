/* envd_wrap.c - the session process's side of the tenant's environment
 * (the tenant, no capabilities): a MEMBER connection to its init for the
 * connection's lifetime, and one connection per channel (spawn, attach) or
 * forwarded stream (connect, listen), on state_dir/envs/<tenant>.sock
 * (initproto.h). envd.h tells the whole design. */
#include "envd.h"
#include "envd_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/fmt.h"
#include "../sandbox/initproto.h"
#include "../sandbox/strblob.h"
#include "../sandbox/workspace.h"
#include "../egress/apigw.h"
#include "audit.h"
#include "confine.h"
#include "evfd.h"
#include "log.h"
#include "monitor.h"
#include "privdrop.h"
#include "procinfo.h"
#include "../egress/proxy.h"

#define READY_TIMEOUT_MS 30000

int envd_unix_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	return fmt_into(a->sun_path, sizeof a->sun_path, "%s", path);
}

/* A request on a fresh connection to init: the connected socket, or -1. */
static int dial(const char *path, const struct init_req *r, const int *fds, int nfds)
{
	struct sockaddr_un a;
	if (envd_unix_addr(path, &a) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    fdpass_sendv(fd, r, sizeof *r, fds, nfds) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* One reply from init within ms; its fd (if any) in *fd. 0 or -1 (errno). */
static int await(int sock, struct init_msg *m, int *fd, int ms)
{
	struct pollfd pf = {.fd = sock, .events = POLLIN};
	int pr;
	do
		pr = poll(&pf, 1, ms);
	while (pr < 0 && errno == EINTR);
	if (pr == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	ssize_t n = fdpass_recv(sock, m, sizeof *m, fd, MSG_DONTWAIT);
	if (n < 0 || init_msg_check(m, (size_t)n, *fd >= 0) != NULL) {
		if (n >= 0 && *fd >= 0)
			close(*fd);
		errno = n == 0 ? ECONNRESET : n < 0 ? errno : EPROTO;
		return -1;
	}
	return 0;
}

int envd_member(const char *path, int ms)
{
	struct init_req r = {.type = INIT_REQ_MEMBER};
	int fd = dial(path, &r, NULL, 0);
	if (fd < 0)
		return -1;
	struct init_msg m;
	int passed = -1;
	if (await(fd, &m, &passed, ms) < 0 || m.type != INIT_MSG_STARTED) {
		if (passed >= 0)
			close(passed);
		close(fd);
		return -1;
	}
	return fd;
}

void envd_close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

int envd_spawn(const char *path, char *const argv[], char *const envp[], bool pty, int rows,
               int cols, struct sandbox_proc *out, char *err, size_t errlen)
{
	int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1};
	struct init_req r = {.type = INIT_REQ_SPAWN, .pty = pty, .rows = rows, .cols = cols};
	int mfd = strblob_memfd(argv, envp, &r.argc, &r.envc);
	if (mfd < 0) {
		snprintf(err, errlen, "command and environment: %s", strerror(errno));
		return -1;
	}
	if (!pty &&
	    (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(mfd);
		envd_close_pair(in);
		envd_close_pair(o);
		return -1;
	}
	int bulk[] = {in[1], o[0], e[0]};
	for (int i = 0; !pty && i < 3; i++)
		fcntl(bulk[i], F_SETPIPE_SZ, 1 << 20);
	int fds[4] = {mfd, in[0], o[1], e[1]};
	int sock = dial(path, &r, fds, pty ? 1 : 4);
	int saved = errno;
	close(mfd);
	if (!pty) {
		close(in[0]);
		close(o[1]);
		close(e[1]);
	}
	if (sock < 0) {
		snprintf(err, errlen, "your environment is not reachable (%s); log in again",
		         strerror(saved));
		if (!pty) {
			close(in[1]);
			close(o[0]);
			close(e[0]);
		}
		return -1;
	}
	*out = (struct sandbox_proc){.pid = 0,
	                             .stdin_fd = pty ? -1 : in[1],
	                             .stdout_fd = pty ? -1 : o[0],
	                             .stderr_fd = pty ? -1 : e[0],
	                             .ctl_fd = sock};
	int all[] = {out->stdin_fd, out->stdout_fd, out->stderr_fd, out->ctl_fd};
	for (int i = 0; i < 4; i++)
		if (all[i] >= 0)
			fcntl(all[i], F_SETFL, fcntl(all[i], F_GETFL) | O_NONBLOCK);
	return 0;
}

int envd_attach(const char *path, int id, int rows, int cols, struct sandbox_proc *out)
{
	struct init_req r = {.type = INIT_REQ_ATTACH, .value = id, .rows = rows, .cols = cols};
	int sock = dial(path, &r, NULL, 0);
	if (sock < 0)
		return -1;
	fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
	*out =
	    (struct sandbox_proc){.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .ctl_fd = sock};
	return 0;
}

int envd_detach(int ctl_fd, int master, const char *screen, size_t len)
{
	int mfd = memfd_create("warren-screen", MFD_CLOEXEC);
	if (mfd < 0)
		return -1;
	struct init_req r = {.type = INIT_REQ_DETACH};
	int fds[2] = {master, mfd};
	int rc = write(mfd, screen, len) == (ssize_t)len
	             ? fdpass_sendv(ctl_fd, &r, sizeof r, fds, 2)
	             : -1;
	close(mfd);
	return rc;
}

/* One request on a fresh connection, one answer within 5 s: 0 with *m and
 * the fd it passed (or -1), or -1 with errno. */
static int ask(const char *path, const struct init_req *r, struct init_msg *m, int *fd)
{
	int sock = dial(path, r, NULL, 0);
	if (sock < 0)
		return -1;
	*fd = -1;
	int rc = await(sock, m, fd, 5000);
	close(sock);
	return rc;
}

ssize_t envd_list(const char *path, char *buf, size_t len)
{
	struct init_req r = {.type = INIT_REQ_LIST};
	struct init_msg m;
	int fd;
	if (ask(path, &r, &m, &fd) < 0)
		return -1;
	struct stat st;
	ssize_t n = -1; /* a regular file (memfd) only: a pipe could hold us */
	if (m.type == INIT_MSG_LIST && fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		n = pread(fd, buf, len - 1, 0);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static int request_socket(const char *path, int type, int family, int port)
{
	struct init_req r = {.type = type, .value = port, .family = family};
	struct init_msg m;
	int fd;
	if (ask(path, &r, &m, &fd) < 0)
		return -1;
	if (m.type == INIT_MSG_SOCKET && fd >= 0)
		return fd;
	if (fd >= 0)
		close(fd);
	errno = m.type == INIT_MSG_ERROR && m.value > 0 ? m.value : EPROTO;
	return -1;
}

int envd_connect(const char *path, int family, int port)
{
	return request_socket(path, INIT_REQ_CONNECT, family, port);
}

int envd_listen(const char *path, int family, int port)
{
	return request_socket(path, INIT_REQ_LISTEN, family, port);
}

int envd_agent(int member_fd)
{
	struct init_req r = {.type = INIT_REQ_AGENT};
	return send(member_fd, &r, sizeof r, MSG_NOSIGNAL) == (ssize_t)sizeof r ? 0 : -1;
}

bool envd_loopback_listener(int fd)
{
	int listening = 0, type = 0;
	struct sockaddr_in a;
	socklen_t l = sizeof listening, lt = sizeof type, la = sizeof a;
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) == 0 && listening &&
	       getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &lt) == 0 && type == SOCK_STREAM &&
	       getsockname(fd, (struct sockaddr *)&a, &la) == 0 && la == sizeof a &&
	       a.sin_family == AF_INET && a.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

int envd_give_api(int gw_sock, unsigned api_mask, int port, int channel, int fd)
{
	int api = port - SANDBOX_API_PORT;
	if (gw_sock < 0 || api < 0 || api >= SANDBOX_MAX_APIS || !(api_mask & (1u << api)) ||
	    !envd_loopback_listener(fd))
		return 0;
	struct gw_fdmsg m = {.type = GW_LISTEN, .api = api, .channel = channel, .peer_uid = -1};
	return fdpass_send(gw_sock, &m, sizeof m, fd) < 0 ? -1 : 1;
}
