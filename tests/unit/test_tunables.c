/* test_tunables.c - the GLIBC_TUNABLES value warrend starts again with:
 * warren's own first, rep movsb off only on AMD, the operator's last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../sshd-frontend/tunables.h"

#define NO_TCACHE    "glibc.malloc.tcache_count=0"
#define NO_REP_MOVSB "glibc.cpu.x86_rep_movsb_threshold=18446744073709551615"

static void check(bool amd, const char *op, const char *want)
{
	char *got = tunables_compose(amd, op);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void composed(void **state)
{
	(void)state;
	check(false, NULL, NO_TCACHE);
	check(true, NULL, NO_TCACHE ":" NO_REP_MOVSB);
	check(false, "", NO_TCACHE); /* an empty variable adds no empty entry */
	/* the operator's come last, so that glibc (the last one wins) takes
	 * theirs where both set the same tunable */
	check(false, "glibc.malloc.arena_max=4", NO_TCACHE ":glibc.malloc.arena_max=4");
	check(true, "glibc.malloc.tcache_count=7",
	      NO_TCACHE ":" NO_REP_MOVSB ":glibc.malloc.tcache_count=7");
}

/* the vendor check agrees with the kernel's reading of the same cpuid */
static void vendor(void **state)
{
	(void)state;
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f == NULL)
		skip();
	char line[256];
	int amd = -1;
	while (amd < 0 && fgets(line, sizeof line, f))
		if (!strncmp(line, "vendor_id", 9))
			amd = strstr(line, "AuthenticAMD") != NULL;
	fclose(f);
	if (amd < 0)
		skip(); /* no vendor_id line: not x86 */
	assert_int_equal(tunables_cpu_is_amd(), amd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(composed),
	    cmocka_unit_test(vendor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
