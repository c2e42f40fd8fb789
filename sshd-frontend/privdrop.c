/* privdrop.c - irreversible privilege drop with libcap, then a check that it
 * held (nsjail's containProc style: one ordered, visible step). */
#include "privdrop.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

static int set_oom_score_adj(const char *value)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, value, strlen(value));
	close(fd);
	return n == (ssize_t)strlen(value) ? 0 : -1;
}

void privdrop_oom_protect(void)
{
	/* EACCES without CAP_SYS_RESOURCE (some containers): said once, at debug */
	if (set_oom_score_adj("-1000") < 0)
		log_debug("oom_score_adj -1000: %s", strerror(errno));
}

int privdrop_to(uid_t uid, gid_t gid)
{
	if (uid == 0 || gid == 0) {
		log_err("privdrop: refusing to run a session as root");
		return -1;
	}
	/* a monitor's OOM exemption is not for what runs as the tenant (only
	 * root may lower it again, so it is set while root). Where this write
	 * fails, so did the monitor's -1000: nothing to undo. */
	if (set_oom_score_adj("0") < 0)
		log_debug("privdrop: oom_score_adj 0: %s", strerror(errno));
	/* the bounding set can only be lowered while we still hold CAP_SETPCAP */
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (cap_drop_bound(c) < 0 && errno != EINVAL) {
			log_err("privdrop: cap_drop_bound(%d): %s", (int)c, strerror(errno));
			return -1;
		}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		log_err("privdrop: clearing ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		log_err("privdrop: switching to %u:%u: %s", (unsigned)uid, (unsigned)gid,
		        strerror(errno));
		return -1;
	}
	cap_t none = cap_init(); /* all of permitted, effective, inheritable cleared */
	if (none == NULL || cap_set_proc(none) < 0) {
		log_err("privdrop: clearing capabilities: %s", strerror(errno));
		cap_free(none);
		return -1;
	}
	cap_free(none);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("privdrop: no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		log_warn("privdrop: PR_SET_DUMPABLE: %s", strerror(errno));
	/* verify: getting root back must fail */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		log_err("privdrop: regained root after the drop; aborting");
		return -1;
	}
	return 0;
}
