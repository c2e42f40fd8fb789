/* proxy.c - egress proxy connections: read the request head, decide by the
 * tenant's rules (name first, then every resolved address), connect
 * non-blocking, then copy both ways through bounded buffers. One log line
 * per connection, allowed or denied. Names are resolved with getaddrinfo_a
 * (asynchronous, polled from the session loop: a slow resolver stalls nothing). */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "../sandbox/hostport.h"
#include "log.h"

#define HEAD_MAX 16384
#define PBUF     65536

enum pstate { P_HEAD, P_RESOLVING, P_CONNECTING, P_TUNNEL, P_DONE };

struct pbuf {
	char data[PBUF];
	size_t len, off;
};

struct pconn {
	struct pconn *next;
	struct proxy *px;
	enum pstate state;
	int cfd, ufd;
	short creg, ureg;
	char head[HEAD_MAX + 1];
	size_t headlen;
	char host[256];
	int port;
	bool is_connect;
	int socks; /* 0: HTTP; 1: SOCKS5 greeting done; 2: SOCKS5 request parsed */
	struct pbuf c2u, u2c;
	bool c_eof, u_eof;   /* read side finished */
	bool u_shut, c_shut; /* write side shut after flushing */
	uint64_t up, down;
	struct timespec start, last;
	struct addrinfo *ai, *ai_next; /* candidates still to try */
	struct gaicb gai;              /* name lookup in progress (getaddrinfo_a) */
	struct addrinfo gai_hints;
	char gai_port[8];
};

