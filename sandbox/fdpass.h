/* fdpass.h - one message with an optional file descriptor over a UNIX
 * socket (SCM_RIGHTS): warren-init -> session, monitor -> session. */
#ifndef WARREN_FDPASS_H
#define WARREN_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* fd < 0: no descriptor. Returns 0 when the whole message went out. */
int fdpass_send(int sock, const void *msg, size_t len, int fd);
/* Returns the bytes received (0 at EOF, -1 on error); *fd is the passed
 * descriptor (O_CLOEXEC) or -1. */
ssize_t fdpass_recv(int sock, void *msg, size_t len, int *fd, int flags);

#endif
