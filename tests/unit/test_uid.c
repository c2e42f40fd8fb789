/* test_uid.c - uid allocation: lowest free uid, never a system user's, never
 * one a tenant file declares, stable across calls, clear when exhausted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../sshd-frontend/tenant.h"

static bool odd_taken(uid_t u)
{
	return u % 2 == 1;
}

static void pick(void **state)
{
	(void)state;
	uid_t used[] = {1000, 1002};
	assert_int_equal(uid_pick(1000, 1010, used, 2, NULL), 1001);
	assert_int_equal(uid_pick(1000, 1010, used, 2, odd_taken), 1004);
	assert_int_equal(uid_pick(1000, 1002, used, 2, odd_taken), 0);
	assert_int_equal(uid_pick(5000, 5000, NULL, 0, NULL), 5000);
	uid_t all[] = {5000};
	assert_int_equal(uid_pick(5000, 5000, all, 1, NULL), 0);
}

static struct server_conf srv;
static char base[64];

static void setup_dirs(void)
{
	snprintf(base, sizeof base, "/tmp/warren-uid-XXXXXX");
	assert_non_null(mkdtemp(base));
	memset(&srv, 0, sizeof srv);
	char p[128];
	snprintf(p, sizeof p, "%s/state", base);
	srv.state_dir = strdup(p);
	snprintf(p, sizeof p, "%s/tenants", base);
	srv.tenants_dir = strdup(p);
	mkdir(p, 0755);
	/* a range no system account on a test machine uses */
	srv.uid_min = 1999990000;
	srv.uid_max = 1999990003;
	strcpy(srv.sandbox.profile, "default");
	strcpy(srv.sandbox.shell, "/bin/sh");
}

static int resolve(const char *name, const char *text, struct tenant_id *id, char *err)
{
	char p[160];
	snprintf(p, sizeof p, "%s/%s.conf", srv.tenants_dir, name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	struct tenant_conf t;
	struct cfg_error e;
	assert_int_equal(config_load_tenant(&srv, name, &t, &e), 0);
	int rc = tenant_resolve(&srv, &t, id, err, 256);
	config_free_tenant(&t);
	return rc;
}

static void allocate(void **state)
{
	(void)state;
	setup_dirs();
	struct tenant_id id;
	char err[256];
	assert_int_equal(resolve("ua", "[tenant]\n", &id, err), 0);
	assert_int_equal(id.uid, 1999990000);
	assert_int_equal(id.gid, 1999990000);
	assert_string_equal(id.source, "allocated");
	assert_int_equal(resolve("ub", "[tenant]\n", &id, err), 0);
	assert_int_equal(id.uid, 1999990001);
	/* stable: asking again gives the recorded uid */
	assert_int_equal(resolve("ua", "[tenant]\n", &id, err), 0);
	assert_int_equal(id.uid, 1999990000);
	/* a uid declared in a tenant file is never handed out */
	assert_int_equal(resolve("uc", "[tenant]\nuid = 1999990002\n", &id, err), 0);
	assert_string_equal(id.source, "tenant file");
	assert_int_equal(id.uid, 1999990002);
	assert_int_equal(resolve("ud", "[tenant]\n", &id, err), 0);
	assert_int_equal(id.uid, 1999990003);
	/* exhausted */
	assert_int_equal(resolve("ue", "[tenant]\n", &id, err), -ENOSPC);
	assert_non_null(strstr(err, "exhausted"));
	/* declaring an allocated uid would merge two tenants: refused */
	assert_int_equal(resolve("uf", "[tenant]\nuid = 1999990001\n", &id, err), -EEXIST);
	assert_non_null(strstr(err, "already allocated to tenant ub"));
	/* the record survives (a restart reads the same file) */
	char p[160], buf[32] = "";
	snprintf(p, sizeof p, "%s/uids/ub", srv.state_dir);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "1999990001\n");
}

static void system_user(void **state)
{
	(void)state;
	struct tenant_id id;
	char err[256];
	/* "root" is a system user with uid 0: must never become a tenant */
	assert_int_equal(resolve("root", "[tenant]\n", &id, err), -EPERM);
	assert_non_null(strstr(err, "root"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pick),
	    cmocka_unit_test(allocate),
	    cmocka_unit_test(system_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
