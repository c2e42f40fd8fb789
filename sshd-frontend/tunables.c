/* tunables.c - the glibc tunables warrend starts again with (warm.c's
 * warm_exec_tuned), and why: malloc without its per-thread cache, and on
 * AMD memcpy without rep movsb. The operator's own GLIBC_TUNABLES follow
 * warren's, and so win. */
#include "tunables.h"

#include <stdio.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* glibc's tcache keeps up to 7 freed blocks of each small size for the next
 * malloc of that size, wherever they lie in the heap. A child of the master
 * takes the master's first: a write into page after page of the master's
 * heap, each then copied for that child (measured: with it, 50 idle
 * sessions cost 486 KiB each; without, 409 KiB). */
#define NO_TCACHE "glibc.malloc.tcache_count=0"

/* AMD's Zen 3 and later report fast short rep movsb (FSRM), and glibc 2.36
 * copies with rep movsb from 2 KiB up to the L2 cache's size; there it runs
 * at a twentieth of its speed when the destination is misaligned against
 * the source (measured here on an AMD EPYC: a 32 KiB memcpy
 * at 3 GB/s, 50 GB/s with the vector loop). libssh copies every received
 * data packet twice at such offsets: before this, 22 % of an sftp upload's
 * session process was that memmove (5 % after). Later glibc releases stop
 * using rep movsb on AMD; a threshold no copy reaches does the same here. */
#define NO_REP_MOVSB "glibc.cpu.x86_rep_movsb_threshold=18446744073709551615"

bool tunables_cpu_is_amd(void)
{
#if defined(__x86_64__)
	unsigned int a = 0, b = 0, c = 0, d = 0;
	/* the vendor string "AuthenticAMD", in ebx, edx, ecx */
	return __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541 && d == 0x69746e65 &&
	       c == 0x444d4163;
#else
	return false;
#endif
}

char *tunables_compose(bool amd, const char *operator_tunables)
{
	char *out = NULL;
	bool op = operator_tunables != NULL && operator_tunables[0] != '\0';
	if (asprintf(&out, "%s%s%s%s%s", NO_TCACHE, amd ? ":" : "", amd ? NO_REP_MOVSB : "",
	             op ? ":" : "", op ? operator_tunables : "") < 0)
		return NULL;
	return out;
}
