/* lockfile.c - an exclusive lock on a file of root's (see lockfile.h); used
 * for one workspace creation, one profile build, one disk image and one
 * environment start at a time. */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

int lockfile_take(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -e;
	}
	return fd;
}
