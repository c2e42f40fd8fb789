/* workspace.c - create and check tenant workspaces. Creation goes through a
 * temporary directory renamed into place, so a crash never leaves a
 * half-copied template behind as the tenant's home. */
#include "workspace.h"
#include "lockfile.h"
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn.h"

int state_mkdir(const char *path, mode_t mode)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(buf, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid == 0 && (st.st_mode & 07777) != mode && chmod(buf, mode) < 0)
		return -errno;
	return 0;
}

static int check_existing(const char *path, uid_t uid, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid) {
		snprintf(err, errlen, "%s is not a directory owned by uid %u", path, (unsigned)uid);
		return -EPERM;
	}
	return 0;
}

int workspace_ensure(const char *state_dir, const char *tenant, uid_t uid, gid_t gid,
                     const char *template_dir, char *path, size_t pathlen, char *err, size_t errlen)
{
	char dir[4096], tmp[4200], lockp[4200];
	int rc;
	snprintf(err, errlen, "workspace error");
	if (snprintf(dir, sizeof dir, "%s/workspaces", state_dir) >= (int)sizeof dir ||
	    snprintf(path, pathlen, "%s/%s", dir, tenant) >= (int)pathlen)
		return -ENAMETOOLONG;
	rc = check_existing(path, uid, err, errlen);
	if (rc != -ENOENT)
		return rc;

	/* 0711: tenants can reach their own workspace but not list the others */
	if ((rc = state_mkdir(dir, 0711)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	fmt_into(lockp, sizeof lockp, "%s/.lock-%s", dir, tenant);
	int lfd = lockfile_take(lockp);
	if (lfd < 0) {
		snprintf(err, errlen, "%s: %s", lockp, strerror(-lfd));
		return lfd;
	}
	rc = check_existing(path, uid, err, errlen);
	if (rc != -ENOENT)
		goto out; /* another login created it meanwhile */

	fmt_into(tmp, sizeof tmp, "%s/.new-%s", dir, tenant);
	struct stat st;
	if (lstat(tmp, &st) == 0) {
		/* left by a crash during creation; GNU rm does not follow symlinks */
		char *const rm[] = {(char *)"/bin/rm", (char *)"-rf", (char *)"--one-file-system",
		                    tmp, NULL};
		spawn_run_as(0, 0, rm);
	}
	if (mkdir(tmp, 0700) < 0 || chown(tmp, uid, gid) < 0 || chmod(tmp, 0700) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (template_dir) {
		char src[4200];
		fmt_into(src, sizeof src, "%s/.", template_dir);
		char *const cp[] = {(char *)"/bin/cp", (char *)"-a", src, tmp, NULL};
		int st2 = spawn_run_as(uid, gid, cp);
		if (st2 != 0) {
			snprintf(err, errlen, "copying template %s as uid %u failed (status %d)",
			         template_dir, (unsigned)uid, st2);
			rc = -EIO;
			goto out;
		}
		/* cp -a copied the template's mode onto the top directory */
		chmod(tmp, 0700);
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(lfd);
	return rc;
}
