/* test_api.c - the API gateway's pure parts: the request head it sends
 * upstream (credentials replaced, hop-by-hop dropped, prefix added), its
 * error replies, and usage metering of JSON and SSE responses fed whole,
 * byte by byte, and de-chunked through the body framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../egress/apimeter.h"
#include "../../egress/apireq.h"
#include "../../egress/httpframe.h"

static const struct api_target T = {.host = "api.example.com",
                                    .port = "443",
                                    .prefix = "/v1",
                                    .header = "x-api-key",
                                    .value_prefix = "",
                                    .key = "REAL-KEY"};

static long rewrite(const char *head, struct api_req *r, char *out, size_t len, const char **why)
{
	return apireq_rewrite(head, strlen(head), &T, r, out, len, why);
}

static void credentials_replaced(void **state)
{
	(void)state;
	char out[4096];
	struct api_req r;
	const char *why = NULL;
	long n = rewrite("POST /messages?beta=1 HTTP/1.1\r\nHost: 127.0.0.1:3130\r\n"
	                 "X-Api-Key: placeholder\r\nAuthorization: Bearer stolen\r\n"
	                 "x-goog-api-key: g\r\nProxy-Authorization: p\r\nCookie: c\r\n"
	                 "Accept-Encoding: gzip, br\r\nConnection: keep-alive\r\n"
	                 "anthropic-version: 2023-06-01\r\nContent-Length: 2\r\n\r\n",
	                 &r, out, sizeof out, &why);
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "POST /v1/messages?beta=1 HTTP/1.1\r\n"
	                         "Host: api.example.com\r\n"
	                         "anthropic-version: 2023-06-01\r\nContent-Length: 2\r\n"
	                         "x-api-key: REAL-KEY\r\nAccept-Encoding: identity\r\n\r\n");
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/messages?beta=1");
	assert_false(r.close);
	assert_false(r.expect_continue);
}

static void bearer_and_port(void **state)
{
	(void)state;
	struct api_target t = T;
	t.header = "Authorization";
	t.value_prefix = "Bearer ";
	t.port = "8443";
	t.prefix = "";
	char out[1024];
	struct api_req r;
	const char *why;
	const char *h = "GET /models HTTP/1.0\r\nauthorization: x\r\nExpect: 100-continue\r\n\r\n";
	long n = apireq_rewrite(h, strlen(h), &t, &r, out, sizeof out, &why);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "GET /models HTTP/1.1\r\nHost: api.example.com:8443\r\n"));
	assert_non_null(strstr(out, "Authorization: Bearer REAL-KEY\r\n"));
	assert_null(strstr(out, "authorization: x"));
	assert_null(strstr(out, "Expect"));
	assert_true(r.close); /* HTTP/1.0 without keep-alive */
	assert_true(r.expect_continue);
}

static void bad_heads(void **state)
{
	(void)state;
	char out[1024];
	struct api_req r;
	const char *why;
	const char *bad[] = {
	    "GARBAGE\r\n\r\n",
	    "GET http://evil/ HTTP/1.1\r\n\r\n", /* absolute form: not a proxy */
	    "GET / HTTP/2.0\r\n\r\n",
	    "GET /a b HTTP/1.1\r\n\r\n",
	    "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
	    "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
	    "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
	    "G\x01T / HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		assert_int_equal(rewrite(bad[i], &r, out, sizeof out, &why), -1);
		assert_non_null(why);
	}
	/* a head that does not fit is refused, never cut */
	char small[40];
	assert_int_equal(rewrite("GET / HTTP/1.1\r\nX: y\r\n\r\n", &r, small, sizeof small, &why),
	                 -1);
}

