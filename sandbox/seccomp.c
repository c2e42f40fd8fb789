/* seccomp.c - the sandbox's syscall filter, built with libseccomp from the
 * rule table below and exported as BPF for bwrap --seccomp. Baseline: the
 * union of Docker's and Flatpak's deny lists. There is no way to turn it off;
 * nested_sandbox only re-allows what a nested bubblewrap needs. */
#include "seccomp.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

const struct seccomp_rule seccomp_rules[] = {
    /* debugging other processes, reading their memory */
    {"ptrace", EPERM, false},
    {"process_vm_readv", EPERM, false},
    {"process_vm_writev", EPERM, false},
    {"kcmp", EPERM, false},
    {"pidfd_getfd", EPERM, false},
    /* mounts and namespaces (nested_sandbox re-allows these) */
    {"mount", EPERM, true},
    {"umount2", EPERM, true},
    {"pivot_root", EPERM, true},
    {"chroot", EPERM, true},
    {"unshare", EPERM, true},
    {"setns", EPERM, true},
    /* the new mount API: ENOSYS so libraries fall back to mount(2) */
    {"open_tree", ENOSYS, false},
    {"move_mount", ENOSYS, false},
    {"fsopen", ENOSYS, false},
    {"fsconfig", ENOSYS, false},
    {"fsmount", ENOSYS, false},
    {"fspick", ENOSYS, false},
    {"mount_setattr", ENOSYS, false},
    /* clone3 passes flags in memory we cannot inspect: ENOSYS makes glibc use clone */
    {"clone3", ENOSYS, false},
    /* kernel attack surface and host-wide state */
    {"bpf", EPERM, false},
    {"perf_event_open", EPERM, false},
    {"userfaultfd", EPERM, false},
    {"keyctl", EPERM, false},
    {"add_key", EPERM, false},
    {"request_key", EPERM, false},
    {"kexec_load", EPERM, false},
    {"kexec_file_load", EPERM, false},
    {"init_module", EPERM, false},
    {"finit_module", EPERM, false},
    {"delete_module", EPERM, false},
    {"reboot", EPERM, false},
    {"swapon", EPERM, false},
    {"swapoff", EPERM, false},
    {"acct", EPERM, false},
    {"quotactl", EPERM, false},
    {"quotactl_fd", EPERM, false},
    {"open_by_handle_at", EPERM, false},
    {"name_to_handle_at", EPERM, false},
    {"io_uring_setup", EPERM, false},
    {"io_uring_enter", EPERM, false},
    {"io_uring_register", EPERM, false},
    {"syslog", EPERM, false},
    {"uselib", EPERM, false},
    {"modify_ldt", EPERM, false},
    {"iopl", EPERM, false},
    {"ioperm", EPERM, false},
    {"lookup_dcookie", EPERM, false},
    {"nfsservctl", EPERM, false},
    {"settimeofday", EPERM, false},
    {"clock_settime", EPERM, false},
    {"clock_adjtime", EPERM, false},
    {"sysfs", EPERM, false},
    {"_sysctl", EPERM, false},
    {"ustat", EPERM, false},
    {"vm86", EPERM, false},
    {"vm86old", EPERM, false},
    {"move_pages", EPERM, false},
    {"mbind", EPERM, false},
    {"get_mempolicy", EPERM, false},
    {"set_mempolicy", EPERM, false},
    {"migrate_pages", EPERM, false},
    {NULL, 0, false},
};

static const unsigned long ns_flags[] = {CLONE_NEWUSER,   CLONE_NEWNS,  CLONE_NEWPID,
                                         CLONE_NEWNET,    CLONE_NEWUTS, CLONE_NEWIPC,
                                         CLONE_NEWCGROUP, CLONE_NEWTIME};

/* Address families a tenant may open; everything else is EAFNOSUPPORT. */
static bool family_allowed(int f)
{
	return f == AF_UNIX || f == AF_INET || f == AF_INET6 || f == AF_NETLINK;
}

int seccomp_build(const struct seccomp_opts *o, void **ret_ctx)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
		return -ENOMEM;
	int rc = 0;
	/* Only the native ABI: i386 and x32 syscalls hit the bad-arch action,
	 * so socketcall() and friends cannot sidestep per-syscall rules. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
		goto fail;

	for (const struct seccomp_rule *r = seccomp_rules; r->name; r++) {
		if (o->nested_sandbox && r->nested_ok)
			continue;
		int nr = seccomp_syscall_resolve_name(r->name);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), nr, 0)) < 0)
			goto fail;
	}
	if (!o->nested_sandbox) {
		for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
			rc =
			    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			                     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
			if (rc < 0)
				goto fail;
		}
	}
	/* TIOCSTI/TIOCLINUX inject input into a terminal; compare the low 32
	 * bits only, as the kernel does (CVE-2019-10063). */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	                      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, (unsigned long)TIOCSTI));
	if (rc < 0)
		goto fail;
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
	                      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, (unsigned long)TIOCLINUX));
	if (rc < 0)
		goto fail;
	/* personality: only PER_LINUX/PER_LINUX32 and the 0xffffffff query.
	 * libseccomp allows one comparison per argument, so the query is a
	 * separate LOG (= allow and audit) rule that outranks the ERRNO one. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
	                           SCMP_A0(SCMP_CMP_GT, 8))) < 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_LOG, SCMP_SYS(personality), 1,
	                           SCMP_A0(SCMP_CMP_EQ, 0xffffffffUL))) < 0)
		goto fail;
	/* socket families */
	for (int f = 0; f < AF_MAX; f++) {
		if (family_allowed(f))
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		                      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)f));
		if (rc < 0)
			goto fail;
	}
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
	                           SCMP_A0(SCMP_CMP_GE, AF_MAX))) < 0)
		goto fail;
	/* netlink only for route queries (getaddrinfo's AI_ADDRCONFIG) */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2,
	                           SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
	                           SCMP_A2(SCMP_CMP_NE, 0 /* NETLINK_ROUTE */))) < 0)
		goto fail;
	*ret_ctx = ctx;
	return 0;
fail:
	seccomp_release(ctx);
	return rc;
}

int seccomp_to_memfd(void *ctx)
{
	int fd = memfd_create("warren-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return rc < 0 ? rc : -errno;
	}
	return fd;
}

void seccomp_free(void *ctx)
{
	seccomp_release(ctx);
}

int seccomp_export(const struct seccomp_opts *o, void **data, size_t *len)
{
	void *ctx = NULL;
	int rc = seccomp_build(o, &ctx);
	if (rc < 0)
		return rc;
	rc = seccomp_ctx_export(ctx, data, len);
	seccomp_free(ctx);
	return rc;
}

int seccomp_ctx_export(void *ctx, void **data, size_t *len)
{
	int fd = seccomp_to_memfd(ctx);
	if (fd < 0)
		return fd;
	off_t size = lseek(fd, 0, SEEK_END);
	void *buf = size > 0 ? malloc((size_t)size) : NULL;
	if (buf == NULL || pread(fd, buf, (size_t)size, 0) != size) {
		free(buf);
		close(fd);
		return -EIO;
	}
	close(fd);
	*data = buf;
	*len = (size_t)size;
	return 0;
}
