/* slots.h - counted slots in a root-owned directory: one file per holder,
 * named by its pid, taken under flock; files of dead pids do not count (and
 * are removed). Used for a tenant's connections (max_connections) and, by
 * the monitors, its sessions (max_sessions). */
#ifndef WARREN_SLOTS_H
#define WARREN_SLOTS_H

#include <sys/types.h>

/* Takes a slot in dir for pid unless max (> 0) are held by live pids.
 * 0: taken (or max <= 0, or the bookkeeping failed: never refuse for that);
 * -1: full, *held set to the live count. */
int slots_claim(const char *dir, long max, pid_t pid, long *held);
void slots_release(const char *dir, pid_t pid);
/* The same with several slots per holder: files "PID.TAG" (tag >= 0), all
 * live while PID is (max_sessions: a connection monitor's channels). */
int slots_claim_tag(const char *dir, long max, pid_t pid, int tag, long *held);
void slots_release_tag(const char *dir, pid_t pid, int tag);

#endif
