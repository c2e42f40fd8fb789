/* cgroup.h - resource limits for tenants and their sessions, cgroup v1 or v2. */
#ifndef WARREN_CGROUP_H
#define WARREN_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

enum cg_mode { CG_NONE = 0, CG_V1, CG_V2 };

struct cg {
	enum cg_mode mode;
	char root[PATH_MAX]; /* /sys/fs/cgroup, or a stand-in directory in tests */
};

struct cg_limits {
	unsigned long long memory_max; /* bytes; 0 = none */
	long pids_max;                 /* the tenant level's; 0 = none */
	long connections_max;          /* the tenant's max_connections; 0 = any */
	long cpu_max_milli;            /* thousandths of a core; 0 = none */
};

/* v2 when ROOT/cgroup.controllers offers memory and pids, else v1 when the
 * memory and pids hierarchies are mounted under ROOT, else CG_NONE. */
enum cg_mode cgroup_detect(const char *root);

/* pids.max of a session level (a sandbox): pids_max less a reserve for the
 * tenant's connection monitors and session processes (2 per connection and
 * the environment's monitor, at most a quarter of pids_max), so a fork bomb
 * in a sandbox cannot keep its tenant from logging in. */
long cgroup_sandbox_pids(const struct cg_limits *l);

int cgroup_session_create(const struct cg *cg, const char *tenant, long session,
                          const struct cg_limits *l);
int cgroup_attach(const struct cg *cg, const char *tenant, long session, pid_t pid);
/* Kills whatever is left in the session's cgroup and removes it (and the
 * tenant's, once empty). */
int cgroup_session_destroy(const struct cg *cg, const char *tenant, long session);
/* Number of processes in the session's cgroup, or -errno. */
int cgroup_session_procs(const struct cg *cg, const char *tenant, long session);
/* The root monitor of a connection or environment, counted under the
 * tenant's pids cap in a leaf of its own (tenant-NAME/monitor-PID; on v1 in
 * the pids hierarchy only); the tenant level must exist
 * (cgroup_session_create). The caller opts out of OOM kills. */
int cgroup_monitor_join(const struct cg *cg, const char *tenant, pid_t pid);
/* pids.max less pids.current at the tenant level; LONG_MAX when unlimited
 * or unknown. */
long cgroup_tenant_pids_free(const struct cg *cg, const char *tenant);
/* After pid was reaped: removes its monitor leaf, whichever tenant's. */
void cgroup_monitor_remove(const struct cg *cg, pid_t pid);
/* At start: destroys session cgroups (and monitor leaves) whose process is gone. */
int cgroup_sweep(const struct cg *cg, bool (*session_alive)(long session));

#endif
