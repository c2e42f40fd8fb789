/* authpolicy.h - which authentication methods a tenant must pass, OpenSSH
 * AuthenticationMethods style: alternatives separated by spaces or commas,
 * each a sequence joined with '+', e.g. "publickey+keyboard-interactive password". */
#ifndef WARREN_AUTHPOLICY_H
#define WARREN_AUTHPOLICY_H

#include <stdbool.h>

enum { AM_PUBLICKEY = 1, AM_PASSWORD = 2, AM_KBDINT = 4 };

#define AUTH_MAX_ALTS  8
#define AUTH_MAX_STEPS 4

struct auth_policy {
	int nalts;
	int nsteps[AUTH_MAX_ALTS];
	unsigned steps[AUTH_MAX_ALTS][AUTH_MAX_STEPS];
};

/* 0, or -1 with *bad pointing at a static description of the problem. */
int auth_policy_parse(const char *text, struct auth_policy *out, const char **bad);
/* Methods that may be attempted next, given those already passed. */
unsigned auth_policy_next(const struct auth_policy *p, unsigned done);
/* true once every step of one alternative has been passed */
bool auth_policy_complete(const struct auth_policy *p, unsigned done);
/* union of every method named anywhere */
unsigned auth_policy_all(const struct auth_policy *p);

#endif
