/* test_admit.c - admission control: max_startups' early drop, source keys
 * (IPv6 by /64), per-source penalties, aggregated refusal logging. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sshd-frontend/admit.h"

static void startups(void **state)
{
	(void)state;
	struct startups s;
	assert_int_equal(admit_parse_startups("10:30:100", &s), 0);
	assert_false(admit_early_drop(&s, 9, 0));  /* below start: never */
	assert_true(admit_early_drop(&s, 10, 29)); /* at start: 30% */
	assert_false(admit_early_drop(&s, 10, 30));
	assert_true(admit_early_drop(&s, 55, 64)); /* half way: 65% */
	assert_false(admit_early_drop(&s, 55, 65));
	assert_true(admit_early_drop(&s, 100, 99)); /* at full: always */
	int dropped = 0;
	for (int d = 0; d < 100; d++)
		dropped += admit_early_drop(&s, 10, d);
	assert_int_equal(dropped, 30);
	assert_int_equal(admit_parse_startups("5", &s), 0);
	assert_false(admit_early_drop(&s, 4, 99));
	assert_true(admit_early_drop(&s, 5, 0));
	assert_int_equal(admit_parse_startups("5:", &s), -1);
	assert_int_equal(admit_parse_startups("x", &s), -1);
	assert_int_equal(admit_parse_startups("5:101:9", &s), -1);
	assert_int_equal(admit_parse_startups("5:50:9x", &s), -1);
}

static void key_of(const char *addr, char *key)
{
	static const struct admit_net host = {.v4 = 32, .v6 = 64};
	assert_int_equal(admit_key_of_text(addr, &host, key, ADMIT_KEY_MAX), 0);
}

static void source_keys(void **state)
{
	(void)state;
	char a[ADMIT_KEY_MAX], b[ADMIT_KEY_MAX];
	key_of("192.0.2.7", a);
	assert_string_equal(a, "192.0.2.7");
	key_of("::ffff:192.0.2.7", b); /* v4-mapped: the same source */
	assert_string_equal(a, b);
	key_of("2001:db8:1:2:aaaa::1", a); /* one /64: one source */
	key_of("2001:db8:1:2:bbbb::99", b);
	assert_string_equal(a, "2001:db8:1:2::/64");
	assert_string_equal(a, b);
	key_of("2001:db8:1:3::1", b);
	assert_string_not_equal(a, b);
	struct sockaddr_in bad = {.sin_family = AF_INET};
	struct admit_net net = ADMIT_NET_DEFAULT;
	admit_source_key((struct sockaddr *)&bad, 2, &net, a, sizeof a); /* short length */
	assert_string_equal(a, "?");
	assert_int_equal(admit_key_of_text("not an address", &net, a, sizeof a), -1);
}

/* the default networks: an IPv4 /24 and an IPv6 /48 are one source each
 * (a flood from 240 addresses of one /24 is one source) */
