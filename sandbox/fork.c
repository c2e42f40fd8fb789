/* fork.c - the one fork helper (fork.h). Where warren forks, and what the
 * child is:
 *   sshd-frontend/accept.c   the master's connection process (signals reset,
 *                            dies with the master)
 *   sshd-frontend/conn.c     the connection's pre-auth process (jails itself:
 *                            preauth.c)
 *   sshd-frontend/preauth.c  a probe of the pre-auth jail at start-up
 *   sshd-frontend/envmon.c   the env monitor (twice removed, so it is the
 *                            master's child) and its env process (dies with
 *                            it, set after the privilege drop: setuid clears
 *                            the parent-death signal)
 *   sshd-frontend/chanspawn.c the spawn helper of a channel's sandbox (the
 *                            same, after its drop)
 *   egress/apigw.c           the API gateway (re-executes warrend)
 *   pam/pam.c                the keyboard-interactive PAM conversation
 *   sandbox/spawn.c          bwrap, and the helpers run as the tenant or for
 *                            a profile build (signals reset, descriptors
 *                            close-on-exec but those passed)
 *   sandbox/init.c, initenv.c warren-init's commands, in the sandbox */
#include "fork.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

void fork_keep_only_fds(const int *keep, int nkeep)
{
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 4096; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	for (int i = 0; i < nkeep; i++)
		fcntl(keep[i], F_SETFD, 0);
}

pid_t fork_child(int flags, const int *keep, int nkeep)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (flags & FORK_RESET_SIGNALS) {
		sigset_t none;
		sigemptyset(&none);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	if (flags & FORK_DIE_WITH_PARENT) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* it died before the prctl */
			_exit(1);
	}
	if (flags & FORK_CLOEXEC_REST)
		fork_keep_only_fds(keep, nkeep);
	return 0;
}
