/* test_log.c - the relay of a tenant-uid process's stderr (log.c): whole
 * lines as they were, control bytes and non-ASCII escaped, a line split
 * across reads joined, the last unended line flushed at the pipe's end. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sshd-frontend/log.h"

static void relay(void **state)
{
	(void)state;
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	fcntl(in[0], F_SETFL, O_NONBLOCK);
	int saved = dup(2);
	dup2(out[1], 2);
	struct log_relay r = {.fd = in[0]};
	static const char a[] =
	    "warrend[7]: info: plain line\nforged \033[2J\xc3\xa9 bytes\nsplit ";
	assert_int_equal(write(in[1], a, sizeof a - 1), (ssize_t)sizeof a - 1);
	assert_int_equal(log_relay_pump(&r), 0);
	assert_int_equal(write(in[1], "across\nno end", 13), 13);
	assert_int_equal(log_relay_pump(&r), 0);
	close(in[1]);
	assert_int_equal(log_relay_pump(&r), -1);
	assert_int_equal(r.fd, -1);
	dup2(saved, 2);
	close(saved);
	close(out[1]);
	char got[512] = "";
	ssize_t n = read(out[0], got, sizeof got - 1);
	assert_true(n > 0);
	assert_string_equal(got, "warrend[7]: info: plain line\n"
	                         "forged \\x1b[2J\\xc3\\xa9 bytes\n"
	                         "split across\n"
	                         "no end\n");
	close(out[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(relay)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
