/* workspace.h - a tenant's persistent workspace under state_dir: created once
 * (from the template, copied as the tenant), then reused on every login. */
#ifndef WARREN_WORKSPACE_H
#define WARREN_WORKSPACE_H

#include <stddef.h>
#include <sys/types.h>

/* Creates state_dir/workspaces if needed; fills path with the workspace.
 * Runs as root. Returns 0 or -errno with err set to one line for the log. */
int workspace_ensure(const char *state_dir, const char *tenant, uid_t uid, gid_t gid,
                     const char *template_dir, char *path, size_t pathlen, char *err,
                     size_t errlen);

/* mkdir -p for root-owned state directories with the given final mode. */
int state_mkdir(const char *path, mode_t mode);

#endif
