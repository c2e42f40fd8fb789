/* test_cgroup.c - cgroup v2 and v1 writes against a temporary directory
 * standing in for the cgroup filesystem. */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../sandbox/cgroup.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect(const char *rel, const char *want)
{
	char p[256], buf[256] = "";
	snprintf(p, sizeof p, "%s/%s", root, rel);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		fail_msg("%s missing", rel);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (strcmp(buf, want) != 0)
		fail_msg("%s: got '%s', want '%s'", rel, buf, want);
}

static void mkroot(void)
{
	snprintf(root, sizeof root, "/tmp/warren-cg-XXXXXX");
	assert_non_null(mkdtemp(root));
}

static void v2_layout(void **state)
{
	(void)state;
	mkroot();
	put("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	struct cg cg = {.mode = cgroup_detect(root)};
	assert_int_equal(cg.mode, CG_V2);
	snprintf(cg.root, sizeof cg.root, "%s", root);
	struct cg_limits l = {.memory_max = 512ULL << 20,
	                      .pids_max = 100,
	                      .connections_max = 4,
	                      .cpu_max_milli = 1500};
	assert_int_equal(cgroup_session_create(&cg, "alice", 4242, &l), 0);
	expect("warren/cgroup.subtree_control", "+memory +pids +cpu");
	expect("warren/tenant-alice/cgroup.subtree_control", "+memory +pids +cpu");
	/* the tenant level caps the sum of its sessions, each session the same,
	 * but for pids: 2 per connection and 1 are kept for the monitors */
	expect("warren/tenant-alice/memory.max", "536870912");
	expect("warren/tenant-alice/pids.max", "100");
	expect("warren/tenant-alice/cpu.max", "150000 100000");
	expect("warren/tenant-alice/session-4242/memory.max", "536870912");
	expect("warren/tenant-alice/session-4242/pids.max", "91");
	/* a monitor: a leaf of its own under the tenant, no limits of its own */
	assert_int_equal(cgroup_monitor_join(&cg, "alice", 555), 0);
	expect("warren/tenant-alice/monitor-555/cgroup.procs", "555");
	assert_int_equal(cgroup_attach(&cg, "alice", 4242, 777), 0);
	expect("warren/tenant-alice/session-4242/cgroup.procs", "777");
	assert_int_equal(cgroup_session_procs(&cg, "alice", 4242), 1);
}

static void v2_swap_off_when_present(void **state)
{
	(void)state;
	mkroot();
	put("cgroup.controllers", "memory pids\n");
	struct cg cg = {.mode = CG_V2};
	snprintf(cg.root, sizeof cg.root, "%s", root);
	char d[256];
	snprintf(d, sizeof d, "%s/warren/tenant-bob", root);
	snprintf(d, sizeof d, "%s/warren", root);
	mkdir(d, 0755);
	snprintf(d, sizeof d, "%s/warren/tenant-bob", root);
	mkdir(d, 0755);
	put("warren/tenant-bob/memory.swap.max", "max");
	struct cg_limits l = {.memory_max = 1ULL << 30};
	assert_int_equal(cgroup_session_create(&cg, "bob", 1, &l), 0);
	expect("warren/tenant-bob/memory.swap.max", "0");
	/* no pids/cpu limits asked: none written */
	char p[256];
	snprintf(p, sizeof p, "%s/warren/tenant-bob/pids.max", root);
	assert_int_equal(access(p, F_OK), -1);
}

static void v1_layout(void **state)
{
	(void)state;
	mkroot();
	char d[256];
	const char *ctrls[] = {"memory", "pids", "cpu"};
	for (int i = 0; i < 3; i++) {
		snprintf(d, sizeof d, "%s/%s", root, ctrls[i]);
		mkdir(d, 0755);
	}
	put("memory/memory.limit_in_bytes", "9223372036854771712");
	assert_int_equal(cgroup_detect(root), CG_V1);
	struct cg cg = {.mode = CG_V1};
	snprintf(cg.root, sizeof cg.root, "%s", root);
	struct cg_limits l = {.memory_max = 64ULL << 20, .pids_max = 32, .cpu_max_milli = 500};
	assert_int_equal(cgroup_session_create(&cg, "eve", 9, &l), 0);
	expect("memory/warren/tenant-eve/memory.limit_in_bytes", "67108864");
	expect("memory/warren/tenant-eve/session-9/memory.limit_in_bytes", "67108864");
	expect("pids/warren/tenant-eve/pids.max", "32");
	expect("pids/warren/tenant-eve/session-9/pids.max", "24"); /* a quarter kept */
	/* v1: a monitor is counted in the pids hierarchy only */
	assert_int_equal(cgroup_monitor_join(&cg, "eve", 555), 0);
	expect("pids/warren/tenant-eve/monitor-555/cgroup.procs", "555");
	snprintf(d, sizeof d, "%s/memory/warren/tenant-eve/monitor-555", root);
	assert_int_equal(access(d, F_OK), -1);
	expect("cpu/warren/tenant-eve/cpu.cfs_quota_us", "50000");
	expect("cpu/warren/tenant-eve/cpu.cfs_period_us", "100000");
	assert_int_equal(cgroup_attach(&cg, "eve", 9, 1234), 0);
	expect("pids/warren/tenant-eve/session-9/cgroup.procs", "1234");
	expect("memory/warren/tenant-eve/session-9/cgroup.procs", "1234");
}

static bool alive_4242(long session)
{
	return session == 4242;
}

/* a start of warrend sweeps dead sessions only: a tenant with live sessions
 * keeps them (a tenant-level cgroup.kill would end them all) */
static void v2_sweep_spares_live_tenants(void **state)
{
	(void)state;
	mkroot();
	put("cgroup.controllers", "memory pids\n");
	struct cg cg = {.mode = cgroup_detect(root)};
	snprintf(cg.root, sizeof cg.root, "%s", root);
	struct cg_limits l = {.pids_max = 10};
	assert_int_equal(cgroup_session_create(&cg, "alice", 4242, &l), 0);
	assert_int_equal(cgroup_session_create(&cg, "bob", 4243, &l), 0);
	put("warren/tenant-alice/cgroup.kill", "0");
	put("warren/tenant-alice/session-4242/cgroup.kill", "0");
	put("warren/tenant-bob/cgroup.kill", "0");
	put("warren/tenant-bob/session-4243/cgroup.kill", "0");
	assert_int_equal(cgroup_sweep(&cg, alive_4242), 1);
	expect("warren/tenant-alice/cgroup.kill", "0");
	expect("warren/tenant-alice/session-4242/cgroup.kill", "0");
	expect("warren/tenant-bob/cgroup.kill", "0");
	expect("warren/tenant-bob/session-4243/cgroup.kill", "1"); /* the dead one */
	assert_int_equal(cgroup_session_destroy(&cg, "alice", -2), -EINVAL);
	expect("warren/tenant-alice/cgroup.kill", "0");
}

static void none_fails_closed(void **state)
{
	(void)state;
	mkroot();
	assert_int_equal(cgroup_detect(root), CG_NONE);
	struct cg cg = {.mode = CG_NONE};
	struct cg_limits l = {.pids_max = 10};
	assert_int_equal(cgroup_session_create(&cg, "x", 1, &l), -ENOTSUP);
	struct cg_limits none = {0};
	assert_int_equal(cgroup_session_create(&cg, "x", 1, &none), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(v2_layout),         cmocka_unit_test(v2_swap_off_when_present),
	    cmocka_unit_test(v1_layout),         cmocka_unit_test(v2_sweep_spares_live_tenants),
	    cmocka_unit_test(none_fails_closed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
