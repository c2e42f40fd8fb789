/* confine.c - the seccomp allowlist of warren's own unprivileged workers
 * that parse untrusted bytes and need no new process: the environment's
 * egress proxy (envd.c) once its sandbox is started, a connection's
 * pre-auth process (preauth.c: key exchange and authentication, and what
 * it takes to become the tenant after), and the session process it becomes,
 * which speaks SSH to the client. What they are left with: their sockets and pipes, name
 * lookups (getaddrinfo_a's threads, /etc read-only, getifaddrs' netlink
 * bind), time, memory. No exec, no new process, no file written, no listen,
 * no namespace, no ptrace, no signal to anything but itself. Anything else fails with EPERM: a bug
 * shows as an error, not as a dead environment. The master compiles both filters once
 * (confine_prepare) with a marker where the worker's pid goes; each worker
 * loads a copy with its pid written in, instead of running libseccomp's
 * compiler (about 1.3 ms and 260 KiB of heap) at every login. */
#include "confine.h"

#include "../sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

/* Stands for the worker's pid in a prepared filter: above any pid
 * (pid_max <= 2^22) and unlike any other constant the filter compares. */
#define PID_MARK 0x5eccaf1dU

static const char *const allowed[] = {
    /* descriptors and I/O */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "close",
    "lseek",
    "fstat",
    "newfstatat",
    "statx",
    "fcntl",
    "dup",
    "dup2",
    "dup3",
    "pipe2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "eventfd2",
    "readlink",
    "readlinkat",
    "access",
    "faccessat",
    "faccessat2",
    "getcwd",
    /* sockets (socket itself: by family, below) */
    "connect",
    "accept",
    "accept4",
    "bind",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    /* memory */
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    /* signals (kill and tgkill: only to itself, below), timers */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "sigaltstack",
    "signalfd4",
    "restart_syscall",
    "pause",
    "alarm",
    "setitimer",
    "getitimer",
    /* the strings of a spawn request, a detached screen: sealed memfds */
    "memfd_create",
    "ftruncate",
    "flock",
    /* threads (clone: threads only, below), time, identity */
    "futex",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "gettid",
    "getpid",
    "getppid",
    "exit",
    "exit_group",
    "sched_yield",
    "sched_getaffinity",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "uname",
    "getrandom",
    "getrlimit",
    "getrusage",
    "sysinfo",
    "wait4",
    "waitid",
    "arch_prctl",
};

static int allow_by_name(scmp_filter_ctx ctx)
{
	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The syscalls allowed only with some arguments. */
static int allow_narrowly(scmp_filter_ctx ctx, scmp_datum_t me)
{
	const int families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
	/* a pty master's window size and number (the session's) */
	const unsigned long ioctls[] = {FIONREAD,   FIONBIO,    TCGETS,
	                                TIOCSWINSZ, TIOCGWINSZ, TIOCGPTN};
	const int prctls[] = {PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE};
	int rc = 0;
	/* a thread (getaddrinfo_a), never a process; clone3's flags are out of
	 * reach of a filter, so it is "not implemented" and glibc uses clone */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	                       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* files: read only (/etc/hosts, resolv.conf, gai.conf, localtime) */
	rc |=
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_EQ, me));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, me));
	/* its own limits only (getrlimit, setrlimit): not the tenant's other processes' */
	rc |=
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A0(SCMP_CMP_EQ, 0));
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		                       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
		                       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
	}
	for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		                       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, ioctls[i]));
	for (size_t i = 0; i < sizeof prctls / sizeof prctls[0]; i++)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		                       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]));
	return rc < 0 ? -EINVAL : 0;
}

/* A pre-auth process also becomes the tenant once its monitor has mapped
 * the tenant's uid into its user namespace (preauth.c): what that takes,
 * on top. Before the mapping no uid but its own can be taken, and its root
 * is empty. */
static const char *const becoming[] = {
    "chroot",
    "fchdir",
    "chdir",
    "setresuid",
    "setresgid",
    "setgroups",
    "setuid",
    "setgid",
    "setfsuid",
    "setfsgid",
    "capget",
    "capset",
    /* the session's own allowlist, stacked on this one (session.c) */
    "seccomp",
};

static int allow_becoming(scmp_filter_ctx ctx)
{
	const int prctls[] = {PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS,
	                      PR_CAPBSET_READ,  PR_CAPBSET_DROP, PR_CAP_AMBIENT};
	int rc = 0;
	for (size_t i = 0; i < sizeof becoming / sizeof becoming[0]; i++) {
		int nr = seccomp_syscall_resolve_name(becoming[i]);
		if (nr != __NR_SCMP_ERROR)
			rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	for (size_t i = 0; i < sizeof prctls / sizeof prctls[0]; i++)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		                       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]));
	return rc < 0 ? -EINVAL : 0;
}

static scmp_filter_ctx build(bool preauth, scmp_datum_t me)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (ctx == NULL)
		return NULL;
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc == 0)
		rc = allow_by_name(ctx);
	if (rc == 0)
		rc = allow_narrowly(ctx, me);
	if (rc == 0 && preauth)
		rc = allow_becoming(ctx);
	if (rc < 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/* [0] the worker's, [1] the pre-auth process's: BPF with PID_MARK */
static struct {
	struct sock_filter *insn;
	unsigned short len;
} prepared[2];

/* The marker is the value a pid comparison's JEQ holds, and nothing else. */
static bool marks_only_pids(const struct sock_filter *f, size_t n)
{
	size_t marks = 0;
	for (size_t i = 0; i < n; i++) {
		if (f[i].k != PID_MARK)
			continue;
		if (f[i].code != (BPF_JMP | BPF_JEQ | BPF_K))
			return false;
		marks++;
	}
	return marks > 0; /* kill and tgkill (libseccomp may share one test) */
}

static int prepare(bool preauth)
{
	scmp_filter_ctx ctx = build(preauth, PID_MARK);
	if (ctx == NULL)
		return -EINVAL;
	void *data = NULL;
	size_t size = 0;
	int rc = seccomp_ctx_export(ctx, &data, &size);
	seccomp_release(ctx);
	if (rc < 0)
		return rc;
	struct sock_filter *f = data;
	size_t n = size / sizeof *f;
	if (size % sizeof *f != 0 || n == 0 || n > BPF_MAXINSNS || !marks_only_pids(f, n)) {
		free(data);
		return -EINVAL;
	}
	prepared[preauth].insn = f;
	prepared[preauth].len = (unsigned short)n;
	return 0;
}

int confine_prepare(void)
{
	int rc = prepare(false);
	return rc < 0 ? rc : prepare(true);
}

/* A prepared filter with this process's pid written in, loaded. */
static int load_prepared(bool preauth)
{
	size_t n = prepared[preauth].len;
	struct sock_filter *f = malloc(n * sizeof *f);
	if (f == NULL)
		return -ENOMEM;
	memcpy(f, prepared[preauth].insn, n * sizeof *f);
	for (size_t i = 0; i < n; i++)
		if (f[i].k == PID_MARK)
			f[i].k = (unsigned)getpid();
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
	int rc = 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		rc = -errno;
	free(f);
	return rc;
}

static int confine(bool preauth)
{
	if (prepared[preauth].insn != NULL)
		return load_prepared(preauth);
	scmp_filter_ctx ctx = build(preauth, (scmp_datum_t)getpid());
	if (ctx == NULL)
		return -EINVAL;
	int rc = seccomp_load(ctx); /* sets no_new_privs first */
	seccomp_release(ctx);
	return rc;
}

int confine_worker(void)
{
	return confine(false);
}

int confine_preauth(void)
{
	return confine(true);
}
