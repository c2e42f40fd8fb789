/* procinfo.h - facts about another process, read from /proc (procinfo.c). */
#ifndef WARREN_PROCINFO_H
#define WARREN_PROCINFO_H

#include <stddef.h>

/* The parent pid of pid, or -1 when pid is gone. */
long procinfo_ppid(long pid);
/* pid's command name (comm, without the newline) into buf; -1 when gone. */
int procinfo_comm(long pid, char *buf, size_t len);

#endif
