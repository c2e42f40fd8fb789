/* initproto.h - the two wire protocols of warren-init (pid 1 in a sandbox),
 * SOCK_SEQPACKET, one message each, descriptors by SCM_RIGHTS:
 *  - init control: struct init_msg between a channel's session process (or
 *    the env process) and its init: the command's start, PTY, exit,
 *    listeners; signals the other way;
 *  - the environment: struct init_req from a session process (or the env
 *    process) to warren-init --env, answered by init_msg.
 * Each side checks what it receives with the one checker of its struct
 * (initcheck.c: type, size, descriptors, value ranges) before it looks at
 * its own state; tests/fuzz/fuzz_initproto.c drives both. */
#ifndef WARREN_INITPROTO_H
#define WARREN_INITPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	INIT_MSG_PTY = 'P',     /* init -> session: PTY master attached (SCM_RIGHTS) */
	INIT_MSG_STARTED = 'R', /* init -> session: command started, value = pid inside */
	INIT_MSG_EXIT = 'X',    /* init -> session: value = raw wait status of the command */
	INIT_MSG_SIGNAL = 'S',  /* session -> init: deliver signal `value` to the command */
	INIT_MSG_PROXY = 'L',   /* init -> session: listening socket on 127.0.0.1 inside the
	                         * sandbox's network namespace (SCM_RIGHTS) */
	INIT_MSG_API = 'A',     /* init -> session: the same for an API gateway endpoint,
	                         * value = its port (SANDBOX_API_PORT + index) */
};

struct init_msg {
	int32_t type;
	int32_t value;
};

/* The tenant environment (sandbox_scope = tenant). warren-init --env FD
 * listens on a SOCK_SEQPACKET unix socket bound outside the sandbox, in a
 * directory only the tenant's warrend processes reach. Each connection is one
 * warren connection (MEMBER) or one channel (SPAWN) or one forwarded stream
 * (CONNECT). init ends `linger` seconds after its last connection closed.
 * Replies on a channel's connection are the init_msg messages above. */
enum {
	INIT_REQ_MEMBER = 'M',  /* a warren connection joins; no reply */
	INIT_REQ_SPAWN = 'N',   /* fds: a memfd with argc + envc NUL-terminated
	                         * strings, then stdin, stdout, stderr (no
	                         * stdio with a pty: init opens one and answers
	                         * INIT_MSG_PTY) */
	INIT_REQ_CONNECT = 'T', /* connect to the sandbox's loopback, port `value`,
	                         * family 4 or 6; answer SOCKET or ERROR */
	INIT_REQ_KILL = 'Z',    /* signal `value` to every process of the channel's
	                         * session (those that left it with setsid are spared) */
	INIT_REQ_LINGER = 'G',  /* env process -> init: linger becomes `value` s */
	INIT_REQ_LISTEN = 'B',  /* listen on the sandbox's loopback, port `value` (0: any),
	                         * family 4 or 6; answer SOCKET (the listener) or ERROR */
	INIT_REQ_AGENT = 'Y',   /* on a MEMBER connection: this connection forwards the
	                         * client's agent; init listens on INIT_AGENT_SOCK and hands
	                         * each connection to the latest such member (INIT_MSG_AGENT) */
	INIT_MSG_AGENT = 'a',   /* init -> member: a connection to the agent socket */
	INIT_REQ_DETACH = 'D',  /* on a channel's connection whose PTY command runs: fds
	                         * its PTY master and a memfd with the screen so far;
	                         * init keeps the command running, detached; no reply */
	INIT_REQ_ATTACH = 'J',  /* take over detached session `value` (its command's
	                         * pid; 0: the latest) at rows x cols: answer REPLAY,
	                         * PTY, STARTED, then EXIT as for SPAWN; or ERROR */
	INIT_REQ_LIST = 'Q',    /* answer LIST: a memfd, "ID SECONDS COMMAND\n" each */
	INIT_MSG_REPLAY = 'r',  /* init -> session: memfd with the screen to replay */
	INIT_MSG_LIST = 'l',
	INIT_MSG_SOCKET = 'K', /* init -> session: the connected socket */
	INIT_MSG_ERROR = 'E',  /* init -> session: value = errno */
};

#define INIT_AGENT_DIR      "/tmp/ssh-warren"
#define INIT_AGENT_SOCK     INIT_AGENT_DIR "/agent.sock"
#define INIT_SESSION_ENV    "WARREN_SESSION" /* a PTY command's id for warren-attach */
#define INIT_SPAWN_MAX_BLOB (1 << 20)        /* argv + environment, bytes */
#define INIT_SPAWN_MAX_STRS 4096

struct init_req {
	int32_t type;
	int32_t value; /* CONNECT: port; KILL/SIGNAL: signal; LINGER: seconds */
	int32_t pty;   /* SPAWN */
	int32_t rows, cols;
	int32_t argc, envc;
	int32_t family; /* CONNECT: 4 or 6 */
};

/* An init_msg of n bytes, with a descriptor (has_fd) or not: NULL when its
 * shape is right (a known type, the descriptor its type needs, a value in
 * range), else why not. */
const char *init_msg_check(const void *msg, size_t n, bool has_fd);
/* Receives init_msgs on fd without blocking until a well-formed one comes
 * (a malformed one is consumed, its descriptor closed): 1 with *m and
 * *passed (-1: none); 0 when there is none now; -1 when the other side
 * closed or the socket failed. */
int init_msg_recv(int fd, struct init_msg *m, int *passed);
/* An init_req of n bytes with nfds descriptors: NULL, or why not. */
const char *init_req_check(const void *req, size_t n, int nfds);

#endif
