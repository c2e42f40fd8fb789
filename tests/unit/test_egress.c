/* test_egress.c - allowlist rules: parsing, wildcard and port matching,
 * deny precedence, and the private-address rule after resolution. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../../egress/rules.h"
#include "../../sandbox/hostport.h"

static struct egress_rules rules(const char *const *allow, const char *const *deny)
{
	struct egress_rules rs = {0};
	for (int i = 0; allow && allow[i]; i++)
		assert_int_equal(egress_parse(allow[i], false, &rs.r[rs.n++]), 0);
	for (int i = 0; deny && deny[i]; i++)
		assert_int_equal(egress_parse(deny[i], true, &rs.r[rs.n++]), 0);
	return rs;
}

static struct sockaddr_storage ip(const char *s)
{
	struct sockaddr_storage ss = {0};
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		fail();
	return ss;
}

static void parse(void **state)
{
	(void)state;
	struct egress_rule r;
	assert_int_equal(egress_parse("api.anthropic.com:443", false, &r), 0);
	assert_string_equal(r.host, "api.anthropic.com");
	assert_int_equal(r.port, 443);
	assert_int_equal(egress_parse("API.Example.COM:80", false, &r), 0);
	assert_string_equal(r.host, "api.example.com");
	assert_int_equal(egress_parse("*.example.com:443", false, &r), 0);
	assert_true(r.wildcard);
	assert_int_equal(egress_parse("[::1]:8080", false, &r), 0);
	assert_true(r.is_ip);
	assert_int_equal(egress_parse("10.0.0.1:*", true, &r), 0);
	assert_int_equal(r.port, 0);
	assert_true(r.deny);
	static const char *const bad[] = {"example.com", "example.com:0", "example.com:70000",
	                                  "*:443",       "a.*.com:443",   "ex ample.com:80",
	                                  ":80",         "*.:443",        "[::1:80"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (egress_parse(bad[i], false, &r) == 0)
			fail_msg("'%s' accepted", bad[i]);
}

static void names(void **state)
{
	(void)state;
	const char *allow[] = {"api.anthropic.com:443", "*.github.com:443", "127.0.0.1:*", NULL};
	const char *deny[] = {"evil.github.com:443", NULL};
	struct egress_rules rs = rules(allow, deny);
	assert_int_equal(egress_check_name(&rs, "api.anthropic.com", 443, NULL), EGRESS_ALLOWED);
	assert_int_equal(egress_check_name(&rs, "API.ANTHROPIC.COM", 443, NULL), EGRESS_ALLOWED);
	assert_int_equal(egress_check_name(&rs, "api.anthropic.com", 80, NULL), EGRESS_NOT_LISTED);
	assert_int_equal(egress_check_name(&rs, "anthropic.com", 443, NULL), EGRESS_NOT_LISTED);
	assert_int_equal(egress_check_name(&rs, "codeload.github.com", 443, NULL), EGRESS_ALLOWED);
	assert_int_equal(egress_check_name(&rs, "a.b.github.com", 443, NULL), EGRESS_ALLOWED);
	assert_int_equal(egress_check_name(&rs, "github.com", 443, NULL), EGRESS_NOT_LISTED);
	assert_int_equal(egress_check_name(&rs, "notgithub.com", 443, NULL), EGRESS_NOT_LISTED);
	assert_int_equal(egress_check_name(&rs, "evil.github.com", 443, NULL), EGRESS_DENIED);
	assert_int_equal(egress_check_name(&rs, "127.0.0.1", 5555, NULL), EGRESS_ALLOWED);
}

static void addresses(void **state)
{
	(void)state;
	const char *allow[] = {"internal.example:80", "10.1.2.3:80", NULL};
	const char *deny[] = {"93.184.216.34:*", NULL};
	struct egress_rules rs = rules(allow, deny);
	const char *why = NULL;
	struct sockaddr_storage a;
	a = ip("93.184.215.14");
	assert_true(egress_check_addr(&rs, NULL, (struct sockaddr *)&a, 80, &why));
	a = ip("93.184.216.34");
	assert_false(egress_check_addr(&rs, NULL, (struct sockaddr *)&a, 80, &why));
	assert_non_null(strstr(why, "denied"));
	/* a name resolving to private space is refused unless that IP is allowed */
	static const char *const special[] = {
	    "127.0.0.1",  "10.9.9.9", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
	    "100.64.0.1", "::1",      "fe80::1",    "fd00::1",     "::ffff:127.0.0.1"};
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
		a = ip(special[i]);
		if (egress_check_addr(&rs, NULL, (struct sockaddr *)&a, 80, &why))
			fail_msg("%s allowed", special[i]);
	}
	a = ip("10.1.2.3");
	assert_true(egress_check_addr(&rs, NULL, (struct sockaddr *)&a, 80, &why));
	assert_false(egress_check_addr(&rs, NULL, (struct sockaddr *)&a, 81, &why));
	a = ip("172.32.0.1"); /* just outside 172.16/12 */
	assert_false(egress_addr_special((struct sockaddr *)&a));
	a = ip("2001:db8::1");
	assert_false(egress_addr_special((struct sockaddr *)&a));
	/* IPv6 forms that embed IPv4 are refused unless named by IP */
	static const char *const embed[] = {"::127.0.0.1", "::8.8.8.8", "64:ff9b::7f00:1",
	                                    "64:ff9b:1::a00:1", "2002:7f00:1::1"};
	for (size_t i = 0; i < sizeof embed / sizeof embed[0]; i++) {
		a = ip(embed[i]);
		if (egress_check_addr(&rs, NULL, (struct sockaddr *)&a, 80, &why))
			fail_msg("%s allowed", embed[i]);
	}
	/* the host's own addresses, unless a rule names the literal address */
	struct egress_local local = {.n = 2};
	local.a[0] = ip("93.184.215.14");
	local.a[1] = ip("10.1.2.3");
	a = ip("93.184.215.14");
	assert_false(egress_check_addr(&rs, &local, (struct sockaddr *)&a, 80, &why));
	assert_non_null(strstr(why, "own addresses"));
	a = ip("10.1.2.3"); /* allowed by IP: the operator said so */
	assert_true(egress_check_addr(&rs, &local, (struct sockaddr *)&a, 80, &why));
	assert_int_equal(egress_local_load(&local), 0);
	assert_true(local.n >= 1); /* loopback at least */
}

