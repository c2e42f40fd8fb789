/* cgroup.c - per-tenant and per-session resource limits with cgroup v2 (one
 * hierarchy: ROOT/warren/tenant-NAME/session-ID) or v1 (the same tree under
 * each of the memory, pids and cpu hierarchies). The tenant level caps the sum
 * of its sessions; each session gets the same caps. Runs as root in the
 * master (sweep) and in the per-connection monitor (create, attach, destroy). */
#include "cgroup.h"
#include "fmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const v1_ctrls[] = {"memory", "pids", "cpu"};
#define NV1 3

static int write_file(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
		return -ENAMETOOLONG;
	/* O_CREAT only matters for the unit tests' stand-in directory */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, value, strlen(value));
	int rc = n == (ssize_t)strlen(value) ? 0 : -(n < 0 ? errno : EIO);
	close(fd);
	return rc;
}

static bool exists(const char *dir, const char *file)
{
	char path[PATH_MAX];
	fmt_into(path, sizeof path, "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

enum cg_mode cgroup_detect(const char *root)
{
	char path[PATH_MAX];
	fmt_into(path, sizeof path, "%s/cgroup.controllers", root);
	FILE *f = fopen(path, "re");
	if (f) {
		char line[512] = "";
		if (!fgets(line, sizeof line, f))
			line[0] = '\0';
		fclose(f);
		if (strstr(line, "memory") && strstr(line, "pids"))
			return CG_V2;
	}
	fmt_into(path, sizeof path, "%s/memory/memory.limit_in_bytes", root);
	char p2[PATH_MAX];
	fmt_into(p2, sizeof p2, "%s/pids", root);
	if (access(path, F_OK) == 0 && access(p2, F_OK) == 0)
		return CG_V1;
	return CG_NONE;
}

static int path_for(const struct cg *cg, const char *ctrl, const char *tenant, long session,
                    char *out, size_t len)
{
	const char *sep = ctrl ? "/" : "";
	ctrl = ctrl ? ctrl : "";
	if (tenant == NULL)
		return fmt_into(out, len, "%s%s%s/warren", cg->root, sep, ctrl);
	if (session < 0)
		return fmt_into(out, len, "%s%s%s/warren/tenant-%s", cg->root, sep, ctrl, tenant);
	return fmt_into(out, len, "%s%s%s/warren/tenant-%s/session-%ld", cg->root, sep, ctrl,
	                tenant, session);
}

static int mkdir_ok(const char *p)
{
	return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

long cgroup_sandbox_pids(const struct cg_limits *l)
{
	if (l->pids_max <= 0)
		return l->pids_max;
	long reserve = l->pids_max / 4;
	if (l->connections_max > 0 && 2 * l->connections_max + 1 < reserve)
		reserve = 2 * l->connections_max + 1;
	return l->pids_max - reserve;
}

static long level_pids(const struct cg_limits *l, bool tenant_level)
{
	return tenant_level ? l->pids_max : cgroup_sandbox_pids(l);
}

static int v2_limits(const char *dir, const struct cg_limits *l, bool tenant_level)
{
	char buf[64];
	int rc = 0;
	snprintf(buf, sizeof buf, "%llu", l->memory_max);
	if (l->memory_max && (rc = write_file(dir, "memory.max", buf)) < 0)
		return rc;
	if (l->memory_max && exists(dir, "memory.swap.max") &&
	    (rc = write_file(dir, "memory.swap.max", "0")) < 0)
		return rc;
	snprintf(buf, sizeof buf, "%ld", level_pids(l, tenant_level));
	if (l->pids_max && (rc = write_file(dir, "pids.max", buf)) < 0)
		return rc;
	snprintf(buf, sizeof buf, "%ld 100000", l->cpu_max_milli * 100);
	if (l->cpu_max_milli && (rc = write_file(dir, "cpu.max", buf)) < 0)
		return rc;
	return 0;
}

/* memory+swap = memory: no swap (when swap accounting is on). v1 keeps
 * limit <= memsw at every step, so raising a level left by an earlier run
 * (EINVAL on the limit) writes memsw first. */
static int v1_memory(const char *dir, unsigned long long max)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%llu", max);
	bool memsw = exists(dir, "memory.memsw.limit_in_bytes");
	int rc = write_file(dir, "memory.limit_in_bytes", buf);
	if (rc == -EINVAL && memsw) {
		if ((rc = write_file(dir, "memory.memsw.limit_in_bytes", buf)) < 0)
			return rc;
		return write_file(dir, "memory.limit_in_bytes", buf);
	}
	if (rc < 0 || !memsw)
		return rc;
	return write_file(dir, "memory.memsw.limit_in_bytes", buf);
}

static int v1_limits(const char *ctrl, const char *dir, const struct cg_limits *l,
                     bool tenant_level)
{
	char buf[64];
	int rc = 0;
	if (!strcmp(ctrl, "memory") && l->memory_max) {
		return v1_memory(dir, l->memory_max);
	} else if (!strcmp(ctrl, "pids") && l->pids_max) {
		snprintf(buf, sizeof buf, "%ld", level_pids(l, tenant_level));
		return write_file(dir, "pids.max", buf);
	} else if (!strcmp(ctrl, "cpu") && l->cpu_max_milli) {
		if ((rc = write_file(dir, "cpu.cfs_period_us", "100000")) < 0)
			return rc;
		snprintf(buf, sizeof buf, "%ld", l->cpu_max_milli * 100);
		return write_file(dir, "cpu.cfs_quota_us", buf);
	}
	return rc;
}

int cgroup_session_create(const struct cg *cg, const char *tenant, long session,
                          const struct cg_limits *l)
{
	char base[PATH_MAX], tdir[PATH_MAX], sdir[PATH_MAX];
	int rc;
	if (cg->mode == CG_V2) {
		path_for(cg, NULL, NULL, 0, base, sizeof base);
		path_for(cg, NULL, tenant, -1, tdir, sizeof tdir);
		if ((rc = path_for(cg, NULL, tenant, session, sdir, sizeof sdir)) < 0)
			return rc;
		/* controllers must be enabled on every level above the leaves */
		write_file(cg->root, "cgroup.subtree_control", "+memory +pids +cpu");
		if ((rc = mkdir_ok(base)) < 0 ||
		    (rc = write_file(base, "cgroup.subtree_control", "+memory +pids +cpu")) < 0 ||
		    (rc = mkdir_ok(tdir)) < 0 || (rc = v2_limits(tdir, l, true)) < 0 ||
		    (rc = write_file(tdir, "cgroup.subtree_control", "+memory +pids +cpu")) < 0 ||
		    (rc = mkdir_ok(sdir)) < 0 || (rc = v2_limits(sdir, l, false)) < 0)
			return rc;
		return 0;
	}
	if (cg->mode == CG_V1) {
		for (int i = 0; i < NV1; i++) {
			/* cpu is optional on v1: skip it when not mounted and not asked for */
			char cdir[PATH_MAX];
			fmt_into(cdir, sizeof cdir, "%s/%s", cg->root, v1_ctrls[i]);
			if (!strcmp(v1_ctrls[i], "cpu") && access(cdir, F_OK) != 0 &&
			    !l->cpu_max_milli)
				continue;
			path_for(cg, v1_ctrls[i], NULL, 0, base, sizeof base);
			path_for(cg, v1_ctrls[i], tenant, -1, tdir, sizeof tdir);
			if ((rc = path_for(cg, v1_ctrls[i], tenant, session, sdir, sizeof sdir)) <
			    0)
				return rc;
			if ((rc = mkdir_ok(base)) < 0 || (rc = mkdir_ok(tdir)) < 0 ||
			    (rc = v1_limits(v1_ctrls[i], tdir, l, true)) < 0 ||
			    (rc = mkdir_ok(sdir)) < 0 ||
			    (rc = v1_limits(v1_ctrls[i], sdir, l, false)) < 0)
				return rc;
		}
		return 0;
	}
	if (l->memory_max || l->pids_max || l->cpu_max_milli)
		return -ENOTSUP; /* limits asked for, no cgroups: fail closed */
	return 0;
}

int cgroup_attach(const struct cg *cg, const char *tenant, long session, pid_t pid)
{
	char dir[PATH_MAX], buf[32];
	int rc;
	snprintf(buf, sizeof buf, "%d", (int)pid);
	if (cg->mode == CG_V2) {
		if ((rc = path_for(cg, NULL, tenant, session, dir, sizeof dir)) < 0)
			return rc;
		return write_file(dir, "cgroup.procs", buf);
	}
	if (cg->mode == CG_V1) {
		for (int i = 0; i < NV1; i++) {
			if ((rc = path_for(cg, v1_ctrls[i], tenant, session, dir, sizeof dir)) < 0)
				return rc;
			if (access(dir, F_OK) != 0 && !strcmp(v1_ctrls[i], "cpu"))
				continue;
			if ((rc = write_file(dir, "cgroup.procs", buf)) < 0)
				return rc;
		}
	}
	return 0;
}

/* SIGKILL everything listed in dir/cgroup.procs; returns how many were seen. */
static int kill_procs(const char *dir)
{
	char path[PATH_MAX];
	fmt_into(path, sizeof path, "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	int n = 0;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		if (pid > 0 && pid != getpid())
			kill((pid_t)pid, SIGKILL);
		n++;
	}
	fclose(f);
	return n;
}

static void empty_and_remove(const char *dir)
{
	if (access(dir, F_OK) != 0)
		return;
	if (exists(dir, "cgroup.kill"))
		write_file(dir, "cgroup.kill", "1");
	for (int i = 0; i < 200 && kill_procs(dir) > 0; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	rmdir(dir);
}

static void remove_tenant_dirs(const struct cg *cg, const char *tenant)
{
	char tdir[PATH_MAX];
	for (int i = 0; i < (cg->mode == CG_V2 ? 1 : NV1); i++)
		if (path_for(cg, cg->mode == CG_V2 ? NULL : v1_ctrls[i], tenant, -1, tdir,
		             sizeof tdir) == 0)
			rmdir(tdir); /* fails while other sessions of the tenant exist */
}

int cgroup_session_destroy(const struct cg *cg, const char *tenant, long session)
{
	char dir[PATH_MAX];
	if (session < 0)
		return -EINVAL; /* never the tenant level: other sessions live there */
	if (cg->mode == CG_V2) {
		if (path_for(cg, NULL, tenant, session, dir, sizeof dir) == 0)
			empty_and_remove(dir);
	} else if (cg->mode == CG_V1) {
		/* the pids hierarchy lists every task; kill through it first */
		static const char *const order[] = {"pids", "memory", "cpu"};
		for (int i = 0; i < NV1; i++)
			if (path_for(cg, order[i], tenant, session, dir, sizeof dir) == 0)
				empty_and_remove(dir);
	}
	remove_tenant_dirs(cg, tenant);
	return 0;
}

int cgroup_session_procs(const struct cg *cg, const char *tenant, long session)
{
	char dir[PATH_MAX];
	path_for(cg, cg->mode == CG_V1 ? "pids" : NULL, tenant, session, dir, sizeof dir);
	char path[PATH_MAX + 16];
	fmt_into(path, sizeof path, "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	int n = 0;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1)
		n++;
	fclose(f);
	return n;
}

static int monitor_path(const struct cg *cg, const char *ctrl, const char *tenant, pid_t pid,
                        char *out, size_t len)
{
	char tdir[PATH_MAX];
	int rc = path_for(cg, ctrl, tenant, -1, tdir, sizeof tdir);
	return rc < 0 ? rc : fmt_into(out, len, "%s/monitor-%ld", tdir, (long)pid);
}

int cgroup_monitor_join(const struct cg *cg, const char *tenant, pid_t pid)
{
	char dir[PATH_MAX], buf[32];
	int rc;
	snprintf(buf, sizeof buf, "%ld", (long)pid);
	if (cg->mode == CG_NONE)
		return 0;
	/* v1: the pids hierarchy only. Its memory is root's to spend (a
	 * tenant's memory bomb must not make a monitor the OOM victim; on v2,
	 * where the one hierarchy counts both, the monitor opts out of OOM
	 * kills with oom_score_adj instead). */
	const char *ctrl = cg->mode == CG_V2 ? NULL : "pids";
	if ((rc = monitor_path(cg, ctrl, tenant, pid, dir, sizeof dir)) < 0 ||
	    (rc = mkdir_ok(dir)) < 0 || (rc = write_file(dir, "cgroup.procs", buf)) < 0)
		return rc;
	return 0;
}

static void remove_monitor(const struct cg *cg, const char *tenant, pid_t pid)
{
	char dir[PATH_MAX];
	if (monitor_path(cg, cg->mode == CG_V2 ? NULL : "pids", tenant, pid, dir, sizeof dir) == 0)
		rmdir(dir); /* empty once the monitor is gone */
	remove_tenant_dirs(cg, tenant);
}

void cgroup_monitor_remove(const struct cg *cg, pid_t pid)
{
	if (cg->mode == CG_NONE)
		return;
	char base[PATH_MAX], dir[PATH_MAX];
	path_for(cg, cg->mode == CG_V1 ? "pids" : NULL, NULL, 0, base, sizeof base);
	DIR *d = opendir(base);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "tenant-", 7) != 0)
			continue;
		fmt_into(dir, sizeof dir, "%s/%s/monitor-%ld", base, de->d_name, (long)pid);
		if (access(dir, F_OK) == 0) {
			remove_monitor(cg, de->d_name + 7, pid);
			break;
		}
	}
	closedir(d);
}

static long read_long(const char *dir, const char *file)
{
	char path[PATH_MAX], buf[32] = "";
	fmt_into(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	if (!fgets(buf, sizeof buf, f))
		buf[0] = '\0';
	fclose(f);
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf ? -1 : v; /* "max" and unreadable: -1 */
}

long cgroup_tenant_pids_free(const struct cg *cg, const char *tenant)
{
	char tdir[PATH_MAX];
	if (cg->mode == CG_NONE ||
	    path_for(cg, cg->mode == CG_V1 ? "pids" : NULL, tenant, -1, tdir, sizeof tdir) < 0)
		return LONG_MAX;
	long max = read_long(tdir, "pids.max"), cur = read_long(tdir, "pids.current");
	return max < 0 || cur < 0 ? LONG_MAX : max - cur;
}

/* Sweep one hierarchy's warren/ level: dead sessions go (in every
 * hierarchy), then tenant levels left empty. */
static int sweep_base(const struct cg *cg, const char *base, bool (*session_alive)(long session))
{
	DIR *d = opendir(base);
	if (d == NULL)
		return 0;
	int swept = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "tenant-", 7) != 0)
			continue;
		const char *tenant = de->d_name + 7;
		char tdir[PATH_MAX];
		fmt_into(tdir, sizeof tdir, "%s/%s", base, de->d_name);
		DIR *t = opendir(tdir);
		if (t == NULL)
			continue;
		struct dirent *se;
		long sessions[256], monitors[256];
		int ns = 0, nm = 0;
		while ((se = readdir(t)) != NULL && ns < 256 && nm < 256) {
			char *end;
			bool mon = strncmp(se->d_name, "monitor-", 8) == 0;
			if (!mon && strncmp(se->d_name, "session-", 8) != 0)
				continue;
			long id = strtol(se->d_name + 8, &end, 10);
			if (*end != '\0' || session_alive(id))
				continue;
			if (mon)
				monitors[nm++] = id;
			else
				sessions[ns++] = id;
		}
		closedir(t);
		for (int i = 0; i < ns; i++) {
			cgroup_session_destroy(cg, tenant, sessions[i]);
			swept++;
		}
		for (int i = 0; i < nm; i++)
			remove_monitor(cg, tenant, (pid_t)monitors[i]);
		/* only an empty tenant level goes: rmdir fails while a live
		 * session is below it, and nothing is killed at that level */
		remove_tenant_dirs(cg, tenant);
	}
	closedir(d);
	return swept;
}

int cgroup_sweep(const struct cg *cg, bool (*session_alive)(long session))
{
	char base[PATH_MAX];
	if (cg->mode == CG_V2) {
		path_for(cg, NULL, NULL, 0, base, sizeof base);
		return sweep_base(cg, base, session_alive);
	}
	if (cg->mode != CG_V1)
		return 0;
	/* a monitor killed outright leaves its session in every hierarchy;
	 * each is looked at, not only pids */
	int swept = 0;
	for (int i = 0; i < NV1; i++) {
		path_for(cg, v1_ctrls[i], NULL, 0, base, sizeof base);
		swept += sweep_base(cg, base, session_alive);
	}
	return swept;
}
