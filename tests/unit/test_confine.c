/* test_confine.c - the egress proxy's seccomp allowlist, loaded for real in
 * a forked child: what the proxy needs still works (threads, name lookups,
 * loopback TCP, read-only files), what an attacker wants fails with EPERM.
 * Twice: compiled in the child, and prepared once in the parent with the
 * child's pid written in at load (what warrend's master does). */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sshd-frontend/confine.h"

/* Runs fn in a confined child; its exit code (0 = every check held). */
static int confined(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (confine_worker() < 0)
			_exit(100);
		_exit(fn(arg)); /* _exit: no sanitizer's exit work under the filter */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int refused(long rc)
{
	return rc == -1 && errno == EPERM;
}

static int attacker(void *arg)
{
	(void)arg;
	char *const argv[] = {(char *)"/bin/true", NULL};
	if (!refused(execve(argv[0], argv, NULL)))
		return 1;
	if (!refused(fork()))
		return 2;
	if (!refused(open("/tmp/warren-confine-test", O_WRONLY | O_CREAT, 0600)))
		return 3;
	if (!refused(open("/etc/hostname", O_RDWR)))
		return 4;
	if (!refused(unshare(CLONE_NEWUSER)))
		return 5;
	if (!refused(ptrace(PTRACE_ATTACH, getppid(), 0, 0)))
		return 6;
	if (!refused(kill(getppid(), 0)))
		return 7;
	if (!refused(socket(AF_PACKET, SOCK_RAW, 0)))
		return 8;
	struct rlimit rl = {0, 0}; /* another process's limits: no */
	if (!refused(prlimit(getppid(), RLIMIT_NOFILE, NULL, &rl)))
		return 10;
	int fd = socket(AF_INET, SOCK_STREAM, 0); /* a listener on the host: no */
	if (fd < 0 || !refused(listen(fd, 1)))
		return 9;
	close(fd);
	return 0;
}

static void attacker_refused(void **state)
{
	(void)state;
	assert_int_equal(confined(attacker, NULL), 0);
	assert_int_equal(access("/tmp/warren-confine-test", F_OK), -1);
}

static void *thread_main(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

static int proxy_work(void *arg)
{
	int port = *(int *)arg;
	pthread_t t;
	int v = 0;
	if (pthread_create(&t, NULL, thread_main, &v) != 0 || pthread_join(t, NULL) != 0 || v != 42)
		return 1;
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo("localhost", NULL, &hints, &ai) != 0)
		return 2;
	freeaddrinfo(ai);
	struct ifaddrs *ifa = NULL; /* the proxy's list of this host's addresses */
	if (getifaddrs(&ifa) != 0 || ifa == NULL)
		return 6;
	freeifaddrs(ifa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    write(fd, "through", 7) != 7)
		return 3;
	close(fd);
	int rfd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	char buf[8];
	if (rfd < 0 || read(rfd, buf, sizeof buf) < 0)
		return 4;
	close(rfd);
	if (kill(getpid(), 0) < 0)
		return 5;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 7;
	return 0;
}

static void proxy_work_allowed(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	int port = ntohs(sa.sin_port);
	assert_int_equal(confined(proxy_work, &port), 0);
	int c = accept(lfd, NULL, NULL);
	assert_true(c >= 0);
	char buf[16] = {0};
	assert_int_equal(read(c, buf, sizeof buf), 7);
	assert_string_equal(buf, "through");
	close(c);
	close(lfd);
}

static int prepare(void **state)
{
	(void)state;
	return confine_prepare();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(attacker_refused),
	    cmocka_unit_test(proxy_work_allowed),
	};
	int failed = cmocka_run_group_tests_name("compiled in the worker", tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("prepared in the parent", tests, prepare, NULL);
}
