/* usage.c - daily API usage totals per tenant (see usage.h): the ledger in
 * state_dir/usage/<day>/<tenant>, written under a lock. Root's: the monitor
 * (apigw_monitor.c) adds to it, warrend --usage prints it. */
#include "usage.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sandbox/fmt.h"
#include "../sandbox/workspace.h"
#include "../egress/apigw.h"
#include "audit.h"
#include "log.h"

#define USAGE_MAX_APIS 16

struct usage_line {
	char api[40];
	struct usage_total t;
};

static void day_of(time_t now, char *day, size_t len)
{
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(day, len, "%Y-%m-%d", &tm);
}

static int read_lines(int dirfd, const char *tenant, struct usage_line *l, int max)
{
	int fd = openat(dirfd, tenant, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return -ENOMEM;
	}
	int n = 0;
	char line[256];
	while (n < max && fgets(line, sizeof line, f)) {
		struct usage_line *u = &l[n];
		if (sscanf(line, "%39s %lld %lld %lld %lld %lld", u->api, &u->t.requests,
		           &u->t.input, &u->t.output, &u->t.cache_read, &u->t.cache_creation) == 6)
			n++;
	}
	fclose(f);
	return n;
}

/* state_dir/usage/DAY (YYYY-MM-DD), made when `make`; an fd or -errno */
static int day_dir(const char *state_dir, const char *day, bool make)
{
	char top[4096], dir[4200];
	if (fmt_into(top, sizeof top, "%s/usage", state_dir) < 0 ||
	    fmt_into(dir, sizeof dir, "%s/%s", top, day) < 0)
		return -ENAMETOOLONG;
	if (make && (state_mkdir(top, 0700) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST)))
		return -errno;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int usage_add(const char *state_dir, const char *tenant, const char *api,
              const struct usage_total *add, time_t now)
{
	char day[16];
	day_of(now, day, sizeof day);
	int dfd = day_dir(state_dir, day, true);
	if (dfd < 0)
		return dfd;
	flock(dfd, LOCK_EX); /* one writer per day: read, add, replace */
	struct usage_line l[USAGE_MAX_APIS + 1];
	int n = read_lines(dfd, tenant, l, USAGE_MAX_APIS), i, rc = 0;
	if (n < 0)
		n = 0;
	for (i = 0; i < n && strcmp(l[i].api, api); i++)
		;
	if (i == n) {
		memset(&l[n], 0, sizeof l[n]);
		snprintf(l[n].api, sizeof l[n].api, "%s", api);
		n++;
	}
	l[i].t.requests += add->requests;
	l[i].t.input += add->input;
	l[i].t.output += add->output;
	l[i].t.cache_read += add->cache_read;
	l[i].t.cache_creation += add->cache_creation;
	char tmp[64];
	fmt_into(tmp, sizeof tmp, ".%s.tmp", tenant);
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
	} else {
		for (int k = 0; k < n; k++)
			fprintf(f, "%s %lld %lld %lld %lld %lld\n", l[k].api, l[k].t.requests,
			        l[k].t.input, l[k].t.output, l[k].t.cache_read,
			        l[k].t.cache_creation);
		if (fclose(f) != 0 || renameat(dfd, tmp, dfd, tenant) < 0)
			rc = -errno;
	}
	close(dfd); /* drops the lock */
	return rc;
}

int usage_get(const char *state_dir, const char *tenant, const char *api, time_t now,
              struct usage_total *out)
{
	memset(out, 0, sizeof *out);
	char day[16];
	day_of(now, day, sizeof day);
	int dfd = day_dir(state_dir, day, false);
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	flock(dfd, LOCK_SH);
	struct usage_line l[USAGE_MAX_APIS];
	int n = read_lines(dfd, tenant, l, USAGE_MAX_APIS);
	close(dfd);
	for (int i = 0; i < n; i++)
		if (!strcmp(l[i].api, api))
			*out = l[i].t;
	return n < 0 ? n : 0;
}

int usage_print(const char *state_dir, const char *date, FILE *out)
{
	char day[16];
	if (date == NULL) {
		day_of(time(NULL), day, sizeof day);
	} else {
		/* a day is YYYY-MM-DD, never a path */
		for (int i = 0; i < 10; i++) {
			bool dash = i == 4 || i == 7;
			if (dash ? date[i] != '-' : !isdigit((unsigned char)date[i]))
				return -EINVAL; /* also the terminator, when short */
		}
		if (date[10])
			return -EINVAL;
		snprintf(day, sizeof day, "%s", date);
	}
	fprintf(out, "%-32s %-16s %8s %12s %12s %12s %12s   (UTC day %s)\n", "TENANT", "API",
	        "REQUESTS", "INPUT", "OUTPUT", "CACHE_READ", "CACHE_WRITE", day);
	int dfd = day_dir(state_dir, day, false);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return dfd == -ENOENT ? 0 : dfd < 0 ? dfd : -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		struct usage_line l[USAGE_MAX_APIS];
		int n = read_lines(dirfd(d), de->d_name, l, USAGE_MAX_APIS);
		char name[200];
		fmt_escape(name, sizeof name, de->d_name);
		for (int i = 0; i < n; i++)
			fprintf(out, "%-32s %-16s %8lld %12lld %12lld %12lld %12lld\n", name,
			        l[i].api, l[i].t.requests, l[i].t.input, l[i].t.output,
			        l[i].t.cache_read, l[i].t.cache_creation);
	}
	closedir(d);
	return 0;
}
