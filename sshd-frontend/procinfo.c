/* procinfo.c - facts about another process, read from /proc: its parent
 * (from stat, past the parenthesised name, which may hold anything) and its
 * command name. Used to tell warren's own processes from reused pids. */
#include "procinfo.h"

#include <stdio.h>
#include <string.h>

#include "../sandbox/fmt.h"

static int read_line(long pid, const char *what, char *buf, size_t len)
{
	char path[64];
	if (pid <= 0 || fmt_into(path, sizeof path, "/proc/%ld/%s", pid, what) < 0)
		return -1;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	int rc = fgets(buf, (int)len, f) ? 0 : -1;
	fclose(f);
	return rc;
}

long procinfo_ppid(long pid)
{
	char buf[512];
	long ppid;
	if (read_line(pid, "stat", buf, sizeof buf) < 0)
		return -1;
	const char *rp = strrchr(buf, ')');
	return rp && sscanf(rp + 1, " %*c %ld", &ppid) == 1 ? ppid : -1;
}

int procinfo_comm(long pid, char *buf, size_t len)
{
	if (read_line(pid, "comm", buf, len) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}
