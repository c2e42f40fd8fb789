/* test_fork.c - the one fork helper (sandbox/fork.c): in the child, each
 * FORK_* step happened (dispositions and mask reset, the parent-death
 * signal set, descriptors close-on-exec but those kept), and none that was
 * not asked for. The child reports through its exit status. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sandbox/fork.h"

static void ignore(int sig)
{
	(void)sig;
}

/* bit 0: SIGUSR1's handler reset; 1: SIGUSR2 unblocked; 2: pdeathsig is
 * SIGKILL; 3: a's close-on-exec set; 4: b's clear */
static int child_facts(int a, int b)
{
	int facts = 0;
	struct sigaction sa;
	sigaction(SIGUSR1, NULL, &sa);
	facts |= sa.sa_handler == SIG_DFL;
	sigset_t cur;
	sigprocmask(SIG_SETMASK, NULL, &cur);
	facts |= !sigismember(&cur, SIGUSR2) << 1;
	int pd = 0;
	prctl(PR_GET_PDEATHSIG, &pd);
	facts |= (pd == SIGKILL) << 2;
	facts |= ((fcntl(a, F_GETFD) & FD_CLOEXEC) != 0) << 3;
	facts |= ((fcntl(b, F_GETFD) & FD_CLOEXEC) == 0) << 4;
	return facts;
}

static int run(int flags, int a, int b)
{
	int keep[1] = {b};
	pid_t pid = fork_child(flags, keep, 1);
	if (pid == 0)
		_exit(child_facts(a, b));
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void steps(void **state)
{
	(void)state;
	signal(SIGUSR1, ignore);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	int a = open("/dev/null", O_RDONLY); /* not close-on-exec */
	int b = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(a > 2 && b > 2);
	assert_int_equal(run(0, a, b), 0);
	assert_int_equal(run(FORK_RESET_SIGNALS, a, b), 1 | 2);
	assert_int_equal(run(FORK_DIE_WITH_PARENT, a, b), 4);
	assert_int_equal(run(FORK_CLOEXEC_REST, a, b), 8 | 16);
	assert_int_equal(run(FORK_RESET_SIGNALS | FORK_DIE_WITH_PARENT | FORK_CLOEXEC_REST, a, b),
	                 31);
	close(a);
	close(b);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	signal(SIGUSR1, SIG_DFL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(steps)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
