/* hostport.h - split "host:port" and "[v6]:port" the same way everywhere:
 * listen addresses, egress rules and proxy requests. */
#ifndef WARREN_HOSTPORT_H
#define WARREN_HOSTPORT_H

#include <stddef.h>

/* Splits the first len bytes of s into host (NUL-terminated, without
 * brackets) and port, portlen (the text after the colon; NULL when there
 * is no colon). Returns 0, or -1 for an empty or oversized host, an
 * unclosed bracket, or text after ']' that is not ":port". */
int hostport_split(const char *s, size_t len, char *host, size_t hostlen, const char **port,
                   size_t *portlen);

/* A decimal port 1..65535 of exactly len bytes, or -1. */
int hostport_port(const char *p, size_t len);

#endif
