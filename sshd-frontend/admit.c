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

int admit_parse_net(const char *v, struct admit_net *out)
{
	char *end;
	long a = strtol(v, &end, 10);
	if (end == v || *end != ':' || a < 1 || a > 32)
		return -1;
	const char *w = end + 1;
	long b = strtol(w, &end, 10);
	if (end == w || *end != '\0' || b < 1 || b > 128)
		return -1;
	out->v4 = (int)a;
	out->v6 = (int)b;
	return 0;
}

/* the first bits of an address of n bytes kept, the rest zero */
static void keep_bits(unsigned char *a, size_t n, int bits)
{
	for (size_t i = 0; i < n; i++) {
		int keep = bits - (int)i * 8;
		a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
}

static void net_key(int family, const void *addr, int bits, int all, char *key, size_t keylen)
{
	unsigned char a[16];
	memcpy(a, addr, (size_t)all / 8);
	keep_bits(a, (size_t)all / 8, bits);
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(family, a, buf, sizeof buf);
	if (bits >= all)
		snprintf(key, keylen, "%s", buf);
	else
		snprintf(key, keylen, "%s/%d", buf, bits);
}

void admit_source_key(const struct sockaddr *sa, socklen_t len, const struct admit_net *net,
                      char *key, size_t keylen)
{
	snprintf(key, keylen, "?");
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		net_key(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, net->v4, 32, key,
		        keylen);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			net_key(AF_INET, &a->s6_addr[12], net->v4, 32, key, keylen);
		else
			net_key(AF_INET6, a, net->v6, 128, key, keylen);
	}
}

int admit_key_of_text(const char *addr, const struct admit_net *net, char *key, size_t keylen)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1)
		admit_source_key((struct sockaddr *)&s4, sizeof s4, net, key, keylen);
	else if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1)
		admit_source_key((struct sockaddr *)&s6, sizeof s6, net, key, keylen);
	else
		return -1;
	return 0;
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
