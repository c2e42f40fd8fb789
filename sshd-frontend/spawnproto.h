/* spawnproto.h - the spawn protocol (sandbox_scope = channel), in three
 * messages:
 *  1. session process -> monitor: MON_SPAWN, a struct mon_spawn
 *     (monproto.h, checked by moncheck.c) and a sealed memfd with argv and
 *     envp (../sandbox/strblob.h, bounded when read back);
 *  2. spawn helper (forked by the monitor, already the tenant) -> monitor:
 *     struct spawn_reply and the sandbox's descriptors, checked here;
 *  3. monitor -> session process: struct mon_reply and the descriptors.
 * tests/fuzz/fuzz_spawn.c drives the checker and the strings' reader. */
#ifndef WARREN_SPAWNPROTO_H
#define WARREN_SPAWNPROTO_H

#include <stddef.h>
#include <stdint.h>

struct spawn_reply {
	int32_t rc;   /* 0, or -errno */
	int32_t mask; /* which of stdin, stdout, stderr, ctl follow (bits 0-3) */
	char err[200];
};

/* A spawn_reply of n bytes with nfds descriptors, from a process that runs
 * as the tenant: NULL when it may be used (its err then terminated in
 * place), else why not. A success names its control socket and exactly
 * the descriptors that came; a failure brings none. */
const char *spawn_reply_check(struct spawn_reply *r, size_t n, int nfds);

#endif
