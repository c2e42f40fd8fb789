/* authpolicy.c - parse and evaluate per-tenant authentication requirements;
 * steps of a sequence must be passed in order, as in OpenSSH. */
#include "authpolicy.h"

#include <string.h>

static unsigned method_bit(const char *s, size_t n)
{
	if (n == 9 && !strncmp(s, "publickey", n))
		return AM_PUBLICKEY;
	if (n == 8 && !strncmp(s, "password", n))
		return AM_PASSWORD;
	if (n == 20 && !strncmp(s, "keyboard-interactive", n))
		return AM_KBDINT;
	return 0;
}

int auth_policy_parse(const char *text, struct auth_policy *out, const char **bad)
{
	memset(out, 0, sizeof *out);
	const char *p = text;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (out->nalts == AUTH_MAX_ALTS) {
			*bad = "too many alternatives";
			return -1;
		}
		int a = out->nalts++;
		for (;;) {
			size_t n = strcspn(p, "+ ,\t");
			unsigned bit = method_bit(p, n);
			if (bit == 0) {
				*bad = "unknown method (publickey, password, keyboard-interactive)";
				return -1;
			}
			if (out->nsteps[a] == AUTH_MAX_STEPS) {
				*bad = "too many steps in one alternative";
				return -1;
			}
			for (int i = 0; i < out->nsteps[a]; i++)
				if (out->steps[a][i] == bit) {
					*bad = "a method appears twice in one alternative";
					return -1;
				}
			out->steps[a][out->nsteps[a]++] = bit;
			p += n;
			if (*p != '+')
				break;
			p++;
		}
	}
	if (out->nalts == 0) {
		*bad = "no method given";
		return -1;
	}
	return 0;
}

unsigned auth_policy_next(const struct auth_policy *p, unsigned done)
{
	unsigned next = 0;
	for (int a = 0; a < p->nalts; a++) {
		for (int i = 0; i < p->nsteps[a]; i++) {
			if (done & p->steps[a][i])
				continue;
			/* only if every earlier step of this alternative is done */
			next |= p->steps[a][i];
			break;
		}
	}
	return next;
}

bool auth_policy_complete(const struct auth_policy *p, unsigned done)
{
	for (int a = 0; a < p->nalts; a++) {
		bool all = true;
		for (int i = 0; i < p->nsteps[a]; i++)
			if (!(done & p->steps[a][i]))
				all = false;
		if (all)
			return true;
	}
	return false;
}

unsigned auth_policy_all(const struct auth_policy *p)
{
	unsigned all = 0;
	for (int a = 0; a < p->nalts; a++)
		for (int i = 0; i < p->nsteps[a]; i++)
			all |= p->steps[a][i];
	return all;
}
