/* seccomp.h - the syscall filter every sandbox runs under (libseccomp). */
#ifndef WARREN_SECCOMP_H
#define WARREN_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

struct seccomp_rule {
	const char *name; /* syscall */
	int err;          /* errno returned */
	bool nested_ok;   /* re-allowed with nested_sandbox = yes */
};
extern const struct seccomp_rule seccomp_rules[]; /* NULL-terminated */

struct seccomp_opts {
	bool nested_sandbox; /* allow user namespaces and mounts for a nested bwrap */
};

/* Builds the filter; *ret_ctx is a scmp_filter_ctx. Returns 0 or -errno. */
int seccomp_build(const struct seccomp_opts *o, void **ret_ctx);
/* Exports BPF into a sealed-off memfd positioned at 0; returns the fd or -errno. */
int seccomp_to_memfd(void *ctx);
void seccomp_free(void *ctx);
/* Builds and exports in one go: *data (malloc'd BPF) and *len. 0 or -errno. */
int seccomp_export(const struct seccomp_opts *o, void **data, size_t *len);
/* Exports any scmp_filter_ctx the same way (the ctx stays the caller's). */
int seccomp_ctx_export(void *ctx, void **data, size_t *len);

#endif
