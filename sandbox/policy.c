/* policy.c - build a tenant's mount plan as data and render it to bwrap
 * arguments. Pure functions apart from host_facts_probe(). */
#include "policy.h"
#include "fmt.h"

#include "profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const policy_top_dirs[5] = {"bin", "sbin", "lib", "lib64", "lib32"};

/* Host /etc entries a sandbox may see, read-only. Everything else in /etc
 * (shadow, ssh keys, sudoers, the host's passwd) stays invisible. */
static const char *const etc_allow[] = {
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "bash.bashrc",
    "inputrc",
    "locale.alias",
    "mime.types",
    "protocols",
    "services",
    "host.conf",
    "gai.conf",
    "terminfo",
    "magic",
    "profile.d",
    "manpath.config",
};

static void add_mount(struct sandbox_policy *p, enum mount_kind kind, const char *src,
                      const char *dst)
{
	if (p->nmounts == POLICY_MAX_MOUNTS) {
		p->overflow = true;
		return;
	}
	struct mount_op *m = &p->mounts[p->nmounts];
	memset(m, 0, sizeof *m);
	m->kind = kind;
	if ((src && snprintf(m->src, sizeof m->src, "%s", src) >= (int)sizeof m->src) ||
	    snprintf(m->dst, sizeof m->dst, "%s", dst) >= (int)sizeof m->dst) {
		p->overflow = true;
		return;
	}
	p->nmounts++;
}

