/* warm.h - what every connection process would otherwise build or load for
 * itself, done once in the master; and what a login's work leaves, given
 * back (warm.c). */
#ifndef WARREN_WARM_H
#define WARREN_WARM_H

/* First thing in main: warrend again, with glibc's malloc tuned for forked
 * children (warm.c); returns in the second start, or when exec fails. */
void warm_exec_tuned(char **argv);

/* In the master, before the first fork: OpenSSL's algorithm tables and
 * glibc's NSS modules, shared copy-on-write by every connection process;
 * and where the stack is, for warm_trim. */
void warm_master(void);

/* Before a fork (the master's of a monitor, a monitor's of its pre-auth
 * process): the heap's holes, filled (warm.c). */
void warm_fill_holes(void);

/* After a login: the free heap (malloc_trim) and the stack pages below the
 * caller's frame that the login's deep calls dirtied, back to the kernel. */
void warm_trim(void);

#endif
