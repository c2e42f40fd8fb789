/* test_httpframe.c - header lookup and body framing of HTTP/1.1 messages,
 * fed whole and byte by byte, as the proxy's recv() may hand them over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../egress/httpframe.h"
#include "../../egress/relay.h"

#define HEAD(s) (s), strlen(s)

static void headers(void **state)
{
	(void)state;
	const char *h = "POST /x HTTP/1.1\r\nHost: a\r\ncontent-length:  42 \r\nX: y\r\n\r\nbody";
	const char *v;
	size_t n;
	assert_true(http_header(HEAD(h), "Content-Length", &v, &n));
	assert_int_equal(n, 2);
	assert_memory_equal(v, "42", 2);
	assert_false(http_header(HEAD(h), "Transfer-Encoding", &v, &n));
	/* the start line is no header, and nothing past the empty line counts */
	assert_false(http_header(HEAD("Host: evil\r\n\r\n"), "Host", &v, &n));
	assert_false(http_header(HEAD("GET / HTTP/1.1\r\n\r\nHost: x\r\n"), "Host", &v, &n));
}

static void lengths(void **state)
{
	(void)state;
	struct body_scan b;
	assert_int_equal(
	    http_body_init(&b, HEAD("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), 0, false), 0);
	assert_int_equal(b.kind, BODY_LENGTH);
	assert_int_equal(http_body_feed(&b, "abcdefgh", 8), 5); /* the rest is the next request */
	assert_true(b.done);
	assert_int_equal(http_body_init(&b, HEAD("GET / HTTP/1.1\r\n\r\n"), 0, false), 0);
	assert_true(b.done); /* a request without framing has no body */
	assert_int_equal(http_body_init(&b, HEAD("HTTP/1.1 200 OK\r\n\r\n"), 200, false), 0);
	assert_int_equal(b.kind, BODY_UNTIL_CLOSE);
	assert_int_equal(
	    http_body_init(&b, HEAD("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"), 200, true), 0);
	assert_true(b.done); /* the answer to HEAD */
	assert_int_equal(http_body_init(&b, HEAD("HTTP/1.1 304 Not Modified\r\n\r\n"), 304, false),
	                 0);
	assert_true(b.done);
	/* ambiguous framing is refused, not guessed */
	assert_int_equal(
	    http_body_init(&b, HEAD("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), 0, false),
	    -1);
	assert_int_equal(
	    http_body_init(&b, HEAD("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 0, false),
	    -1);
	assert_int_equal(http_body_init(&b,
	                                HEAD("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
	                                0, false),
	                 -1);
}

static const char chunked[] = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                              "0\r\nTrailer: x\r\n\r\n";

static void chunks_whole_and_bytewise(void **state)
{
	(void)state;
	struct body_scan b;
	const char *h = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
	assert_int_equal(http_body_init(&b, HEAD(h), 0, false), 0);
	assert_int_equal(b.kind, BODY_CHUNKED);
	char msg[200];
	snprintf(msg, sizeof msg, "%sGET /next", chunked);
	assert_int_equal(http_body_feed(&b, msg, strlen(msg)), (long)strlen(chunked));
	assert_true(b.done);
	assert_int_equal(http_body_init(&b, HEAD(h), 0, false), 0);
	size_t total = 0;
	for (size_t i = 0; i < strlen(msg) && !b.done; i++)
		total += (size_t)http_body_feed(&b, msg + i, 1);
	assert_int_equal(total, strlen(chunked));
	assert_true(b.done);
	assert_int_equal(http_body_init(&b, HEAD(h), 0, false), 0);
	assert_int_equal(http_body_feed(&b, "zz\r\n", 4), -1); /* not hex */
}

static void relay_accounting(void **state)
{
	(void)state;
	struct relay r;
	assert_int_equal(relay_init(&r, 16), 0);
	assert_int_equal(relay_put(&r, "OK", 2, false), 0); /* warren's own: not counted */
	assert_int_equal(relay_put(&r, "0123456789", 10, true), 0);
	assert_int_equal(relay_room(&r), 4);
	assert_int_equal(relay_put(&r, "toolong", 7, true), -1);
	relay_unput(&r, 3);
	assert_int_equal(relay_pending(&r), 9);
	/* growing keeps the pending bytes, in order, and adds room */
	assert_int_equal(relay_grow(&r, 64), 0);
	assert_int_equal(relay_pending(&r), 9);
	assert_int_equal(relay_room(&r), 55);
	assert_int_equal(relay_put(&r, "toolong", 7, true), 0);
	assert_memory_equal(r.buf + r.off, "OK0123456toolong", 16);
	assert_int_equal(relay_grow(&r, 8), 0); /* never shrinks */
	assert_int_equal(r.cap, 64);
	relay_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(headers),
	    cmocka_unit_test(lengths),
	    cmocka_unit_test(chunks_whole_and_bytewise),
	    cmocka_unit_test(relay_accounting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