static void add_file(struct sandbox_policy *p, const char *dst, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_file(struct sandbox_policy *p, const char *dst, const char *fmt, ...)
{
	if (p->nfiles == POLICY_MAX_FILES) {
		p->overflow = true;
		return;
	}
	struct gen_file *f = &p->files[p->nfiles];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(f->content, sizeof f->content, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof f->content) {
		p->overflow = true;
		return;
	}
	f->fd = -1;
	add_mount(p, MNT_DATA, NULL, dst);
	if (!p->overflow)
		p->mounts[p->nmounts - 1].data = p->nfiles++;
}

_Static_assert(offsetof(struct sandbox_conf, egress) + sizeof(struct egress_rules) ==
                   sizeof(struct sandbox_conf),
               "egress is sandbox_conf's last member");
_Static_assert(offsetof(struct egress_rules, r) + sizeof(((struct egress_rules *)0)->r) ==
                   sizeof(struct egress_rules),
               "r is egress_rules' last member");

size_t sandbox_conf_used(const struct sandbox_conf *c)
{
	int n = c->egress.n < 0                  ? 0
	        : c->egress.n > EGRESS_MAX_RULES ? EGRESS_MAX_RULES
	                                         : c->egress.n;
	return offsetof(struct sandbox_conf, egress.r) + (size_t)n * sizeof c->egress.r[0];
}

void sandbox_conf_copy(struct sandbox_conf *dst, const struct sandbox_conf *src)
{
	memmove(dst, src, sandbox_conf_used(src));
}

int policy_build(struct sandbox_policy *p, const struct sandbox_conf *conf,
                 const struct sandbox_identity *id, const struct host_facts *facts,
                 const struct profile *prof)
{
	memset(p, 0, sizeof *p);
	if (snprintf(p->tenant, sizeof p->tenant, "%s", id->tenant) >= (int)sizeof p->tenant)
		return -EINVAL;
	p->uid = id->uid;
	p->gid = id->gid;
	p->network = conf->network;
	p->api_mask = conf->network == NET_HOST ? 0 : conf->api_mask;
	p->nested_sandbox = conf->nested_sandbox;
	p->tmp_size = conf->tmp_size;
	p->seccomp_fd = -1;
	policy_home(id->tenant, p->home, sizeof p->home);
	snprintf(p->hostname, sizeof p->hostname, "%s", id->tenant);
	snprintf(p->shell, sizeof p->shell, "%s", conf->shell);

	add_mount(p, MNT_RO_BIND, "/usr", "/usr");
	for (int i = 0; i < 5; i++) {
		char dst[16];
		fmt_into(dst, sizeof dst, "/%s", policy_top_dirs[i]);
		if (facts->top[i] == HOSTDIR_SYMLINK)
			add_mount(p, MNT_SYMLINK, facts->top_target[i], dst);
		else if (facts->top[i] == HOSTDIR_DIR)
			add_mount(p, MNT_RO_BIND, dst, dst);
	}
	for (size_t i = 0; i < sizeof etc_allow / sizeof etc_allow[0]; i++) {
		char path[64];
		fmt_into(path, sizeof path, "/etc/%s", etc_allow[i]);
		add_mount(p, MNT_RO_BIND_TRY, path, path);
	}
	if (conf->network == NET_HOST) {
		add_mount(p, MNT_RO_BIND_TRY, "/etc/resolv.conf", "/etc/resolv.conf");
		add_mount(p, MNT_RO_BIND_TRY, "/etc/hosts", "/etc/hosts");
	} else {
		add_file(p, "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t%s\n",
		         p->hostname);
	}
	add_file(p, "/etc/passwd",
	         "root:x:0:0:root:/root:/usr/sbin/nologin\n"
	         "%s:x:%u:%u:warren tenant:%s:%s\n"
	         "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	         p->tenant, (unsigned)p->uid, (unsigned)p->gid, p->home, p->shell);
	add_file(p, "/etc/group", "root:x:0:\n%s:x:%u:\nnogroup:x:65534:\n", p->tenant,
	         (unsigned)p->gid);
	add_file(p, "/etc/hostname", "%s\n", p->hostname);
	/* Our own /etc/profile: the host's would reset PATH and drop the
	 * tenant's toolchain from the front of it. */
	add_file(p, "/etc/profile",
	         "# generated by warren: PATH is set by the session, keep it.\n"
	         "umask 022\n"
	         "if [ -d /etc/profile.d ]; then\n"
	         "  for i in /etc/profile.d/*.sh; do [ -r \"$i\" ] && . \"$i\"; done; unset i\n"
	         "fi\n"
	         "if [ -n \"$BASH_VERSION\" ] && [ -r /etc/bash.bashrc ]; then . /etc/bash.bashrc; "
	         "fi\n");
	if (facts->nix_store)
		add_mount(p, MNT_RO_BIND, "/nix/store", "/nix/store");
	add_mount(p, MNT_PROC, NULL, "/proc");
	/* /dev read-only (bwrap makes it a tmpfs the tenant owns); its shm, like
	 * every tmpfs a tenant can write, is capped at tmp_size */
	add_mount(p, MNT_DEV, NULL, "/dev");
	add_mount(p, MNT_TMPFS_STICKY, NULL, "/dev/shm");
	add_mount(p, MNT_REMOUNT_RO, NULL, "/dev");
	add_mount(p, MNT_TMPFS_STICKY, NULL, "/tmp");
	add_mount(p, MNT_TMPFS, NULL, "/run");
	add_mount(p, MNT_DIR, NULL, "/var");
	add_mount(p, MNT_SYMLINK, "../run", "/var/run"); /* as on the host: FHS */
	add_mount(p, MNT_TMPFS_STICKY, NULL, "/var/tmp");
	add_mount(p, MNT_RO_BIND, id->init_helper, SANDBOX_INIT_PATH);
	add_mount(p, MNT_BIND, id->workspace, p->home);
	/* the profile's path mappings: store paths at fixed absolute paths */
	for (int i = 0; prof && i < prof->nmaps; i++)
		add_mount(p, MNT_RO_BIND, prof->maps[i].src, prof->maps[i].dst);
	/* the tmpfs root (and /etc, /home on it) is read-only once built */
	add_mount(p, MNT_REMOUNT_RO, NULL, "/");
	return p->overflow ? -E2BIG : 0;
}

static void render_mount(const struct sandbox_policy *p, const struct mount_op *m, struct strv *o)
{
	switch (m->kind) {
	case MNT_RO_BIND:
		strv_addn(o, 3, "--ro-bind", m->src, m->dst);
		break;
	case MNT_RO_BIND_TRY:
		strv_addn(o, 3, "--ro-bind-try", m->src, m->dst);
		break;
	case MNT_BIND:
		strv_addn(o, 3, "--bind", m->src, m->dst);
		break;
	case MNT_TMPFS:
	case MNT_TMPFS_STICKY:
		if (p->tmp_size) {
			strv_add(o, "--size");
			strv_addf(o, "%llu", p->tmp_size);
		}
		if (m->kind == MNT_TMPFS_STICKY)
			strv_addn(o, 2, "--perms", "1777");
		strv_addn(o, 2, "--tmpfs", m->dst);
		break;
	case MNT_REMOUNT_RO:
		strv_addn(o, 2, "--remount-ro", m->dst);
		break;
	case MNT_PROC:
		strv_addn(o, 2, "--proc", m->dst);
		break;
	case MNT_DEV:
		strv_addn(o, 2, "--dev", m->dst);
		break;
	case MNT_DIR:
		strv_addn(o, 2, "--dir", m->dst);
		break;
	case MNT_SYMLINK:
		strv_addn(o, 3, "--symlink", m->src, m->dst);
		break;
	case MNT_DATA:
		strv_add(o, "--ro-bind-data");
		strv_addf(o, "%d", p->files[m->data].fd);
		strv_add(o, m->dst);
		break;
	}
}

int policy_render(const struct sandbox_policy *p, const struct init_opts *init, char *const argv[],
                  struct strv *o)
{
	if (p->overflow)
		return -E2BIG;
	for (int i = 0; i < p->nfiles; i++)
		if (p->files[i].fd < 0)
			return -EBADF;
	strv_addn(o, 2, "--unshare-all", "--unshare-user");
	if (p->network == NET_HOST)
		strv_add(o, "--share-net");
	if (!p->nested_sandbox)
		strv_add(o, "--disable-userns");
	if (p->seccomp_fd >= 0) {
		strv_add(o, "--seccomp");
		strv_addf(o, "%d", p->seccomp_fd);
	}
	strv_addn(o, 4, "--die-with-parent", "--new-session", "--as-pid-1", "--cap-drop");
	strv_add(o, "ALL");
	strv_addn(o, 2, "--hostname", p->hostname);
	strv_add(o, "--uid");
	strv_addf(o, "%u", (unsigned)p->uid);
	strv_add(o, "--gid");
	strv_addf(o, "%u", (unsigned)p->gid);
	for (int i = 0; i < p->nmounts; i++)
		render_mount(p, &p->mounts[i], o);
	strv_addn(o, 2, "--chdir", p->home);
	strv_addn(o, 2, "--", SANDBOX_INIT_PATH);
	strv_add(o, "--ctl");
	strv_addf(o, "%d", init->ctl_fd);
	if (init->pty) {
		strv_add(o, "--pty");
		strv_addf(o, "%dx%d", init->rows, init->cols);
	}
	if (init->proxy_port > 0) {
		strv_add(o, "--proxy");
		strv_addf(o, "%d", init->proxy_port);
	}
	for (int i = 0; i < SANDBOX_MAX_APIS; i++)
		if (init->api_mask & (1u << i)) {
			strv_add(o, "--api");
			strv_addf(o, "%d", SANDBOX_API_PORT + i);
		}
	if (init->env) {
		strv_add(o, "--env");
		strv_addf(o, "%d", init->env_fd);
		strv_add(o, "--linger");
		strv_addf(o, "%ld", init->linger);
		if (init->pids > 0) {
			strv_add(o, "--pids");
			strv_addf(o, "%ld", init->pids);
		}
		return o->oom ? -ENOMEM : 0;
	}
	strv_add(o, "--");
	for (int i = 0; argv[i]; i++)
		strv_add(o, argv[i]);
	return o->oom ? -ENOMEM : 0;
}

int policy_home(const char *tenant, char *out, size_t len)
{
	return fmt_into(out, len, "/home/%s", tenant);
}

struct cg_limits policy_cg_limits(const struct sandbox_conf *conf)
{
	return (struct cg_limits){.memory_max = conf->memory_max,
	                          .pids_max = conf->pids_max,
	                          .connections_max = conf->max_connections,
	                          .cpu_max_milli = conf->cpu_max_milli};
}

void host_facts_probe(struct host_facts *f)
{
	memset(f, 0, sizeof *f);
	for (int i = 0; i < 5; i++) {
		char path[16];
		struct stat st;
		fmt_into(path, sizeof path, "/%s", policy_top_dirs[i]);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(path, f->top_target[i], sizeof f->top_target[i] - 1);
			if (n > 0) {
				f->top_target[i][n] = '\0';
				f->top[i] = HOSTDIR_SYMLINK;
			}
		} else if (S_ISDIR(st.st_mode)) {
			f->top[i] = HOSTDIR_DIR;
		}
	}
	struct stat st;
	f->nix_store = stat("/nix/store", &st) == 0 && S_ISDIR(st.st_mode);
}
