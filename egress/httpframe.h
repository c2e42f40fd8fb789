/* httpframe.h - the part of HTTP/1.1 (RFC 9112) the egress proxy must know:
 * one header's value in a head, and where a message's body ends
 * (Content-Length, chunked, or the connection's close), so a relay stops at
 * the end of one request and never carries a second one to the first's
 * upstream. Pure functions; fuzzed. */
#ifndef WARREN_HTTPFRAME_H
#define WARREN_HTTPFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of header `name` in head (request or status line first, lines
 * ending CRLF, up to the empty line), trimmed; false when absent. */
bool http_header(const char *head, size_t len, const char *name, const char **val, size_t *vlen);

/* A complete head (len bytes up to and with its empty line) as RFC 9112
 * has it, strictly: every line ends CRLF, with no CR, LF, NUL or other
 * control character (but HTAB) elsewhere; no obs-fold; field names are
 * tokens followed at once by ':'; a request has at most one Host; at most
 * one Content-Length (digits) and
 * at most one Transfer-Encoding, never both; a Transfer-Encoding ends in
 * chunked (a request's is exactly chunked). NULL, or why not: what a 400
 * says. Nothing that fails it is forwarded. */
const char *http_head_check(const char *head, size_t len, bool request);

/* a token character (RFC 9110 tchar): what methods and field names are made of */
bool http_tchar(char ch);

enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE };

struct body_scan {
	enum body_kind kind;
	uint64_t left; /* BODY_LENGTH: bytes to go; chunked: of the current chunk */
	int cstate;    /* chunked: where in the chunk syntax */
	bool done;
	/* optional, set after http_body_init: called with the payload bytes
	 * (chunk syntax removed) as they are fed */
	void (*on_data)(void *ud, const char *p, size_t n);
	void *ud;
};

/* From a head: 0, or -1 when the framing is invalid (two lengths that
 * differ, a length that is no number, chunked not last). status is 0 for a
 * request; no_body for a response to HEAD. */
int http_body_init(struct body_scan *b, const char *head, size_t len, int status, bool no_body);

/* Of len body bytes at p, how many belong to this message (the rest is the
 * next one); sets done at its end. -1 on a malformed chunked body. */
long http_body_feed(struct body_scan *b, const char *p, size_t len);

#endif
