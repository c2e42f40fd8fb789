/* spawn.c - where warren execs bwrap (and the helpers run as the tenant or
 * for a profile build): children forked by fork_child (fork.c) start with
 * default signal dispositions, an empty mask, and only the fds meant for
 * them; bwrap gets its (possibly large) arguments through --args FD. */
#include "spawn.h"
#include "fork.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int memfd_with(const char *name, const void *data, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* the policy's generated files and the seccomp filter as memfds, each
 * added to keep (bwrap reads them by number): 0, or -1 with err */
static int policy_fds(struct sandbox_policy *p, const struct bpf_blob *filter, int *keep,
                      int *nkeep, char *err, size_t errlen)
{
	for (int i = 0; i < p->nfiles; i++)
		p->files[i].fd = -1;
	p->seccomp_fd = -1;
	for (int i = 0; i < p->nfiles; i++) {
		p->files[i].fd =
		    memfd_with("warren-file", p->files[i].content, strlen(p->files[i].content));
		if (p->files[i].fd < 0) {
			snprintf(err, errlen, "memfd: %s", strerror(errno));
			return -1;
		}
		keep[(*nkeep)++] = p->files[i].fd;
	}
	if (filter == NULL || filter->data == NULL || filter->len == 0) {
		snprintf(err, errlen, "no seccomp filter: refusing to start a sandbox without one");
		return -1;
	}
	if ((p->seccomp_fd = memfd_with("warren-seccomp", filter->data, filter->len)) < 0) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return -1;
	}
	keep[(*nkeep)++] = p->seccomp_fd;
	return 0;
}

/* bwrap's argv: its options go through --args (NUL-separated, in a memfd:
 * *args_fd); bwrap stops parsing an --args blob at "--", so the command
 * itself stays on the real argv. NULL with err on failure. */