static double ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1000.0 + (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

static void touch(struct pconn *c)
{
	clock_gettime(CLOCK_MONOTONIC, &c->last);
}

static void finish(struct pconn *c, const char *verdict, const char *why)
{
	if (c->state == P_DONE)
		return;
	c->state = P_DONE;
	char port[8], up[24], down[24], ms[24];
	snprintf(port, sizeof port, "%d", c->port);
	snprintf(up, sizeof up, "%llu", (unsigned long long)c->up);
	snprintf(down, sizeof down, "%llu", (unsigned long long)c->down);
	snprintf(ms, sizeof ms, "%.0f", ms_since(&c->start));
	waudit_event(strcmp(verdict, "allowed") ? "egress_denied" : "egress_allowed", "tenant",
	             c->px->tenant, "host", c->host[0] ? c->host : "?", "#port", port, "reason",
	             why, "#bytes_up", up, "#bytes_down", down, "#duration_ms", ms, NULL);
	log_info("egress: tenant=%s dest=%s:%d verdict=%s%s%s bytes_up=%llu bytes_down=%llu "
	         "duration_ms=%.0f",
	         c->px->tenant, c->host[0] ? c->host : "?", c->port, verdict, why ? " reason=" : "",
	         why ? why : "", (unsigned long long)c->up, (unsigned long long)c->down,
	         ms_since(&c->start));
}

/* A short error page, then close: the client learns why in one line. */
static void refuse(struct pconn *c, int code, const char *status, const char *why)
{
	if (c->socks) {
		/* RFC 1928 replies: 2 not allowed by ruleset, 4 host unreachable, 5 refused */
		unsigned char rep[10] = {5, code == 403 ? 2 : code == 502 ? 5 : 1, 0, 1};
		ssize_t sw = send(c->cfd, rep, sizeof rep, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)sw;
		finish(c, code == 403 ? "denied" : "failed", why);
		return;
	}
	char body[400], resp[700];
	int bl = snprintf(body, sizeof body, "warren: %s:%d %s\n", c->host[0] ? c->host : "?",
	                  c->port, why);
	int n = snprintf(resp, sizeof resp,
	                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
	                 "Content-Length: %d\r\nX-Warren-Egress: denied\r\n\r\n%s",
	                 code, status, bl, body);
	ssize_t w = send(c->cfd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	finish(c, code == 403 ? "denied" : "failed", why);
}

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

static void try_connect(struct pconn *c);
static void decide(struct pconn *c);

/* Parses the head; on success sets host/port and fills c2u with what goes
 * upstream first (nothing for CONNECT). */
static void handle_head(struct pconn *c)
{
	char *end = strstr(c->head, "\r\n\r\n");
	char *eol = strstr(c->head, "\r\n");
	char method[16], target[2048], version[16];
	if (!eol || sscanf(c->head, "%15s %2047s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		refuse(c, 400, "Bad Request", "not an HTTP proxy request");
		return;
	}
	size_t after = (size_t)(end + 4 - c->head);
	if (!strcmp(method, "CONNECT")) {
		c->is_connect = true;
		if (!parse_hostport(target, strlen(target), c->host, sizeof c->host, &c->port, 0) ||
		    !c->port) {
			refuse(c, 400, "Bad Request", "CONNECT needs HOST:PORT");
			return;
		}
		/* bytes the client sent after the head already belong to the tunnel */
		memcpy(c->c2u.data, c->head + after, c->headlen - after);
		c->c2u.len = c->headlen - after;
	} else {
		if (strncasecmp(target, "http://", 7) != 0) {
			refuse(c, 400, "Bad Request", "only http:// URIs (use CONNECT for TLS)");
			return;
		}
		const char *auth = target + 7;
		size_t alen = strcspn(auth, "/?#");
		if (!parse_hostport(auth, alen, c->host, sizeof c->host, &c->port, 80)) {
			refuse(c, 400, "Bad Request", "bad URI");
			return;
		}
		const char *path = auth[alen] == '/' ? auth + alen : "/";
		/* origin-form request line, the rest of the head minus Proxy-* lines */
		int n = snprintf(c->c2u.data, PBUF, "%s %s%s %s\r\n", method,
		                 auth[alen] == '?' ? "/" : "", path, version);
		size_t len = (size_t)n;
		for (char *line = eol + 2; line < end + 2;) {
			char *nl = strstr(line, "\r\n");
			size_t ll = (size_t)(nl + 2 - line);
			if (strncasecmp(line, "Proxy-", 6) != 0 && len + ll < PBUF) {
				memcpy(c->c2u.data + len, line, ll);
				len += ll;
			}
			line = nl + 2;
		}
		if (len + 2 + (c->headlen - after) > PBUF) {
			refuse(c, 400, "Bad Request", "request head too large");
			return;
		}
		memcpy(c->c2u.data + len, "\r\n", 2);
		len += 2;
		memcpy(c->c2u.data + len, c->head + after, c->headlen - after);
		c->c2u.len = len + (c->headlen - after);
	}
	decide(c);
}

/* host and port are known: check the rules, resolve, start connecting */
static void decide(struct pconn *c)
{
	switch (egress_check_name(c->px->rules, c->host, c->port)) {
	case EGRESS_DENIED:
		refuse(c, 403, "Forbidden", "denied by a deny rule");
		return;
	case EGRESS_NOT_LISTED:
		refuse(c, 403, "Forbidden", "not in this tenant's allowlist");
		return;
	case EGRESS_ALLOWED:
		break;
	}
	/* IP literals resolve at once; names go to glibc's asynchronous resolver
	 * so a slow DNS server never stalls this session's other channels */
	c->gai_hints = (struct addrinfo){.ai_socktype = SOCK_STREAM,
	                                 .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
	snprintf(c->gai_port, sizeof c->gai_port, "%d", c->port);
	if (getaddrinfo(c->host, c->gai_port, &c->gai_hints, &c->ai) == 0) {
		c->ai_next = c->ai;
		try_connect(c);
		return;
	}
	c->gai_hints.ai_flags = AI_NUMERICSERV;
	c->gai = (struct gaicb){
	    .ar_name = c->host, .ar_service = c->gai_port, .ar_request = &c->gai_hints};
	struct gaicb *list[1] = {&c->gai};
	struct sigevent none = {.sigev_notify = SIGEV_NONE};
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, &none) != 0) {
		refuse(c, 502, "Bad Gateway", "cannot start a name lookup");
		return;
	}
	c->state = P_RESOLVING;
	c->px->resolving++;
}

/* polled from proxy_reconcile while lookups are pending */
static void resolve_check(struct pconn *c)
{
	int rc = gai_error(&c->gai);
	if (rc == EAI_INPROGRESS)
		return;
	c->px->resolving--;
	c->state = P_HEAD; /* not resolving any more; refuse/try_connect set what follows */
	if (rc != 0) {
		refuse(c, 502, "Bad Gateway", gai_strerror(rc));
		return;
	}
	c->ai = c->gai.ar_result;
	c->ai_next = c->ai;
	try_connect(c);
}

static void try_connect(struct pconn *c)
{
	const char *why = "no usable address";
	for (; c->ai_next; c->ai_next = c->ai_next->ai_next) {
		struct addrinfo *a = c->ai_next;
		if (!egress_check_addr(c->px->rules, a->ai_addr, c->port, &why))
			continue;
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			close(fd);
			why = "connection failed";
			continue;
		}
		c->ufd = fd;
		c->state = P_CONNECTING;
		c->ai_next = a->ai_next;
		return;
	}
	refuse(c, !strcmp(why, "connection failed") ? 502 : 403,
	       !strcmp(why, "connection failed") ? "Bad Gateway" : "Forbidden", why);
}

static void connected(struct pconn *c)
{
	int err = 0;
	socklen_t l = sizeof err;
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
		close(c->ufd);
		c->ufd = -1;
		if (c->ai_next) {
			try_connect(c);
			return;
		}
		refuse(c, 502, "Bad Gateway", "upstream refused the connection");
		return;
	}
	if (c->socks) {
		static const unsigned char ok[10] = {5, 0, 0, 1};
		memcpy(c->u2c.data, ok, sizeof ok);
		c->u2c.len = sizeof ok;
	} else if (c->is_connect) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		memcpy(c->u2c.data, ok, sizeof ok - 1);
		c->u2c.len = sizeof ok - 1;
	}
	c->state = P_TUNNEL;
	touch(c);
}

