/* fuzz_gateway.c - libFuzzer target: the checkers of the API gateway's
 * two protocols (egress/gwcheck.c): what the gateway (which parses a
 * tenant's bytes) tells the root monitor, and what a session hands it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../egress/apigw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned mask = data[0];
	bool has_fd = data[1] & 1;
	data += 2;
	size -= 2;
	struct gw_msg m;
	memset(&m, 0, sizeof m);
	memcpy(&m, data, size < sizeof m ? size : sizeof m);
	if (gw_msg_check(&m, size, 3, mask) == NULL) {
		/* passed: one of the tenant's apis, its strings terminated */
		if (m.api < 0 || m.api >= 3 || !(mask & (1u << m.api)) ||
		    strlen(m.model) >= sizeof m.model || strlen(m.path) >= sizeof m.path ||
		    strlen(m.method) >= sizeof m.method)
			abort();
	}
	struct gw_fdmsg f;
	memset(&f, 0, sizeof f);
	memcpy(&f, data, size < sizeof f ? size : sizeof f);
	if (gw_fdmsg_check(&f, size, has_fd, mask) == NULL && f.type == GW_LISTEN &&
	    (!has_fd || f.api < 0 || f.api >= SANDBOX_MAX_APIS || !(mask & (1u << f.api))))
		abort();
	return 0;
}
