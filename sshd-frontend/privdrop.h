/* privdrop.h - the one step where a session process stops being root. */
#ifndef WARREN_PRIVDROP_H
#define WARREN_PRIVDROP_H

#include <sys/types.h>

/* setgroups(0), setresgid, setresuid, clear all capability sets (including
 * bounding and ambient), PR_SET_NO_NEW_PRIVS; then verifies root is gone.
 * Returns 0 or -1 (the caller must exit). */
int privdrop_to(uid_t uid, gid_t gid);
/* A root monitor that sits in a tenant's cgroup: never the OOM killer's
 * victim (oom_score_adj -1000; privdrop_to sets 0 again for its children). */
void privdrop_oom_protect(void);

#endif
