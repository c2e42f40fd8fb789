/* apireq.h - what the API gateway changes in a tenant's request before it
 * goes upstream: the start line gets the upstream's path prefix, Host names
 * the upstream, every credential and hop-by-hop header the tenant sent is
 * dropped and the configured credential is added. Also the gateway's own
 * replies (errors, 429 over budget) in the API's error shape. Pure. */
#ifndef WARREN_APIREQ_H
#define WARREN_APIREQ_H

#include <stdbool.h>
#include <stddef.h>

struct api_target {
	const char *host, *port; /* upstream; port "443" is left out of Host */
	const char *prefix;      /* path prefix, "" or "/v1" */
	const char *header;      /* credential header name */
	const char *value_prefix;
	const char *key;
	int route_port; /* the endpoint the request came in on (127.0.0.1:PORT): a Host
	                 * header names it, or the request is refused; 0: not checked */
};

struct api_req {
	char method[16];
	char path[160]; /* the tenant's target, cut for the audit line */
	bool expect_continue;
	bool close; /* the client asked for the connection to end */
	bool is_head;
};

/* head: the tenant's request head through its empty line. Writes the
 * upstream's head to out; its length, or -1 with *why (one line for a 400). */
long apireq_rewrite(const char *head, size_t len, const struct api_target *t, struct api_req *r,
                    char *out, size_t outlen, const char **why);

enum api_shape { SHAPE_ANTHROPIC, SHAPE_OPENAI, SHAPE_GOOGLE };
/* the error shape of the API whose credential header is `header` */
enum api_shape apireq_shape(const char *header);

/* a whole HTTP/1.1 response with a JSON error body; its length (cut to len) */
size_t apireq_error(enum api_shape shape, int status, const char *message, bool close, char *out,
                    size_t len);

#endif
