/* fuzz_httpframe.c - libFuzzer target: HTTP head lookup and body framing,
 * which the egress proxy runs on bytes from the sandbox and from upstreams.
 * The input is a head, then a body fed in two pieces. */
#include <stdint.h>
#include <string.h>

#include "../../egress/httpframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *end = memmem(p, size, "\r\n\r\n", 4);
	size_t hl = end ? (size_t)(end + 4 - p) : size;
	struct body_scan b;
	int status = size ? data[0] % 2 ? 200 : 0 : 0;
	if (http_body_init(&b, p, hl, status, size > 1 && data[1] == 'H') < 0)
		return 0;
	size_t half = (size - hl) / 2;
	long a = http_body_feed(&b, p + hl, half);
	if (a >= 0 && !b.done)
		http_body_feed(&b, p + hl + half, size - hl - half);
	return 0;
}
