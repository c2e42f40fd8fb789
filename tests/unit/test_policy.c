/* test_policy.c - the sandbox plan and its bwrap rendering, checked without
 * executing anything: what is mounted, in which order, and what is not. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/policy.h"
#include "../../sandbox/profile.h"

static struct host_facts merged_usr(bool nix)
{
	struct host_facts f = {0};
	const char *targets[5] = {"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", NULL};
	for (int i = 0; i < 4; i++) {
		f.top[i] = HOSTDIR_SYMLINK;
		strcpy(f.top_target[i], targets[i]);
	}
	f.top[4] = HOSTDIR_MISSING;
	f.nix_store = nix;
	return f;
}

static const struct sandbox_identity alice = {.tenant = "alice",
                                              .uid = 200001,
                                              .gid = 200001,
                                              .workspace = "/srv/ws/alice",
                                              .init_helper = "/var/lib/warren/lib/warren-init"};

static void fake_fds(struct sandbox_policy *p)
{
	for (int i = 0; i < p->nfiles; i++)
		p->files[i].fd = 100 + i;
}

/* index of the first occurrence of the triple (a b c), or -1 */
static int find3(const struct strv *v, const char *a, const char *b, const char *c)
{
	for (size_t i = 0; i + 2 < v->n; i++)
		if (!strcmp(v->v[i], a) && !strcmp(v->v[i + 1], b) &&
		    (!c || !strcmp(v->v[i + 2], c)))
			return (int)i;
	return -1;
}

static int find1(const struct strv *v, const char *a)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], a))
			return (int)i;
	return -1;
}

static void render_prof(const struct sandbox_conf *conf, bool nix, bool pty,
                        const struct profile *prof, struct sandbox_policy *p, struct strv *out)
{
	struct host_facts f = merged_usr(nix);
	assert_int_equal(policy_build(p, conf, &alice, &f, prof), 0);
	fake_fds(p);
	struct init_opts io = {.ctl_fd = 7, .pty = pty, .rows = 33, .cols = 101};
	char *argv[] = {(char *)"/bin/bash", (char *)"-l", NULL};
	assert_int_equal(policy_render(p, &io, argv, out), 0);
}

static void render(const struct sandbox_conf *conf, bool nix, bool pty, struct sandbox_policy *p,
                   struct strv *out)
{
	render_prof(conf, nix, pty, NULL, p, out);
}

/* sandbox_scope = tenant: init serves channels, no command of its own */
static void environment_mode(void **state)
{
	(void)state;
	struct sandbox_conf conf = {
	    .profile = "default", .network = NET_NONE, .shell = "/bin/bash"};
	struct sandbox_policy p;
	struct strv v = {0};
	struct host_facts f = merged_usr(false);
	assert_int_equal(policy_build(&p, &conf, &alice, &f, NULL), 0);
	fake_fds(&p);
	struct init_opts io = {.ctl_fd = 7, .env = true, .env_fd = 9, .linger = 30};
	char *none[] = {NULL};
	assert_int_equal(policy_render(&p, &io, none, &v), 0);
	int at = find3(&v, "--", SANDBOX_INIT_PATH, "--ctl");
	assert_true(at >= 0);
	assert_int_equal(find3(&v, "--env", "9", "--linger"), at + 4);
	assert_string_equal(v.v[v.n - 1], "30");
	assert_int_equal(find1(&v, "--pty"), -1);
	/* no second "--": nothing after init's own options */
	for (size_t i = (size_t)at + 1; i < v.n; i++)
		assert_string_not_equal(v.v[i], "--");
	strv_free(&v);
	/* with a pids cap, init learns it (to make room before it is hit) */
	io.pids = 48;
	assert_int_equal(policy_render(&p, &io, none, &v), 0);
	assert_int_equal(find3(&v, "--linger", "30", "--pids"), find1(&v, "--env") + 2);
	assert_string_equal(v.v[v.n - 1], "48");
	strv_free(&v);
}

/* a tenant's limits, as the cgroups get them */
static void cg_limits_of_a_tenant(void **state)
{
	(void)state;
	struct sandbox_conf conf = {
	    .memory_max = 1ULL << 30, .pids_max = 64, .max_connections = 4, .cpu_max_milli = 500};
	struct cg_limits l = policy_cg_limits(&conf);
	assert_true(l.memory_max == 1ULL << 30);
	assert_int_equal(l.pids_max, 64);
	assert_int_equal(l.connections_max, 4);
	assert_int_equal(l.cpu_max_milli, 500);
}

