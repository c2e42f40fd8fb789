/* fuzz_authkeys.c - libFuzzer target: authorized_keys lines (tenant-supplied
 * key material reaches this parser). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sshd-frontend/authkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	ssh_key k = NULL;
	const char *why = NULL;
	if (authkeys_parse_line(line, &k, &why) == 1)
		ssh_key_free(k);
	free(line);
	return 0;
}
