/* lockfile.h - the one lock-file helper: an exclusive flock(2) on a file
 * root creates for it (0600, O_NOFOLLOW, close-on-exec). */
#ifndef WARREN_LOCKFILE_H
#define WARREN_LOCKFILE_H

/* Blocks until path is locked; the descriptor holds the lock until it is
 * closed. Returns it, or -errno (errno set too). */
int lockfile_take(const char *path);

#endif
