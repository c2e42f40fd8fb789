/* fork.h - every process warren starts is forked by fork_child (fork.c
 * says where, and what each child does next). */
#ifndef WARREN_FORK_H
#define WARREN_FORK_H

#include <sys/types.h>

enum {
	/* default dispositions for every signal and an empty mask (a child
	 * that execs, or serves with a clean slate) */
	FORK_RESET_SIGNALS = 1,
	/* SIGKILL when the parent dies; a child whose parent died before
	 * that took hold exits at once */
	FORK_DIE_WITH_PARENT = 2,
	/* every descriptor from 3 up close-on-exec, but keep[0..nkeep) */
	FORK_CLOEXEC_REST = 4,
};

/* fork(2), then in the child the FORK_* steps in flags, in the order
 * listed. As fork: the child's 0, the parent's pid, or -1 with errno. */
pid_t fork_child(int flags, const int *keep, int nkeep);

/* FORK_CLOEXEC_REST on its own, for a child that moves descriptors into
 * place after the fork and execs. */
void fork_keep_only_fds(const int *keep, int nkeep);

#endif
