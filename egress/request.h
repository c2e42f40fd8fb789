/* request.h - the egress proxy's request parsing, pure (no I/O): an HTTP
 * proxy request head (CONNECT HOST:PORT, or a request for an absolute
 * http:// URI) and SOCKS5's greeting and CONNECT request. proxy.c feeds it
 * what a sandbox sent; tests/fuzz/fuzz_proxy.c links it alone. */
#ifndef WARREN_EGRESS_REQUEST_H
#define WARREN_EGRESS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

enum egress_req_kind { EREQ_HTTP = 1, EREQ_CONNECT, EREQ_SOCKS };

struct egress_req {
	int kind;
	char host[256]; /* a name or an IP literal, plain (egress_host_ok) */
	int port;
	/* EREQ_HTTP and EREQ_CONNECT */
	char method[16], target[2048], version[16];
	/* EREQ_HTTP: the URI's authority (HOST[:PORT]) and what follows it,
	 * both into target */
	const char *authority;
	size_t authority_len;
	const char *path;     /* "/..." or "?..." (send "/" first), or "" */
	const char *headers;  /* the first header line, into the head */
	const char *head_end; /* the final "\r\n\r\n", into the head */
};

/* A complete head (NUL-terminated, holding "\r\n\r\n"): 0 with r filled,
 * or -1 with *why, for a 400 to the client. */
int egress_parse_http(const char *head, struct egress_req *r, const char **why);

/* SOCKS5, as bytes arrive. The greeting: 0 need more; else the bytes it
 * took, with *noauth (the client offered "no authentication"). */
size_t egress_socks_greeting(const unsigned char *h, size_t len, bool *noauth);
/* The request: 0 need more; -1 refused (*why); else the bytes it took,
 * with r's host and port. */
long egress_socks_request(const unsigned char *h, size_t len, struct egress_req *r,
                          const char **why);

/* An absolute-URI request's Host header (value v, n bytes) names what its
 * target does: the same host (any case) and port (80 when unsaid). */
bool egress_host_matches(const struct egress_req *r, const char *v, size_t n);

/* A header that never goes upstream: hop-by-hop and proxy headers, and
 * Host (set to the target). */
bool egress_hop_header(const char *line, size_t len);
/* A name or IP literal only: what reaches logs, audit and DNS is plain. */
bool egress_host_ok(const char *host);

#endif
