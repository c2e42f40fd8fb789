/* apireq.c - request head rewriting and error replies for the API gateway
 * (see apireq.h). */
#include "apireq.h"
#include "httpframe.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* never passed upstream: hop-by-hop fields, what the gateway sets itself,
 * and every header an API takes a credential in */
static const char *const dropped[] = {
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "accept-encoding",
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "openai-api-key",
    "cookie",
    "x-amz-security-token",
};

static bool is_dropped(const char *name, size_t n, const char *configured)
{
	for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
		if (strlen(dropped[i]) == n && !strncasecmp(name, dropped[i], n))
			return true;
	return strlen(configured) == n && !strncasecmp(name, configured, n);
}

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* "METHOD /target HTTP/1.x"; the length of the line, or -1 */
static long start_line(const char *head, size_t len, struct api_req *r, const char **target,
                       size_t *tlen)
{
	const char *eol = memchr(head, '\n', len);
	if (eol == NULL)
		return -1;
	size_t ll = (size_t)(eol - head);
	if (ll && head[ll - 1] == '\r')
		ll--;
	const char *sp1 = memchr(head, ' ', ll);
	if (sp1 == NULL || sp1 == head || (size_t)(sp1 - head) >= sizeof r->method)
		return -1;
	for (const char *p = head; p < sp1; p++)
		if (!http_tchar(*p))
			return -1;
	const char *t = sp1 + 1, *sp2 = memchr(t, ' ', (size_t)(head + ll - t));
	if (sp2 == NULL || t[0] != '/' || head + ll - sp2 != 9 || strncmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return -1;
	for (const char *p = t; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return -1;
	snprintf(r->method, sizeof r->method, "%.*s", (int)(sp1 - head), head);
	snprintf(r->path, sizeof r->path, "%.*s", (int)(sp2 - t), t);
	r->is_head = !strcmp(r->method, "HEAD");
	r->close = sp2[8] == '0'; /* HTTP/1.0: close unless asked otherwise */
	*target = t;
	*tlen = (size_t)(sp2 - t);
	return (long)(eol + 1 - head);
}

static bool value_has(const char *v, size_t n, const char *word)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i + wl <= n; i++)
		if (!strncasecmp(v + i, word, wl))
			return true;
	return false;
}

/* A Host header, if any, names the endpoint: the loopback (127.0.0.1,
 * localhost, [::1]) and the port the request came in on */
static bool host_is_route(const char *head, size_t len, int port)
{
	const char *v;
	size_t vl;
	if (!http_header(head, len, "Host", &v, &vl))
		return true;
	static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};
	char want[32];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		int n = snprintf(want, sizeof want, "%s:%d", names[i], port);
		if ((size_t)n == vl && !strncasecmp(v, want, vl))
			return true;
	}
	return false;
}

static void host_header(struct out *o, const struct api_target *t)
{
	bool v6 = strchr(t->host, ':') != NULL;
	put(o, "Host: %s%s%s", v6 ? "[" : "", t->host, v6 ? "]" : "");
	if (strcmp(t->port, "443") != 0)
		put(o, ":%s", t->port);
	put(o, "\r\n");
}

long apireq_rewrite(const char *head, size_t len, const struct api_target *t, struct api_req *r,
                    char *outbuf, size_t outlen, const char **why)
{
	memset(r, 0, sizeof *r);
	if ((*why = http_head_check(head, len, true)) != NULL)
		return -1; /* nothing ambiguous reaches the upstream */
	if (t->route_port && !host_is_route(head, len, t->route_port)) {
		*why = "the Host header names another endpoint than this one";
		return -1;
	}
	struct out o = {.p = outbuf, .cap = outlen};
	const char *target;
	size_t tlen;
	long sl = start_line(head, len, r, &target, &tlen);
	if (sl < 0) {
		*why = "expected METHOD /path HTTP/1.1";
		return -1;
	}
	put(&o, "%s %s%.*s HTTP/1.1\r\n", r->method, t->prefix, (int)tlen, target);
	host_header(&o, t);
	const char *line = head + sl, *end = head + len;
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		size_t ll = (size_t)(eol - line);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		const char *colon = memchr(line, ':', ll);
		size_t nl = colon ? (size_t)(colon - line) : 0;
		for (size_t i = 0; i < nl; i++)
			if (!http_tchar(line[i]))
				nl = 0;
		if (nl == 0) {
			*why = "a header line is malformed";
			return -1;
		}
		const char *v = colon + 1;
		size_t vl = (size_t)(line + ll - v);
		if (nl == 10 && !strncasecmp(line, "connection", 10))
			r->close = value_has(v, vl, "close") ||
			           (r->close && !value_has(v, vl, "keep-alive"));
		if (nl == 6 && !strncasecmp(line, "expect", 6) && value_has(v, vl, "100-continue"))
			r->expect_continue = true;
		if (!is_dropped(line, nl, t->header))
			put(&o, "%.*s\r\n", (int)ll, line);
		line = eol + 1;
	}
	put(&o, "%s: %s%s\r\nAccept-Encoding: identity\r\n\r\n", t->header, t->value_prefix,
	    t->key);
	if (o.full) {
		*why = "the request head is too large";
		return -1;
	}
	return (long)o.len;
}

enum api_shape apireq_shape(const char *header)
{
	if (!strcasecmp(header, "x-api-key"))
		return SHAPE_ANTHROPIC;
	if (!strcasecmp(header, "x-goog-api-key"))
		return SHAPE_GOOGLE;
	return SHAPE_OPENAI;
}

static const char *reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static const char *anthropic_type(int status)
{
	return status == 429                    ? "rate_limit_error"
	       : status == 400 || status == 431 ? "invalid_request_error"
	                                        : "api_error";
}

static json_object *error_object(enum api_shape shape, int status, const char *message)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();
	json_object_object_add(e, "message", json_object_new_string(message));
	if (shape == SHAPE_ANTHROPIC) {
		json_object_object_add(o, "type", json_object_new_string("error"));
		json_object_object_add(e, "type", json_object_new_string(anthropic_type(status)));
	} else if (shape == SHAPE_GOOGLE) {
		json_object_object_add(e, "code", json_object_new_int(status));
		json_object_object_add(
		    e, "status",
		    json_object_new_string(status == 429 ? "RESOURCE_EXHAUSTED" : "UNAVAILABLE"));
	} else {
		json_object_object_add(
		    e, "type",
		    json_object_new_string(status == 429 ? "insufficient_quota" : "api_error"));
		json_object_object_add(
		    e, "code",
		    json_object_new_string(status == 429 ? "warren_budget" : "warren_gateway"));
	}
	json_object_object_add(o, "error", e);
	return o;
}

size_t apireq_error(enum api_shape shape, int status, const char *message, bool close, char *out,
                    size_t len)
{
	json_object *o = error_object(shape, status, message);
	const char *body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	/* x-should-retry: the Anthropic and OpenAI SDKs then do not retry a
	 * budget refusal (it will not change before the next UTC day) */
	int n = snprintf(out, len,
	                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n%s%s\r\n%s",
	                 status, reason(status), strlen(body),
	                 status == 429 ? "x-should-retry: false\r\n" : "",
	                 close ? "Connection: close\r\n" : "", body);
	json_object_put(o);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}
