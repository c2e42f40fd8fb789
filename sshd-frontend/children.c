/* children.c - the master's table of its children: connection processes
 * (each with a status pipe: "A<tenant>" once authenticated, then the session's
 * "C<command>" and "T" lines) and tenants' environments (we are their
 * subreaper); listed by warrend --status, counted by admission, reaped. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/fmt.h"
#include "admit.h"
#include "audit.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "procinfo.h"

struct child {
	pid_t pid;
	int notify_fd; /* -1 once the child authenticated or closed it */
	bool preauth;
	char source[INET6_ADDRSTRLEN];
	char key[ADMIT_KEY_MAX]; /* the source as admission counts it (IPv6: its /64) */
	char tenant[CFG_NAME_MAX + 1];
	char command[200];
	time_t started;
	struct timespec active; /* last traffic the session reported */
	char line[256];         /* partial status line from the pipe */
	size_t linelen;
	bool env;      /* a tenant's environment (envd.c), not a connection */
	bool env_told; /* the connection's one "E" line came */
};

static struct child *children;
static size_t nchildren, capchildren;
static int unauth;

static void close_status(struct child *c);
static struct child *child_add(pid_t pid, int notify_fd, const char *source, const char *key);
static void read_lines(struct child *c, const char *buf, ssize_t r);

/* an authenticated connection no longer counts against max_startups */
static void leave_preauth(struct child *c)
{
	if (c->preauth) {
		c->preauth = false;
		unauth--;
	}
}

/* "E<pid>": the connection's root monitor started its tenant's environment,
 * whose env monitor is now our child (we are a subreaper). Only the line
 * right after "A" counts: later ones come from the tenant's session. */
static void add_environment(struct child *c, const char *arg)
{
	c->env_told = true;
	char *end;
	long pid = strtol(arg, &end, 10);
	if (pid <= 0 || *end != '\0' || procinfo_ppid(pid) != (long)getpid())
		return;
	char tenant[sizeof c->tenant];
	snprintf(tenant, sizeof tenant, "%s", c->tenant);
	struct child *e = child_add((pid_t)pid, -1, "-", "");
	if (e == NULL) /* c may have moved: use the copies */
		return;
	leave_preauth(e);
	e->env = true;
	snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
	snprintf(e->command, sizeof e->command, "(environment)");
}

/* Lines from a connection (notify.h); EOF: it is gone. What a line held
 * (a tenant's command) is wiped from the buffers it passed through: every
 * connection process is a fork of this one, and must not carry another
 * tenant's words. */
static void read_status(struct child *c)
{
	char buf[512];
	ssize_t r = read(c->notify_fd, buf, sizeof buf);
	read_lines(c, buf, r);
	explicit_bzero(buf, sizeof buf);
}

static void read_lines(struct child *c, const char *buf, ssize_t r)
{
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close_status(c); /* the connection is gone or going */
		return;
	}
	for (ssize_t i = 0; i < r; i++) {
		if (buf[i] != '\n') {
			if (c->linelen < sizeof c->line - 1)
				c->line[c->linelen++] = buf[i];
			continue;
		}
		c->line[c->linelen] = '\0';
		const char *arg;
		switch (notify_check(c->line, c->tenant[0] != '\0', c->env_told, &arg)) {
		case NOTE_AUTH:
			snprintf(c->tenant, sizeof c->tenant, "%s", arg);
			leave_preauth(c);
			break;
		case NOTE_ENV: {
			size_t at = (size_t)(c - children);
			add_environment(c, arg);
			c = &children[at]; /* child_add may have moved the array */
			break;
		}
		case NOTE_COMMAND:
			/* the tenant's command: escaped before any operator sees it */
			fmt_escape(c->command, sizeof c->command, arg);
			clock_gettime(CLOCK_MONOTONIC, &c->active);
			break;
		case NOTE_TRAFFIC:
			clock_gettime(CLOCK_MONOTONIC, &c->active);
			break;
		case NOTE_NONE:
			break;
		}
		explicit_bzero(c->line, sizeof c->line);
		c->linelen = 0;
	}
}

