/* admit.h - who may open a new connection, decided in the master before it
 * forks: max_startups random early drop (start:rate:full, as OpenSSH), caps
 * per source network (an IPv4 /24, an IPv6 /48 by default, as OpenSSH's
 * PerSourceNetBlockSize: a flood from many addresses of one network counts
 * as one source), penalties for sources whose
 * connections end without authenticating (as sshd's PerSourcePenalties), and
 * refusals logged in aggregate. Pure logic: the caller passes time and dice. */
#ifndef WARREN_ADMIT_H
#define WARREN_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

struct startups {
	int start, rate, full; /* drop rate% at start, rising to 100% at full */
};

/* "N" (start = full = N) or "START:RATE:FULL"; 0, or -1 when malformed */
int admit_parse_startups(const char *v, struct startups *out);
/* true: drop this connection; unauth = unauthenticated connections now,
 * dice uniform in [0, 100) */
bool admit_early_drop(const struct startups *s, int unauth, int dice);

/* the prefix lengths a source network is counted under (source_net_block) */
struct admit_net {
	int v4; /* 1-32 */
	int v6; /* 1-128 */
};
#define ADMIT_NET_DEFAULT ((struct admit_net){.v4 = 24, .v6 = 48})
/* "V4:V6" (as OpenSSH's PerSourceNetBlockSize): 0, or -1 when malformed */
int admit_parse_net(const char *v, struct admit_net *out);

/* the source a connection is counted and penalised under: its network as
 * "ADDRESS/BITS" (a v4-mapped IPv6 address counts as IPv4), or the address
 * alone when the prefix is the whole address; "?" for no address */
void admit_source_key(const struct sockaddr *sa, socklen_t len, const struct admit_net *net,
                      char *key, size_t keylen);
/* the same for an address written as text: 0, or -1 when it is none */
int admit_key_of_text(const char *addr, const struct admit_net *net, char *key, size_t keylen);

#define ADMIT_KEY_MAX       48
#define ADMIT_PENALTY_SLOTS 4096

struct penalty_conf {
	int noauth; /* seconds added when a connection ends unauthenticated; 0 = off */
	int min;    /* a source is refused once its penalty reaches this many seconds */
	int max;    /* and never for longer than this */
};

struct penalty {
	char key[ADMIT_KEY_MAX];
	time_t until; /* penalty accrued up to here */
	bool active;  /* reached min: refused until `until` */
};

struct penalties {
	struct penalty_conf conf;
	struct penalty slot[ADMIT_PENALTY_SLOTS];
};

void penalty_init(struct penalties *p, const struct penalty_conf *conf);
/* a connection from key ended without authenticating */
void penalty_noauth(struct penalties *p, const char *key, time_t now);
/* seconds key is still refused for, 0 when it may connect */
long penalty_left(const struct penalties *p, const char *key, time_t now);

/* Refusals, logged in aggregate: the first of each reason in a window is
 * logged as it happens, the rest counted and summed up when the window ends. */
#define ADMIT_REASONS 4
enum admit_reason { R_STARTUPS, R_PER_SOURCE, R_SOURCE_STARTUPS, R_PENALTY };
struct refusals {
	int window; /* seconds */
	time_t since[ADMIT_REASONS];
	unsigned long count[ADMIT_REASONS]; /* refusals not yet logged */
};
/* true: log this refusal now (the first in its window) */
bool refusal_note(struct refusals *r, enum admit_reason why, time_t now);
/* for each reason whose window ended with unlogged refusals: calls
 * report(reason, count) and starts a new window */
void refusal_flush(struct refusals *r, time_t now,
                   void (*report)(enum admit_reason why, unsigned long count));
const char *admit_reason_name(enum admit_reason why);

#endif
