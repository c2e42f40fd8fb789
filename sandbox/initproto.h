/* initproto.h - messages between a session process and warren-init (pid 1 in
 * the sandbox) over a SOCK_SEQPACKET socketpair. */
#ifndef WARREN_INITPROTO_H
#define WARREN_INITPROTO_H

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

#endif
