/* fuzz_spawn.c - libFuzzer target: the spawn protocol's checks: the
 * strings of a spawn request read back from a memfd (sandbox/strblob.c)
 * and the spawn helper's reply (sshd-frontend/spawncheck.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../sandbox/strblob.h"
#include "../../sshd-frontend/spawnproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	struct spawn_reply r;
	memset(&r, 0, sizeof r);
	memcpy(&r, data, size < sizeof r ? size : sizeof r);
	int nfds = data[0] & 7;
	if (spawn_reply_check(&r, size, nfds) == NULL &&
	    (strlen(r.err) >= sizeof r.err || (r.rc == 0 && !(r.mask & 8)) ||
	     (r.rc < 0 && nfds != 0)))
		abort();
	int argc = data[1] % 8, envc = data[2] % 8;
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data + 3, size - 3) == (ssize_t)(size - 3)) {
		char *blob = NULL;
		char **v = strblob_read(fd, argc, envc, &blob);
		if (v) {
			for (int i = 0; i < argc; i++)
				if (v[i] == NULL || strlen(v[i]) > size)
					abort();
			if (v[argc] != NULL)
				abort();
			free(v);
			free(blob);
		}
	}
	close(fd);
	return 0;
}
