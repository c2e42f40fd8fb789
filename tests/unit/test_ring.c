/* test_ring.c - the reattach ring: order across wrap-around, the tail of
 * oversized writes, and snapshots that start on a line boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sandbox/ring.h"

static char snap[RING_SIZE];

static void small(void **state)
{
	(void)state;
	struct ring r = {0};
	assert_int_equal(ring_snapshot(&r, snap), 0);
	assert_int_equal(ring_put(&r, "ab", 2), 0);
	assert_int_equal(ring_put(&r, "cd\nef", 5), 0);
	size_t n = ring_snapshot(&r, snap);
	assert_int_equal(n, 7); /* not wrapped: kept from the very start */
	assert_memory_equal(snap, "abcd\nef", 7);
	ring_free(&r);
	assert_null(r.buf);
}

/* numbered lines until the ring wrapped several times, in odd-sized writes */
static void wrapped(void **state)
{
	(void)state;
	struct ring r = {0};
	char all[8 * RING_SIZE];
	size_t total = 0;
	for (int i = 0; total < sizeof all - 64; i++)
		total += (size_t)snprintf(all + total, 64, "line %06d\n", i);
	for (size_t off = 0; off < total;) {
		size_t k = off % 7 + 1 + (off % 3) * 997;
		if (k > total - off)
			k = total - off;
		assert_int_equal(ring_put(&r, all + off, k), 0);
		off += k;
	}
	size_t n = ring_snapshot(&r, snap);
	assert_true(n > RING_SIZE - 12 && n <= RING_SIZE);
	assert_memory_equal(snap, all + total - n, n); /* the newest bytes, in order */
	assert_memory_equal(snap, "line ", 5);         /* starting on a whole line */
	assert_int_equal(snap[n - 1], '\n');
	ring_free(&r);
}

static void oversized(void **state)
{
	(void)state;
	struct ring r = {0};
	size_t big = 3 * RING_SIZE + 5;
	char *b = malloc(big);
	assert_non_null(b);
	for (size_t i = 0; i < big; i++)
		b[i] = (char)('a' + i % 26);
	b[big - 100] = '\n';
	assert_int_equal(ring_put(&r, "x", 1), 0);
	assert_int_equal(ring_put(&r, b, big), 0);
	size_t n = ring_snapshot(&r, snap);
	assert_int_equal(n, 99); /* after the only newline in the kept tail */
	assert_memory_equal(snap, b + big - 99, 99);
	free(b);
	ring_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(small),
	    cmocka_unit_test(wrapped),
	    cmocka_unit_test(oversized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
