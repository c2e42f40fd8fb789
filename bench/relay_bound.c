/* relay_bound.c - the least a user-space TCP relay does: accept on
 * 127.0.0.1:LISTEN, connect to 127.0.0.1:UPSTREAM, copy both ways through
 * 1 MiB buffers with read/write, half-close passed on. The egress bench runs
 * its tunnel client through this as well, to show what any relay costs on
 * this machine next to what warren's proxy costs. Serves connections one
 * after another until killed. Bench only: no limits, no checks beyond that. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (1 << 20)

struct dir {
	int from, to;
	char *buf;
	size_t len, off;
	int eof;
};

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return a;
}

static int listener(int port)
{
	struct sockaddr_in a = loopback(port);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0)
		return -1;
	return l;
}

static int dial(int port)
{
	struct sockaddr_in a = loopback(port);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* one step of one direction; returns -1 when the connection is broken */
static int step(struct dir *d, short rev_from, short rev_to)
{
	if (d->off < d->len && (rev_to & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t n = write(d->to, d->buf + d->off, d->len - d->off);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		d->off += (size_t)n;
	}
	if (d->off >= d->len && !d->eof && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(d->from, d->buf, BUF);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		d->off = 0;
		d->len = (size_t)n;
		if (n == 0) {
			d->eof = 1;
			shutdown(d->to, SHUT_WR);
		}
	}
	return 0;
}

static void relay(int c, int u, char *b1, char *b2)
{
	struct dir up = {c, u, b1, 0, 0, 0}, down = {u, c, b2, 0, 0, 0};
	while (!(up.eof && down.eof && up.off >= up.len && down.off >= down.len)) {
		struct pollfd p[2] = {{c, 0, 0}, {u, 0, 0}};
		p[0].events = (short)((up.off >= up.len && !up.eof ? POLLIN : 0) |
		                      (down.off < down.len ? POLLOUT : 0));
		p[1].events = (short)((down.off >= down.len && !down.eof ? POLLIN : 0) |
		                      (up.off < up.len ? POLLOUT : 0));
		if (poll(p, 2, -1) < 0 || step(&up, p[0].revents, p[1].revents) < 0 ||
		    step(&down, p[1].revents, p[0].revents) < 0)
			return;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: relay_bound LISTEN_PORT UPSTREAM_PORT\n");
		return 2;
	}
	int l = listener(atoi(argv[1]));
	char *b1 = malloc(BUF), *b2 = malloc(BUF);
	if (l < 0 || b1 == NULL || b2 == NULL) {
		perror("relay_bound");
		return 1;
	}
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		int u = dial(atoi(argv[2]));
		if (u >= 0) {
			relay(c, u, b1, b2);
			close(u);
		}
		close(c);
	}
}
