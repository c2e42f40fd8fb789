/* monproto.h - what a connection's unprivileged process may ask of its root
 * monitor, over a SOCK_SEQPACKET socketpair: one request per message, a
 * header then a payload of at most MON_MAX_REQUEST bytes. The same process
 * asks in three phases: pre-auth (the authentication requests: is this key
 * allowed, a password, a keyboard-interactive round), authenticated (only
 * MON_LOGIN, once), session (the rest). The monitor checks each against a
 * table (moncheck.c): known type, the phase, length bounds and shape, and
 * the channel's state (a slot is claimed once and released once; a
 * recording, or a sandbox, only for a channel that holds a slot, once
 * each). */
#ifndef WARREN_MONPROTO_H
#define WARREN_MONPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../pam/pam.h"

enum mon_type {
	MON_CLAIM = 1,   /* a session channel starts: max_sessions, counted by root;
	                  * reply MON_OK or MON_FULL (value: sessions running) */
	MON_RELEASE = 2, /* it ended; no reply */
	MON_RECORD = 3,  /* a recording file for a claimed channel; reply with the fd,
	                  * or MON_FAILED / MON_FULL (record_total_max) */
	MON_AUDIT = 4,   /* an audit event: "event\0key\0value\0..." (audit.h);
	                  * the monitor sets the tenant; no reply */
	MON_NOTE = 5,    /* a status line for the master: 'C' + command or 'T'; no reply */
	MON_SPAWN = 6,   /* sandbox_scope = channel: the channel's sandbox, started by root's
	                  * helper as the tenant: struct mon_spawn, and a strblob memfd
	                  * (argv, envp); reply MON_OK, value: which of stdin, stdout,
	                  * stderr, ctl follow as fds (bits 0-3), or MON_FAILED, value: errno */
	/* pre-auth (struct mon_auth_reply answers each) */
	MON_AUTH_PUBKEY = 7,    /* u8 signed (0 a query, 1 valid, 2 bad), user\0, "TYPE BASE64"\0 */
	MON_AUTH_PASSWORD = 8,  /* user\0 password\0 */
	MON_KBDINT_START = 9,   /* user\0 */
	MON_KBDINT_ANSWER = 10, /* the answers, each \0-terminated */
	/* authenticated: the login, prepared by root; answered by a sealed
	 * memfd (struct handover, handover.h) and the session's descriptors */
	MON_LOGIN = 11,
	MON_NTYPES
};

/* the phases of mon_state */
enum mon_phase { MON_PHASE_PREAUTH = 1, MON_PHASE_AUTHED = 2, MON_PHASE_SESSION = 4 };

/* mon_auth_reply.result */
enum {
	MON_AUTH_DENIED = 0,
	MON_AUTH_SUCCESS = 1,    /* for a query (signed 0): the key would do (PK_OK) */
	MON_AUTH_PARTIAL = 2,    /* methods: what is still required */
	MON_AUTH_PROMPTS = 3,    /* a keyboard-interactive round: prompts */
	MON_AUTH_DISCONNECT = 4, /* say banner (when set), then disconnect */
};

#define MON_USER_MAX    256  /* a user name as the client sent it (longer: cut) */
#define MON_SECRET_MAX  1024 /* a password or an answer */
#define MON_KEYBLOB_MAX 8192
#define MON_MAX_REQUEST (1 + MON_USER_MAX + 1 + MON_KEYBLOB_MAX + 1)

enum { MON_OK = 0, MON_FAILED = 1, MON_FULL = 2 };

#define MON_MAX_PAYLOAD  2048
#define MON_MAX_CHANS    1024 /* channels holding a slot at once */
#define MON_AUDIT_MAX_KV 24   /* key/value pairs in one event */

struct mon_hdr {
	uint32_t type;
	int32_t channel;
};

struct mon_reply {
	int32_t code;
	int32_t value;
};

struct mon_auth_reply {
	int32_t result;
	int32_t methods; /* SSH_AUTH_METHOD_* bits to offer next (PARTIAL) */
	char banner[600];
	struct wpam_prompts prompts; /* PROMPTS: a keyboard-interactive round */
};

struct mon_spawn {
	int32_t pty; /* 0 or 1 */
	int32_t rows, cols;
	int32_t argc, envc; /* strings in the memfd */
};

/* The monitor's view of its session process's channels. */
struct mon_state {
	/* one entry per channel holding a slot, grown as channels claim (at
	 * most MON_MAX_CHANS); mon_state_free releases it */
	struct mon_chan {
		int32_t id;
		unsigned done;      /* bit 1 << type: a once-per-channel request served */
		int64_t claimed_ms; /* when the slot was claimed (monotonic; the monitor's) */
	} * chan;
	int nchan, cap;
	unsigned refused; /* out-of-state or malformed requests so far */
	int phase;        /* enum mon_phase; 0 is taken as MON_PHASE_SESSION */
};

/* Checks one message (header + payload, n bytes in all) against the table
 * and st; NULL when it may be served, else why not. Changes nothing. */
const char *mon_check(const struct mon_state *st, const void *msg, size_t n);
/* The serving side's handler of one request type: h, its payload (len
 * bytes, checked) and the descriptor that came with it (-1: none). */
typedef void mon_handler(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd);
/* The one dispatch: checks msg (mon_check), refuses a type fn has no
 * handler for, logs a refusal with the request's name (who: the asker, for
 * the log) and counts it in st; else calls fn[type]. NULL when served,
 * else why refused: the caller answers a refused request that waits. */
const char *mon_dispatch(struct mon_state *st, mon_handler *const fn[MON_NTYPES], void *ctx,
                         const char *who, const void *msg, size_t n, int fd);
/* A request type's name, for the log. */
const char *mon_name(uint32_t type);
/* Records what a served request changed (a claim granted, a release, a
 * recording opened, a sandbox started, the login handed over): 0, or -1
 * when a claim could not be recorded (no memory: refuse it). */
int mon_apply(struct mon_state *st, uint32_t type, int32_t channel);
/* The entry of a channel that holds a slot, or NULL. */
struct mon_chan *mon_chan_of(struct mon_state *st, int32_t channel);
void mon_state_free(struct mon_state *st);

/* An MON_AUDIT payload split into event and pairs (pointers into payload);
 * NULL when acceptable, else why not: an event a session may not write, a
 * key that is not [a-z_] (with an optional leading '#') or is reserved
 * (ts, pid, event, tenant), an unterminated string, too many pairs. */
const char *mon_audit_parse(const char *payload, size_t len, const char **event, const char *kv[],
                            size_t *nkv);

#endif
