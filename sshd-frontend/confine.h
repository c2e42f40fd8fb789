/* confine.h - seccomp for warren's own unprivileged workers (confine.c). */
#ifndef WARREN_CONFINE_H
#define WARREN_CONFINE_H

/* The egress proxy's allowlist, for the calling process and its future
 * threads; call it single-threaded. 0, or a negative errno. */
int confine_proxy(void);

#endif