static char **bwrap_argv(const struct strv *args, int *args_fd, char *fdarg, size_t fdlen,
                         char *err, size_t errlen)
{
	size_t split = 0;
	while (split < args->n && strcmp(args->v[split], "--") != 0)
		split++;
	size_t total = 0;
	for (size_t i = 0; i < split; i++)
		total += strlen(args->v[i]) + 1;
	char *blob = malloc(total ? total : 1);
	char **bargv = calloc(args->n - split + 4, sizeof *bargv);
	if (blob == NULL || bargv == NULL) {
		free(blob);
		free(bargv);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t off = 0;
	for (size_t i = 0; i < split; i++) {
		size_t l = strlen(args->v[i]) + 1;
		memcpy(blob + off, args->v[i], l);
		off += l;
	}
	*args_fd = memfd_with("warren-args", blob, total);
	free(blob);
	if (*args_fd < 0) {
		free(bargv);
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return NULL;
	}
	snprintf(fdarg, fdlen, "%d", *args_fd);
	bargv[0] = (char *)"bwrap";
	bargv[1] = (char *)"--args";
	bargv[2] = fdarg;
	for (size_t i = split; i < args->n; i++)
		bargv[3 + i - split] = args->v[i];
	return bargv;
}

/* the child: stdio in place, rlimits as a second line behind the cgroup
 * (nsjail's defaults), then bwrap */
static _Noreturn void exec_bwrap(const char *bwrap, char **bargv, char *const envp[], int in0,
                                 int out1, int err1)
{
	dup2(in0, 0);
	dup2(out1, 1);
	dup2(err1, 2);
	struct rlimit core = {0, 0}, nofile = {65536, 65536};
	setrlimit(RLIMIT_CORE, &core);
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0) {
		getrlimit(RLIMIT_NOFILE, &nofile);
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	execve(bwrap, bargv, envp);
	dprintf(2, "warren: cannot run %s: %s\n", bwrap, strerror(errno));
	_exit(127);
}

static int spawn_bwrap(const char *bwrap, struct sandbox_policy *p, const struct bpf_blob *filter,
                       struct init_opts *io, char *const argv[], char *const envp[],
                       struct sandbox_proc *out, char *err, size_t errlen)
{
	bool pty = io->pty;
	int in[2] = {-1, -1}, o[2] = {-1, -1}, e[2] = {-1, -1}, ctl[2] = {-1, -1};
	int args_fd = -1, devnull = -1, rc = -1;
	int keep[POLICY_MAX_FILES + 4];
	int nkeep = 0;
	struct strv args = {0};
	char **bargv = NULL;
	char fdarg[16];

	if (policy_fds(p, filter, keep, &nkeep, err, errlen) < 0)
		goto out;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 ||
	    pipe2(e, O_CLOEXEC) < 0 ||
	    (!pty && (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0)) ||
	    (pty && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	keep[nkeep++] = ctl[1];
	if (io->env)
		keep[nkeep++] = io->env_fd;
	/* 1 MiB pipes (the unprivileged maximum by default): fewer wake-ups
	 * per byte for bulk transfers; failures leave the 64 KiB default */
	int bulk[] = {in[0], o[0], e[0]};
	for (size_t i = 0; i < sizeof bulk / sizeof bulk[0]; i++)
		if (bulk[i] >= 0)
			fcntl(bulk[i], F_SETPIPE_SZ, 1 << 20);

	io->ctl_fd = ctl[1];
	io->proxy_port = p->network == NET_ALLOWLIST ? EGRESS_PROXY_PORT : 0;
	io->api_mask = p->api_mask;
	if (policy_render(p, io, argv, &args) < 0) {
		snprintf(err, errlen, "cannot render the sandbox policy");
		goto out;
	}
	if ((bargv = bwrap_argv(&args, &args_fd, fdarg, sizeof fdarg, err, errlen)) == NULL)
		goto out;
	keep[nkeep++] = args_fd;

	pid_t pid = fork_child(FORK_RESET_SIGNALS | FORK_CLOEXEC_REST, keep, nkeep);
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_bwrap(bwrap, bargv, envp, pty ? devnull : in[0], pty ? e[1] : o[1], e[1]);
	out->pid = pid;
	out->stdin_fd = in[1];
	out->stdout_fd = o[0];
	out->stderr_fd = e[0];
	out->ctl_fd = ctl[0];
	in[1] = o[0] = e[0] = ctl[0] = -1;
	int fds[] = {out->stdin_fd, out->stdout_fd, out->stderr_fd, out->ctl_fd};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	rc = 0;
out:
	free(bargv);
	close_fd(&devnull);
	for (int i = 0; i < p->nfiles; i++)
		close_fd(&p->files[i].fd);
	close_fd(&p->seccomp_fd);
	close_fd(&args_fd);
	int *all[] = {&in[0], &in[1], &o[0], &o[1], &e[0], &e[1], &ctl[0], &ctl[1]};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		close_fd(all[i]);
	strv_free(&args);
	return rc;
}

int spawn_sandbox(const char *bwrap, struct sandbox_policy *p, const struct bpf_blob *filter,
                  bool pty, int rows, int cols, char *const argv[], char *const envp[],
                  struct sandbox_proc *out, char *err, size_t errlen)
{
	struct init_opts io = {.pty = pty, .rows = rows, .cols = cols};
	return spawn_bwrap(bwrap, p, filter, &io, argv, envp, out, err, errlen);
}

int spawn_environment(const char *bwrap, struct sandbox_policy *p, const struct bpf_blob *filter,
                      int listen_fd, long linger, long pids, char *const envp[],
                      struct sandbox_proc *out, char *err, size_t errlen)
{
	struct init_opts io = {.env = true, .env_fd = listen_fd, .linger = linger, .pids = pids};
	char *none[] = {NULL};
	return spawn_bwrap(bwrap, p, filter, &io, none, envp, out, err, errlen);
}

int sandbox_proc_pack(const struct sandbox_proc *p, int fds[4], int *mask)
{
	const int all[4] = {p->stdin_fd, p->stdout_fd, p->stderr_fd, p->ctl_fd};
	int n = 0;
	*mask = 0;
	for (int i = 0; i < 4; i++)
		if (all[i] >= 0) {
			fds[n++] = all[i];
			*mask |= 1 << i;
		}
	return n;
}

int sandbox_proc_unpack(struct sandbox_proc *p, int mask, const int *fds, int n)
{
	int *slot[4] = {&p->stdin_fd, &p->stdout_fd, &p->stderr_fd, &p->ctl_fd};
	int k = 0;
	p->pid = 0;
	for (int i = 0; i < 4; i++)
		*slot[i] = (mask & (1 << i)) && k < n ? fds[k++] : -1;
	while (k < n)
		close(fds[k++]);
	if (p->ctl_fd >= 0)
		return 0;
	sandbox_proc_close_fds(p);
	return -1;
}

void sandbox_proc_close_fds(struct sandbox_proc *p)
{
	int *slot[4] = {&p->stdin_fd, &p->stdout_fd, &p->stderr_fd, &p->ctl_fd};
	for (int i = 0; i < 4; i++)
		if (*slot[i] >= 0) {
			close(*slot[i]);
			*slot[i] = -1;
		}
}

int spawn_run_as(uid_t uid, gid_t gid, char *const argv[])
{
	pid_t pid = fork_child(FORK_RESET_SIGNALS | FORK_CLOEXEC_REST, NULL, 0);
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(126);
		char *const envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"LC_ALL=C", NULL};
		execve(argv[0], argv, envp);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int spawn_capture(char *const argv[], char *const envp[], char *out, size_t outlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork_child(FORK_RESET_SIGNALS | FORK_CLOEXEC_REST, NULL, 0);
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execve(argv[0], argv, envp);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	size_t used = 0;
	char buf[4096];
	ssize_t n;
	while ((n = read(pfd[0], buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (outlen == 0)
			continue;
		/* keep the tail: that is where build errors are */
		size_t k = (size_t)n;
		if (k >= outlen - 1) {
			memcpy(out, buf + k - (outlen - 1), outlen - 1);
			used = outlen - 1;
		} else {
			if (used + k > outlen - 1) {
				size_t drop = used + k - (outlen - 1);
				memmove(out, out + drop, used - drop);
				used -= drop;
			}
			memcpy(out + used, buf, k);
			used += k;
		}
	}
	if (outlen)
		out[used] = '\0';
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
