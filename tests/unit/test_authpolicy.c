/* test_authpolicy.c - parsing and evaluating `auth =` (AuthenticationMethods style). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../../sshd-frontend/authpolicy.h"

static void parse_good(void **state)
{
	(void)state;
	struct auth_policy p;
	const char *bad = NULL;
	assert_int_equal(auth_policy_parse("publickey", &p, &bad), 0);
	assert_int_equal(p.nalts, 1);
	assert_int_equal(auth_policy_parse("publickey+keyboard-interactive, password", &p, &bad),
	                 0);
	assert_int_equal(p.nalts, 2);
	assert_int_equal(p.nsteps[0], 2);
	assert_int_equal(p.steps[0][0], AM_PUBLICKEY);
	assert_int_equal(p.steps[0][1], AM_KBDINT);
	assert_int_equal(p.steps[1][0], AM_PASSWORD);
	assert_int_equal(auth_policy_all(&p), AM_PUBLICKEY | AM_KBDINT | AM_PASSWORD);
}

static void parse_bad(void **state)
{
	(void)state;
	struct auth_policy p;
	const char *bad = NULL;
	assert_int_equal(auth_policy_parse("", &p, &bad), -1);
	assert_int_equal(auth_policy_parse("hostbased", &p, &bad), -1);
	assert_non_null(strstr(bad, "unknown method"));
	assert_int_equal(auth_policy_parse("password+password", &p, &bad), -1);
	assert_int_equal(auth_policy_parse("publickey+", &p, &bad), -1);
	assert_int_equal(auth_policy_parse("publickeyx", &p, &bad), -1);
}

static void sequence(void **state)
{
	(void)state;
	struct auth_policy p;
	const char *bad;
	assert_int_equal(auth_policy_parse("publickey+keyboard-interactive", &p, &bad), 0);
	/* in order: the key first, the second factor only after it */
	assert_int_equal(auth_policy_next(&p, 0), AM_PUBLICKEY);
	assert_false(auth_policy_complete(&p, 0));
	assert_false(auth_policy_complete(&p, AM_PUBLICKEY));
	assert_int_equal(auth_policy_next(&p, AM_PUBLICKEY), AM_KBDINT);
	assert_false(auth_policy_complete(&p, AM_KBDINT));
	assert_true(auth_policy_complete(&p, AM_PUBLICKEY | AM_KBDINT));
}

static void alternatives(void **state)
{
	(void)state;
	struct auth_policy p;
	const char *bad;
	assert_int_equal(auth_policy_parse("publickey+password keyboard-interactive", &p, &bad), 0);
	assert_int_equal(auth_policy_next(&p, 0), AM_PUBLICKEY | AM_KBDINT);
	assert_true(auth_policy_complete(&p, AM_KBDINT));
	assert_false(auth_policy_complete(&p, AM_PASSWORD));
	assert_int_equal(auth_policy_next(&p, AM_PUBLICKEY), AM_PASSWORD | AM_KBDINT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_good),
	    cmocka_unit_test(parse_bad),
	    cmocka_unit_test(sequence),
	    cmocka_unit_test(alternatives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
