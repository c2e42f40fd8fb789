/* fuzz_monitor.c - libFuzzer target: the root monitor's decoder of requests
 * from a connection's unprivileged process (moncheck.c), with state carried
 * across the messages of one input (split at each 0xff byte). The first
 * byte picks the phase it starts in (pre-auth, authenticated, session); an
 * accepted authentication request whose last byte is odd stands for a
 * success. What monauth.c then reads of an accepted payload must lie
 * within it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sshd-frontend/monproto.h"

/* the strings monauth.c takes from an accepted payload end inside it */
static void check_payload(uint32_t type, const char *p, size_t len)
{
	size_t off = type == MON_AUTH_PUBKEY ? 1 : 0;
	int strings = type == MON_AUTH_PUBKEY || type == MON_AUTH_PASSWORD ? 2
	              : type == MON_KBDINT_START                           ? 1
	                                                                   : 0;
	for (int i = 0; i < strings; i++) {
		size_t n = strnlen(p + off, len - off);
		if (off + n >= len)
			abort(); /* unterminated: monauth.c would read past it */
		off += n + 1;
	}
	if (type == MON_AUTH_PUBKEY && (unsigned char)p[0] > 2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mon_state st;
	mon_state_free(&st); /* the last input's */
	memset(&st, 0, sizeof st);
	if (size == 0)
		return 0;
	static const int phases[] = {MON_PHASE_PREAUTH, MON_PHASE_AUTHED, MON_PHASE_SESSION};
	st.phase = phases[data[0] % 3];
	size_t start = 1;
	for (size_t i = 1; i <= size; i++) {
		if (i < size && data[i] != 0xff)
			continue;
		const char *m = (const char *)data + start;
		size_t n = i - start;
		start = i + 1;
		if (mon_check(&st, m, n) != NULL)
			continue;
		struct mon_hdr h;
		memcpy(&h, m, sizeof h);
		if (h.type >= MON_AUTH_PUBKEY && h.type <= MON_KBDINT_ANSWER) {
			if (st.phase != MON_PHASE_PREAUTH)
				abort(); /* an auth request accepted after authentication */
			check_payload(h.type, m + sizeof h, n - sizeof h);
			if (n > sizeof h && (m[n - 1] & 1))
				st.phase = MON_PHASE_AUTHED;
			continue;
		}
		if (h.type != MON_LOGIN && st.phase != MON_PHASE_SESSION)
			abort(); /* a session request before the login */
		if (h.type == MON_AUDIT) {
			const char *event, *kv[2 * MON_AUDIT_MAX_KV];
			size_t nkv;
			mon_audit_parse(m + sizeof h, n - sizeof h, &event, kv, &nkv);
		}
		mon_apply(&st, h.type, h.channel);
	}
	return 0;
}
