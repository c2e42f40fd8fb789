/* fuzz_monitor.c - libFuzzer target: the root monitor's decoder of requests
 * from a tenant's session process (moncheck.c), with state carried across
 * the messages of one input (split at each 0xff byte). */
#include <stdint.h>
#include <string.h>

#include "../../sshd-frontend/monproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mon_state st;
	memset(&st, 0, sizeof st);
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i < size && data[i] != 0xff)
			continue;
		const char *m = (const char *)data + start;
		size_t n = i - start;
		start = i + 1;
		if (mon_check(&st, m, n) != NULL)
			continue;
		struct mon_hdr h;
		memcpy(&h, m, sizeof h);
		if (h.type == MON_AUDIT) {
			const char *event, *kv[2 * MON_AUDIT_MAX_KV];
			size_t nkv;
			mon_audit_parse(m + sizeof h, n - sizeof h, &event, kv, &nkv);
		}
		mon_apply(&st, h.type, h.channel);
	}
	return 0;
}
