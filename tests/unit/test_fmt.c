/* test_fmt.c - fmt_into's truncation report and fmt_escape's escaping of
 * strings from clients and tenants. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "../../sandbox/fmt.h"

static void into(void **state)
{
	(void)state;
	char b[8];
	assert_int_equal(fmt_into(b, sizeof b, "%s", "1234567"), 0);
	assert_string_equal(b, "1234567");
	assert_int_equal(fmt_into(b, sizeof b, "%s", "12345678"), -ENAMETOOLONG);
	assert_string_equal(b, ""); /* never a truncated path */
}

static void escape(void **state)
{
	(void)state;
	char b[128];
	/* an ANSI sequence, a forged log line, a C1 CSI, a backslash */
	assert_int_equal(fmt_escape(b, sizeof b, "a\x1b[2Jb\nwarrend: x\x9b\\"),
	                 strlen("a\\x1b[2Jb\\x0awarrend: x\\x9b\\\\"));
	assert_string_equal(b, "a\\x1b[2Jb\\x0awarrend: x\\x9b\\\\");
	fmt_escape(b, sizeof b, "plain ASCII stays: ~!@#$%^&*()_+");
	assert_string_equal(b, "plain ASCII stays: ~!@#$%^&*()_+");
	/* truncation never cuts an escape in half */
	char s[6];
	assert_int_equal(fmt_escape(s, sizeof s, "ab\x01"), 2);
	assert_string_equal(s, "ab");
	assert_int_equal(fmt_escape(s, sizeof s, "abcdefgh"), 5);
	assert_string_equal(s, "abcde");
	assert_int_equal(fmt_escape(s, 0, "x"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(into),
	    cmocka_unit_test(escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
