/* confine.h - seccomp for warren's own unprivileged workers (confine.c). */
#ifndef WARREN_CONFINE_H
#define WARREN_CONFINE_H

/* Compiles both filters once, in the master before it forks (the workers
 * then load them instead of compiling their own). 0, or a negative errno;
 * without it each worker compiles its filter itself. */
int confine_prepare(void);

/* The allowlist of a worker that execs and forks nothing (the egress
 * proxy, an environment's session process), for the calling process and its
 * future threads; call it single-threaded. 0, or a negative errno. */
int confine_worker(void);
/* The same for a pre-auth process, and what becoming the tenant takes
 * (chroot to a descriptor, setres[ug]id, capset; preauth.c). */
int confine_preauth(void);

#endif