/* SOCKS5 (RFC 1928), no authentication, CONNECT only; names are resolved
 * here (socks5h), so the same checks apply as for HTTP. Returns true
 * once the request is complete (or refused). */
static bool socks_step(struct pconn *c)
{
	unsigned char *h = (unsigned char *)c->head;
	if (c->socks == 0) {
		if (c->headlen < 2 || c->headlen < 2u + h[1])
			return false;
		bool noauth = memchr(h + 2, 0, h[1]) != NULL;
		unsigned char rep[2] = {5, noauth ? 0 : 0xff};
		ssize_t w = send(c->cfd, rep, sizeof rep, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		size_t used = 2u + h[1];
		memmove(c->head, c->head + used, c->headlen - used);
		c->headlen -= used;
		c->socks = 1;
		if (!noauth) {
			finish(c, "failed", "SOCKS client offered no usable method");
			return true;
		}
	}
	if (c->headlen < 5)
		return false;
	size_t need;
	if (h[3] == 1)
		need = 4 + 4 + 2;
	else if (h[3] == 4)
		need = 4 + 16 + 2;
	else if (h[3] == 3)
		need = 4 + 1 + (size_t)h[4] + 2;
	else {
		c->socks = 2;
		refuse(c, 400, "Bad Request", "SOCKS address type not supported");
		return true;
	}
	if (c->headlen < need)
		return false;
	c->socks = 2;
	if (h[0] != 5 || h[1] != 1) {
		refuse(c, 400, "Bad Request", "only SOCKS5 CONNECT is supported");
		return true;
	}
	c->port = (h[need - 2] << 8) | h[need - 1];
	if (h[3] == 1)
		inet_ntop(AF_INET, h + 4, c->host, sizeof c->host);
	else if (h[3] == 4)
		inet_ntop(AF_INET6, h + 4, c->host, sizeof c->host);
	else
		snprintf(c->host, sizeof c->host, "%.*s", (int)h[4], (const char *)h + 5);
	c->is_connect = true;
	memcpy(c->c2u.data, c->head + need, c->headlen - need);
	c->c2u.len = c->headlen - need;
	decide(c);
	return true;
}

/* ---- fd callbacks (they only move bytes and set state) ---- */

static void pump(int from, int to, struct pbuf *b, bool *eof, uint64_t *count)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (!*eof && b->len < PBUF) {
		ssize_t n = recv(from, b->data + b->len, PBUF - b->len, MSG_DONTWAIT);
		if (n > 0) {
			b->len += (size_t)n;
			*count += (uint64_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			*eof = true;
		}
	}
	while (b->off < b->len) {
		ssize_t n =
		    send(to, b->data + b->off, b->len - b->off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			break;
		b->off += (size_t)n;
	}
}

static int on_client(socket_t fd, int revents, void *ud)
{
	(void)revents;
	struct pconn *c = ud;
	touch(c);
	if (c->state == P_HEAD) {
		ssize_t n = recv(fd, c->head + c->headlen, HEAD_MAX - c->headlen, MSG_DONTWAIT);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				finish(c, "failed", "client closed before a request");
			return 0;
		}
		c->headlen += (size_t)n;
		c->head[c->headlen] = '\0';
		if (c->head[0] == 5) /* SOCKS5 on the same port: socks5h://127.0.0.1:3128 */
			socks_step(c);
		else if (strstr(c->head, "\r\n\r\n"))
			handle_head(c);
		else if (c->headlen == HEAD_MAX)
			refuse(c, 400, "Bad Request", "request head too large");
		return 0;
	}
	if (c->state == P_TUNNEL) {
		pump(c->cfd, c->ufd, &c->c2u, &c->c_eof, &c->up);
		pump(c->ufd, c->cfd, &c->u2c, &c->u_eof, &c->down);
	}
	return 0;
}

static int on_upstream(socket_t fd, int revents, void *ud)
{
	(void)fd;
	(void)revents;
	struct pconn *c = ud;
	touch(c);
	if (c->state == P_CONNECTING) {
		connected(c);
		return 0;
	}
	if (c->state == P_TUNNEL) {
		pump(c->ufd, c->cfd, &c->u2c, &c->u_eof, &c->down);
		pump(c->cfd, c->ufd, &c->c2u, &c->c_eof, &c->up);
	}
	return 0;
}

/* ---- lifecycle ---- */

void proxy_init(struct proxy *px, ssh_event ev, const struct egress_rules *rules,
                const char *tenant, long max_conns, long idle_timeout)
{
	memset(px, 0, sizeof *px);
	px->event = ev;
	px->rules = rules;
	px->tenant = tenant;
	px->max_conns = max_conns > 0 ? max_conns : 64;
	px->idle_timeout = idle_timeout;
}

void proxy_accept(struct proxy *px, int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct pconn *c = calloc(1, sizeof *c);
		if (c == NULL) {
			close(fd);
			return;
		}
		c->px = px;
		c->cfd = fd;
		c->ufd = -1;
		clock_gettime(CLOCK_MONOTONIC, &c->start);
		c->last = c->start;
		c->next = px->conns;
		px->conns = c;
		px->nconns++;
		if (px->nconns > px->max_conns)
			refuse(c, 503, "Service Unavailable",
			       "too many concurrent proxy connections");
	}
}

