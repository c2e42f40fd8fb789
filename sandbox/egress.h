/* egress.h - the per-tenant network allowlist as data: HOST:PORT rules with
 * *.domain wildcards, IP literals and '*' ports; deny rules win; names that
 * resolve to loopback, link-local or private addresses need an IP rule. */
#ifndef WARREN_EGRESS_H
#define WARREN_EGRESS_H

#include <stdbool.h>
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
	struct egress_rule r[EGRESS_MAX_RULES];
	int n;
};

/* "host:port", "[v6]:port", "*.example.com:443", "1.2.3.4:*". 0 or -1. */
int egress_parse(const char *text, bool deny, struct egress_rule *out);

enum egress_verdict { EGRESS_DENIED, EGRESS_NOT_LISTED, EGRESS_ALLOWED };
/* The request as named by the client (before resolution). */
enum egress_verdict egress_check_name(const struct egress_rules *rs, const char *host, int port);

/* A resolved address: allowed unless a deny rule names it, or it is
 * special (loopback, link-local, private, ...) and no allow rule names this
 * exact IP. why is set when refused. */
bool egress_check_addr(const struct egress_rules *rs, const struct sockaddr *sa, int port,
                       const char **why);

bool egress_addr_special(const struct sockaddr *sa);

#endif
