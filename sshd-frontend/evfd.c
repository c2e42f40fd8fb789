/* evfd.c - an fd's registration in a libssh event loop (see evfd.h). */
#include "evfd.h"

#include <unistd.h>

void evfd_want(ssh_event ev, int fd, short *reg, short events, ssh_event_callback cb, void *ud)
{
	if (fd < 0 || *reg == events)
		return;
	if (*reg)
		ssh_event_remove_fd(ev, fd);
	if (events && ssh_event_add_fd(ev, fd, events, cb, ud) != SSH_OK) {
		*reg = 0;
		return;
	}
	*reg = events;
}

void evfd_close(ssh_event ev, int *fd, short *reg)
{
	if (*fd < 0)
		return;
	if (*reg)
		ssh_event_remove_fd(ev, *fd);
	*reg = 0;
	close(*fd);
	*fd = -1;
}

int evfd_dopoll(ssh_event ev, bool *busy, int timeout_ms)
{
	int rc = ssh_event_dopoll(ev, *busy ? 0 : timeout_ms);
	*busy = rc >= 0; /* SSH_AGAIN: nothing came; SSH_ERROR: failed */
	return rc;
}
