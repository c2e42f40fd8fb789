/* reserve.c - the reservations of a tenant's API requests in flight (see
 * reserve.h): read, pruned and rewritten whole under the tenant's lock. */
#include "reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sandbox/fmt.h"
#include "../sandbox/lockfile.h"
#include "../sandbox/workspace.h"

struct entry {
	char api[40];
	long long id, tokens;
	long pid;
	long long expires;
};

struct ledger {
	char dir[4200], path[4300];
	int lock;
	struct entry *e;
	int n;
};

/* opens and locks the tenant's file, and reads what still counts */
static int ledger_open(struct ledger *l, const char *state_dir, const char *tenant, time_t now)
{
	char top[4096], lockp[4400];
	l->e = NULL;
	l->n = 0;
	if (fmt_into(top, sizeof top, "%s/usage", state_dir) < 0 ||
	    fmt_into(l->dir, sizeof l->dir, "%s/reserved", top) < 0 ||
	    fmt_into(l->path, sizeof l->path, "%s/%s", l->dir, tenant) < 0 ||
	    fmt_into(lockp, sizeof lockp, "%s/.lock-%s", l->dir, tenant) < 0)
		return -ENAMETOOLONG;
	if (state_mkdir(top, 0700) < 0 || state_mkdir(l->dir, 0700) < 0)
		return -errno;
	if ((l->lock = lockfile_take(lockp)) < 0)
		return l->lock;
	l->e = calloc(RESERVE_MAX, sizeof *l->e);
	if (l->e == NULL)
		return -ENOMEM;
	FILE *f = fopen(l->path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	char line[256];
	while (l->n < RESERVE_MAX && fgets(line, sizeof line, f)) {
		struct entry *e = &l->e[l->n];
		if (sscanf(line, "%39s %lld %ld %lld %lld", e->api, &e->id, &e->pid, &e->tokens,
		           &e->expires) != 5)
			continue;
		/* gone: expired, or its monitor ended without settling */
		if (e->expires < now || e->pid <= 0 ||
		    (kill((pid_t)e->pid, 0) < 0 && errno == ESRCH))
			continue;
		l->n++;
	}
	fclose(f);
	return 0;
}

static int ledger_write(struct ledger *l)
{
	char tmp[4400];
	if (fmt_into(tmp, sizeof tmp, "%s.tmp", l->path) < 0)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	for (int i = 0; i < l->n; i++)
		fprintf(f, "%s %lld %ld %lld %lld\n", l->e[i].api, l->e[i].id, l->e[i].pid,
		        l->e[i].tokens, l->e[i].expires);
	if (fclose(f) != 0 || rename(tmp, l->path) < 0)
		return -errno;
	return 0;
}

static void ledger_close(struct ledger *l)
{
	free(l->e);
	if (l->lock >= 0)
		close(l->lock); /* drops the lock */
}

int reserve_take(const char *state_dir, const char *tenant, const struct reserve_ask *ask,
                 time_t now, long long *id, long long *reserved)
{
	struct ledger l = {.lock = -1};
	int rc = ledger_open(&l, state_dir, tenant, now);
	long long held = 0;
	int inflight = 0;
	for (int i = 0; rc == 0 && i < l.n; i++)
		if (!strcmp(l.e[i].api, ask->api)) {
			held += l.e[i].tokens;
			inflight++;
		}
	*reserved = held;
	if (rc == 0 && ask->used + held >= ask->budget)
		rc = RESERVE_OVER_BUDGET;
	else if (rc == 0 && ask->max_inflight > 0 && inflight >= ask->max_inflight)
		rc = RESERVE_INFLIGHT;
	else if (rc == 0 && l.n == RESERVE_MAX)
		rc = RESERVE_INFLIGHT;
	if (rc == 0) {
		struct entry *e = &l.e[l.n++];
		snprintf(e->api, sizeof e->api, "%s", ask->api);
		if (getrandom(&e->id, sizeof e->id, 0) != (ssize_t)sizeof e->id)
			e->id = (long long)now ^ ((long long)getpid() << 20) ^ l.n;
		e->id = e->id < 0 ? -(e->id + 1) : e->id;
		e->id += e->id == 0;
		e->pid = (long)ask->owner;
		e->tokens = ask->tokens;
		e->expires = (long long)now + RESERVE_TTL_S;
		*id = e->id;
		rc = ledger_write(&l);
	}
	ledger_close(&l);
	return rc;
}

int reserve_drop(const char *state_dir, const char *tenant, long long id, time_t now)
{
	if (id <= 0)
		return 0;
	struct ledger l = {.lock = -1};
	int rc = ledger_open(&l, state_dir, tenant, now);
	for (int i = 0; rc == 0 && i < l.n; i++)
		if (l.e[i].id == id) {
			l.e[i] = l.e[--l.n];
			rc = ledger_write(&l);
			break;
		}
	ledger_close(&l);
	return rc;
}
