/* moncheck.c - the monitor's request table, its checks and the one dispatch
 * function (pure but for the refusal's log line: the unit and fuzz tests
 * drive it); monitor.c and monauth.c hold the handlers, as root. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "monproto.h"

#define SESSION MON_PHASE_SESSION
#define PREAUTH MON_PHASE_PREAUTH
#define AUTHED  MON_PHASE_AUTHED

/* n strings, each \0-terminated and at most max long, fill p[0..len) */
static bool strings_ok(const char *p, size_t len, int n, size_t max)
{
	for (int i = 0; i < n; i++) {
		const char *end = memchr(p, '\0', len);
		if (end == NULL || (size_t)(end - p) > max)
			return false;
		len -= (size_t)(end - p) + 1;
		p = end + 1;
	}
	return len == 0;
}

/* ---- each request's own check: its payload's shape, the channel's state ---- */

typedef const char *check_fn(const struct mon_state *st, const struct mon_hdr *h, int at,
                             const char *p, size_t len);

static const char *check_pubkey(const struct mon_state *st, const struct mon_hdr *h, int at,
                                const char *p, size_t len)
{
	/* u8 signed, user, the key as "TYPE BASE64" */
	return (p[0] == 0 || p[0] == 1 || p[0] == 2) && strnlen(p + 1, len - 1) <= MON_USER_MAX &&
	               strings_ok(p + 1, len - 1, 2, MON_KEYBLOB_MAX)
	           ? NULL
	           : "bad publickey request";
}

static const char *check_password(const struct mon_state *st, const struct mon_hdr *h, int at,
                                  const char *p, size_t len)
{
	return strings_ok(p, len, 2, MON_SECRET_MAX) && strnlen(p, len) <= MON_USER_MAX
	           ? NULL
	           : "bad password request";
}

static const char *check_kbdint_start(const struct mon_state *st, const struct mon_hdr *h, int at,
                                      const char *p, size_t len)
{
	return strings_ok(p, len, 1, MON_USER_MAX) ? NULL : "bad keyboard-interactive request";
}

static const char *check_answers(const struct mon_state *st, const struct mon_hdr *h, int at,
                                 const char *p, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += p[i] == '\0';
	return n <= WPAM_MAX_PROMPTS && strings_ok(p, len, n, MON_SECRET_MAX) ? NULL
	                                                                      : "bad answers";
}

static const char *check_claim(const struct mon_state *st, const struct mon_hdr *h, int at,
                               const char *p, size_t len)
{
	if (h->channel < 0)
		return "bad channel";
	if (at >= 0)
		return "channel already holds a slot";
	return st->nchan >= MON_MAX_CHANS ? "too many channels" : NULL;
}

static const char *check_release(const struct mon_state *st, const struct mon_hdr *h, int at,
                                 const char *p, size_t len)
{
	return at < 0 ? "release of a channel that holds no slot" : NULL;
}

static const char *check_record(const struct mon_state *st, const struct mon_hdr *h, int at,
                                const char *p, size_t len)
{
	return at < 0 ? "recording for a channel that holds no slot" : NULL;
}

static const char *check_spawn(const struct mon_state *st, const struct mon_hdr *h, int at,
                               const char *p, size_t len)
{
	struct mon_spawn s;
	memcpy(&s, p, sizeof s);
	if (at < 0)
		return "sandbox for a channel that holds no slot";
	if ((s.pty != 0 && s.pty != 1) || s.rows < 0 || s.cols < 0 || s.rows > 10000 ||
	    s.cols > 10000 || s.argc < 1 || s.envc < 0)
		return "bad spawn request";
	return NULL;
}

static const char *check_note(const struct mon_state *st, const struct mon_hdr *h, int at,
                              const char *p, size_t len)
{
	return p[0] != 'C' && p[0] != 'T' ? "unknown note" : NULL;
}

