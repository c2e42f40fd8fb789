/* admit.c - admission control for new connections (see admit.h). */
#include "admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int admit_parse_startups(const char *v, struct startups *out)
{
	char *end;
	long a = strtol(v, &end, 10);
	if (end == v || a < 1 || a > 100000)
		return -1;
	if (*end == '\0') {
		*out = (struct startups){.start = (int)a, .rate = 100, .full = (int)a};
		return 0;
	}
	if (*end != ':')
		return -1;
	const char *p = end + 1;
	long r = strtol(p, &end, 10);
	if (end == p || *end != ':' || r < 1 || r > 100)
		return -1;
	p = end + 1;
	long f = strtol(p, &end, 10);
	if (end == p || *end != '\0' || f < a || f > 100000)
		return -1;
	*out = (struct startups){.start = (int)a, .rate = (int)r, .full = (int)f};
	return 0;
}

bool admit_early_drop(const struct startups *s, int unauth, int dice)
{
	if (unauth < s->start)
		return false;
	if (unauth >= s->full)
		return true;
	/* rate% at start, rising linearly to 100% at full */
	int p = s->rate + (100 - s->rate) * (unauth - s->start) / (s->full - s->start);
	return dice < p;
}

void admit_source_key(const struct sockaddr *sa, socklen_t len, char *key, size_t keylen)
{
	snprintf(key, keylen, "?");
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, key,
		          (socklen_t)keylen);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			inet_ntop(AF_INET, &a.s6_addr[12], key, (socklen_t)keylen);
			return;
		}
		memset(&a.s6_addr[8], 0, 8); /* one host's /64 counts as one source */
		char buf[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &a, buf, sizeof buf);
		snprintf(key, keylen, "%s/64", buf);
	}
}

void penalty_init(struct penalties *p, const struct penalty_conf *conf)
{
	memset(p, 0, sizeof *p);
	p->conf = *conf;
}

static struct penalty *find(const struct penalties *p, const char *key)
{
	for (size_t i = 0; i < ADMIT_PENALTY_SLOTS; i++)
		if (p->slot[i].key[0] && !strcmp(p->slot[i].key, key))
			return (struct penalty *)&p->slot[i];
	return NULL;
}

/* a free or expired slot, else the one that expires first */
static struct penalty *claim(struct penalties *p, time_t now)
{
	struct penalty *best = &p->slot[0];
	for (size_t i = 0; i < ADMIT_PENALTY_SLOTS; i++) {
		struct penalty *s = &p->slot[i];
		if (!s->key[0] || s->until <= now)
			return s;
		if (s->until < best->until)
			best = s;
	}
	return best;
}

void penalty_noauth(struct penalties *p, const char *key, time_t now)
{
	if (p->conf.noauth <= 0)
		return;
	struct penalty *s = find(p, key);
	if (s == NULL || s->until <= now) {
		if (s == NULL)
			s = claim(p, now);
		snprintf(s->key, sizeof s->key, "%s", key);
		s->until = now;
		s->active = false;
	}
	s->until += p->conf.noauth;
	if (s->until > now + p->conf.max)
		s->until = now + p->conf.max;
	if (s->until - now >= p->conf.min)
		s->active = true;
}

long penalty_left(const struct penalties *p, const char *key, time_t now)
{
	const struct penalty *s = find(p, key);
	if (s == NULL || !s->active || s->until <= now)
		return 0;
	return (long)(s->until - now);
}

bool refusal_note(struct refusals *r, enum admit_reason why, time_t now)
{
	if (r->since[why] == 0 || now - r->since[why] >= r->window) {
		if (r->count[why] == 0) {
			r->since[why] = now; /* a new window, opened by this refusal: log it */
			return true;
		}
	}
	r->count[why]++;
	return false;
}

void refusal_flush(struct refusals *r, time_t now,
                   void (*report)(enum admit_reason why, unsigned long count))
{
	for (int i = 0; i < ADMIT_REASONS; i++) {
		if (r->since[i] == 0 || now - r->since[i] < r->window)
			continue;
		if (r->count[i])
			report((enum admit_reason)i, r->count[i]);
		r->count[i] = 0;
		r->since[i] = 0; /* the next refusal opens a window and is logged */
	}
}

const char *admit_reason_name(enum admit_reason why)
{
	static const char *const names[ADMIT_REASONS] = {
	    "max_startups", "max_connections_per_source", "max_startups_per_source", "penalty"};
	return names[why];
}
