/* privdrop.c - irreversible privilege drop with libcap, then a check that it
 * held (nsjail's containProc style: one ordered, visible step). */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

int privdrop_to(uid_t uid, gid_t gid)
{
	if (uid == 0 || gid == 0) {
		log_err("privdrop: refusing to run a session as root");
		return -1;
	}
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
