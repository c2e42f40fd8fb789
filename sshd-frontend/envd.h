/* envd.h - the tenant's environment (sandbox_scope = tenant): one running
 * sandbox per tenant on this host, shared by all of the tenant's channels
 * and connections, ending `linger` seconds after its last connection closed.
 *
 *   env monitor (root): forked by the first connection's monitor and handed
 *     to the master (a child subreaper), which lists, drains and kills it.
 *     Owns the environment's cgroup and API gateway, answers the gateway's
 *     budget questions, cleans up. SIGTERM (drain): linger becomes 0;
 *     SIGUSR2: the environment ends now.
 *   env process (the tenant, no capabilities): starts bwrap with
 *     warren-init --env, serves the egress proxy on init's listener, hands
 *     the API listeners to the gateway; ends when the sandbox ends.
 *   session processes (the tenant): one MEMBER connection to init for their
 *     lifetime, one connection per channel (envd_spawn) or forwarded stream
 *     (envd_connect), on state_dir/envs/<tenant>.sock (root's directory,
 *     the socket the tenant's uid's alone; no sandbox sees it).
 *
 * Files by who runs them: envd_wrap.c (session processes), envproc.c (the
 * env process), envmon.c (the env monitor, root). */
#ifndef WARREN_ENVD_H
#define WARREN_ENVD_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/policy.h"
#include "../sandbox/profile.h"
#include "../sandbox/spawn.h"
#include "config.h"

#include <libssh/server.h>

/* What the root monitor knows after login preparation. */
struct envd_ctx {
	const struct server_conf *srv;
	const struct tenant_conf *tenant;
	uid_t uid;
	gid_t gid;
	const char *workspace;
	const char *init_helper;
	const struct host_facts *facts;
	const struct profile *profile; /* NULL: none */
	const struct bpf_blob *filter;
	const struct cg *cg;
	pid_t master_pid;
	char sock_path[PATH_MAX]; /* state_dir/envs/<tenant>.sock */
	int close_fds[4];         /* the connection's: the env monitor closes them */
	int nclose;
	ssh_session session; /* the env monitor frees these (the host key with them) */
	ssh_bind bind;
};

/* Who serves a tenant's API endpoints: the environment's gateway when they
 * are inside its network namespace; with network = host (endpoints on the
 * host's loopback, per connection) or one sandbox per channel, each
 * connection's own. */
static inline bool envd_serves_apis(const struct sandbox_conf *sb)
{
	return !sb->scope_channel && sb->network != NET_HOST;
}

/* Root, at login: joins the tenant's running environment or starts one.
 * Returns a MEMBER connection to it (held for the connection's lifetime),
 * or -1 with err; *started is the new env monitor's pid (the master's child
 * by then), or 0. */
int envd_join(const struct envd_ctx *ctx, pid_t *started, char *err, size_t errlen);

/* The session process's side (the tenant). */
int envd_member(const char *sock_path, int timeout_ms);
/* A channel's command inside the environment: out gets the channel's
 * connection (ctl_fd) and, without a pty, the stdio pipes; pid is 0. */
int envd_spawn(const char *sock_path, char *const argv[], char *const envp[], bool pty, int rows,
               int cols, struct sandbox_proc *out, char *err, size_t errlen);
/* Resumable PTY sessions. attach: take over detached session id (0: the
 * latest) on a new channel connection (ctl_fd); init answers REPLAY, PTY,
 * STARTED or ERROR. detach: the connection dropped; hand init the master and
 * the screen so far. list: "ID SECONDS COMMAND\n" lines, NUL-terminated. */
int envd_attach(const char *sock_path, int id, int rows, int cols, struct sandbox_proc *out);
int envd_detach(int ctl_fd, int master, const char *screen, size_t len);
ssize_t envd_list(const char *sock_path, char *buf, size_t len);
/* A TCP connection made inside the environment to its loopback (family 4
 * or 6), or -1 with errno. */
int envd_connect(const char *sock_path, int family, int port);

/* A listening socket on the environment's loopback (ssh -R), or -1. */
int envd_listen(const char *sock_path, int family, int port);
/* This connection forwards the client's agent: init's agent socket
 * (INIT_AGENT_SOCK) sends its connections here (INIT_MSG_AGENT). */
int envd_agent(int member_fd);

/* a listening TCP socket on 127.0.0.1 (init's proxy or API port), nothing else */
bool envd_loopback_listener(int fd);
/* An API endpoint init opened (its port), checked like the proxy's (an API
 * of api_mask, a loopback listener), handed to the gateway on gw_sock for
 * channel: 1 handed over, 0 not an endpoint of ours, -1 (errno) not sent. */
int envd_give_api(int gw_sock, unsigned api_mask, int port, int channel, int fd);

#endif
