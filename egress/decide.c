/* decide.c - the egress decision (see decide.h); pure. */
#include "decide.h"

#include <stdio.h>

bool egress_allow_name(const struct egress_rules *rs, const char *host, int port, char *why,
                       size_t len)
{
	const struct egress_rule *hit = NULL;
	char rule[300];
	switch (egress_check_name(rs, host, port, &hit)) {
	case EGRESS_DENIED:
		egress_rule_text(hit, rule, sizeof rule);
		snprintf(why, len, "denied by the rule \"%s\"", rule);
		return false;
	case EGRESS_NOT_LISTED:
		snprintf(why, len,
		         "not in this tenant's allowlist (no \"allow = %s:%d\" or wider rule)",
		         host, port);
		return false;
	case EGRESS_ALLOWED:
		break;
	}
	return true;
}

bool egress_allow_addr(const struct egress_rules *rs, const struct egress_local *local,
                       const struct sockaddr *sa, int port, char *why, size_t len)
{
	const char *refused = NULL;
	if (egress_check_addr(rs, local, sa, port, &refused))
		return true;
	snprintf(why, len, "%s", refused ? refused : "refused");
	return false;
}
