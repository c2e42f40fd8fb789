/* probe.c - escape probe copied into a tenant's workspace by the escape
 * tests: performs one named attempt and prints "ok" or "errno=N". Built
 * static so it runs in any sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/netlink.h>

static long raw(long nr, long a, long b, long c, long d, long e)
{
	return syscall(nr, a, b, c, d, e);
}

static long attempt(const char *what)
{
	char buf[16];
	struct iovec l = {buf, sizeof buf}, r = {buf, sizeof buf};
	if (!strcmp(what, "ptrace"))
		return ptrace(PTRACE_TRACEME, 0, 0, 0);
	if (!strcmp(what, "process_vm_readv"))
		return process_vm_readv(getppid(), &l, 1, &r, 1, 0);
	if (!strcmp(what, "process_vm_writev"))
		return process_vm_writev(getppid(), &l, 1, &r, 1, 0);
	if (!strcmp(what, "mount"))
		return mount("none", "/tmp", "tmpfs", 0, NULL);
	if (!strcmp(what, "umount2"))
		return umount2("/tmp", MNT_DETACH);
	if (!strcmp(what, "pivot_root"))
		return raw(SYS_pivot_root, (long)"/tmp", (long)"/tmp", 0, 0, 0);
	if (!strcmp(what, "chroot"))
		return chroot("/tmp");
	if (!strcmp(what, "open_tree"))
		return raw(SYS_open_tree, AT_FDCWD, (long)"/tmp", 0, 0, 0);
	if (!strcmp(what, "move_mount"))
		return raw(SYS_move_mount, -1, (long)"", AT_FDCWD, (long)"/tmp", 0);
	if (!strcmp(what, "fsopen"))
		return raw(SYS_fsopen, (long)"tmpfs", 0, 0, 0, 0);
	if (!strcmp(what, "fsconfig"))
		return raw(SYS_fsconfig, -1, 0, 0, 0, 0);
	if (!strcmp(what, "fsmount"))
		return raw(SYS_fsmount, -1, 0, 0, 0, 0);
	if (!strcmp(what, "fspick"))
		return raw(SYS_fspick, AT_FDCWD, (long)"/tmp", 0, 0, 0);
	if (!strcmp(what, "mount_setattr"))
		return raw(SYS_mount_setattr, AT_FDCWD, (long)"/tmp", 0, 0, 0);
	if (!strcmp(what, "unshare"))
		return unshare(CLONE_NEWUSER);
	if (!strcmp(what, "unshare_mnt"))
		return unshare(CLONE_NEWNS);
	if (!strcmp(what, "setns"))
		return setns(open("/proc/self/ns/mnt", O_RDONLY), 0);
	if (!strcmp(what, "clone_newuser")) {
		long rc = raw(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (rc == 0)
			_exit(0);
		return rc;
	}
	if (!strcmp(what, "clone_newnet")) {
		long rc = raw(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
		if (rc == 0)
			_exit(0);
		return rc;
	}
	if (!strcmp(what, "clone3")) {
		uint64_t args[11] = {0};
		args[0] = CLONE_NEWUSER;
		return raw(SYS_clone3, (long)args, sizeof args, 0, 0, 0);
	}
	if (!strcmp(what, "bpf"))
		return raw(SYS_bpf, 0, 0, 0, 0, 0);
	if (!strcmp(what, "perf_event_open"))
		return raw(SYS_perf_event_open, 0, 0, -1, -1, 0);
	if (!strcmp(what, "userfaultfd"))
		return raw(SYS_userfaultfd, 0, 0, 0, 0, 0);
	if (!strcmp(what, "keyctl"))
		return raw(SYS_keyctl, 0, 0, 0, 0, 0);
	if (!strcmp(what, "add_key"))
		return raw(SYS_add_key, (long)"user", (long)"x", (long)"y", 1, -2);
	if (!strcmp(what, "request_key"))
		return raw(SYS_request_key, (long)"user", (long)"x", 0, -2, 0);
	if (!strcmp(what, "kexec_load"))
		return raw(SYS_kexec_load, 0, 0, 0, 0, 0);
	if (!strcmp(what, "kexec_file_load"))
		return raw(SYS_kexec_file_load, -1, -1, 0, 0, 0);
	if (!strcmp(what, "init_module"))
		return raw(SYS_init_module, 0, 0, (long)"", 0, 0);
	if (!strcmp(what, "finit_module"))
		return raw(SYS_finit_module, -1, (long)"", 0, 0, 0);
	if (!strcmp(what, "delete_module"))
		return raw(SYS_delete_module, (long)"x", 0, 0, 0, 0);
	if (!strcmp(what, "reboot"))
		return raw(SYS_reboot, 0, 0, 0, 0, 0);
	if (!strcmp(what, "swapon"))
		return raw(SYS_swapon, (long)"/tmp/x", 0, 0, 0, 0);
	if (!strcmp(what, "swapoff"))
		return raw(SYS_swapoff, (long)"/tmp/x", 0, 0, 0, 0);
	if (!strcmp(what, "acct"))
		return raw(SYS_acct, 0, 0, 0, 0, 0);
	if (!strcmp(what, "quotactl"))
		return raw(SYS_quotactl, 0, 0, 0, 0, 0);
	if (!strcmp(what, "open_by_handle_at"))
		return raw(SYS_open_by_handle_at, AT_FDCWD, 0, 0, 0, 0);
	if (!strcmp(what, "personality"))
		return personality(ADDR_NO_RANDOMIZE);
	if (!strcmp(what, "personality_query"))
		return personality(0xffffffff) < 0 ? -1 : 0;
	if (!strcmp(what, "tiocsti"))
		return ioctl(0, TIOCSTI, "x");
	if (!strcmp(what, "tioclinux")) {
		char sub = 6;
		return ioctl(0, TIOCLINUX, &sub);
	}
	if (!strcmp(what, "io_uring_setup"))
		return raw(SYS_io_uring_setup, 1, 0, 0, 0, 0);
	if (!strcmp(what, "socket_packet"))
		return socket(AF_PACKET, SOCK_RAW, 0);
	if (!strcmp(what, "socket_netlink_audit"))
		return socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
	if (!strcmp(what, "socket_netlink_route"))
		return socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (!strcmp(what, "socket_unix"))
		return socket(AF_UNIX, SOCK_STREAM, 0);
	if (!strcmp(what, "getpid"))
		return getpid();
	if (!strcmp(what, "i386")) {
		/* getpid through the 32-bit ABI: must kill the process */
		long ret;
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
		return ret;
	}
	if (!strcmp(what, "x32"))
		return syscall(39 | 0x40000000); /* x32 getpid */
	errno = EINVAL;
	return -2;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		errno = 0;
		long rc = attempt(argv[i]);
		if (rc == -2 && errno == EINVAL)
			printf("%s unknown\n", argv[i]);
		else if (rc < 0)
			printf("%s errno=%d\n", argv[i], errno);
		else
			printf("%s ok\n", argv[i]);
		fflush(stdout);
	}
	return 0;
}
