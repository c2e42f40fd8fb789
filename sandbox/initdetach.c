/* initdetach.c - warren-init's detached PTY sessions (see initdetach.h).
 * Everything here runs as the tenant in the tenant's own sandbox; a detached
 * session lives at most as long as the environment (linger). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "initdetach.h"
#include "ring.h"

static struct detached {
	pid_t child, sid;
	int master;
	bool hup; /* the terminal's other side is closed: nothing more to read */
	long since;
	struct ring screen;
} tab[MAX_DETACHED];
static int ntab;

static long now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec;
}

static void forget(int i)
{
	close(tab[i].master);
	ring_free(&tab[i].screen);
	tab[i] = tab[--ntab];
}

/* the screen the session process kept, at most a ring's worth */
static void load_screen(struct ring *r, int fd)
{
	static char buf[RING_SIZE];
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0)
		return;
	off_t off = st.st_size > RING_SIZE ? st.st_size - RING_SIZE : 0;
	ssize_t n = pread(fd, buf, sizeof buf, off);
	if (n > 0)
		ring_put(r, buf, (size_t)n);
}

int detach_add(pid_t child, pid_t sid, int master, int screen_fd, pid_t *evicted)
{
	*evicted = 0;
	unsigned ptn;
	if (child <= 0 || ioctl(master, TIOCGPTN, &ptn) < 0 || tcgetsid(master) != sid)
		return -1; /* not this command's terminal */
	if (ntab == MAX_DETACHED) {
		int old = 0;
		for (int i = 1; i < ntab; i++)
			if (tab[i].since < tab[old].since)
				old = i;
		*evicted = tab[old].sid;
		forget(old);
	}
	int fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	struct detached *d = &tab[ntab++];
	*d = (struct detached){.child = child, .sid = sid, .master = fd, .since = now_s()};
	if (screen_fd >= 0)
		load_screen(&d->screen, screen_fd);
	return 0;
}

static int screen_memfd(const struct ring *r)
{
	static char buf[RING_SIZE];
	size_t n = ring_snapshot(r, buf);
	int fd = memfd_create("warren-screen", MFD_CLOEXEC);
	if (fd >= 0 && write(fd, buf, n) != (ssize_t)n) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int detach_take(pid_t id, int rows, int cols, int *master, int *screen_fd, pid_t *child, pid_t *sid)
{
	int k = -1;
	for (int i = 0; i < ntab; i++)
		if (id > 0 ? tab[i].child == id : k < 0 || tab[i].since >= tab[k].since)
			k = i;
	if (k < 0)
		return -1;
	struct detached *d = &tab[k];
	char buf[4096];
	ssize_t n;
	while (!d->hup && (n = read(d->master, buf, sizeof buf)) > 0)
		ring_put(&d->screen, buf, (size_t)n); /* printed since the last poll */
	*screen_fd = screen_memfd(&d->screen);
	*master = d->master;
	*child = d->child;
	*sid = d->sid;
	struct winsize ws;
	if (rows > 0 && cols > 0 && rows < 10000 && cols < 10000 &&
	    ioctl(d->master, TIOCGWINSZ, &ws) == 0) {
		bool same = ws.ws_row == rows && ws.ws_col == cols;
		ws.ws_row = (unsigned short)rows;
		ws.ws_col = (unsigned short)cols;
		ioctl(d->master, TIOCSWINSZ, &ws);
		pid_t fg = tcgetpgrp(d->master);
		if (same && fg > 0)
			kill(-fg, SIGWINCH); /* same size: full-screen programs redraw anyway */
	}
	ring_free(&d->screen);
	*d = tab[--ntab]; /* the master now belongs to the caller */
	return 0;
}

bool detach_reaped(pid_t pid, pid_t *sid)
{
	for (int i = 0; i < ntab; i++)
		if (tab[i].child == pid) {
			*sid = tab[i].sid;
			forget(i);
			return true;
		}
	return false;
}

int detach_pollfds(struct pollfd *pf)
{
	for (int i = 0; i < ntab; i++)
		pf[i] = (struct pollfd){.fd = tab[i].hup ? -1 : tab[i].master, .events = POLLIN};
	return ntab;
}

void detach_service(const struct pollfd *pf, int n)
{
	for (int i = 0; i < n && i < ntab; i++) {
		if (!pf[i].revents || pf[i].fd != tab[i].master)
			continue;
		char buf[8192];
		ssize_t r = read(tab[i].master, buf, sizeof buf);
		if (r > 0)
			ring_put(&tab[i].screen, buf, (size_t)r);
		else if (r == 0 || (errno != EAGAIN && errno != EINTR))
			tab[i].hup = true; /* EIO: every process closed the terminal */
	}
}

int detach_list(void)
{
	int fd = memfd_create("warren-sessions", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	for (int i = 0; i < ntab; i++) {
		char path[64], comm[32] = "?";
		snprintf(path, sizeof path, "/proc/%d/comm", (int)tab[i].child);
		int c = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = c < 0 ? -1 : read(c, comm, sizeof comm - 1);
		if (c >= 0)
			close(c);
		if (n > 0)
			comm[n - (comm[n - 1] == '\n')] = '\0';
		dprintf(fd, "%d %ld %s\n", (int)tab[i].child, now_s() - tab[i].since, comm);
	}
	return fd;
}
