/* status.c - the operator's view of a running warrend over state_dir/warrend.sock
 * (mode 0600, root): "list" and "kill ID", one request per connection. */
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int sock_path(const char *state_dir, struct sockaddr_un *a)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path, sizeof a->sun_path, "%s/warrend.sock", state_dir);
	return n < (int)sizeof a->sun_path ? 0 : -ENAMETOOLONG;
}

int status_listen(const char *state_dir)
{
	struct sockaddr_un a;
	if (sock_path(state_dir, &a) < 0)
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(a.sun_path);
	mode_t old = umask(077);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (rc < 0 || chmod(a.sun_path, 0600) < 0 || listen(fd, 8) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

void status_serve(int fd, size_t (*list)(char *buf, size_t len), int (*kill_id)(long id))
{
	struct timeval tmo = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
	char req[64] = "";
	ssize_t n = recv(fd, req, sizeof req - 1, 0);
	if (n <= 0)
		return;
	req[n] = '\0';
	static char out[65536];
	size_t len;
	if (!strncmp(req, "list", 4)) {
		len = list(out, sizeof out);
	} else if (!strncmp(req, "kill ", 5)) {
		long id = strtol(req + 5, NULL, 10);
		len = (size_t)snprintf(
		    out, sizeof out,
		    kill_id(id) == 0 ? "ended session %ld\n" : "error: no session %ld\n", id);
	} else {
		len = (size_t)snprintf(out, sizeof out, "error: unknown request\n");
	}
	ssize_t w = send(fd, out, len, MSG_NOSIGNAL);
	(void)w;
	explicit_bzero(out, len); /* tenants' commands: no fork inherits them */
}

int status_client(const char *state_dir, const char *request)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sock_path(state_dir, &a) < 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		fprintf(stderr, "warrend: cannot reach the daemon at %s/warrend.sock: %s\n",
		        state_dir, strerror(errno));
		return 1;
	}
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0) {
		close(fd);
		return 1;
	}
	shutdown(fd, SHUT_WR);
	char buf[4096];
	ssize_t n;
	int rc = 0;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		if (!strncmp(buf, "error:", 6))
			rc = 1;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return rc;
}
