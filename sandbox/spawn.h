/* spawn.h - bwrap and the helper commands warren runs (spawn.c); every
 * fork goes through fork_child (fork.h). */
#ifndef WARREN_SPAWN_H
#define WARREN_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "policy.h"

struct sandbox_proc {
	pid_t pid;     /* bwrap, our direct child */
	int stdin_fd;  /* -1 with a pty */
	int stdout_fd; /* -1 with a pty */
	int stderr_fd; /* command's stderr, or bwrap/init diagnostics with a pty */
	int ctl_fd;    /* SOCK_SEQPACKET to warren-init */
};

/* Starts `bwrap` for policy `p` running argv under warren-init. The caller
 * is already the tenant (no capabilities); fds are O_CLOEXEC|O_NONBLOCK. */
struct bpf_blob {
	const void *data; /* the exported seccomp filter; required */
	size_t len;
};
int spawn_sandbox(const char *bwrap, struct sandbox_policy *p, const struct bpf_blob *filter,
                  bool pty, int rows, int cols, char *const argv[], char *const envp[],
                  struct sandbox_proc *out, char *err, size_t errlen);

/* The tenant's environment: warren-init --env, no command; channels arrive
 * on listen_fd (kept open across the exec). stdin/stdout are /dev/null-like
 * pipes the caller may close; ctl_fd carries the listeners and linger.
 * pids: the sandbox's pids.max (0 = none), so init can make room in time. */
int spawn_environment(const char *bwrap, struct sandbox_policy *p, const struct bpf_blob *filter,
                      int listen_fd, long linger, long pids, char *const envp[],
                      struct sandbox_proc *out, char *err, size_t errlen);

/* A sandbox's descriptors handed to another process (the monitor's
 * MON_SPAWN): pack puts those it has (>= 0) into fds and says which in
 * *mask (bit 0 stdin, 1 stdout, 2 stderr, 3 ctl); returns how many. unpack
 * fills p back (pid 0) from n fds and mask, closing any extra; -1 (all
 * closed) when there is no control socket. close_fds closes p's. */
int sandbox_proc_pack(const struct sandbox_proc *p, int fds[4], int *mask);
int sandbox_proc_unpack(struct sandbox_proc *p, int mask, const int *fds, int n);
void sandbox_proc_close_fds(struct sandbox_proc *p);

/* Runs argv as uid/gid (no supplementary groups), waits; returns the exit
 * status, or -errno. Used for privileged-side chores done as the tenant. */
int spawn_run_as(uid_t uid, gid_t gid, char *const argv[]);

/* Runs argv (as the caller, root for profile builds) with envp, stdin
 * /dev/null; keeps the last `outlen` bytes of stdout+stderr in out.
 * Returns the exit status (128+sig when killed), or -errno. */
int spawn_capture(char *const argv[], char *const envp[], char *out, size_t outlen);

#endif
