/* test_request.c - the egress proxy's request parser (egress/request.c)
 * and the one egress decision (egress/decide.c): CONNECT and absolute-URI
 * heads, what is refused and why, SOCKS5 in pieces, hop-by-hop headers, and
 * the verdict texts a client reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "../../egress/decide.h"
#include "../../egress/request.h"

static struct egress_req r;

static void http_heads(void **state)
{
	(void)state;
	const char *why = NULL;
	assert_int_equal(egress_parse_http("CONNECT api.example.com:443 HTTP/1.1\r\n"
	                                   "Host: x\r\n\r\n",
	                                   &r, &why),
	                 0);
	assert_int_equal(r.kind, EREQ_CONNECT);
	assert_string_equal(r.host, "api.example.com");
	assert_int_equal(r.port, 443);

	const char *get = "GET http://h.example:8080/a/b?q=1 HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n";
	assert_int_equal(egress_parse_http(get, &r, &why), 0);
	assert_int_equal(r.kind, EREQ_HTTP);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.host, "h.example");
	assert_int_equal(r.port, 8080);
	assert_int_equal(r.authority_len, strlen("h.example:8080"));
	assert_string_equal(r.path, "/a/b?q=1");
	assert_ptr_equal(r.headers, strstr(get, "Host:"));
	assert_ptr_equal(r.head_end, strstr(get, "\r\n\r\n"));
	assert_int_equal(egress_parse_http("GET http://h.example/ HTTP/1.0\r\n\r\n", &r, &why), 0);
	assert_int_equal(r.port, 80);

	assert_int_equal(egress_parse_http("GET https://h/ HTTP/1.1\r\n\r\n", &r, &why), -1);
	assert_string_equal(why, "only http:// URIs (use CONNECT for TLS)");
	assert_int_equal(egress_parse_http("CONNECT h HTTP/1.1\r\n\r\n", &r, &why), -1);
	assert_string_equal(why, "CONNECT needs HOST:PORT");
	assert_int_equal(egress_parse_http("CONNECT a%0a.b:443 HTTP/1.1\r\n\r\n", &r, &why), -1);
	assert_string_equal(r.host, "");
	assert_int_equal(egress_parse_http("GET http://u@h/ HTTP/1.1\r\n\r\n", &r, &why), -1);
	assert_string_equal(why, "bad URI");
	assert_int_equal(egress_parse_http("GET / SPDY/3\r\n\r\n", &r, &why), -1);
	assert_string_equal(why, "not an HTTP proxy request");
	assert_int_equal(egress_parse_http("CONNECT h:443 HTTP/1.1\r\n", &r, &why), -1);
}

static void socks(void **state)
{
	(void)state;
	const unsigned char greet[] = {5, 2, 2, 0};
	bool noauth = false;
	assert_int_equal(egress_socks_greeting(greet, 1, &noauth), 0);
	assert_int_equal(egress_socks_greeting(greet, 3, &noauth), 0);
	assert_int_equal(egress_socks_greeting(greet, 4, &noauth), 4);
	assert_true(noauth);
	const unsigned char auth_only[] = {5, 1, 2};
	assert_int_equal(egress_socks_greeting(auth_only, 3, &noauth), 3);
	assert_false(noauth);

	const char *why = NULL;
	unsigned char name[] = {5,   1,   0,   3,   11,  'e', 'x',  'a',  'm', 'p',
	                        'l', 'e', '.', 'c', 'o', 'm', 0x01, 0xbb, 'X'};
	for (size_t n = 0; n < sizeof name - 1; n++)
		assert_int_equal(egress_socks_request(name, n, &r, &why), 0);
	assert_int_equal(egress_socks_request(name, sizeof name, &r, &why), sizeof name - 1);
	assert_string_equal(r.host, "example.com");
	assert_int_equal(r.port, 443);
	const unsigned char v4[] = {5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
	assert_int_equal(egress_socks_request(v4, sizeof v4, &r, &why), sizeof v4);
	assert_string_equal(r.host, "127.0.0.1");
	const unsigned char bind[] = {5, 2, 0, 1, 127, 0, 0, 1, 0, 80};
	assert_int_equal(egress_socks_request(bind, sizeof bind, &r, &why), -1);
	assert_string_equal(why, "only SOCKS5 CONNECT is supported");
	const unsigned char atyp[] = {5, 1, 0, 9, 0};
	assert_int_equal(egress_socks_request(atyp, sizeof atyp, &r, &why), -1);
	assert_string_equal(why, "SOCKS address type not supported");
	unsigned char bad[] = {5, 1, 0, 3, 3, 'a', '/', 'b', 0, 80};
	assert_int_equal(egress_socks_request(bad, sizeof bad, &r, &why), -1);
	assert_string_equal(why, "bad SOCKS host name");
}

static void headers_and_hosts(void **state)
{
	(void)state;
	assert_true(egress_hop_header("Proxy-Authorization: x\r\n", 24));
	assert_true(egress_hop_header("connection: close\r\n", 19));
	assert_true(egress_hop_header("HOST: a\r\n", 9));
	assert_false(egress_hop_header("X-Host: a\r\n", 11));
	assert_true(egress_host_ok("a-b_c.example:1"));
	assert_false(egress_host_ok(""));
	assert_false(egress_host_ok("a b"));
	assert_false(egress_host_ok("a\nb"));
}

static void decision(void **state)
{
	(void)state;
	struct egress_rules rs = {0};
	assert_int_equal(egress_parse("*.example.com:443", false, &rs.r[0]), 0);
	assert_int_equal(egress_parse("evil.example.com:*", true, &rs.r[1]), 0);
	rs.n = 2;
	char why[400] = "";
	assert_true(egress_allow_name(&rs, "api.example.com", 443, why, sizeof why));
	assert_false(egress_allow_name(&rs, "evil.example.com", 443, why, sizeof why));
	assert_string_equal(why, "denied by the rule \"deny = evil.example.com:*\"");
	assert_false(egress_allow_name(&rs, "api.example.com", 80, why, sizeof why));
	assert_string_equal(
	    why,
	    "not in this tenant's allowlist (no \"allow = api.example.com:80\" or wider rule)");
	struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	assert_false(egress_allow_addr(&rs, NULL, (struct sockaddr *)&lo, 443, why, sizeof why));
	assert_true(why[0] != '\0');
	struct sockaddr_in pub = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x5db8d822)};
	assert_true(egress_allow_addr(&rs, NULL, (struct sockaddr *)&pub, 443, why, sizeof why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(http_heads),
	    cmocka_unit_test(socks),
	    cmocka_unit_test(headers_and_hosts),
	    cmocka_unit_test(decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
