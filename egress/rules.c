/* egress.c - allowlist matching for the egress proxy; pure functions. */
#include "rules.h"

#include "../sandbox/hostport.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_ip(const char *s, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

int egress_parse(const char *text, bool deny, struct egress_rule *out)
{
	memset(out, 0, sizeof *out);
	out->deny = deny;
	const char *port;
	size_t plen;
	if (hostport_split(text, strlen(text), out->host, sizeof out->host, &port, &plen) < 0 ||
	    port == NULL)
		return -1;
	for (char *c = out->host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (plen == 1 && port[0] == '*')
		out->port = 0;
	else if ((out->port = hostport_port(port, plen)) < 0)
		return -1;
	if (parse_ip(out->host, &out->ip)) {
		out->is_ip = true;
		return 0;
	}
	if (!strncmp(out->host, "*.", 2)) {
		out->wildcard = true;
		if (!out->host[2] || strchr(out->host + 2, '*'))
			return -1;
	} else if (strchr(out->host, '*')) {
		return -1;
	}
	for (const char *c = out->host + (out->wildcard ? 2 : 0); *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '.' || *c == '_'))
			return -1;
	return 0;
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (a->ss_family == AF_INET)
		return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		               &((const struct sockaddr_in *)b)->sin_addr, 4);
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	               &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

static bool name_matches(const struct egress_rule *r, const char *host)
{
	if (r->is_ip) {
		struct sockaddr_storage ip;
		return parse_ip(host, &ip) && same_ip(&r->ip, (struct sockaddr *)&ip);
	}
	if (r->wildcard) {
		const char *suffix = r->host + 1; /* ".example.com" */
		size_t hl = strlen(host), sl = strlen(suffix);
		return hl > sl && !strcasecmp(host + hl - sl, suffix);
	}
	return !strcasecmp(r->host, host);
}

enum egress_verdict egress_check_name(const struct egress_rules *rs, const char *host, int port,
                                      const struct egress_rule **hit)
{
	const struct egress_rule *allowed = NULL;
	for (int i = 0; i < rs->n; i++) {
		const struct egress_rule *r = &rs->r[i];
		if ((r->port && r->port != port) || !name_matches(r, host))
			continue;
		if (r->deny) {
			if (hit)
				*hit = r;
			return EGRESS_DENIED; /* deny wins */
		}
		if (!allowed)
			allowed = r;
	}
	if (hit)
		*hit = allowed;
	return allowed ? EGRESS_ALLOWED : EGRESS_NOT_LISTED;
}

void egress_rule_text(const struct egress_rule *r, char *out, size_t len)
{
	char port[8] = "*";
	if (r->port)
		snprintf(port, sizeof port, "%d", r->port);
	bool v6 = strchr(r->host, ':') != NULL;
	snprintf(out, len, "%s = %s%s%s:%s", r->deny ? "deny" : "allow", v6 ? "[" : "", r->host,
	         v6 ? "]" : "", port);
}

int egress_local_load(struct egress_local *l)
{
	struct ifaddrs *ifs;
	l->n = 0;
	if (getifaddrs(&ifs) < 0)
		return -1;
	for (struct ifaddrs *i = ifs; i && l->n < EGRESS_MAX_LOCAL; i = i->ifa_next) {
		if (!i->ifa_addr ||
		    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		size_t sz = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                              : sizeof(struct sockaddr_in6);
		memset(&l->a[l->n], 0, sizeof l->a[0]);
		memcpy(&l->a[l->n++], i->ifa_addr, sz);
	}
	freeifaddrs(ifs);
	return 0;
}

/* IPv6 forms that carry an IPv4 address a gateway may turn into a v4
 * connection: IPv4-compatible ::a.b.c.d (::/96), NAT64 64:ff9b::/96 and
 * 64:ff9b:1::/48, 6to4 2002::/16. Refused like private space: the v4 inside
 * could be anything. */
static bool v6_embeds_v4(const struct in6_addr *a)
{
	static const unsigned char zero[12], nat64[12] = {0, 0x64, 0xff, 0x9b};
	static const unsigned char nat64l[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
	return !memcmp(a->s6_addr, zero, 12) || !memcmp(a->s6_addr, nat64, 12) ||
	       !memcmp(a->s6_addr, nat64l, 6) || (a->s6_addr[0] == 0x20 && a->s6_addr[1] == 0x02);
}

bool egress_addr_special(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
		       (a >> 16) == 0xa9fe ||             /* 169.254/16 link-local */
		       (a >> 20) == 0xac1 ||              /* 172.16/12 */
		       (a >> 16) == 0xc0a8 ||             /* 192.168/16 */
		       (a >> 22) == (0x64400000 >> 22) || /* 100.64/10 shared */
		       (a >> 28) >= 0xe;                  /* multicast, reserved */
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			struct sockaddr_in v4 = {.sin_family = AF_INET};
			memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
			return egress_addr_special((struct sockaddr *)&v4);
		}
		return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
		       IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
		       (a->s6_addr[0] & 0xfe) == 0xfc || /* fc00::/7 unique local */
		       v6_embeds_v4(a);
	}
	return true;
}

static bool is_local(const struct egress_local *l, const struct sockaddr *sa)
{
	for (int i = 0; l && i < l->n; i++)
		if (same_ip(&l->a[i], sa))
			return true;
	return false;
}

bool egress_check_addr(const struct egress_rules *rs, const struct egress_local *local,
                       const struct sockaddr *sa, int port, const char **why)
{
	bool ip_allowed = false;
	for (int i = 0; i < rs->n; i++) {
		const struct egress_rule *r = &rs->r[i];
		if (!r->is_ip || (r->port && r->port != port) || !same_ip(&r->ip, sa))
			continue;
		if (r->deny) {
			*why = "address denied by rule";
			return false;
		}
		ip_allowed = true;
	}
	if (egress_addr_special(sa) && !ip_allowed) {
		*why = "resolves to a loopback, link-local, private or IPv4-embedding address "
		       "(allow it by IP)";
		return false;
	}
	if (is_local(local, sa) && !ip_allowed) {
		*why = "resolves to one of this host's own addresses (allow it by IP)";
		return false;
	}
	return true;
}
