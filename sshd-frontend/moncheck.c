/* moncheck.c - the monitor's request table and its checks (pure: the unit
 * and fuzz tests drive it; monitor.c serves what passes). */
#include <string.h>

#include "monproto.h"

#define SESSION MON_PHASE_SESSION
#define PREAUTH MON_PHASE_PREAUTH
#define AUTHED  MON_PHASE_AUTHED

static const struct mon_rule {
	uint32_t type;
	const char *name;
	int phases;              /* enum mon_phase bits it may come in */
	size_t min_len, max_len; /* payload */
} rules[] = {
    {MON_CLAIM, "claim", SESSION, 0, 0},
    {MON_RELEASE, "release", SESSION, 0, 0},
    {MON_RECORD, "record", SESSION, 0, 0},
    {MON_AUDIT, "audit", SESSION, 2, MON_MAX_PAYLOAD},
    {MON_NOTE, "note", SESSION, 1, 200},
    {MON_SPAWN, "spawn", SESSION, sizeof(struct mon_spawn), sizeof(struct mon_spawn)},
    {MON_AUTH_PUBKEY, "publickey", PREAUTH, 3, MON_MAX_REQUEST},
    {MON_AUTH_PASSWORD, "password", PREAUTH, 3, MON_USER_MAX + MON_SECRET_MAX + 2},
    {MON_KBDINT_START, "keyboard-interactive", PREAUTH, 2, MON_USER_MAX + 1},
    {MON_KBDINT_ANSWER, "keyboard-interactive answers", PREAUTH, 0,
     WPAM_MAX_PROMPTS *(MON_SECRET_MAX + 1)},
    {MON_LOGIN, "login", AUTHED, 0, 0},
};

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

/* The shape of a pre-auth request's payload (its length is checked). */
static const char *auth_shape(uint32_t type, const char *p, size_t len)
{
	switch (type) {
	case MON_AUTH_PUBKEY:
		/* the key as "TYPE BASE64" */
		return (p[0] == 0 || p[0] == 1 || p[0] == 2) &&
		               strnlen(p + 1, len - 1) <= MON_USER_MAX &&
		               strings_ok(p + 1, len - 1, 2, MON_KEYBLOB_MAX)
		           ? NULL
		           : "bad publickey request";
	case MON_AUTH_PASSWORD:
		return strings_ok(p, len, 2, MON_SECRET_MAX) && strnlen(p, len) <= MON_USER_MAX
		           ? NULL
		           : "bad password request";
	case MON_KBDINT_START:
		return strings_ok(p, len, 1, MON_USER_MAX) ? NULL
		                                           : "bad keyboard-interactive request";
	case MON_KBDINT_ANSWER: {
		int n = 0;
		for (size_t i = 0; i < len; i++)
			n += p[i] == '\0';
		return n <= WPAM_MAX_PROMPTS && strings_ok(p, len, n, MON_SECRET_MAX)
		           ? NULL
		           : "bad answers";
	}
	default:
		return NULL;
	}
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
	const struct mon_rule *r = NULL;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		if (rules[i].type == h.type)
			r = &rules[i];
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
	const char *why = auth_shape(h.type, (const char *)msg + sizeof h, len);
	if (why)
		return why;
	int at = find(st, h.channel);
	switch (h.type) {
	case MON_CLAIM:
		if (h.channel < 0)
			return "bad channel";
		if (at >= 0)
			return "channel already holds a slot";
		if (st->nchan >= MON_MAX_CHANS)
			return "too many channels";
		break;
	case MON_RELEASE:
		if (at < 0)
			return "release of a channel that holds no slot";
		break;
	case MON_RECORD:
		if (at < 0)
			return "recording for a channel that holds no slot";
		if (st->chan[at].recorded)
			return "channel already recorded";
		break;
	case MON_SPAWN: {
		struct mon_spawn s;
		memcpy(&s, (const char *)msg + sizeof h, sizeof s);
		if (at < 0)
			return "sandbox for a channel that holds no slot";
		if (st->chan[at].spawned)
			return "channel already has its sandbox";
		if ((s.pty != 0 && s.pty != 1) || s.rows < 0 || s.cols < 0 || s.rows > 10000 ||
		    s.cols > 10000 || s.argc < 1 || s.envc < 0)
			return "bad spawn request";
		break;
	}
	case MON_NOTE: {
		const char *p = (const char *)msg + sizeof h;
		if (p[0] != 'C' && p[0] != 'T')
			return "unknown note";
		break;
	}
	default:
		break;
	}
	return NULL;
}

void mon_apply(struct mon_state *st, uint32_t type, int32_t channel)
{
	int at = find(st, channel);
	if (type == MON_CLAIM && at < 0 && st->nchan < MON_MAX_CHANS) {
		st->chan[st->nchan++] = (struct mon_chan){.id = channel};
	} else if (type == MON_RELEASE && at >= 0) {
		st->nchan--;
		st->chan[at] = st->chan[st->nchan];
	} else if (type == MON_RECORD && at >= 0) {
		st->chan[at].recorded = true;
	} else if (type == MON_SPAWN && at >= 0) {
		st->chan[at].spawned = true;
	} else if (type == MON_LOGIN) {
		st->phase = MON_PHASE_SESSION; /* once: the table allows it only when authed */
	}
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
