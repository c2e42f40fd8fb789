/* egress.h - the per-tenant network allowlist as data: HOST:PORT rules with
 * *.domain wildcards, IP literals and '*' ports; deny rules win; names that
 * resolve to loopback, link-local or private addresses need an IP rule. */
#ifndef WARREN_EGRESS_H
#define WARREN_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define EGRESS_MAX_RULES  64
#define EGRESS_PROXY_PORT 3128 /* inside each sandbox's own network namespace */

struct egress_rule {
	char host[256]; /* lower-case name, "*.suffix", or an IP literal */
	int port;       /* 0 = any */
	bool deny;
	bool is_ip;
	bool wildcard;
	struct sockaddr_storage ip; /* when is_ip */
};

struct egress_rules {
	int n;
	struct egress_rule r[EGRESS_MAX_RULES]; /* r[n] on: unused, need not be set */
};

/* "host:port", "[v6]:port", "*.example.com:443", "1.2.3.4:*". 0 or -1. */
int egress_parse(const char *text, bool deny, struct egress_rule *out);

enum egress_verdict { EGRESS_DENIED, EGRESS_NOT_LISTED, EGRESS_ALLOWED };
/* The request as named by the client (before resolution); *hit (may be
 * NULL) gets the deciding rule, or NULL when none matched. */
enum egress_verdict egress_check_name(const struct egress_rules *rs, const char *host, int port,
                                      const struct egress_rule **hit);
/* "deny = evil.example.com:443", as an operator would write the rule */
void egress_rule_text(const struct egress_rule *r, char *out, size_t len);

/* This host's own interface addresses: a name that resolves to one of
 * them is refused like loopback (it would reach a host service). */
#define EGRESS_MAX_LOCAL 64
struct egress_local {
	int n;
	struct sockaddr_storage a[EGRESS_MAX_LOCAL];
};
int egress_local_load(struct egress_local *l);

/* A resolved address: allowed unless a deny rule names it, or it is
 * special (loopback, link-local, private, IPv4-embedding IPv6, one of
 * local's) and no allow rule names this exact IP. why is set when refused. */
bool egress_check_addr(const struct egress_rules *rs, const struct egress_local *local,
                       const struct sockaddr *sa, int port, const char **why);

bool egress_addr_special(const struct sockaddr *sa);

#endif
