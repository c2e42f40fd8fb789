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
	long pids_max;                 /* 0 = none */
	long cpu_max_milli;            /* thousandths of a core; 0 = none */
};

/* v2 when ROOT/cgroup.controllers offers memory and pids, else v1 when the
 * memory and pids hierarchies are mounted under ROOT, else CG_NONE. */
enum cg_mode cgroup_detect(const char *root);

int cgroup_session_create(const struct cg *cg, const char *tenant, long session,
                          const struct cg_limits *l);
int cgroup_attach(const struct cg *cg, const char *tenant, long session, pid_t pid);
/* Kills whatever is left in the session's cgroup and removes it (and the
 * tenant's, once empty). */
int cgroup_session_destroy(const struct cg *cg, const char *tenant, long session);
/* Number of processes in the session's cgroup, or -errno. */
int cgroup_session_procs(const struct cg *cg, const char *tenant, long session);
/* At start: destroys session cgroups whose session is no longer alive. */
int cgroup_sweep(const struct cg *cg, bool (*session_alive)(long session));

#endif
