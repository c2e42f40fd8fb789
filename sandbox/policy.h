/* policy.h - a tenant's sandbox described as data (mount plan, identity,
 * namespaces, command) and rendered to a bwrap argument vector; no exec here. */
#ifndef WARREN_POLICY_H
#define WARREN_POLICY_H

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "../egress/rules.h"
#include "strv.h"

enum net_mode { NET_NONE = 0, NET_HOST, NET_ALLOWLIST };

/* API gateway endpoints: the i-th [api] section is served on
 * 127.0.0.1:(SANDBOX_API_PORT + i) in the sandbox's own network namespace */
#define SANDBOX_MAX_APIS 8
#define SANDBOX_API_PORT 3130

/* allow_tcp_forwarding, as sshd: local = direct-tcpip (-L, -D, -W),
 * remote = tcpip-forward (-R) */
enum { FWD_LOCAL = 1, FWD_REMOTE = 2 };

/* [sandbox] settings: server defaults, overridable in a tenant file. */
struct sandbox_conf {
	char profile[64];
	enum net_mode network;
	char shell[128];
	bool nested_sandbox;           /* allow user namespaces + mounts for a nested bwrap */
	unsigned long long memory_max; /* bytes, per tenant and per session; 0 = none */
	long pids_max;                 /* 0 = none */
	long cpu_max_milli;            /* thousandths of a core; 0 = none */
	unsigned long long
	    tmp_size;         /* bytes for each tmpfs: /tmp, /var/tmp, /dev/shm, /run; 0 = none */
	long session_timeout; /* seconds of wall clock per session; 0 = none */
	long idle_timeout;    /* seconds without channel traffic; 0 = none */
	long proxy_max_connections; /* concurrent proxied connections per session */
	long proxy_idle_timeout;    /* seconds */
	long max_sessions;          /* running sessions per tenant, all connections; 0 = any */
	long max_connections;       /* authenticated connections per tenant; 0 = any */
	int record;                 /* 0 none, 1 pty, 2 all */
	bool record_input;
	unsigned long long record_max_bytes;
	unsigned long long record_total_max; /* all of a tenant's recordings; 0 = no cap */
	long record_max_files;       /* files in a tenant's recordings, and per connection */
	unsigned long long disk_max; /* the workspace's own filesystem (disk.c); 0 = none */
	bool scope_channel; /* sandbox_scope = channel: one sandbox per channel (no environment) */
	long linger;        /* seconds the environment outlives the tenant's last connection */
	int tcp_forwarding; /* FWD_* bits: allow_tcp_forwarding */
	bool agent_forwarding; /* allow_agent_forwarding */
	/* `api = NAME`: the server's [api NAME] sections this tenant may use;
	 * names as written (file:line kept for errors), resolved to api_mask
	 * (bit i = the server's i-th [api]) once the server's sections are known */
	char api_names[SANDBOX_MAX_APIS][33];
	int api_lines[SANDBOX_MAX_APIS];
	const char *api_file; /* the file that named them */
	int napi_names;
	unsigned api_mask;
	/* network = allowlist: allow/deny rules. Last, so that a copy can stop
	 * at the last rule written (sandbox_conf_copy): unused, they are 25 KiB
	 * of every copy a connection keeps */
	struct egress_rules egress;
};

/* The bytes of *c in use: all of it but egress.r[egress.n] on. */
size_t sandbox_conf_used(const struct sandbox_conf *c);
/* *dst = *src up to the last rule; dst's unused rules are left as they are. */
void sandbox_conf_copy(struct sandbox_conf *dst, const struct sandbox_conf *src);

enum mount_kind {
	MNT_RO_BIND,     /* src must exist */
	MNT_RO_BIND_TRY, /* skipped when src is missing */
	MNT_BIND,        /* read-write */
	MNT_TMPFS,
	MNT_PROC,
	MNT_DEV,
	MNT_DIR,
	MNT_SYMLINK,      /* src is the link target */
	MNT_DATA,         /* read-only file from files[data] */
	MNT_TMPFS_STICKY, /* tmpfs with mode 1777 (/tmp, /var/tmp) */
	MNT_REMOUNT_RO,   /* last: make the sandbox root itself read-only */
};

struct mount_op {
	enum mount_kind kind;
	char src[256];
	char dst[256];
	int data; /* index into files[] for MNT_DATA */
};

/* A file generated in memory (passwd, group, hostname, hosts). fd is filled
 * by the spawner before rendering; the renderer only prints the number. */
struct gen_file {
	char content[2048];
	int fd;
};

#define POLICY_MAX_MOUNTS 64
#define POLICY_MAX_FILES  8
#define SANDBOX_INIT_PATH "/run/warren/init"

/* What the host looks like, so building a plan needs no syscalls in tests. */
enum host_dir_kind { HOSTDIR_MISSING = 0, HOSTDIR_DIR, HOSTDIR_SYMLINK };
struct host_facts {
	enum host_dir_kind top[5]; /* bin sbin lib lib64 lib32 */
	char top_target[5][64];
	bool nix_store;
};
extern const char *const policy_top_dirs[5];

struct sandbox_identity {
	const char *tenant;
	uid_t uid;
	gid_t gid;
	const char *workspace;   /* host path, bound read-write at home */
	const char *init_helper; /* host path of warren-init */
};

struct sandbox_policy {
	char tenant[33];
	uid_t uid;
	gid_t gid;
	char home[300];
	char hostname[64];
	enum net_mode network;
	char shell[128];
	struct mount_op mounts[POLICY_MAX_MOUNTS];
	int nmounts;
	struct gen_file files[POLICY_MAX_FILES];
	int nfiles;
	bool nested_sandbox;
	unsigned long long tmp_size;
	unsigned api_mask; /* endpoints init opens (see SANDBOX_API_PORT) */
	int seccomp_fd;    /* filled by the spawner; -1 renders no filter (tests only) */
	bool overflow;     /* too many mounts/files: building failed */
};

/* Builds the default plan: read-only system, /nix/store, generated /etc
 * files, private /tmp /run /dev /proc, the workspace at /home/<tenant>. */
struct profile;
/* prof may be NULL; its path mappings become read-only binds. */
int policy_build(struct sandbox_policy *p, const struct sandbox_conf *conf,
                 const struct sandbox_identity *id, const struct host_facts *facts,
                 const struct profile *prof);

/* The tenant's home (its workspace) inside the sandbox: /home/<tenant>. */
int policy_home(const char *tenant, char *out, size_t len);

/* The cgroup limits a tenant's sandbox_conf asks for. */
struct cg_limits policy_cg_limits(const struct sandbox_conf *conf);

/* Renders bwrap options followed by `-- SANDBOX_INIT_PATH <init args> -- argv...`. */
struct init_opts {
	int ctl_fd;
	bool pty;
	int rows, cols;
	int proxy_port;    /* 0: none */
	unsigned api_mask; /* one listener per bit at SANDBOX_API_PORT + bit */
	bool env;          /* environment mode: no command, channels come on env_fd */
	int env_fd;
	long linger; /* environment mode: seconds after the last connection */
	long pids;   /* environment mode: the sandbox's pids.max, 0 = none */
};
int policy_render(const struct sandbox_policy *p, const struct init_opts *init, char *const argv[],
                  struct strv *out);

void host_facts_probe(struct host_facts *f);

#endif