static void rule_named(void **state)
{
	(void)state;
	const char *allow[] = {"*.github.com:443", NULL};
	const char *deny[] = {"evil.github.com:*", NULL};
	struct egress_rules rs = rules(allow, deny);
	const struct egress_rule *hit = NULL;
	char text[300];
	assert_int_equal(egress_check_name(&rs, "evil.github.com", 443, &hit), EGRESS_DENIED);
	egress_rule_text(hit, text, sizeof text);
	assert_string_equal(text, "deny = evil.github.com:*");
	assert_int_equal(egress_check_name(&rs, "api.github.com", 443, &hit), EGRESS_ALLOWED);
	egress_rule_text(hit, text, sizeof text);
	assert_string_equal(text, "allow = *.github.com:443");
	assert_int_equal(egress_check_name(&rs, "example.com", 443, &hit), EGRESS_NOT_LISTED);
	assert_null(hit);
}

static void split(void **state)
{
	(void)state;
	char host[64];
	const char *port;
	size_t pl;
	assert_int_equal(hostport_split("[::1]:22", 8, host, sizeof host, &port, &pl), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(hostport_port(port, pl), 22);
	assert_int_equal(hostport_split("[::1]", 5, host, sizeof host, &port, &pl), 0);
	assert_null(port);
	assert_int_equal(hostport_split("[::1]x", 6, host, sizeof host, &port, &pl), -1);
	assert_int_equal(hostport_split("[::1", 4, host, sizeof host, &port, &pl), -1);
	assert_int_equal(hostport_split(":80", 3, host, sizeof host, &port, &pl), -1);
	assert_int_equal(hostport_split("a.b:c:443", 9, host, sizeof host, &port, &pl), 0);
	assert_string_equal(host, "a.b:c");
	assert_int_equal(hostport_split("abc", 3, host, 3, &port, &pl), -1); /* too long */
	assert_int_equal(hostport_port("65535", 5), 65535);
	assert_int_equal(hostport_port("65536", 5), -1);
	assert_int_equal(hostport_port("0", 1), -1);
	assert_int_equal(hostport_port("+80", 3), -1);
	assert_int_equal(hostport_port("", 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse),      cmocka_unit_test(names), cmocka_unit_test(addresses),
	    cmocka_unit_test(rule_named), cmocka_unit_test(split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