static void default_plan(void **state)
{
	(void)state;
	struct sandbox_conf conf = {
	    .profile = "default", .network = NET_NONE, .shell = "/bin/bash"};
	struct sandbox_policy p;
	struct strv v = {0};
	render(&conf, true, false, &p, &v);

	assert_true(find1(&v, "--unshare-all") >= 0);
	assert_int_equal(find1(&v, "--share-net"), -1);
	assert_true(find1(&v, "--die-with-parent") >= 0);
	assert_true(find1(&v, "--as-pid-1") >= 0);
	assert_true(find1(&v, "--new-session") >= 0);
	assert_true(find3(&v, "--cap-drop", "ALL", NULL) >= 0);
	assert_true(find3(&v, "--uid", "200001", NULL) >= 0);
	assert_true(find3(&v, "--hostname", "alice", NULL) >= 0);
	assert_true(find3(&v, "--ro-bind", "/usr", "/usr") >= 0);
	assert_true(find3(&v, "--symlink", "usr/bin", "/bin") >= 0);
	assert_true(find3(&v, "--symlink", "usr/lib64", "/lib64") >= 0);
	assert_int_equal(find1(&v, "/lib32"), -1);
	assert_true(find3(&v, "--ro-bind", "/nix/store", "/nix/store") >= 0);
	assert_true(find3(&v, "--ro-bind-try", "/etc/ssl", "/etc/ssl") >= 0);
	assert_int_equal(find1(&v, "/etc/resolv.conf"), -1); /* only with network */
	assert_int_equal(find1(&v, "/etc/shadow"), -1);
	assert_int_equal(find1(&v, "/etc"), -1); /* never the whole host /etc */
	assert_int_equal(find1(&v, "/root"), -1);
	assert_true(find3(&v, "--proc", "/proc", NULL) >= 0);
	assert_true(find3(&v, "--dev", "/dev", NULL) >= 0);

	/* private /tmp and /run come before anything bound beneath them */
	int tmp = find3(&v, "--tmpfs", "/tmp", NULL);
	assert_true(tmp >= 2 && !strcmp(v.v[tmp - 2], "--perms") && !strcmp(v.v[tmp - 1], "1777"));
	int run = find3(&v, "--tmpfs", "/run", NULL);
	int init = find3(&v, "--ro-bind", alice.init_helper, SANDBOX_INIT_PATH);
	int home = find3(&v, "--bind", "/srv/ws/alice", "/home/alice");
	assert_true(tmp >= 0 && run >= 0 && init > run && home > tmp);
	assert_true(find3(&v, "--chdir", "/home/alice", NULL) > home);

	/* generated /etc/passwd names the tenant with its uid and home */
	int pw = find1(&v, "/etc/passwd");
	assert_true(pw >= 2);
	assert_string_equal(v.v[pw - 2], "--ro-bind-data");
	int fd = atoi(v.v[pw - 1]);
	assert_true(fd >= 100 && fd < 100 + p.nfiles);
	assert_non_null(strstr(p.files[fd - 100].content,
	                       "alice:x:200001:200001:warren tenant:/home/alice:/bin/bash\n"));
	assert_true(find1(&v, "/etc/group") >= 0 && find1(&v, "/etc/hostname") >= 0);

	/* the root is remounted read-only after every other mount */
	int ro = find3(&v, "--remount-ro", "/", NULL);
	assert_true(ro > home && ro > find3(&v, "--dev", "/dev", NULL));

	/* the command runs under warren-init, after "--" */
	int dd = find1(&v, "--");
	assert_true(dd > ro);
	assert_true(dd > home);
	assert_string_equal(v.v[dd + 1], SANDBOX_INIT_PATH);
	assert_string_equal(v.v[dd + 2], "--ctl");
	assert_string_equal(v.v[dd + 3], "7");
	assert_string_equal(v.v[dd + 4], "--");
	assert_string_equal(v.v[dd + 5], "/bin/bash");
	assert_string_equal(v.v[dd + 6], "-l");
	assert_int_equal(v.n, (size_t)dd + 7);
	strv_free(&v);
}

static void network_host_and_pty(void **state)
{
	(void)state;
	struct sandbox_conf conf = {.profile = "default", .network = NET_HOST, .shell = "/bin/sh"};
	struct sandbox_policy p;
	struct strv v = {0};
	render(&conf, false, true, &p, &v);
	assert_true(find1(&v, "--share-net") > find1(&v, "--unshare-all"));
	assert_true(find3(&v, "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf") >= 0);
	assert_int_equal(find1(&v, "/nix/store"), -1);
	assert_true(find3(&v, "--pty", "33x101", "--") >= 0);
	strv_free(&v);
}

static void unset_fds_and_overflow(void **state)
{
	(void)state;
	struct sandbox_conf conf = {.profile = "default", .shell = "/bin/sh"};
	struct host_facts f = merged_usr(false);
	struct sandbox_policy p;
	assert_int_equal(policy_build(&p, &conf, &alice, &f, NULL), 0);
	struct init_opts io = {.ctl_fd = 3};
	char *argv[] = {(char *)"/bin/true", NULL};
	struct strv v = {0};
	/* data files without an fd must not render to a dangling number */
	assert_int_equal(policy_render(&p, &io, argv, &v), -EBADF);
	strv_free(&v);

	char longpath[400];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	struct sandbox_identity id = alice;
	id.workspace = longpath;
	assert_int_equal(policy_build(&p, &conf, &id, &f, NULL), -E2BIG);
	fake_fds(&p);
	assert_int_equal(policy_render(&p, &io, argv, &v), -E2BIG);
	strv_free(&v);
}

static void profile_mappings(void **state)
{
	(void)state;
	static struct profile prof;
	memset(&prof, 0, sizeof prof);
	strcpy(prof.maps[0].src, "/nix/store/abc-ripgrep/bin/rg");
	strcpy(prof.maps[0].dst, "/opt/tools/bin/rg");
	prof.nmaps = 1;
	struct sandbox_conf conf = {.profile = "x", .shell = "/bin/sh"};
	struct sandbox_policy p;
	struct strv v = {0};
	render_prof(&conf, true, false, &prof, &p, &v);
	int m = find3(&v, "--ro-bind", "/nix/store/abc-ripgrep/bin/rg", "/opt/tools/bin/rg");
	assert_true(m > find3(&v, "--ro-bind", "/nix/store", "/nix/store"));
	assert_true(m < find3(&v, "--remount-ro", "/", NULL));
	strv_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(default_plan),           cmocka_unit_test(cg_limits_of_a_tenant),
	    cmocka_unit_test(environment_mode),       cmocka_unit_test(network_host_and_pty),
	    cmocka_unit_test(unset_fds_and_overflow), cmocka_unit_test(profile_mappings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
