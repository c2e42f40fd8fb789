/* disk.c - per-tenant workspace filesystems for disk_max (see disk.h).
 * mkfs.ext4 (e2fsprogs) formats; the loop device and the mount are plain
 * syscalls. Nothing here follows a path the tenant controls: the image and
 * mount points live in root-only directories, and copying the old workspace
 * in runs as the tenant. */
#include "disk.h"
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "spawn.h"
#include "workspace.h"

#define MKFS "/sbin/mkfs.ext4"

bool disk_supported(const char **why)
{
	if (access("/dev/loop-control", R_OK | W_OK) < 0) {
		*why = "this host has no usable /dev/loop-control (loop devices)";
		return false;
	}
	if (access(MKFS, X_OK) < 0) {
		*why = MKFS " is missing (Debian package e2fsprogs)";
		return false;
	}
	return true;
}

/* a mount point: on another device than its parent */
static bool mounted(const char *path)
{
	char parent[PATH_MAX];
	struct stat a, b;
	return fmt_into(parent, sizeof parent, "%s/..", path) == 0 && stat(path, &a) == 0 &&
	       stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

/* attaches image to a free loop device (detached again when unmounted) and
 * mounts it at target */
static int loop_mount(const char *image, const char *target, char *err, size_t errlen)
{
	int img = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int rc = -1;
	for (int tries = 0; img >= 0 && ctl >= 0 && tries < 8 && rc < 0; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		char dev[32];
		snprintf(dev, sizeof dev, "/dev/loop%d", n);
		int lfd = n >= 0 ? open(dev, O_RDWR | O_CLOEXEC) : -1;
		if (lfd < 0) {
			snprintf(err, errlen, "loop device %s: %s", dev, strerror(errno));
			break;
		}
		struct loop_config cfg = {.fd = (unsigned)img,
		                          .info = {.lo_flags = LO_FLAGS_AUTOCLEAR}};
		snprintf((char *)cfg.info.lo_file_name, sizeof cfg.info.lo_file_name, "%s", image);
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
			int e = errno;
			close(lfd);
			if (e == EBUSY)
				continue; /* taken meanwhile: ask again */
			snprintf(err, errlen, "LOOP_CONFIGURE %s: %s", dev, strerror(e));
			break;
		}
		if (mount(dev, target, "ext4", MS_NOSUID | MS_NODEV, "") < 0)
			snprintf(err, errlen, "mount %s on %s: %s", dev, target, strerror(errno));
		else
			rc = 0;
		close(lfd); /* autoclear: the device goes with the last unmount */
	}
	if (img < 0 || ctl < 0)
		snprintf(err, errlen, "%s: %s", img < 0 ? image : "/dev/loop-control",
		         strerror(errno));
	if (img >= 0)
		close(img);
	if (ctl >= 0)
		close(ctl);
	return rc;
}

/* a sparse image, formatted with the tenant owning its root, holding a
 * copy of what the workspace had (template, or an older workspace) */
static int make_image(const char *image, const char *fill, const char *workspace, uid_t uid,
                      gid_t gid, unsigned long long size, char *err, size_t errlen)
{
	int fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		snprintf(err, errlen, "%s: %s", image, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	char owner[64];
	snprintf(owner, sizeof owner, "root_owner=%u:%u", (unsigned)uid, (unsigned)gid);
	char *const mkfs[] = {(char *)MKFS, (char *)"-q", (char *)"-F",  (char *)"-m", (char *)"0",
	                      (char *)"-E", owner,        (char *)image, NULL};
	int st = spawn_run_as(0, 0, mkfs);
	if (st != 0) {
		snprintf(err, errlen, MKFS " %s failed (status %d)", image, st);
		return -1;
	}
	if ((mkdir(fill, 0700) < 0 && errno != EEXIST) || loop_mount(image, fill, err, errlen) < 0)
		return -1;
	chmod(fill, 0700);
	char src[PATH_MAX];
	fmt_into(src, sizeof src, "%s/.", workspace);
	char *const cp[] = {(char *)"/bin/cp", (char *)"-a", src, (char *)fill, NULL};
	st = spawn_run_as(uid, gid, cp);
	chmod(fill, 0700); /* cp -a gave it the workspace's mode */
	if (umount(fill) < 0 || st != 0) {
		snprintf(err, errlen, "copying %s into its new filesystem failed (status %d)",
		         workspace, st);
		return -1;
	}
	rmdir(fill);
	return 0;
}

int disk_ensure(const char *state_dir, const char *tenant, const char *workspace, uid_t uid,
                gid_t gid, unsigned long long size, char *err, size_t errlen)
{
	const char *why;
	if (!disk_supported(&why)) {
		snprintf(err, errlen, "disk_max is set, but %s", why);
		return -1;
	}
	if (mounted(workspace))
		return 0;
	char dir[PATH_MAX], image[PATH_MAX], lockp[PATH_MAX], fill[PATH_MAX];
	if (fmt_into(dir, sizeof dir, "%s/disks", state_dir) < 0 ||
	    fmt_into(image, sizeof image, "%s/%s.img", dir, tenant) < 0 ||
	    fmt_into(lockp, sizeof lockp, "%s/.lock-%s", dir, tenant) < 0 ||
	    fmt_into(fill, sizeof fill, "%s/workspaces/.fill-%s", state_dir, tenant) < 0) {
		snprintf(err, errlen, "state_dir path too long");
		return -1;
	}
	if (state_mkdir(dir, 0700) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	int lfd = lockfile_take(lockp);
	if (lfd < 0) {
		snprintf(err, errlen, "%s: %s", lockp, strerror(-lfd));
		return -1;
	}
	int rc = 0;
	struct stat st;
	if (mounted(workspace)) {
		rc = 0; /* another login did it meanwhile */
	} else if (lstat(image, &st) < 0 &&
	           make_image(image, fill, workspace, uid, gid, size, err, errlen) < 0) {
		umount2(fill, MNT_DETACH);
		rmdir(fill);
		unlink(image); /* the next login starts over */
		rc = -1;
	} else if (loop_mount(image, workspace, err, errlen) < 0) {
		rc = -1;
	} else if (chmod(workspace, 0700) < 0) {
		snprintf(err, errlen, "chmod %s: %s", workspace, strerror(errno));
		rc = -1;
	}
	close(lfd);
	return rc;
}
