/* fuzz_egress.c - libFuzzer target: allow/deny rule parsing and name checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../egress/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	static struct egress_rules rs;
	rs.n = 0;
	if (egress_parse(s, size & 1, &rs.r[0]) == 0) {
		rs.n = 1;
		egress_check_name(&rs, s, 443, NULL);
		egress_check_name(&rs, "a.example.com", rs.r[0].port ? rs.r[0].port : 80, NULL);
	}
	free(s);
	return 0;
}
