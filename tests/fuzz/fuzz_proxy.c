/* fuzz_proxy.c - libFuzzer target: the egress proxy's request parsing
 * (egress/request.c: HTTP heads and SOCKS5, in the pieces recv() may
 * deliver) and the decision on what it parsed (egress/decide.c), the
 * parser that sandboxed code feeds into a process outside the sandbox.
 * Linked, not included: it runs exactly what the proxy runs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../egress/decide.h"
#include "../../egress/request.h"

#define HEAD_MAX 16384

static void check(const struct egress_req *r)
{
	static struct egress_rules rules;
	static bool init;
	if (!init) {
		egress_parse("*.example.com:443", false, &rules.r[0]);
		egress_parse("evil.example.com:*", true, &rules.r[1]);
		rules.n = 2;
		init = true;
	}
	if (!egress_host_ok(r->host))
		abort(); /* the parser hands on plain names only */
	char why[400];
	egress_allow_name(&rules, r->host, r->port, why, sizeof why);
}

static void http(const char *head)
{
	static struct egress_req r;
	const char *why;
	if (egress_parse_http(head, &r, &why) < 0)
		return;
	check(&r);
	if (r.kind == EREQ_HTTP) {
		for (const char *l = r.headers; l < r.head_end + 2;) {
			const char *nl = strstr(l, "\r\n");
			egress_hop_header(l, (size_t)(nl + 2 - l));
			l = nl + 2;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char head[HEAD_MAX + 1];
	if (size > HEAD_MAX)
		size = HEAD_MAX;
	if (size && data[0] == 5) {
		/* SOCKS5: the greeting, then the request, each maybe in pieces */
		bool noauth;
		size_t used = egress_socks_greeting(data, size, &noauth);
		if (used == 0 || !noauth)
			return 0;
		for (size_t n = used; n <= size; n++) {
			struct egress_req r;
			const char *why;
			long took = egress_socks_request(data + used, n - used, &r, &why);
			if (took > 0)
				check(&r);
			if (took != 0)
				break;
		}
		return 0;
	}
	memcpy(head, data, size);
	head[size] = '\0';
	if (strstr(head, "\r\n\r\n"))
		http(head);
	return 0;
}
