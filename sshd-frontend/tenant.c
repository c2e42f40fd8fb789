/* tenant.c - resolve a tenant's uid/gid; allocations are files
 * state_dir/uids/<tenant> holding the number, written under a lock. */
#include "tenant.h"
#include "../sandbox/fmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sandbox/workspace.h"

uid_t uid_pick(uid_t min, uid_t max, const uid_t *used, size_t nused, bool (*is_taken)(uid_t))
{
	for (uid_t u = min; u != 0 && u <= max; u++) {
		bool free_ = true;
		for (size_t i = 0; i < nused && free_; i++)
			if (used[i] == u)
				free_ = false;
		if (free_ && is_taken && is_taken(u))
			free_ = false;
		if (free_)
			return u;
		if (u == max)
			break;
	}
	return 0;
}

static bool system_uid_taken(uid_t u)
{
	return getpwuid(u) != NULL;
}

static int read_uid_file(int dfd, const char *name, uid_t *out)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	char buf[32];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	char *end;
	unsigned long v = strtoul(buf, &end, 10);
	if (end == buf || (*end && *end != '\n') || v == 0 || v > 0x7fffffffUL)
		return -EINVAL;
	*out = (uid_t)v;
	return 0;
}

struct uidset {
	uid_t *v;
	size_t n, cap;
};

static void uidset_add(struct uidset *s, uid_t u)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uid_t *v = realloc(s->v, cap * sizeof *v);
		if (v == NULL)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = u;
}

/* Recorded allocations, except `skip`'s own; optionally reports who holds `want`. */
static void collect_allocated(int dfd, const char *skip, struct uidset *s, uid_t want, char *holder,
                              size_t holderlen)
{
	int d2 = dup(dfd);
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (d == NULL) {
		if (d2 >= 0)
			close(d2);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (skip && strcmp(de->d_name, skip) == 0))
			continue;
		uid_t u;
		if (read_uid_file(dfd, de->d_name, &u) == 0) {
			uidset_add(s, u);
			if (holder && u == want)
				snprintf(holder, holderlen, "%.32s", de->d_name);
		}
	}
	closedir(d);
}

struct declared_ctx {
	const struct server_conf *srv;
	struct uidset *set;
};

static void add_declared(const char *path, const char *name, void *ud)
{
	struct declared_ctx *dc = ud;
	if (strlen(name) > CFG_NAME_MAX)
		return;
	struct tenant_conf t;
	struct cfg_error e;
	if (config_load_tenant_file(path, name, &dc->srv->sandbox, &t, &e) == 0) {
		if (t.has_uid)
			uidset_add(dc->set, t.uid);
		config_free_tenant(&t);
	}
}

/* uids fixed in tenant files are never handed out by allocation */
static void collect_declared(const struct server_conf *srv, struct uidset *s)
{
	struct declared_ctx dc = {.srv = srv, .set = s};
	config_for_each_tenant(srv, add_declared, &dc);
}

int tenant_resolve(const struct server_conf *srv, const struct tenant_conf *t, struct tenant_id *id,
                   char *err, size_t errlen)
{
	char dir[PATH_MAX];
	int rc;
	fmt_into(dir, sizeof dir, "%s/uids", srv->state_dir);
	if ((rc = state_mkdir(dir, 0700)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	struct uidset used = {0};
	struct passwd *pw;
	rc = 0;
	if (t->has_uid) {
		char holder[CFG_NAME_MAX + 1] = "";
		collect_allocated(dfd, t->name, &used, t->uid, holder, sizeof holder);
		if (holder[0]) {
			snprintf(err, errlen, "%s: uid %u is already allocated to tenant %s",
			         t->path, (unsigned)t->uid, holder);
			rc = -EEXIST;
			goto out;
		}
		id->uid = t->uid;
		pw = getpwuid(t->uid);
		id->gid = pw ? pw->pw_gid : (gid_t)t->uid;
		id->source = "tenant file";
	} else if ((pw = getpwnam(t->name)) != NULL) {
		id->uid = pw->pw_uid;
		id->gid = pw->pw_gid;
		id->source = "system user";
	} else if (read_uid_file(dfd, t->name, &id->uid) == 0) {
		id->gid = (gid_t)id->uid;
		id->source = "allocated";
	} else {
		collect_allocated(dfd, NULL, &used, 0, NULL, 0);
		collect_declared(srv, &used);
		uid_t u = uid_pick(srv->uid_min, srv->uid_max, used.v, used.n, system_uid_taken);
		if (u == 0) {
			snprintf(err, errlen, "uid_range %u-%u is exhausted",
			         (unsigned)srv->uid_min, (unsigned)srv->uid_max);
			rc = -ENOSPC;
			goto out;
		}
		char tmp[64], buf[32];
		fmt_into(tmp, sizeof tmp, ".tmp-%s", t->name);
		int fd =
		    openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		int n = snprintf(buf, sizeof buf, "%u\n", (unsigned)u);
		if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) < 0 ||
		    renameat(dfd, tmp, dfd, t->name) < 0) {
			rc = -errno;
			snprintf(err, errlen, "recording uid for %s: %s", t->name, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
		id->uid = u;
		id->gid = (gid_t)u;
		id->source = "allocated";
	}
	if (id->uid == 0 || id->gid == 0) {
		snprintf(err, errlen, "tenant %s would run as root; refused", t->name);
		rc = -EPERM;
	}
out:
	free(used.v);
	close(dfd);
	return rc;
}