static void error_shapes(void **state)
{
	(void)state;
	char out[1024];
	size_t n = apireq_error(SHAPE_ANTHROPIC, 429, "over \"budget\"\n", false, out, sizeof out);
	assert_true(n > 0 && n < sizeof out);
	assert_non_null(strstr(out, "HTTP/1.1 429 Too Many Requests\r\n"));
	assert_non_null(strstr(out, "x-should-retry: false\r\n"));
	assert_non_null(
	    strstr(out, "{\"type\":\"error\",\"error\":{\"message\":\"over \\\"budget\\\"\\n\","
	                "\"type\":\"rate_limit_error\"}}"));
	char *body = strstr(out, "\r\n\r\n") + 4;
	char want[64];
	snprintf(want, sizeof want, "Content-Length: %zu\r\n", strlen(body));
	assert_non_null(strstr(out, want));
	apireq_error(SHAPE_OPENAI, 429, "m", true, out, sizeof out);
	assert_non_null(strstr(out, "\"insufficient_quota\""));
	assert_non_null(strstr(out, "Connection: close\r\n"));
	apireq_error(SHAPE_GOOGLE, 429, "m", false, out, sizeof out);
	assert_non_null(strstr(out, "\"RESOURCE_EXHAUSTED\""));
	assert_int_equal(apireq_shape("X-API-KEY"), SHAPE_ANTHROPIC);
	assert_int_equal(apireq_shape("authorization"), SHAPE_OPENAI);
	assert_int_equal(apireq_shape("x-goog-api-key"), SHAPE_GOOGLE);
}

static const char SSE[] =
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":"
    "{\"input_tokens\":1500,\"cache_read_input_tokens\":700,"
    "\"cache_creation_input_tokens\":30,\"output_tokens\":1}}}\r\n\r\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"usage: {\\\"output_tokens\\\": "
    "999}\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static void check_sse(const struct api_usage *u)
{
	assert_true(u->seen);
	assert_string_equal(u->model, "claude-x");
	assert_int_equal(u->input, 1500);
	assert_int_equal(u->output, 42);
	assert_int_equal(u->cache_read, 700);
	assert_int_equal(u->cache_creation, 30);
}

static void sse_whole_and_bytewise(void **state)
{
	(void)state;
	struct api_meter m;
	apimeter_init(&m, "text/event-stream; charset=utf-8", 32);
	apimeter_feed(&m, SSE, strlen(SSE));
	apimeter_finish(&m);
	check_sse(&m.u);
	apimeter_free(&m);
	apimeter_init(&m, "text/event-stream", 17);
	for (size_t i = 0; i < strlen(SSE); i++)
		apimeter_feed(&m, SSE + i, 1);
	apimeter_finish(&m);
	check_sse(&m.u);
	apimeter_free(&m);
}

static void meter_cb(void *ud, const char *p, size_t n)
{
	apimeter_feed(ud, p, n);
}

/* chunk boundaries inside a data line: the meter sees the payload only */
static void sse_through_chunked_framing(void **state)
{
	(void)state;
	char body[4096];
	size_t len = 0, total = strlen(SSE);
	for (size_t off = 0; off < total; off += 37) {
		size_t k = total - off < 37 ? total - off : 37;
		len += (size_t)snprintf(body + len, sizeof body - len, "%zx\r\n%.*s\r\n", k, (int)k,
		                        SSE + off);
	}
	len += (size_t)snprintf(body + len, sizeof body - len, "0\r\n\r\n");
	const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct body_scan b;
	struct api_meter m;
	assert_int_equal(http_body_init(&b, head, strlen(head), 200, false), 0);
	apimeter_init(&m, "text/event-stream", 17);
	b.on_data = meter_cb;
	b.ud = &m;
	for (size_t i = 0; i < len; i += 5)
		assert_true(http_body_feed(&b, body + i, len - i < 5 ? len - i : 5) >= 0);
	assert_true(b.done);
	apimeter_finish(&m);
	check_sse(&m.u);
	apimeter_free(&m);
}

static void json_bodies(void **state)
{
	(void)state;
	struct api_meter m;
	const char *anth = "{\"id\":\"m\",\"model\":\"claude-y\",\"content\":[{\"type\":\"text\","
	                   "\"text\":\"hi\"}],\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}";
	apimeter_init(&m, "application/json", 16);
	for (size_t i = 0; i < strlen(anth); i += 3)
		apimeter_feed(&m, anth + i, strlen(anth) - i < 3 ? strlen(anth) - i : 3);
	apimeter_finish(&m);
	assert_string_equal(m.u.model, "claude-y");
	assert_int_equal(m.u.input, 10);
	assert_int_equal(m.u.output, 5);
	apimeter_free(&m);
	struct api_usage u = {0};
	const char *oai =
	    "{\"model\":\"gpt-z\",\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":2}}}";
	apimeter_json(&u, oai, strlen(oai));
	assert_true(u.seen);
	assert_string_equal(u.model, "gpt-z");
	assert_int_equal(u.input, 7);
	assert_int_equal(u.output, 3);
	assert_int_equal(u.cache_read, 2);
	struct api_usage g = {0};
	const char *gem =
	    "{\"modelVersion\":\"gemini-q\",\"usageMetadata\":{\"promptTokenCount\":4,"
	    "\"candidatesTokenCount\":6}}";
	apimeter_json(&g, gem, strlen(gem));
	assert_string_equal(g.model, "gemini-q");
	assert_int_equal(g.input, 4);
	assert_int_equal(g.output, 6);
	/* not JSON, negative or non-integer counts: nothing counted */
	struct api_usage z = {0};
	apimeter_json(&z, "{\"usage\":{\"input_tokens\":\"9\",\"output_tokens\":1.5}}", 48);
	apimeter_json(&z, "not json", 8);
	assert_false(z.seen);
	apimeter_json(&z, "{\"usage\":{\"input_tokens\":-5}}", 29);
	assert_int_equal(z.input, 0);
	/* other content types are not metered */
	apimeter_init(&m, "text/html", 9);
	apimeter_feed(&m, anth, strlen(anth));
	apimeter_finish(&m);
	assert_false(m.u.seen);
	apimeter_free(&m);
}

