/* decide.h - the one egress decision, shared by the egress proxy (HTTP,
 * CONNECT, SOCKS5: proxy.c) and ssh -L/-D/-W (forward.c): the name as the
 * client gave it against the tenant's rules, then each address it resolves
 * to (rules.c). */
#ifndef WARREN_EGRESS_DECIDE_H
#define WARREN_EGRESS_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "rules.h"

/* By name, before resolution: true when allowed, else false with why (one
 * line, for the client and the log: the deciding rule, or the rule that
 * would allow it). */
bool egress_allow_name(const struct egress_rules *rs, const char *host, int port, char *why,
                       size_t len);
/* A resolved address of an allowed name: true when it may be connected,
 * else false with why. local: this host's own addresses (NULL: none). */
bool egress_allow_addr(const struct egress_rules *rs, const struct egress_local *local,
                       const struct sockaddr *sa, int port, char *why, size_t len);

#endif
