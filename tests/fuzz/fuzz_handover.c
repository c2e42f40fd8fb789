/* fuzz_handover.c - libFuzzer target: the login handed to the session
 * process (sshd-frontend/handover.c). A struct that passes the checker is
 * read as the session process reads it: every string within its array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sshd-frontend/handover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct handover h;
	memset(&h, 0, sizeof h);
	/* the fuzzer's bytes over the string fields, which is where it matters */
	size_t off = 0;
	char *fields[] = {h.tenant.name, h.id_source, h.workspace,
	                  h.env_sock,    h.fail,      h.profile.name};
	size_t lens[] = {sizeof h.tenant.name, sizeof h.id_source, sizeof h.workspace,
	                 sizeof h.env_sock,    sizeof h.fail,      sizeof h.profile.name};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0] && off < size; i++) {
		size_t n = size - off < lens[i] ? size - off : lens[i];
		memcpy(fields[i], data + off, n);
		off += n;
	}
	if (size > 0) {
		h.uid = data[0];
		h.gid = size > 1 ? data[1] : 0;
		h.filter = size > 2 ? data[2] % 3 : 0;
		h.have_profile = size > 3 && (data[3] & 1);
		h.profile.nenv = size > 4 ? (int8_t)data[4] : 0;
	}
	if (handover_check(&h) != NULL)
		return 0;
	size_t total = strlen(h.tenant.name) + strlen(h.id_source) + strlen(h.workspace) +
	               strlen(h.env_sock) + strlen(h.fail);
	if (h.have_profile)
		for (int i = 0; i < h.profile.nenv; i++)
			total += strlen(h.profile.env_name[i]) + strlen(h.profile.env_value[i]);
	if (total > sizeof h || h.uid == 0)
		abort();
	return 0;
}
