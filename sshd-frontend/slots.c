/* slots.c - counted slots in a root-owned directory (see slots.h). */
#include "slots.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

static long count_live(int dfd)
{
	long live = 0;
	int d2 = dup(dfd);
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (d == NULL) {
		if (d2 >= 0)
			close(d2);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (pid <= 0 || (*end && *end != '.'))
			continue; /* "PID" or "PID.TAG" */
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			live++;
		else
			unlinkat(dfd, de->d_name, 0); /* left by a crash */
	}
	closedir(d);
	return live;
}

static void slot_name(char *name, size_t len, pid_t pid, int tag)
{
	if (tag < 0)
		snprintf(name, len, "%d", (int)pid);
	else
		snprintf(name, len, "%d.%d", (int)pid, tag);
}

int slots_claim(const char *dir, long max, pid_t pid, long *held)
{
	return slots_claim_tag(dir, max, pid, -1, held);
}

int slots_claim_tag(const char *dir, long max, pid_t pid, int tag, long *held)
{
	if (max <= 0)
		return 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		if (dfd >= 0)
			close(dfd);
		return 0;
	}
	long live = count_live(dfd);
	int rc = 0;
	if (live >= max) {
		*held = live;
		rc = -1;
	} else {
		char name[32];
		slot_name(name, sizeof name, pid, tag);
		int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			close(fd);
	}
	close(dfd);
	return rc;
}

void slots_release(const char *dir, pid_t pid)
{
	slots_release_tag(dir, pid, -1);
}

void slots_release_tag(const char *dir, pid_t pid, int tag)
{
	char name[32], path[4200];
	slot_name(name, sizeof name, pid, tag);
	if (snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path)
		unlink(path);
}