static void oversized_body_is_not_parsed(void **state)
{
	(void)state;
	struct api_meter m;
	apimeter_init(&m, "application/json", 16);
	m.max = 64;
	const char *anth = "{\"model\":\"claude-y\",\"padding\":\"................................"
	                   "..................\",\"usage\":{\"input_tokens\":10}}";
	apimeter_feed(&m, anth, strlen(anth));
	apimeter_finish(&m);
	assert_true(m.overflow);
	assert_false(m.u.seen);
	apimeter_free(&m);
}

/* a Host header names the endpoint the request came in on, or nothing goes */
static void host_must_name_the_route(void **state)
{
	(void)state;
	struct api_target t = T;
	t.route_port = 3130;
	char out[4096];
	struct api_req r;
	const char *why = NULL;
	const char *ok[] = {"GET / HTTP/1.1\r\nHost: 127.0.0.1:3130\r\n\r\n",
	                    "GET / HTTP/1.1\r\nHost: LOCALHOST:3130\r\n\r\n",
	                    "GET / HTTP/1.1\r\n\r\n"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		assert_true(apireq_rewrite(ok[i], strlen(ok[i]), &t, &r, out, sizeof out, &why) >
		            0);
	const char *bad[] = {"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n",
	                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:3131\r\n\r\n",
	                     "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(
		    apireq_rewrite(bad[i], strlen(bad[i]), &t, &r, out, sizeof out, &why), -1);
		assert_string_equal(why, "the Host header names another endpoint than this one");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(credentials_replaced),
	    cmocka_unit_test(host_must_name_the_route),
	    cmocka_unit_test(bearer_and_port),
	    cmocka_unit_test(bad_heads),
	    cmocka_unit_test(error_shapes),
	    cmocka_unit_test(sse_whole_and_bytewise),
	    cmocka_unit_test(sse_through_chunked_framing),
	    cmocka_unit_test(json_bodies),
	    cmocka_unit_test(oversized_body_is_not_parsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
