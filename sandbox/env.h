/* env.h - the sandboxed process's environment, built from scratch: fixed
 * session variables plus the few client `env` requests on the allowlist. */
#ifndef WARREN_ENV_H
#define WARREN_ENV_H

#include <stddef.h>

#include "strv.h"

#define ENV_MAX_CLIENT_VARS 32
#define ENV_MAX_NAME        64
#define ENV_MAX_VALUE       1024

struct client_env {
	char *name[ENV_MAX_CLIENT_VARS];
	char *value[ENV_MAX_CLIENT_VARS];
	int n;
};

/* Like OpenSSH's AcceptEnv LANG LC_*: locale settings and a few terminal hints. */
int env_name_allowed(const char *name);

/* 0 accepted; -EPERM not allowlisted; -E2BIG over a bound; -ENOMEM. A repeated
 * name replaces the earlier value. */
int env_client_add(struct client_env *e, const char *name, const char *value);
void env_client_free(struct client_env *e);

struct session_env_info {
	const char *user;
	const char *home;
	const char *shell;
	const char *path;           /* PATH inside the sandbox */
	const char *term;           /* NULL without a pty */
	const char *ssh_connection; /* "client port server port" */
	char *const *extra;         /* NAME=value from the profile; NULL-terminated, may be NULL */
};

int env_build(const struct session_env_info *info, const struct client_env *client,
              struct strv *out);

#endif
