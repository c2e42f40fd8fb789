/* monitor.h - the root monitor's side of monproto.h: serves the requests of
 * one connection's session process (or, audit only, of an environment's
 * env process), each checked against the table in moncheck.c. */
#ifndef WARREN_MONITOR_H
#define WARREN_MONITOR_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "monproto.h"

struct monitor {
	int sock;          /* -1 once closed */
	bool audit_only;   /* an env process: only MON_AUDIT */
	const char *tenant;
	pid_t peer;        /* the unprivileged process: its pid goes into audit lines */
	const char *state_dir;
	char slots_dir[PATH_MAX]; /* state_dir/sessions/<tenant>, root's, 0700 */
	long max_sessions;
	unsigned long long record_total_max;
	const char *source; /* the client's address, for limit_refused */
	int notify_fd;      /* the master's status pipe; -1: none */
	struct mon_state st;
};

/* Serves every message waiting on m->sock; closes it at EOF. */
void monitor_serve(struct monitor *m);
/* The session ended: the slots it still held go. */
void monitor_release_all(struct monitor *m);

/* The session process's side. 1: claimed; 0: not, but go on (the
 * bookkeeping failed: never refuse for that); -1: max_sessions reached,
 * *running set. */
int mon_claim(int sock, int channel, long *running);
void mon_release(int sock, int channel);
void mon_note(int sock, char kind, const char *text);

#endif