static void want(struct proxy *px, int fd, short *reg, short ev, ssh_event_callback cb, void *ud)
{
	if (fd < 0 || *reg == ev)
		return;
	if (*reg)
		ssh_event_remove_fd(px->event, fd);
	if (ev && ssh_event_add_fd(px->event, fd, ev, cb, ud) != SSH_OK) {
		*reg = 0;
		return;
	}
	*reg = ev;
}

static void drop(struct proxy *px, struct pconn *c)
{
	if (c->gai.ar_name && gai_error(&c->gai) == EAI_INPROGRESS) {
		/* cannot free while glibc may still write the result: wait briefly */
		if (gai_cancel(&c->gai) == EAI_NOTCANCELED) {
			const struct gaicb *one[1] = {&c->gai};
			struct timespec t = {5, 0};
			gai_suspend(one, 1, &t);
		}
		px->resolving--;
	}
	if (c->gai.ar_result && c->gai.ar_result != c->ai)
		freeaddrinfo(c->gai.ar_result);
	if (c->cfd >= 0) {
		if (c->creg)
			ssh_event_remove_fd(px->event, c->cfd);
		close(c->cfd);
	}
	if (c->ufd >= 0) {
		if (c->ureg)
			ssh_event_remove_fd(px->event, c->ufd);
		close(c->ufd);
	}
	if (c->ai)
		freeaddrinfo(c->ai);
	px->bytes_up += c->up;
	px->bytes_down += c->down;
	struct pconn **pp = &px->conns;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	px->nconns--;
	free(c);
}

void proxy_reconcile(struct proxy *px)
{
	for (struct pconn *c = px->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == P_RESOLVING)
			resolve_check(c);
		if (c->state == P_TUNNEL) {
			/* half-close once a direction is drained */
			if (c->c_eof && c->c2u.off == c->c2u.len && !c->u_shut) {
				shutdown(c->ufd, SHUT_WR);
				c->u_shut = true;
			}
			if (c->u_eof && c->u2c.off == c->u2c.len && !c->c_shut) {
				shutdown(c->cfd, SHUT_WR);
				c->c_shut = true;
			}
			if (c->u_shut && c->c_shut)
				finish(c, "allowed", NULL);
			else if (px->idle_timeout > 0 &&
			         ms_since(&c->last) > px->idle_timeout * 1000.0)
				finish(c, "allowed", "idle timeout");
		} else if (c->state != P_DONE && px->idle_timeout > 0 &&
		           ms_since(&c->last) > px->idle_timeout * 1000.0) {
			finish(c, "failed", "idle timeout");
		}
		if (c->state == P_DONE) {
			drop(px, c);
			continue;
		}
		short cev = 0, uev = 0;
		if (c->state == P_RESOLVING) {
			cev = 0;
		} else if (c->state == P_HEAD) {
			cev = POLLIN;
		} else if (c->state == P_CONNECTING) {
			uev = POLLOUT;
		} else {
			if (!c->c_eof && c->c2u.len < PBUF)
				cev |= POLLIN;
			if (c->u2c.off < c->u2c.len)
				cev |= POLLOUT;
			if (!c->u_eof && c->u2c.len < PBUF)
				uev |= POLLIN;
			if (c->c2u.off < c->c2u.len)
				uev |= POLLOUT;
		}
		want(px, c->cfd, &c->creg, cev, on_client, c);
		want(px, c->ufd, &c->ureg, uev, on_upstream, c);
	}
}

void proxy_shutdown(struct proxy *px)
{
	while (px->conns) {
		finish(px->conns, "allowed", "session ended");
		drop(px, px->conns);
	}
	if (px->bytes_up || px->bytes_down)
		log_info("egress totals: tenant=%s bytes_up=%llu bytes_down=%llu", px->tenant,
		         (unsigned long long)px->bytes_up, (unsigned long long)px->bytes_down);
}