size_t children_list(char *buf, size_t len)
{
	size_t used = (size_t)snprintf(buf, len, "%-8s %-16s %-22s %-20s %6s  %s\n", "ID", "TENANT",
	                               "SOURCE", "START", "IDLE", "COMMAND");
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; i < nchildren && used < len; i++) {
		const struct child *c = &children[i];
		if (!c->tenant[0])
			continue; /* not authenticated yet */
		struct tm tm;
		char start[32];
		gmtime_r(&c->started, &tm);
		strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm);
		used += (size_t)snprintf(
		    buf + used, len - used, "%-8d %-16s %-22s %-20s %5lds  %s\n", (int)c->pid,
		    c->tenant, c->source, start, (long)(now.tv_sec - c->active.tv_sec),
		    c->command[0] ? c->command : "-");
	}
	return used < len ? used : len;
}

int children_kill(long id)
{
	for (size_t i = 0; i < nchildren; i++)
		if (children[i].pid == id && children[i].tenant[0]) {
			log_info("status: ending session %ld (%s) on request", id,
			         children[i].tenant);
			waudit_event("session_killed", "tenant", children[i].tenant, "source",
			             children[i].source, NULL);
			return kill((pid_t)id, SIGUSR2);
		}
	return -1;
}

static struct child *child_add(pid_t pid, int notify_fd, const char *source, const char *key)
{
	if (nchildren == capchildren) {
		/* grown by hand: realloc would leave the old table, tenants'
		 * commands in it, in freed memory every fork inherits */
		size_t cap = capchildren ? capchildren * 2 : 64;
		struct child *v = calloc(cap, sizeof *v);
		if (v == NULL)
			return NULL;
		if (children) {
			memcpy(v, children, capchildren * sizeof *v);
			explicit_bzero(children, capchildren * sizeof *v);
			free(children);
		}
		children = v;
		capchildren = cap;
	}
	struct child *c = &children[nchildren++];
	c->pid = pid;
	c->notify_fd = notify_fd;
	c->preauth = true;
	snprintf(c->source, sizeof c->source, "%s", source);
	snprintf(c->key, sizeof c->key, "%s", key);
	c->tenant[0] = c->command[0] = '\0';
	c->linelen = 0;
	c->env = c->env_told = false;
	c->started = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &c->active);
	unauth++;
	return c;
}

static void close_status(struct child *c)
{
	leave_preauth(c);
	if (c->notify_fd >= 0) {
		close(c->notify_fd);
		c->notify_fd = -1;
	}
}

void children_reap(struct cg *cg)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			if (!children[i].tenant[0])
				accept_penalise(children[i].key);
			close_status(&children[i]);
			children[i] = children[--nchildren];
			explicit_bzero(&children[nchildren], sizeof children[nchildren]);
			break;
		}
		cgroup_monitor_remove(cg, pid); /* a connection or env monitor's leaf */
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			log_warn("connection process %d died of signal %d", (int)pid,
			         WTERMSIG(status));
	}
}

int children_add(pid_t pid, int notify_fd, const char *source, const char *key)
{
	return child_add(pid, notify_fd, source, key) ? 0 : -1;
}

size_t children_count(void)
{
	return nchildren;
}

void children_signal(int sig)
{
	for (size_t i = 0; i < nchildren; i++)
		kill(children[i].pid, sig);
}

size_t children_pollfds(struct pollfd *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < nchildren && k < n; i++)
		p[k++] = (struct pollfd){.fd = children[i].notify_fd, .events = POLLIN};
	return k;
}

/* indices shift when children are reaped, so match by fd */
void children_status_ready(int fd)
{
	for (size_t i = 0; i < nchildren; i++)
		if (children[i].notify_fd == fd) {
			read_status(&children[i]);
			return;
		}
}

void children_from(const char *key, int *same, int *same_unauth)
{
	*same = *same_unauth = 0;
	for (size_t i = 0; i < nchildren; i++)
		if (!strcmp(children[i].key, key)) {
			(*same)++;
			*same_unauth += !children[i].tenant[0];
		}
}

int children_unauth(void)
{
	return unauth;
}

void children_forget(void)
{
	for (size_t i = 0; i < nchildren; i++)
		if (children[i].notify_fd >= 0)
			close(children[i].notify_fd);
	/* other connections' tenants, sources and commands are none of this
	 * connection's business */
	if (children)
		explicit_bzero(children, capchildren * sizeof *children);
	free(children);
	children = NULL;
	nchildren = capchildren = 0;
}
