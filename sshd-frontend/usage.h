/* usage.h - per-tenant daily API usage totals: root-owned files under
 * state_dir/usage/YYYY-MM-DD/<tenant> (one line per api), updated by the
 * monitors under a lock, read for budgets and by `warrend --usage`. */
#ifndef WARREN_USAGE_H
#define WARREN_USAGE_H

#include <stdio.h>
#include <time.h>

struct usage_total {
	long long requests, input, output, cache_read, cache_creation;
};

/* adds one request's counts to today's (UTC) line of tenant/api */
int usage_add(const char *state_dir, const char *tenant, const char *api,
              const struct usage_total *add, time_t now);
/* today's totals of tenant/api (zeros when none); 0 or -errno */
int usage_get(const char *state_dir, const char *tenant, const char *api, time_t now,
              struct usage_total *out);
/* a table of one day's totals (date "YYYY-MM-DD", NULL: today) to out */
int usage_print(const char *state_dir, const char *date, FILE *out);

#endif
