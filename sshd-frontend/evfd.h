/* evfd.h - one fd's place in a libssh event loop: the events it is
 * registered for, changed only when they differ, and taken out of the loop
 * before the fd is closed (libssh would otherwise poll a closed or reused
 * number). The session's channels and the egress proxy both use it. */
#ifndef WARREN_EVFD_H
#define WARREN_EVFD_H

#include <stdbool.h>

#include <libssh/libssh.h>

/* registers fd for events (0: none); *reg holds what it is registered for */
void evfd_want(ssh_event ev, int fd, short *reg, short events, ssh_event_callback cb, void *ud);
/* takes fd out of the loop, closes it, sets *fd = -1 */
void evfd_close(ssh_event ev, int *fd, short *reg);
/* ssh_event_dopoll(ev, timeout_ms), except that right after a poll that
 * found work it polls without waiting: *busy says the last one did. A
 * poll(2) that cannot sleep skips the kernel's clock reads and wait-queue
 * set-up: 5 to 9 % of the session process's CPU in a 1 GiB sftp
 * put (libssh 0.10 reads 4 KiB per poll). */
int evfd_dopoll(ssh_event ev, bool *busy, int timeout_ms);

#endif
