/* apigw_monitor.c - the root monitor's side of the gateway protocol
 * (apigw.h: GW_BUDGET, GW_USAGE): budget answers from the usage ledger and
 * api_usage audit events. Everything the gateway sends is checked: it
 * parses bytes a tenant controls. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "apigw.h"
#include "../sshd-frontend/audit.h"
#include "../sshd-frontend/config.h"
#include "../sshd-frontend/log.h"
#include "../sshd-frontend/reserve.h"
#include "../sshd-frontend/usage.h"

/* a number as text for an audit pair (each call its own buffer, 4 in turn) */
static const char *fmt_ll(long long v)
{
	static char buf[4][24];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0], "%lld", v);
	return b;
}

/* GW_BUDGET: today's use and what requests in flight have reserved stay
 * under the budget, and max_inflight holds: reserve for this one */
static void budget_answer(int fd, const struct server_conf *srv, const char *tenant, int api)
{
	const struct api_conf *a = &srv->apis[api];
	struct usage_total t;
	struct gw_budget b = {.budget = (int64_t)a->budget_tokens};
	time_t now = time(NULL);
	if (usage_get(srv->state_dir, tenant, a->name, now, &t) < 0)
		log_warn("tenant %s: usage totals unreadable", tenant);
	b.used = t.input + t.output;
	struct reserve_ask ask = {.api = a->name,
	                          .tokens = (long long)a->reserve_tokens,
	                          .budget = b.budget > 0 ? b.budget : (long long)1 << 62,
	                          .used = b.used,
	                          .max_inflight = a->max_inflight,
	                          .owner = getpid()};
	long long id = 0, reserved = 0;
	int rc = reserve_take(srv->state_dir, tenant, &ask, now, &id, &reserved);
	b.reserved = reserved;
	b.ok = rc == RESERVE_OK;
	b.inflight = rc == RESERVE_INFLIGHT;
	b.reservation = b.ok ? id : 0;
	if (rc < 0)
		log_warn("tenant %s: reservations unreadable: %s; refusing", tenant, strerror(-rc));
	waudit_event(b.ok ? "api_reserve" : "api_refused", "tenant", tenant, "api", a->name,
	             "#tokens", b.ok ? fmt_ll(ask.tokens) : "0", "#reserved", fmt_ll(reserved),
	             "#used", fmt_ll(b.used), "reason",
	             b.ok         ? NULL
	             : b.inflight ? "max_inflight"
	             : rc < 0     ? "error"
	                          : "budget_tokens",
	             NULL);
	if (send(fd, &b, sizeof b, MSG_NOSIGNAL) < 0)
		log_debug("gateway budget answer: %s", strerror(errno));
}

static long long clamp(int64_t v)
{
	return v < 0 ? 0 : v > (int64_t)1 << 40 ? (int64_t)1 << 40 : v;
}

static void usage_record(const struct server_conf *srv, const char *tenant, struct gw_msg *m)
{
	/* its strings were terminated by gw_msg_check; the audit's JSON escapes them */
	struct usage_total t = {.requests = 1,
	                        .input = clamp(m->input),
	                        .output = clamp(m->output),
	                        .cache_read = clamp(m->cache_read),
	                        .cache_creation = clamp(m->cache_creation)};
	const char *api = srv->apis[m->api].name;
	time_t now = time(NULL);
	if (usage_add(srv->state_dir, tenant, api, &t, now) < 0)
		log_warn("tenant %s: usage totals not written: %s", tenant, strerror(errno));
	/* settled: metered first, then the reservation goes (never counted short) */
	int rc = reserve_drop(srv->state_dir, tenant, m->reservation, now);
	if (rc < 0)
		log_warn("tenant %s: reservation not settled: %s", tenant, strerror(-rc));
	char num[8][24];
	long long v[8] = {t.input,   t.output,       t.cache_read,       t.cache_creation,
	                  m->status, m->duration_ms, clamp(m->bytes_up), clamp(m->bytes_down)};
	for (int i = 0; i < 8; i++)
		snprintf(num[i], sizeof num[i], "%lld", v[i]);
	waudit_event("api_usage", "tenant", tenant, "api", api, "model", m->model, "method",
	             m->method, "path", m->path, "#input_tokens", num[0], "#output_tokens", num[1],
	             "#cache_read_input_tokens", num[2], "#cache_creation_input_tokens", num[3],
	             "#status", num[4], "#duration_ms", num[5], "#bytes_up", num[6], "#bytes_down",
	             num[7], "settled", m->reservation > 0 ? "yes" : NULL, NULL);
}

void apigw_serve_monitor(int fd, const struct server_conf *srv, const char *tenant, unsigned mask)
{
	struct gw_msg m;
	ssize_t n = recv(fd, &m, sizeof m, MSG_DONTWAIT);
	if (n < 0)
		return;
	const char *why = gw_msg_check(&m, (size_t)n, srv->napis, mask);
	if (why) {
		if (n == (ssize_t)sizeof m)
			log_warn("tenant %s: gateway message (type %d, api %d) refused: %s", tenant,
			         (int)m.type, (int)m.api, why);
		return;
	}
	if (m.type == GW_BUDGET)
		budget_answer(fd, srv, tenant, m.api);
	else
		usage_record(srv, tenant, &m);
}
