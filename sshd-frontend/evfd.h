/* evfd.h - one fd's place in a libssh event loop: the events it is
 * registered for, changed only when they differ, and taken out of the loop
 * before the fd is closed (libssh would otherwise poll a closed or reused
 * number). The session's channels and the egress proxy both use it. */
#ifndef WARREN_EVFD_H
#define WARREN_EVFD_H

#include <libssh/libssh.h>

/* registers fd for events (0: none); *reg holds what it is registered for */
void evfd_want(ssh_event ev, int fd, short *reg, short events, ssh_event_callback cb, void *ud);
/* takes fd out of the loop, closes it, sets *fd = -1 */
void evfd_close(ssh_event ev, int *fd, short *reg);

#endif
