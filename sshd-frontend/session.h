/* session.h - after the privilege drop: session channels (pty, env, shell,
 * exec, signals, EOF, exit status) and the data pump between each channel
 * and its sandbox, with bounded buffers in both directions. */
#ifndef WARREN_SESSION_H
#define WARREN_SESSION_H

#include <libssh/libssh.h>
#include <limits.h>
#include <time.h>

#include "../sandbox/policy.h"
#include "../sandbox/profile.h"
#include "../sandbox/spawn.h"
#include "config.h"
#include "../egress/proxy.h"
#include "tenant.h"

struct chan;

/* ssh -R: a listener init opened on the environment's loopback */
#define SESSION_MAX_RFWD 16
struct rfwd {
	int fd;
	short reg;
	char addr[64]; /* as the client asked for it */
	int port;      /* as bound */
	struct session_ctx *sx;
};

struct session_ctx {
	ssh_session session;
	ssh_event event;
	const struct server_conf *srv;
	const struct tenant_conf *tenant;
	struct tenant_id id;
	/* paths, never NULL once the login is prepared ("" when none), on the
	 * heap: as PATH_MAX arrays they would take a page each */
	const char *workspace;
	const char *init_helper;
	char ssh_connection[160];
	struct host_facts facts;
	struct chan *chans;
	int nchans;
	int sigfd;
	short sig_reg;
	char fail[200];                /* set: every session request is answered with this line */
	const struct bpf_blob *filter; /* the seccomp filter, built once by the master */
	struct timespec last_activity; /* for idle_timeout */
	struct timespec started;       /* when the session process took over */
	struct proxy proxy;            /* network = allowlist */
	const char *sessions_dir;      /* state_dir/sessions/<tenant>: the monitor's slots */
	bool draining;
	int mon_sock; /* to the root monitor (monproto.h): slots, recordings, audit, notes */
	int api_sock; /* to the API gateway: the sandboxes' endpoints; -1: none */
	int host_api_port[SANDBOX_MAX_APIS]; /* network = host: the endpoints' ports */
	struct timespec last_note;
	struct profile *profile; /* the tenant's toolchain (heap); NULL: none */
	int env_member;          /* sandbox_scope = tenant: our MEMBER connection */
	short member_reg;
	const char *env_sock; /* ... and where channels connect ("" when none) */
	bool agent_fwd;       /* the client forwards its agent (ssh -A) */
	bool ending;          /* the connection is gone: channels are being freed */
	struct rfwd rfwd[SESSION_MAX_RFWD];
	int nrfwd;
};

/* libssh's channel-open callback body: a new session channel, or NULL. */
ssh_channel session_channel_open(struct session_ctx *sx);

/* A channel-open message other than "session" (direct-tcpip), or a global
 * request (tcpip-forward, cancel-tcpip-forward): 0 when handled, 1 to let
 * libssh refuse it. */
int session_channel_request(struct session_ctx *sx, ssh_message msg);
int session_global_request(struct session_ctx *sx, ssh_message msg);

/* Runs the connection until the client goes away; returns an exit code. */
int session_run(struct session_ctx *sx);

#endif