static const char *check_audit(const struct mon_state *st, const struct mon_hdr *h, int at,
                               const char *p, size_t len)
{
	const char *event, *kv[2 * MON_AUDIT_MAX_KV];
	size_t nkv;
	return mon_audit_parse(p, len, &event, kv, &nkv);
}

#define SESSION MON_PHASE_SESSION
#define PREAUTH MON_PHASE_PREAUTH
#define AUTHED  MON_PHASE_AUTHED

/* The request table: type, name (for the log), the phases it may come in,
 * once (per channel: a recording, a sandbox; a slot is held by a channel
 * at most once, and the login comes once, by its phase), the payload's
 * bounds, and its check. The
 * handlers are the serving side's (monitor.c, monauth.c), indexed by type. */
static const struct mon_rule {
	uint32_t type;
	const char *name;
	int phases;       /* enum mon_phase bits */
	const char *once; /* at most once per channel: why a second is refused */
	size_t min_len, max_len;
	check_fn *check;
} rules[MON_NTYPES] = {
    [MON_CLAIM] = {MON_CLAIM, "claim", SESSION, NULL, 0, 0, check_claim},
    [MON_RELEASE] = {MON_RELEASE, "release", SESSION, NULL, 0, 0, check_release},
    [MON_RECORD] = {MON_RECORD, "record", SESSION, "channel already recorded", 0, 0, check_record},
    [MON_AUDIT] = {MON_AUDIT, "audit", SESSION, NULL, 2, MON_MAX_PAYLOAD, check_audit},
    [MON_NOTE] = {MON_NOTE, "note", SESSION, NULL, 1, 200, check_note},
    [MON_SPAWN] = {MON_SPAWN, "spawn", SESSION, "channel already has its sandbox",
                   sizeof(struct mon_spawn), sizeof(struct mon_spawn), check_spawn},
    [MON_AUTH_PUBKEY] = {MON_AUTH_PUBKEY, "publickey", PREAUTH, NULL, 3, MON_MAX_REQUEST,
                         check_pubkey},
    [MON_AUTH_PASSWORD] = {MON_AUTH_PASSWORD, "password", PREAUTH, NULL, 3,
                           MON_USER_MAX + MON_SECRET_MAX + 2, check_password},
    [MON_KBDINT_START] = {MON_KBDINT_START, "keyboard-interactive", PREAUTH, NULL, 2,
                          MON_USER_MAX + 1, check_kbdint_start},
    [MON_KBDINT_ANSWER] = {MON_KBDINT_ANSWER, "keyboard-interactive answers", PREAUTH, NULL, 0,
                           WPAM_MAX_PROMPTS *(MON_SECRET_MAX + 1), check_answers},
    [MON_LOGIN] = {MON_LOGIN, "login", AUTHED, NULL, 0, 0, NULL},
};

const char *mon_name(uint32_t type)
{
	return type < MON_NTYPES && rules[type].name ? rules[type].name : "unknown";
}

/* what a session process may put in the audit log: its own channels' events */
static const char *const session_events[] = {
    "session_start", "session_end",     "session_detach", "timeout",       "limit_refused",
    "forward_open",  "forward_refused", "egress_allowed", "egress_denied",
};

static int find(const struct mon_state *st, int32_t channel)
{
	for (int i = 0; i < st->nchan; i++)
		if (st->chan[i].id == channel)
			return i;
	return -1;
}

const char *mon_check(const struct mon_state *st, const void *msg, size_t n)
{
	struct mon_hdr h;
	if (n < sizeof h)
		return "short message";
	memcpy(&h, msg, sizeof h);
	const struct mon_rule *r =
	    h.type < MON_NTYPES && rules[h.type].name ? &rules[h.type] : NULL;
	if (r == NULL)
		return "unknown request";
	int phase = st->phase ? st->phase : MON_PHASE_SESSION;
	if (!(r->phases & phase))
		return phase == MON_PHASE_PREAUTH  ? "out of phase: not before authentication"
		       : phase == MON_PHASE_AUTHED ? "out of phase: only the login now"
		                                   : "out of phase: authentication is over";
	size_t len = n - sizeof h;
	if (len < r->min_len || len > r->max_len)
		return "bad length";
	int at = find(st, h.channel);
	if (r->once && at >= 0 && (st->chan[at].done & (1u << h.type)))
		return r->once;
	return r->check ? r->check(st, &h, at, (const char *)msg + sizeof h, len) : NULL;
}

