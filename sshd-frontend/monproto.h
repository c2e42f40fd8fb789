/* monproto.h - what a tenant's unprivileged session process may ask of its
 * connection's root monitor, over a SOCK_SEQPACKET socketpair: one request
 * per message, a header then a payload of at most MON_MAX_PAYLOAD bytes.
 * The monitor checks each against a table (monitor.c): known type, length
 * bounds, and the channel's state (a slot is claimed once and released
 * once; a recording, or a sandbox, only for a channel that holds a slot,
 * once each). */
#ifndef WARREN_MONPROTO_H
#define WARREN_MONPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	MON_NTYPES
};

enum { MON_OK = 0, MON_FAILED = 1, MON_FULL = 2 };

#define MON_MAX_PAYLOAD 2048
#define MON_MAX_CHANS   1024 /* channels holding a slot at once */
#define MON_AUDIT_MAX_KV 24  /* key/value pairs in one event */

struct mon_hdr {
	uint32_t type;
	int32_t channel;
};

struct mon_reply {
	int32_t code;
	int32_t value;
};

struct mon_spawn {
	int32_t pty; /* 0 or 1 */
	int32_t rows, cols;
	int32_t argc, envc; /* strings in the memfd */
};

/* The monitor's view of its session process's channels. */
struct mon_state {
	int32_t chan[MON_MAX_CHANS];
	bool recorded[MON_MAX_CHANS];
	bool spawned[MON_MAX_CHANS];
	int nchan;
	unsigned refused; /* out-of-state or malformed requests so far */
};

/* Checks one message (header + payload, n bytes in all) against the table
 * and st; NULL when it may be served, else why not. Changes nothing. */
const char *mon_check(const struct mon_state *st, const void *msg, size_t n);
/* Records what a served request changed (a claim granted, a release, a
 * recording opened, a sandbox started). */
void mon_apply(struct mon_state *st, uint32_t type, int32_t channel);

/* An MON_AUDIT payload split into event and pairs (pointers into payload);
 * NULL when acceptable, else why not: an event a session may not write, a
 * key that is not [a-z_] (with an optional leading '#') or is reserved
 * (ts, pid, event, tenant), an unterminated string, too many pairs. */
const char *mon_audit_parse(const char *payload, size_t len, const char **event,
                            const char *kv[], size_t *nkv);

#endif