static void source_networks(void **state)
{
	(void)state;
	struct admit_net net = ADMIT_NET_DEFAULT;
	char a[ADMIT_KEY_MAX], b[ADMIT_KEY_MAX];
	assert_int_equal(admit_key_of_text("127.0.1.7", &net, a, sizeof a), 0);
	assert_string_equal(a, "127.0.1.0/24");
	assert_int_equal(admit_key_of_text("127.0.1.240", &net, b, sizeof b), 0);
	assert_string_equal(a, b);
	assert_int_equal(admit_key_of_text("127.0.2.1", &net, b, sizeof b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(admit_key_of_text("::ffff:127.0.1.9", &net, b, sizeof b), 0);
	assert_string_equal(a, b);
	assert_int_equal(admit_key_of_text("2001:db8:1:ffff::1", &net, a, sizeof a), 0);
	assert_string_equal(a, "2001:db8:1::/48");
	assert_int_equal(admit_key_of_text("2001:db8:2::1", &net, b, sizeof b), 0);
	assert_string_not_equal(a, b);
	struct admit_net odd = {.v4 = 20, .v6 = 36};
	assert_int_equal(admit_key_of_text("10.1.31.9", &odd, a, sizeof a), 0);
	assert_string_equal(a, "10.1.16.0/20");
	assert_int_equal(admit_key_of_text("2001:db8:abcd::", &odd, a, sizeof a), 0);
	assert_string_equal(a, "2001:db8:a000::/36");
	assert_int_equal(admit_parse_net("24:48", &odd), 0);
	assert_true(odd.v4 == 24 && odd.v6 == 48);
	assert_int_equal(admit_parse_net("33:48", &odd), -1);
	assert_int_equal(admit_parse_net("24", &odd), -1);
	assert_int_equal(admit_parse_net("24:0", &odd), -1);
	assert_int_equal(admit_parse_net("24:48x", &odd), -1);
}

static void penalties(void **state)
{
	(void)state;
	struct penalties *p = calloc(1, sizeof *p);
	struct penalty_conf c = {.noauth = 2, .min = 10, .max = 30};
	penalty_init(p, &c);
	time_t t = 1000;
	for (int i = 0; i < 4; i++)
		penalty_noauth(p, "198.51.100.1", t); /* 8 s: under min */
	assert_int_equal(penalty_left(p, "198.51.100.1", t), 0);
	penalty_noauth(p, "198.51.100.1", t); /* 10 s: refused */
	assert_int_equal(penalty_left(p, "198.51.100.1", t), 10);
	assert_int_equal(penalty_left(p, "198.51.100.2", t), 0); /* others unaffected */
	for (int i = 0; i < 50; i++)
		penalty_noauth(p, "198.51.100.1", t);
	assert_int_equal(penalty_left(p, "198.51.100.1", t), 30); /* capped at max */
	assert_int_equal(penalty_left(p, "198.51.100.1", t + 29), 1);
	assert_int_equal(penalty_left(p, "198.51.100.1", t + 30), 0); /* served */
	/* a penalty that expired starts again from nothing */
	penalty_noauth(p, "198.51.100.1", t + 40);
	assert_int_equal(penalty_left(p, "198.51.100.1", t + 40), 0);
	/* more sources than slots: the table stays bounded and keeps working */
	char key[32];
	for (int i = 0; i < ADMIT_PENALTY_SLOTS + 100; i++) {
		snprintf(key, sizeof key, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		for (int k = 0; k < 5; k++)
			penalty_noauth(p, key, t);
	}
	assert_int_equal(penalty_left(p, key, t), 10);
	c.noauth = 0; /* off */
	penalty_init(p, &c);
	for (int i = 0; i < 20; i++)
		penalty_noauth(p, "198.51.100.1", t);
	assert_int_equal(penalty_left(p, "198.51.100.1", t), 0);
	free(p);
}

static unsigned long reported[ADMIT_REASONS];
static void report(enum admit_reason why, unsigned long n)
{
	reported[why] += n;
}

static void refusals(void **state)
{
	(void)state;
	struct refusals r = {.window = 10};
	assert_true(refusal_note(&r, R_STARTUPS, 100)); /* the first is logged */
	for (int i = 0; i < 1000; i++)
		assert_false(refusal_note(&r, R_STARTUPS, 100 + i % 10)); /* then counted */
	assert_true(refusal_note(&r, R_PENALTY, 105));                    /* per reason */
	refusal_flush(&r, 109, report);
	assert_int_equal(reported[R_STARTUPS], 0); /* window still open */
	refusal_flush(&r, 110, report);
	assert_int_equal(reported[R_STARTUPS], 1000);
	assert_int_equal(reported[R_PENALTY], 0);       /* nothing further to report */
	assert_true(refusal_note(&r, R_STARTUPS, 111)); /* a new window */
	assert_string_equal(admit_reason_name(R_PER_SOURCE), "max_connections_per_source");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(startups),        cmocka_unit_test(source_keys),
	    cmocka_unit_test(source_networks), cmocka_unit_test(penalties),
	    cmocka_unit_test(refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