const char *mon_dispatch(struct mon_state *st, mon_handler *const fn[MON_NTYPES], void *ctx,
                         const char *who, const void *msg, size_t n, int fd)
{
	struct mon_hdr h = {0}; /* type 0 (none) when the message is too short */
	if (n >= sizeof h)
		memcpy(&h, msg, sizeof h);
	const char *why = mon_check(st, msg, n);
	if (why == NULL && fn[h.type] == NULL)
		why = "not served here";
	if (why) {
		st->refused++;
		if (st->refused <= 20 || st->refused % 1000 == 0)
			log_warn("monitor: %s: request %u (%s) refused: %s (%u so far)", who,
			         (unsigned)h.type, mon_name(h.type), why, st->refused);
		return why;
	}
	fn[h.type](ctx, &h, (const char *)msg + sizeof h, n - sizeof h, fd);
	return NULL;
}

int mon_apply(struct mon_state *st, uint32_t type, int32_t channel)
{
	int at = find(st, channel);
	if (type == MON_CLAIM && at < 0 && st->nchan < MON_MAX_CHANS) {
		if (st->nchan == st->cap) {
			int cap = st->cap ? 2 * st->cap : 8;
			struct mon_chan *v = realloc(st->chan, (size_t)cap * sizeof *v);
			if (v == NULL)
				return -1;
			st->chan = v;
			st->cap = cap;
		}
		st->chan[st->nchan++] = (struct mon_chan){.id = channel};
	} else if (type == MON_RELEASE && at >= 0) {
		st->nchan--;
		st->chan[at] = st->chan[st->nchan];
	} else if (type < MON_NTYPES && rules[type].once && at >= 0) {
		st->chan[at].done |= 1u << type;
	} else if (type == MON_LOGIN) {
		st->phase = MON_PHASE_SESSION; /* once: the table allows it only when authed */
	}
	return 0;
}

struct mon_chan *mon_chan_of(struct mon_state *st, int32_t channel)
{
	int at = find(st, channel);
	return at < 0 ? NULL : &st->chan[at];
}

void mon_state_free(struct mon_state *st)
{
	free(st->chan);
	st->chan = NULL;
	st->nchan = st->cap = 0;
}

static bool key_ok(const char *k)
{
	static const char *const reserved[] = {"ts", "pid", "event", "tenant"};
	const char *p = k + (k[0] == '#');
	if (*p == '\0' || strlen(p) > 32)
		return false;
	for (const char *c = p; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || *c == '_'))
			return false;
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strcmp(p, reserved[i]) == 0)
			return false;
	return true;
}

const char *mon_audit_parse(const char *payload, size_t len, const char **event, const char *kv[],
                            size_t *nkv)
{
	if (len == 0 || payload[len - 1] != '\0')
		return "unterminated";
	const char *strs[1 + 2 * MON_AUDIT_MAX_KV];
	size_t ns = 0;
	for (size_t off = 0; off < len; off += strlen(payload + off) + 1) {
		if (ns == sizeof strs / sizeof strs[0])
			return "too many pairs";
		strs[ns++] = payload + off;
	}
	if (ns % 2 == 0)
		return "a key without a value";
	bool known = false;
	for (size_t i = 0; i < sizeof session_events / sizeof session_events[0]; i++)
		known |= strcmp(strs[0], session_events[i]) == 0;
	if (!known)
		return "an event a session may not write";
	for (size_t i = 1; i < ns; i += 2)
		if (!key_ok(strs[i]))
			return "bad key";
	*event = strs[0];
	for (size_t i = 1; i < ns; i++)
		kv[i - 1] = strs[i];
	*nkv = ns - 1;
	return NULL;
}
