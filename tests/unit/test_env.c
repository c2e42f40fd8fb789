/* test_env.c - the session environment: allowlist, bounds, and that the
 * fixed variables cannot be overridden by a client. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../sandbox/env.h"

static const char *get(const struct strv *v, const char *name)
{
	size_t l = strlen(name);
	const char *found = NULL;
	int count = 0;
	for (size_t i = 0; i < v->n; i++)
		if (!strncmp(v->v[i], name, l) && v->v[i][l] == '=') {
			found = v->v[i] + l + 1;
			count++;
		}
	assert_true(count <= 1); /* never two definitions of one name */
	return found;
}

static void allowlist(void **state)
{
	(void)state;
	assert_true(env_name_allowed("LANG"));
	assert_true(env_name_allowed("LC_ALL"));
	assert_true(env_name_allowed("LC_CTYPE"));
	assert_true(env_name_allowed("TZ"));
	assert_false(env_name_allowed("LC_"));
	assert_false(env_name_allowed("PATH"));
	assert_false(env_name_allowed("LD_PRELOAD"));
	assert_false(env_name_allowed("HOME"));
	assert_false(env_name_allowed("lang"));
	assert_false(env_name_allowed("LC_A=B"));
	assert_false(env_name_allowed(""));
}

static void bounds(void **state)
{
	(void)state;
	struct client_env e = {0};
	assert_int_equal(env_client_add(&e, "LD_PRELOAD", "/tmp/x.so"), -EPERM);
	assert_int_equal(env_client_add(&e, "LANG", "C.UTF-8"), 0);
	assert_int_equal(env_client_add(&e, "LANG", "en_US.UTF-8"), 0); /* replaces */
	assert_int_equal(e.n, 1);
	assert_string_equal(e.value[0], "en_US.UTF-8");
	char big[ENV_MAX_VALUE + 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(env_client_add(&e, "LC_ALL", big), -E2BIG);
	assert_int_equal(env_client_add(&e, "LC_ALL", "a\nPATH=/evil"), -E2BIG);
	char name[16];
	int added = 1;
	for (int i = 0; i < ENV_MAX_CLIENT_VARS + 5; i++) {
		snprintf(name, sizeof name, "LC_X%d", i);
		if (env_client_add(&e, name, "v") == 0)
			added++;
	}
	assert_int_equal(added, ENV_MAX_CLIENT_VARS);
	assert_int_equal(e.n, ENV_MAX_CLIENT_VARS);
	env_client_free(&e);
	assert_int_equal(e.n, 0);
}

static void build(void **state)
{
	(void)state;
	struct client_env e = {0};
	assert_int_equal(env_client_add(&e, "LANG", "C.UTF-8"), 0);
	struct session_env_info in = {.user = "alice",
	                              .home = "/home/alice",
	                              .shell = "/bin/bash",
	                              .path = "/usr/bin:/bin",
	                              .term = "xterm-256color",
	                              .ssh_connection = "127.0.0.1 5555 127.0.0.1 2222"};
	struct strv v = {0};
	assert_int_equal(env_build(&in, &e, &v), 0);
	assert_string_equal(get(&v, "HOME"), "/home/alice");
	assert_string_equal(get(&v, "USER"), "alice");
	assert_string_equal(get(&v, "LOGNAME"), "alice");
	assert_string_equal(get(&v, "SHELL"), "/bin/bash");
	assert_string_equal(get(&v, "PATH"), "/usr/bin:/bin");
	assert_string_equal(get(&v, "TERM"), "xterm-256color");
	assert_string_equal(get(&v, "LANG"), "C.UTF-8");
	assert_string_equal(get(&v, "SSH_CONNECTION"), "127.0.0.1 5555 127.0.0.1 2222");
	assert_string_equal(get(&v, "SSH_CLIENT"), "127.0.0.1 5555 2222");
	assert_null(get(&v, "LD_PRELOAD"));
	strv_free(&v);

	/* no pty: no TERM */
	in.term = NULL;
	assert_int_equal(env_build(&in, NULL, &v), 0);
	assert_null(get(&v, "TERM"));
	assert_null(get(&v, "LANG"));
	strv_free(&v);
	env_client_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(allowlist),
	    cmocka_unit_test(bounds),
	    cmocka_unit_test(build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
