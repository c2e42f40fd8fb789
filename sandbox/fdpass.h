/* fdpass.h - messages with file descriptors over a UNIX socket
 * (SCM_RIGHTS): warren-init <-> session, monitor -> session, gateway. */
#ifndef WARREN_FDPASS_H
#define WARREN_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX 4

/* fd < 0: no descriptor. Returns 0 when the whole message went out. */
int fdpass_send(int sock, const void *msg, size_t len, int fd);
int fdpass_sendv(int sock, const void *msg, size_t len, const int *fds, int nfds);
/* Returns the bytes received (0 at EOF, -1 on error); *fd is the passed
 * descriptor (O_CLOEXEC) or -1; any further ones are closed. */
ssize_t fdpass_recv(int sock, void *msg, size_t len, int *fd, int flags);
/* Up to maxfds descriptors into fds (count in *nfds); extras are closed. */
ssize_t fdpass_recvv(int sock, void *msg, size_t len, int *fds, int maxfds, int *nfds, int flags);

#endif
