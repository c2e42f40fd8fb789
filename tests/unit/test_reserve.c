/* test_reserve.c - the reservations of API requests in flight
 * (sshd-frontend/reserve.c), in a scratch state_dir: a budget holds against
 * requests in flight, max_inflight and the ledger's size cap them, a settled or expired
 * reservation, or one whose monitor is gone, stops counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sshd-frontend/reserve.h"

static char dir[] = "/tmp/warren-reserve-XXXXXX";

static void budget_and_inflight(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	struct reserve_ask ask = {
	    .api = "a", .tokens = 4096, .budget = 3000, .used = 0, .owner = getpid()};
	long long id1 = 0, id2 = 0, held = 0;
	time_t now = 1000;
	/* under the budget: the first request reserves */
	assert_int_equal(reserve_take(dir, "t", &ask, now, &id1, &held), RESERVE_OK);
	assert_true(id1 > 0);
	assert_int_equal(held, 0);
	/* the reservation counts: a second is over the budget while it is in flight */
	assert_int_equal(reserve_take(dir, "t", &ask, now, &id2, &held), RESERVE_OVER_BUDGET);
	assert_int_equal(held, 4096);
	/* another api of the tenant's is its own */
	struct reserve_ask other = ask;
	other.api = "b";
	assert_int_equal(reserve_take(dir, "t", &other, now, &id2, &held), RESERVE_OK);
	/* settled: it goes; used now counts instead */
	assert_int_equal(reserve_drop(dir, "t", id1, now), 0);
	ask.used = 2012;
	assert_int_equal(reserve_take(dir, "t", &ask, now, &id1, &held), RESERVE_OK);
	assert_int_equal(held, 0);
	ask.used = 3000;
	assert_int_equal(reserve_take(dir, "t", &ask, now, &id2, &held), RESERVE_OVER_BUDGET);
	/* expired reservations no longer count */
	ask.used = 0;
	assert_int_equal(reserve_take(dir, "t", &ask, now + RESERVE_TTL_S + 1, &id2, &held),
	                 RESERVE_OK);
	assert_int_equal(held, 0);
	/* max_inflight, without a budget */
	struct reserve_ask cap = {
	    .api = "c", .tokens = 1, .budget = 1LL << 62, .max_inflight = 2, .owner = getpid()};
	long long a, b, c;
	assert_int_equal(reserve_take(dir, "t", &cap, now, &a, &held), RESERVE_OK);
	assert_int_equal(reserve_take(dir, "t", &cap, now, &b, &held), RESERVE_OK);
	assert_int_equal(reserve_take(dir, "t", &cap, now, &c, &held), RESERVE_INFLIGHT);
	assert_int_equal(reserve_drop(dir, "t", a, now), 0);
	assert_int_equal(reserve_take(dir, "t", &cap, now, &c, &held), RESERVE_OK);
}

/* the ledger is bounded: past RESERVE_MAX requests in flight, the next is
 * refused (429), however large the budget, and a settled one makes room */
static void ledger_full(void **state)
{
	(void)state;
	struct reserve_ask ask = {.api = "f", .tokens = 1, .budget = 1LL << 40, .owner = getpid()};
	long long id = 0, first = 0, held = 0;
	for (int i = 0; i < RESERVE_MAX; i++) {
		assert_int_equal(reserve_take(dir, "full", &ask, 1000, &id, &held), RESERVE_OK);
		if (i == 0)
			first = id;
	}
	assert_int_equal(held, RESERVE_MAX - 1);
	assert_int_equal(reserve_take(dir, "full", &ask, 1000, &id, &held), RESERVE_INFLIGHT);
	assert_int_equal(reserve_drop(dir, "full", first, 1000), 0);
	assert_int_equal(reserve_take(dir, "full", &ask, 1000, &id, &held), RESERVE_OK);
}

/* a reservation whose monitor ended without settling stops counting */
static void owner_gone(void **state)
{
	(void)state;
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	struct reserve_ask ask = {.api = "d", .tokens = 5000, .budget = 3000, .owner = child};
	long long id, held;
	assert_int_equal(reserve_take(dir, "u", &ask, 1000, &id, &held), RESERVE_OK);
	ask.owner = getpid();
	assert_int_equal(reserve_take(dir, "u", &ask, 1000, &id, &held), RESERVE_OK);
	assert_int_equal(held, 0);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(budget_and_inflight),
	    cmocka_unit_test(ledger_full),
	    cmocka_unit_test(owner_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
