/* reserve.h - tokens reserved for a tenant's API requests in flight, so that
 * a budget holds against parallel requests (as a credit proxy pre-deducts):
 * the monitor reserves before the gateway forwards, and settles from the
 * metered usage afterwards. Root's file state_dir/usage/reserved/<tenant>,
 * one line per reservation ("api id pid tokens expires"), rewritten under
 * a lock; a reservation whose monitor is gone, or that outlived
 * RESERVE_TTL_S, no longer counts. */
#ifndef WARREN_RESERVE_H
#define WARREN_RESERVE_H

#include <sys/types.h>
#include <time.h>

#define RESERVE_TTL_S 900
#define RESERVE_MAX   1024 /* reservations in one tenant's file: past it, 429 */

struct reserve_ask {
	const char *api;
	long long tokens; /* to reserve for this request */
	long long budget; /* budget_tokens */
	long long used;   /* today's metered use, input + output */
	int max_inflight; /* requests in flight at once; 0 = any */
	pid_t owner;      /* the monitor that will settle it */
};

enum { RESERVE_OK = 0, RESERVE_OVER_BUDGET = 1, RESERVE_INFLIGHT = 2 };

/* RESERVE_OK with *id when used + what is reserved stays under the budget
 * and fewer than max_inflight are in flight; else why not (*reserved: the
 * tokens reserved now, for the message); -errno on failure. */
int reserve_take(const char *state_dir, const char *tenant, const struct reserve_ask *ask,
                 time_t now, long long *id, long long *reserved);
/* The reservation goes (its request was metered, or never went out). */
int reserve_drop(const char *state_dir, const char *tenant, long long id, time_t now);

#endif
