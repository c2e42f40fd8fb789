/* warm.c - memory per connection. A connection process is a fork of the
 * master: what the master has already built is shared copy-on-write, what
 * each child builds for itself is its own. OpenSSL 3 builds its table of a
 * provider's algorithms the first time a process fetches one of a kind
 * (about 330 KiB of heap and a few milliseconds), glibc loads the NSS
 * modules of nsswitch.conf at the first user lookup: both happen here, once.
 * After a login, what its work left (free heap, the pages of a deep stack)
 * goes back to the kernel, since a connection process lives for hours.
 * And glibc runs tuned (warm_exec_tuned; which tunables and why:
 * tunables.c). */
#include "warm.h"
#include "tunables.h"

#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static void warm_openssl(void)
{
	/* one of each kind fills the store with all of that kind's algorithms */
	EVP_CIPHER_free(EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL));
	EVP_MD_free(EVP_MD_fetch(NULL, "SHA256", NULL));
	EVP_MAC_free(EVP_MAC_fetch(NULL, "HMAC", NULL));
	EVP_KDF_free(EVP_KDF_fetch(NULL, "HKDF", NULL));
	EVP_KEYMGMT_free(EVP_KEYMGMT_fetch(NULL, "X25519", NULL));
	EVP_KEYEXCH_free(EVP_KEYEXCH_fetch(NULL, "X25519", NULL));
	EVP_SIGNATURE_free(EVP_SIGNATURE_fetch(NULL, "ED25519", NULL));
	EVP_ASYM_CIPHER_free(EVP_ASYM_CIPHER_fetch(NULL, "RSA", NULL));
	EVP_KEM_free(EVP_KEM_fetch(NULL, "RSA", NULL));
	EVP_RAND_free(EVP_RAND_fetch(NULL, "CTR-DRBG", NULL));
}

/* Keeps this much below this function's frame: what is live there when
 * madvise runs is its own call */
#define STACK_KEEP 4096

/* How deep the main stack can reach: the top of its mapping less
 * RLIMIT_STACK (the kernel keeps the mapping within it, and puts mmap_base
 * below that, with the guard gap and the randomisation between); 0 when
 * unlimited (the layout is then the legacy one, with mappings anywhere).
 * Found once in the master; the connection processes are its forks, with
 * its stack and limit. */
static uintptr_t stack_floor;

static void find_stack(void)
{
	unsigned long hi = 0;
	char line[256];
	struct rlimit rl;
	if (getrlimit(RLIMIT_STACK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	FILE *f = fopen("/proc/self/maps", "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%*x-%lx", &hi) == 1 && strstr(line, "[stack]"))
			break;
		else
			hi = 0;
	fclose(f);
	if (hi > rl.rlim_cur)
		stack_floor = hi - rl.rlim_cur;
}

/* Gives back the pages below the caller's frame without reading
 * /proc/self/maps for the stack's mapping (that read, in every monitor, was
 * about 4 % of warrend's CPU per login, and the chrooted session process
 * cannot open it): from the deepest the stack can reach, which is the
 * mapping or the gap the kernel keeps free below it. madvise(2) applies to
 * the mapped part and returns ENOMEM for the rest. */
static __attribute__((noinline)) void release_stack(void)
{
	char here;
	uintptr_t keep = ((uintptr_t)&here - STACK_KEEP) & ~(uintptr_t)4095;
	if (stack_floor != 0 && stack_floor < keep)
		(void)madvise((void *)stack_floor, keep - stack_floor, MADV_DONTNEED);
}

void warm_master(void)
{
	warm_openssl();
	/* the passwd and group modules (files, systemd...), as a tenant lookup
	 * in a connection's monitor would load them: a name that no source
	 * has, so that every module of the list is asked */
	(void)getpwnam("warren-nss-warm-up");
	(void)getgrnam("warren-nss-warm-up");
	endpwent();
	endgrent();
	find_stack();
}

#define TUNED_MARK "WARREN_MALLOC_TUNED"

/* GLIBC_TUNABLES as it was: "=VALUE", or "-" when it was unset */
static void restore(const char *was)
{
	if (was[0] == '=')
		setenv("GLIBC_TUNABLES", was + 1, 1);
	else
		unsetenv("GLIBC_TUNABLES");
	unsetenv(TUNED_MARK);
}

/* glibc's tunables (tunables.c) have one switch, the GLIBC_TUNABLES
 * environment variable, read when a program starts; so warrend starts
 * itself again with it set, and then puts the environment back as it was
 * (nothing of it reaches a sandbox). */
void warm_exec_tuned(char **argv)
{
	const char *mark = getenv(TUNED_MARK);
	if (mark != NULL) { /* the second start */
		restore(mark);
		return;
	}
	const char *old = getenv("GLIBC_TUNABLES");
	char *tun = NULL, *was = NULL;
	/* the operator's own settings come after ours, and so win */
	if ((tun = tunables_compose(tunables_cpu_is_amd(), old)) == NULL ||
	    asprintf(&was, "%s%s", old ? "=" : "-", old ? old : "") < 0) {
		free(tun);
		return;
	}
	/* by its path, not /proc/self/exe: the kernel names the process after
	 * the file it executes, and "exe" is not what ps and pgrep look for */
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0 && setenv(TUNED_MARK, was, 1) == 0 && setenv("GLIBC_TUNABLES", tun, 1) == 0) {
		self[n] = '\0';
		execv(self, argv);
	}
	restore(was); /* no /proc, or exec refused: run as started */
	free(tun);
	free(was);
}

/* The free heap between a parent's live blocks ("holes"), taken for good
 * so that a child's allocations come from the top instead. A child that
 * fills holes writes a few bytes into page after page of its parent's heap
 * and so owns a copy of each page; from the top, its blocks are side by
 * side (measured with the tcache off: 422 -> 409 KiB per idle session). */
static bool take_hole(size_t sz, size_t top_size)
{
	char *top = (char *)sbrk(0) - top_size;
	void *p = malloc(sz);
	if (p != NULL && (char *)p < top)
		return true; /* kept for good */
	free(p);             /* from the top: there was no hole that size */
	return false;
}

void warm_fill_holes(void)
{
	malloc_trim(0); /* fastbins merged, whole free pages given back */
	for (size_t sz = 256 * 1024; sz >= 16; sz /= 2)
		for (;;) {
			struct mallinfo2 mi = mallinfo2();
			if (mi.fordblks - mi.keepcost < sz || !take_hole(sz, mi.keepcost))
				break; /* the holes left are smaller */
		}
}

void warm_trim(void)
{
	malloc_trim(0);
	release_stack();
}
