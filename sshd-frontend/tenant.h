/* tenant.h - who a tenant is on this host: uid/gid from the tenant file, the
 * system user of that name, or a stable allocation recorded under state_dir. */
#ifndef WARREN_TENANT_H
#define WARREN_TENANT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct tenant_id {
	uid_t uid;
	gid_t gid;
	const char *source; /* "tenant file", "system user", "allocated" */
};

/* Lowest uid in [min,max] not in used[] and not a system user's (is_taken).
 * Returns 0 when the range is exhausted (0 is never a tenant uid). */
uid_t uid_pick(uid_t min, uid_t max, const uid_t *used, size_t nused, bool (*is_taken)(uid_t));

/* Runs as root before the privilege drop. */
int tenant_resolve(const struct server_conf *srv, const struct tenant_conf *t, struct tenant_id *id,
                   char *err, size_t errlen);

#endif
