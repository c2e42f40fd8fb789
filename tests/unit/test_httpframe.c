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

#define CHECK(h, req) http_head_check((h), strlen(h), (req))

/* RFC 9112, strictly: what an attacker sends to make the gateway and a
 * lenient upstream disagree on where a message ends is refused */
static void strict_heads(void **state)
{
	(void)state;
	assert_null(CHECK("POST /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", true));
	assert_null(CHECK("POST /v1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", true));
	assert_null(CHECK("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false));
	assert_string_equal(
	    CHECK("GET / HTTP/1.1\r\nX-Note: a\rTransfer-Encoding: chunked\r\n\r\n", true),
	    "a bare CR or NUL in the head");
	assert_string_equal(CHECK("GET / HTTP/1.1\r\nX-A: 1\nHost: evil\r\n\r\n", true),
	                    "a line does not end in CRLF");
	assert_string_equal(CHECK("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n", true),
	                    "obsolete line folding");
	assert_string_equal(CHECK("GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n", true),
	                    "a header field name is invalid");
	assert_string_equal(CHECK("GET / HTTP/1.1\r\nX-A : 1\r\n\r\n", true),
	                    "a header field name is invalid");
	assert_string_equal(CHECK("GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", true),
	                    "a control character in a header");
	assert_string_equal(CHECK("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n",
	                          true),
	                    "both Content-Length and Transfer-Encoding");
	assert_string_equal(
	    CHECK("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", true),
	    "more than one Content-Length");
	assert_string_equal(CHECK("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n",
	                          true),
	                    "more than one Transfer-Encoding");
	assert_string_equal(
	    CHECK("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true),
	    "a Transfer-Encoding other than chunked");
	assert_string_equal(CHECK("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", true),
	                    "more than one Host");
	assert_null(CHECK("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\n\r\n", false));
	assert_string_equal(CHECK("GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", true),
	                    "bytes after the head's end");
	const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
	assert_string_equal(http_head_check(nul, sizeof nul - 1, true),
	                    "a bare CR or NUL in the head");
}

/* chunk extensions and trailers end in CRLF and hold no control bytes */
static const char chunked_head[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";

static void strict_chunks(void **state)
{
	(void)state;
	const char *bad[] = {"5;x\ny\r\nhello\r\n0\r\n\r\n", "5;a\x01\r\nhello\r\n0\r\n\r\n",
	                     "5\r\nhello\r\n0\r\nX-T: 1\n\r\n", "zz\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct body_scan b;
		assert_int_equal(
		    http_body_init(&b, chunked_head, sizeof chunked_head - 1, 0, false), 0);
		assert_int_equal(http_body_feed(&b, bad[i], strlen(bad[i])), -1);
	}
	struct body_scan b;
	const char *good = "5;name=val\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
	http_body_init(&b, chunked_head, sizeof chunked_head - 1, 0, false);
	assert_int_equal(http_body_feed(&b, good, strlen(good)), (long)strlen(good));
	assert_true(b.done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(headers),
	    cmocka_unit_test(lengths),
	    cmocka_unit_test(chunks_whole_and_bytewise),
	    cmocka_unit_test(relay_accounting),
	    cmocka_unit_test(strict_heads),
	    cmocka_unit_test(strict_chunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
