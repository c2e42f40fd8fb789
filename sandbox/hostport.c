/* hostport.c - the one host:port splitter. */
#include "hostport.h"

#include <string.h>

int hostport_split(const char *s, size_t len, char *host, size_t hostlen, const char **port,
                   size_t *portlen)
{
	const char *h = s, *colon;
	size_t hl;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return -1;
		h = s + 1;
		hl = (size_t)(close - h);
		size_t rest = len - (size_t)(close + 1 - s);
		if (rest > 0 && close[1] != ':')
			return -1;
		colon = rest > 0 ? close + 1 : NULL;
	} else {
		colon = NULL;
		for (size_t i = len; i > 0; i--)
			if (s[i - 1] == ':') {
				colon = s + i - 1;
				break;
			}
		hl = colon ? (size_t)(colon - s) : len;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = colon ? colon + 1 : NULL;
	*portlen = colon ? len - (size_t)(colon + 1 - s) : 0;
	return 0;
}

int hostport_port(const char *p, size_t len)
{
	if (len == 0 || len > 5)
		return -1;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}
