/* env.c - environment allowlist for sandboxed sessions (OpenSSH's
 * do_setup_env + AcceptEnv, with bounds on what a client may send). */
#include "env.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const allowed_exact[] = {"LANG", "LANGUAGE", "TZ", "COLORTERM", "NO_COLOR"};

int env_name_allowed(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > ENV_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	if (strncmp(name, "LC_", 3) == 0 && n > 3)
		return 1;
	for (size_t i = 0; i < sizeof allowed_exact / sizeof allowed_exact[0]; i++)
		if (strcmp(name, allowed_exact[i]) == 0)
			return 1;
	return 0;
}

int env_client_add(struct client_env *e, const char *name, const char *value)
{
	if (!env_name_allowed(name))
		return -EPERM;
	if (strlen(value) > ENV_MAX_VALUE || strchr(value, '\n'))
		return -E2BIG;
	for (int i = 0; i < e->n; i++)
		if (strcmp(e->name[i], name) == 0) {
			char *v = strdup(value);
			if (v == NULL)
				return -ENOMEM;
			free(e->value[i]);
			e->value[i] = v;
			return 0;
		}
	if (e->n == ENV_MAX_CLIENT_VARS)
		return -E2BIG;
	char *n = strdup(name), *v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	e->name[e->n] = n;
	e->value[e->n++] = v;
	return 0;
}

void env_client_free(struct client_env *e)
{
	for (int i = 0; i < e->n; i++) {
		free(e->name[i]);
		free(e->value[i]);
	}
	e->n = 0;
}

int env_build(const struct session_env_info *in, const struct client_env *client, struct strv *out)
{
	for (int i = 0; in->extra && in->extra[i]; i++)
		strv_add(out, in->extra[i]);
	for (int i = 0; client && i < client->n; i++) {
		if (!env_name_allowed(client->name[i]))
			continue;
		bool dup = false; /* the profile's value wins over the client's */
		size_t l = strlen(client->name[i]);
		for (int j = 0; in->extra && in->extra[j]; j++)
			if (!strncmp(in->extra[j], client->name[i], l) && in->extra[j][l] == '=')
				dup = true;
		if (!dup)
			strv_addf(out, "%s=%s", client->name[i], client->value[i]);
	}
	strv_addf(out, "HOME=%s", in->home);
	strv_addf(out, "USER=%s", in->user);
	strv_addf(out, "LOGNAME=%s", in->user);
	strv_addf(out, "SHELL=%s", in->shell);
	strv_addf(out, "PATH=%s", in->path);
	if (in->term && in->term[0])
		strv_addf(out, "TERM=%s", in->term);
	if (in->ssh_connection) {
		strv_addf(out, "SSH_CONNECTION=%s", in->ssh_connection);
		/* SSH_CLIENT is "client port server-port" */
		char buf[128];
		const char *s = in->ssh_connection;
		const char *sp1 = strchr(s, ' ');
		const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		const char *sp3 = sp2 ? strchr(sp2 + 1, ' ') : NULL;
		if (sp3 && (size_t)(sp2 - s) < sizeof buf - 8) {
			memcpy(buf, s, (size_t)(sp2 - s));
			buf[sp2 - s] = '\0';
			strv_addf(out, "SSH_CLIENT=%s%s", buf, sp3);
		}
	}
	return out->oom ? -ENOMEM : 0;
}
