/* warm.c - memory per connection. A connection process is a fork of the
 * master: what the master has already built is shared copy-on-write, what
 * each child builds for itself is its own. OpenSSL 3 builds its table of a
 * provider's algorithms the first time a process fetches one of a kind
 * (about 330 KiB of heap and a few milliseconds), glibc loads the NSS
 * modules of nsswitch.conf at the first user lookup: both happen here, once.
 * After a login, what its work left (free heap, the pages of a deep stack)
 * goes back to the kernel, since a connection process lives for hours. */
#include "warm.h"

#include <grp.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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
}

/* Keeps this much below this function's frame: what is live there when
 * madvise runs is its own call (fopen and the rest have returned) */
#define STACK_KEEP 4096

static __attribute__((noinline)) void release_stack(void)
{
	char here;
	uintptr_t keep = ((uintptr_t)&here - STACK_KEEP) & ~(uintptr_t)4095;
	unsigned long lo = 0, hi = 0;
	char line[256];
	FILE *f = fopen("/proc/self/maps", "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && strstr(line, "[stack]"))
			break;
		else
			lo = hi = 0;
	fclose(f);
	if (lo != 0 && lo < keep && keep < hi)
		madvise((void *)lo, keep - lo, MADV_DONTNEED);
}

void warm_trim(void)
{
	malloc_trim(0);
	release_stack();
}
