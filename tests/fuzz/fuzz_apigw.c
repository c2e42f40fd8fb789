/* fuzz_apigw.c - libFuzzer target: the API gateway's parsers of bytes a
 * tenant (request heads) or an upstream (responses, SSE) controls. The
 * first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../egress/apimeter.h"
#include "../../egress/apireq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	if (data[0] & 1) {
		static const struct api_target t = {.host = "h",
		                                    .port = "443",
		                                    .prefix = "/v1",
		                                    .header = "x-api-key",
		                                    .value_prefix = "",
		                                    .key = "k"};
		char out[8192];
		struct api_req r;
		const char *why;
		long len = apireq_rewrite(p, n, &t, &r, out, sizeof out, &why);
		if (len >= (long)sizeof out)
			abort();
	} else {
		struct api_meter m;
		apimeter_init(&m, data[0] & 2 ? "text/event-stream" : "application/json", 17);
		/* in two pieces, split where the second byte says */
		size_t cut = n ? (size_t)data[0] % (n + 1) : 0;
		apimeter_feed(&m, p, cut);
		apimeter_feed(&m, p + cut, n - cut);
		apimeter_finish(&m);
		apimeter_free(&m);
	}
	return 0;
}
