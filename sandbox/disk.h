/* disk.h - disk_max: a tenant's workspace on a filesystem of its own, an
 * ext4 image (state_dir/disks/<tenant>.img, sparse) on a loop device mounted
 * at the workspace, so the kernel enforces the size and the sandbox's
 * mountinfo shows no host path for it. Done by root at login. */
#ifndef WARREN_DISK_H
#define WARREN_DISK_H

#include <stdbool.h>
#include <sys/types.h>

/* Makes (first time: creates, formats, fills with what the workspace held)
 * and mounts the image at workspace unless it is mounted already. 0, or -1
 * with err (for the operator's log). */
int disk_ensure(const char *state_dir, const char *tenant, const char *workspace, uid_t uid,
                gid_t gid, unsigned long long size, char *err, size_t errlen);

/* Whether this host can: loop devices and mkfs.ext4; false with why. */
bool disk_supported(const char **why);

#endif
