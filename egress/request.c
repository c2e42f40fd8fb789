/* request.c - the egress proxy's request parsing (see request.h): pure, so
 * that the fuzz target drives exactly what the proxy runs. */
#include "request.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "../sandbox/hostport.h"

static bool parse_hostport(const char *s, size_t len, char *host, size_t hostlen, int *port,
                           int defport)
{
	const char *p;
	size_t plen;
	if (hostport_split(s, len, host, hostlen, &p, &plen) < 0)
		return false;
	*port = p ? hostport_port(p, plen) : defport;
	if (*port < 0)
		return false;
	for (const char *q = host; *q; q++)
		if (*q <= ' ' || *q == '/' || *q == '@')
			return false;
	return true;
}

bool egress_host_matches(const struct egress_req *r, const char *v, size_t n)
{
	char host[256];
	int port;
	return parse_hostport(v, n, host, sizeof host, &port, 80) && port == r->port &&
	       !strcasecmp(host, r->host);
}

bool egress_host_ok(const char *h)
{
	if (!h[0])
		return false;
	for (const unsigned char *q = (const unsigned char *)h; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		      (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '_' || *q == ':'))
			return false;
	return true;
}

bool egress_hop_header(const char *line, size_t ll)
{
	static const char *const names[] = {
	    "Proxy-", "Connection:", "Keep-Alive:", "Host:", "TE:", "Upgrade:"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		size_t n = strlen(names[i]);
		if (ll >= n && !strncasecmp(line, names[i], n))
			return true;
	}
	return false;
}

/* an absolute-URI request: http:// only, its authority checked */
static int absolute_uri(struct egress_req *r, const char **why)
{
	if (strncasecmp(r->target, "http://", 7) != 0) {
		*why = "only http:// URIs (use CONNECT for TLS)";
		return -1;
	}
	r->authority = r->target + 7;
	r->authority_len = strcspn(r->authority, "/?#");
	if (!parse_hostport(r->authority, r->authority_len, r->host, sizeof r->host, &r->port,
	                    80) ||
	    !egress_host_ok(r->host)) {
		r->host[0] = '\0';
		*why = "bad URI";
		return -1;
	}
	r->path = r->authority + r->authority_len;
	return 0;
}

int egress_parse_http(const char *head, struct egress_req *r, const char **why)
{
	const char *end = strstr(head, "\r\n\r\n");
	const char *eol = strstr(head, "\r\n");
	memset(r, 0, sizeof *r);
	if (!end || !eol ||
	    sscanf(head, "%15s %2047s %15s", r->method, r->target, r->version) != 3 ||
	    strncmp(r->version, "HTTP/1.", 7) != 0) {
		*why = "not an HTTP proxy request";
		return -1;
	}
	r->headers = eol + 2;
	r->head_end = end;
	if (strcmp(r->method, "CONNECT") != 0) {
		r->kind = EREQ_HTTP;
		return absolute_uri(r, why);
	}
	r->kind = EREQ_CONNECT;
	if (!parse_hostport(r->target, strlen(r->target), r->host, sizeof r->host, &r->port, 0) ||
	    !r->port || !egress_host_ok(r->host)) {
		r->host[0] = '\0';
		*why = "CONNECT needs HOST:PORT";
		return -1;
	}
	return 0;
}

size_t egress_socks_greeting(const unsigned char *h, size_t len, bool *noauth)
{
	if (len < 2 || len < 2u + h[1])
		return 0;
	*noauth = memchr(h + 2, 0, h[1]) != NULL;
	return 2u + h[1];
}

long egress_socks_request(const unsigned char *h, size_t len, struct egress_req *r,
                          const char **why)
{
	if (len < 5)
		return 0;
	size_t need;
	if (h[3] == 1)
		need = 4 + 4 + 2;
	else if (h[3] == 4)
		need = 4 + 16 + 2;
	else if (h[3] == 3)
		need = 4 + 1 + (size_t)h[4] + 2;
	else {
		*why = "SOCKS address type not supported";
		return -1;
	}
	if (len < need)
		return 0;
	memset(r, 0, sizeof *r);
	r->kind = EREQ_SOCKS;
	if (h[0] != 5 || h[1] != 1) {
		*why = "only SOCKS5 CONNECT is supported";
		return -1;
	}
	r->port = (h[need - 2] << 8) | h[need - 1];
	if (h[3] == 1)
		inet_ntop(AF_INET, h + 4, r->host, sizeof r->host);
	else if (h[3] == 4)
		inet_ntop(AF_INET6, h + 4, r->host, sizeof r->host);
	else
		snprintf(r->host, sizeof r->host, "%.*s", (int)h[4], (const char *)h + 5);
	if (!egress_host_ok(r->host)) {
		r->host[0] = '\0';
		*why = "bad SOCKS host name";
		return -1;
	}
	return (long)need;
}
