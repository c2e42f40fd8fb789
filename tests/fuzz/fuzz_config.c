/* fuzz_config.c - libFuzzer target: tenant files through inih and our
 * handlers (an operator's typo must give an error, never a crash). */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../sshd-frontend/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-tenant", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct sandbox_conf d = {.profile = "default", .shell = "/bin/sh"};
	struct tenant_conf t;
	struct cfg_error e;
	if (config_load_tenant_file(path, "fuzz", &d, &t, &e) == 0)
		config_free_tenant(&t);
	close(fd);
	return 0;
}
