/* monitor.h - the root monitor's side of monproto.h: serves the requests of
 * one connection's session process (or, audit only, of an environment's
 * env process), each checked against the table in moncheck.c. */
#ifndef WARREN_MONITOR_H
#define WARREN_MONITOR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "monproto.h"

struct sandbox_proc;

struct monitor {
	int sock;        /* -1 once closed */
	bool audit_only; /* an env process: only MON_AUDIT */
	const char *tenant;
	pid_t peer; /* the unprivileged process: its pid goes into audit lines */
	const char *state_dir;
	char slots_dir[PATH_MAX]; /* state_dir/sessions/<tenant>, root's, 0700 */
	long max_sessions;
	unsigned long long record_total_max;
	const char *source;   /* the client's address, for limit_refused */
	int notify_fd;        /* the master's status pipe; -1: none */
	long session_timeout; /* seconds; 0 = none: root's backstop (monitor_overdue) */
	struct mon_state st;
	unsigned long long record_max; /* record_max_bytes; 0 = none: root watches it too */
	int record_mode;       /* the tenant's record: 0 none (MON_RECORD refused), 1 pty, 2 all */
	long record_max_files; /* recordings per connection, and files in the tenant's */
	long nrecorded;        /* recordings this connection made */
	char **rec_paths;      /* every recording handed out, watched until the session ends */
	int nrec, caprec;
	int64_t rec_next_ms; /* the next look at them (monotonic) */
	/* MON_SPAWN: starts the channel's sandbox as the tenant (conn.c);
	 * 0 with its descriptors in proc (-1: none), or -errno */
	int (*spawn)(void *ud, const struct mon_spawn *req, char **argv, char **envp,
	             struct sandbox_proc *proc);
	void *spawn_ud;
};

/* Serves every message waiting on m->sock; closes it at EOF. */
void monitor_serve(struct monitor *m);
/* Root's own session_timeout: milliseconds until the oldest running
 * channel is MON_TIMEOUT_GRACE_S past it (-1: nothing to wait for), and
 * whether one is. The session process ends a channel at session_timeout
 * itself; one still running after the grace means it did not (stopped,
 * or taken over), and the monitor ends the whole session process. */
#define MON_TIMEOUT_GRACE_S 5
int monitor_deadline_ms(const struct monitor *m);
bool monitor_overdue(const struct monitor *m);
/* record_max_bytes, root's too: the session process stops a recording at
 * the cap itself; one that grew past it was written by a session process
 * that does not (taken over). It is cut back to the cap, and true says the
 * monitor is to end the session process. Looked at (by path: the session
 * may keep writing to a channel's file after its release) every
 * MON_RECORD_CHECK_MS once there is one (monitor_wake_ms), or at once with
 * now (the session ended). */
#define MON_RECORD_CHECK_MS 1000
bool monitor_record_over(struct monitor *m, bool now);
/* How long the monitor may sleep: the next timeout deadline, or the next
 * look at the recordings; -1: until something arrives. */
int monitor_wake_ms(const struct monitor *m);
/* The session ended: the slots it still held go. */
void monitor_release_all(struct monitor *m);

#endif
