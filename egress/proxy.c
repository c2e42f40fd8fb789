/* proxy.c - egress proxy connections: read the request head (HTTP or
 * SOCKS5), decide by the tenant's rules (name first, then every resolved
 * address), connect non-blocking, then relay. CONNECT and SOCKS are raw
 * tunnels with half-close; a plain-HTTP request is relayed to its end only,
 * its response too, and the connection closes after it: every request is
 * checked, none reaches another's upstream. One log and audit line per
 * connection. Names go to getaddrinfo_a, polled from the session loop. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../sshd-frontend/audit.h"
#include "httpframe.h"
#include "../sandbox/hostport.h"
#include "../sshd-frontend/log.h"
#include "../sshd-frontend/evfd.h"
#include "decide.h"
#include "relay.h"
#include "request.h"

#define HEAD_MAX   16384
#define PBUF       65536
#define TUNNEL_BUF (1024 * 1024) /* per direction, touched only as used */

enum pstate { P_HEAD, P_RESOLVING, P_CONNECTING, P_CONNECT_FAILED, P_RELAY, P_DONE };
enum pkind { K_HTTP, K_CONNECT, K_SOCKS };

struct pconn {
	struct pconn *next;
	struct proxy *px;
	enum pstate state;
	enum pkind kind;
	int cfd, ufd;
	short creg, ureg;
	char head[HEAD_MAX + 1]; /* the client's head; later the response's */
	size_t headlen;
	char host[256];
	int port;
	int socks; /* 0: greeting pending; 1: request pending; 2: parsed */
	struct relay c2u, u2c;
	/* plain HTTP: where the request and the response end */
	struct body_scan req, resp;
	bool no_body;   /* a HEAD request: its response has none */
	bool resp_head; /* the response's head was relayed */
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
	snprintf(up, sizeof up, "%llu", (unsigned long long)c->c2u.bytes);
	snprintf(down, sizeof down, "%llu", (unsigned long long)c->u2c.bytes);
	snprintf(ms, sizeof ms, "%.0f", ms_since(&c->start));
	waudit_event(strcmp(verdict, "allowed") ? "egress_denied" : "egress_allowed", "tenant",
	             c->px->tenant, "host", c->host[0] ? c->host : "?", "#port", port, "reason",
	             why, "#bytes_up", up, "#bytes_down", down, "#duration_ms", ms, NULL);
	/* host is the tenant's text, but only ever a name egress_host_ok() passed
	 * (letters, digits, . - _ :) or empty: nothing to escape */
	log_info("egress: tenant=%s dest=%s:%d verdict=%s%s%s bytes_up=%s bytes_down=%s "
	         "duration_ms=%s",
	         c->px->tenant, c->host[0] ? c->host : "?", c->port, verdict, why ? " reason=" : "",
	         why ? why : "", up, down, ms);
}

/* The refusal explains itself: one line saying what was refused and why, in
 * the body and in X-Warren-Egress; then close. */
static void refuse(struct pconn *c, int code, const char *status, const char *why)
{
	if (c->kind == K_SOCKS) {
		/* RFC 1928 replies: 2 not allowed by ruleset, 4 host unreachable, 5 refused */
		unsigned char rep[10] = {5, code == 403 ? 2 : code == 502 ? 5 : 1, 0, 1};
		ssize_t sw = send(c->cfd, rep, sizeof rep, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)sw;
		finish(c, code == 403 ? "denied" : "failed", why);
		return;
	}
	char line[600], resp[1400];
	snprintf(line, sizeof line, "warren: egress to %s:%d refused: %s",
	         c->host[0] ? c->host : "?", c->port, why);
	int n = snprintf(resp, sizeof resp,
	                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
	                 "Content-Length: %zu\r\nX-Warren-Egress: %s\r\n\r\n%s\n",
	                 code, status, strlen(line) + 1, line, line);
	if (n > 0 && n < (int)sizeof resp) {
		ssize_t w = send(c->cfd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
	finish(c, code == 403 ? "denied" : "failed", why);
}

static void try_connect(struct pconn *c);
static void decide(struct pconn *c);

/* An absolute-URI request: the origin-form head for the upstream, with Host
 * agreeing with the target and Connection: close, then as much of the body
 * as came with the head. */
static void http_request(struct pconn *c, const struct egress_req *r)
{
	const char *auth = r->authority;
	size_t alen = r->authority_len;
	size_t headlen = (size_t)(r->head_end + 4 - c->head);
	if (http_body_init(&c->req, c->head, headlen, 0, false) < 0) {
		refuse(c, 400, "Bad Request", "request body framing is ambiguous");
		return;
	}
	c->no_body = !strcmp(r->method, "HEAD");
	const char *path = auth[alen] == '/' ? auth + alen : "/";
	char line[HEAD_MAX + 600];
	int n =
	    snprintf(line, sizeof line, "%s %s%s %s\r\nHost: %.*s\r\nConnection: close\r\n",
	             r->method, auth[alen] == '?' ? "/" : "", path, r->version, (int)alen, auth);
	if (n < 0 || (size_t)n >= sizeof line || relay_put(&c->c2u, line, (size_t)n, true) < 0) {
		refuse(c, 400, "Bad Request", "request head too large");
		return;
	}
	for (const char *l = r->headers; l < r->head_end + 2;) {
		const char *nl = strstr(l, "\r\n");
		size_t ll = (size_t)(nl + 2 - l);
		if (!egress_hop_header(l, ll) && relay_put(&c->c2u, l, ll, true) < 0) {
			refuse(c, 400, "Bad Request", "request head too large");
			return;
		}
		l = nl + 2;
	}
	relay_put(&c->c2u, "\r\n", 2, true);
	/* body bytes that arrived with the head: only this request's */
	long take = http_body_feed(&c->req, c->head + headlen, c->headlen - headlen);
	if (take < 0 || relay_put(&c->c2u, c->head + headlen, (size_t)take, true) < 0) {
		refuse(c, 400, "Bad Request", "malformed request body");
		return;
	}
	decide(c);
}

/* Parses the client's head (complete: ends in an empty line). */
static void handle_head(struct pconn *c)
{
	static struct egress_req r; /* 2 KiB of target: not on the stack */
	const char *why;
	int rc = egress_parse_http(c->head, &r, &why);
	c->kind = r.kind == EREQ_CONNECT ? K_CONNECT : K_HTTP;
	snprintf(c->host, sizeof c->host, "%s", r.host);
	c->port = r.port;
	size_t hl = rc < 0 ? 0 : (size_t)(r.head_end + 4 - c->head);
	if (rc == 0 && (why = http_head_check(c->head, hl, true)) != NULL)
		rc = -1;
	const char *hv;
	size_t hvl;
	if (rc == 0 && r.kind == EREQ_HTTP && http_header(c->head, hl, "Host", &hv, &hvl) &&
	    !egress_host_matches(&r, hv, hvl)) {
		why = "the Host header disagrees with the request's target";
		rc = -1;
	}
	if (rc < 0) {
		refuse(c, 400, "Bad Request", why);
		return;
	}
	if (r.kind == EREQ_HTTP) {
		http_request(c, &r);
		return;
	}
	/* bytes the client sent after the head already belong to the tunnel */
	size_t after = (size_t)(r.head_end + 4 - c->head);
	relay_put(&c->c2u, c->head + after, c->headlen - after, true);
	decide(c);
}

/* host and port are known: check the rules, resolve, start connecting */
static void decide(struct pconn *c)
{
	char why[400];
	if (!egress_allow_name(c->px->rules, c->host, c->port, why, sizeof why)) {
		refuse(c, 403, "Forbidden", why);
		return;
	}
	/* IP literals resolve at once; names go to glibc's asynchronous resolver
	 * so a slow DNS server never stalls this session's other channels */
	c->gai_hints = (struct addrinfo){.ai_socktype = SOCK_STREAM,
	                                 .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
	snprintf(c->gai_port, sizeof c->gai_port, "%d", c->port & 0xffff);
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
		c->gai.ar_name = NULL;
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
	c->gai.ar_name = NULL; /* finished: nothing of glibc's writes here any more */
	c->state = P_HEAD;     /* refuse/try_connect set what follows */
	if (rc != 0) {
		char why[300];
		snprintf(why, sizeof why, "the name does not resolve: %s", gai_strerror(rc));
		refuse(c, 502, "Bad Gateway", why);
		return;
	}
	c->ai = c->gai.ar_result;
	c->gai.ar_result = NULL;
	c->ai_next = c->ai;
	try_connect(c);
}

static void try_connect(struct pconn *c)
{
	char refused[200] = "no usable address";
	const char *why = refused;
	for (; c->ai_next; c->ai_next = c->ai_next->ai_next) {
		struct addrinfo *a = c->ai_next;
		if (!egress_allow_addr(c->px->rules, c->px->local, a->ai_addr, c->port, refused,
		                       sizeof refused)) {
			why = refused;
			continue;
		}
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			close(fd);
			why = "the upstream refused the connection";
			continue;
		}
		c->ufd = fd;
		c->ureg = 0;
		c->state = P_CONNECTING;
		c->ai_next = a->ai_next;
		return;
	}
	bool failed = !strncmp(why, "the upstream", 12);
	refuse(c, failed ? 502 : 403, failed ? "Bad Gateway" : "Forbidden", why);
}

/* From a callback: only look and mark; reconcile closes a failed socket
 * (after taking it out of the event loop) and tries the next address. */
static void connected(struct pconn *c)
{
	int err = 0;
	socklen_t l = sizeof err;
	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
		c->state = P_CONNECT_FAILED;
		return;
	}
	if (c->kind == K_SOCKS) {
		static const unsigned char ok[10] = {5, 0, 0, 1};
		relay_put(&c->u2c, ok, sizeof ok, false);
	} else if (c->kind == K_CONNECT) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		relay_put(&c->u2c, ok, sizeof ok - 1, false);
	}
	if (c->kind != K_HTTP) {
		/* a tunnel carries bulk bytes it never parses: bigger buffers
		 * halve the copies' share of the cost (bench/results.md; splice
		 * through a pipe measured slower on this kernel) */
		(void)relay_grow(&c->c2u, TUNNEL_BUF);
		(void)relay_grow(&c->u2c, TUNNEL_BUF);
	}
	c->state = P_RELAY;
	touch(c);
}

/* SOCKS5 (RFC 1928), no authentication, CONNECT only; names are resolved
 * here (socks5h), so the same checks apply as for HTTP. Returns true
 * once the request is complete (or refused). */
static bool socks_step(struct pconn *c)
{
	unsigned char *h = (unsigned char *)c->head;
	c->kind = K_SOCKS;
	if (c->socks == 0) {
		bool noauth;
		size_t used = egress_socks_greeting(h, c->headlen, &noauth);
		if (used == 0)
			return false;
		unsigned char rep[2] = {5, noauth ? 0 : 0xff};
		ssize_t w = send(c->cfd, rep, sizeof rep, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		memmove(c->head, c->head + used, c->headlen - used);
		c->headlen -= used;
		c->socks = 1;
		if (!noauth) {
			finish(c, "failed", "SOCKS client offered no usable method");
			return true;
		}
	}
	struct egress_req r;
	const char *why;
	long need = egress_socks_request(h, c->headlen, &r, &why);
	if (need == 0)
		return false;
	c->socks = 2;
	if (need < 0) {
		refuse(c, 400, "Bad Request", why);
		return true;
	}
	snprintf(c->host, sizeof c->host, "%s", r.host);
	c->port = r.port;
	relay_put(&c->c2u, c->head + need, c->headlen - (size_t)need, true);
	decide(c);
	return true;
}

/* ---- data path (called from the fd callbacks: they move bytes and set
 * state; no fd is closed or removed from the loop here) ---- */

/* Reads the upstream's response heads (interim 1xx ones too) and relays
 * each rewritten to Connection: close; then the body, to its end only. */
static void response_head(struct pconn *c)
{
	if (relay_pending(&c->u2c))
		return; /* the rewritten head must fit: wait for the client */
	ssize_t n = recv(c->ufd, c->head + c->headlen, HEAD_MAX - c->headlen, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		c->u2c.eof = true;
		return;
	}
	if (n > 0)
		c->headlen += (size_t)n;
	c->head[c->headlen] = '\0';
	char *end;
	while (!c->resp_head && (end = memmem(c->head, c->headlen, "\r\n\r\n", 4)) != NULL) {
		int status = 0;
		if (sscanf(c->head, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100) {
			finish(c, "failed", "the upstream did not answer in HTTP/1.x");
			return;
		}
		size_t hl = (size_t)(end + 4 - c->head);
		if (http_head_check(c->head, hl, false) != NULL) {
			finish(c, "failed", "the upstream's response head is malformed");
			return;
		}
		char *eol = strstr(c->head, "\r\n");
		relay_put(&c->u2c, c->head, (size_t)(eol + 2 - c->head), true);
		for (char *l = eol + 2; l < end + 2;) {
			char *nl = strstr(l, "\r\n");
			size_t ll = (size_t)(nl + 2 - l);
			if (strncasecmp(l, "Connection:", 11) && strncasecmp(l, "Keep-Alive:", 11))
				relay_put(&c->u2c, l, ll, true);
			l = nl + 2;
		}
		relay_put(&c->u2c, "Connection: close\r\n\r\n", 21, true);
		if (status >= 200) {
			c->resp_head = true;
			if (http_body_init(&c->resp, c->head, hl, status, c->no_body) < 0) {
				finish(c, "failed", "the upstream's response framing is invalid");
				return;
			}
		}
		memmove(c->head, c->head + hl, c->headlen - hl);
		c->headlen -= hl;
		c->head[c->headlen] = '\0';
	}
	if (!c->resp_head) {
		if (c->headlen == HEAD_MAX)
			finish(c, "failed", "the upstream's response head is too large");
		return;
	}
	/* body bytes that came with the head */
	long take = http_body_feed(&c->resp, c->head, c->headlen);
	if (take < 0 || relay_put(&c->u2c, c->head, (size_t)take, true) < 0)
		finish(c, "failed", "the upstream's response body is malformed");
	c->headlen = 0;
}

/* fills r from fd; for plain HTTP only up to the end of the message */
static void read_into(struct pconn *c, struct relay *r, int fd, struct body_scan *scan)
{
	ssize_t n = relay_fill(r, fd, r->cap);
	if (n <= 0 || c->kind != K_HTTP)
		return;
	long take = http_body_feed(scan, r->buf + r->len - n, (size_t)n);
	if (take < 0) {
		finish(c, "failed", "malformed HTTP body");
		return;
	}
	relay_unput(r, (size_t)n - (size_t)take); /* past the end: dropped */
}

static bool client_readable(const struct pconn *c)
{
	return !c->c2u.eof && relay_room(&c->c2u) > 0 && !(c->kind == K_HTTP && c->req.done);
}

static bool upstream_readable(const struct pconn *c)
{
	if (c->u2c.eof)
		return false;
	if (c->kind != K_HTTP)
		return relay_room(&c->u2c) > 0;
	if (!c->resp_head)
		return relay_pending(&c->u2c) == 0;
	return !c->resp.done && relay_room(&c->u2c) > 0;
}

/* One round each way: read what there is room for, send what is pending. */
static bool relay_round(struct pconn *c)
{
	uint64_t before = c->c2u.bytes + c->u2c.bytes;
	size_t pending = relay_pending(&c->c2u) + relay_pending(&c->u2c);
	if (client_readable(c))
		read_into(c, &c->c2u, c->cfd, &c->req);
	if (c->state == P_RELAY && relay_flush(&c->c2u, c->ufd) < 0)
		finish(c, "allowed", "the upstream closed the connection");
	if (c->state == P_RELAY && upstream_readable(c)) {
		if (c->kind == K_HTTP && !c->resp_head)
			response_head(c);
		else
			read_into(c, &c->u2c, c->ufd, &c->resp);
	}
	if (c->state == P_RELAY && relay_flush(&c->u2c, c->cfd) < 0)
		finish(c, "allowed", "the client closed the connection");
	return c->state == P_RELAY && (c->c2u.bytes + c->u2c.bytes != before ||
	                               relay_pending(&c->c2u) + relay_pending(&c->u2c) != pending);
}

/* Rounds while bytes move, up to RELAY_ROUNDS buffers' worth per wake-up:
 * one poll per 64 KiB would cost more than the copy; the cap keeps one busy
 * connection from starving the session's others. */
#define RELAY_ROUNDS 16
static void relay_step(struct pconn *c)
{
	for (int i = 0; i < RELAY_ROUNDS && relay_round(c); i++)
		;
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
	if (c->state == P_RELAY)
		relay_step(c);
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
		if (c->state == P_RELAY)
			c->headlen = 0; /* the head buffer now reads the response */
	}
	if (c->state == P_RELAY)
		relay_step(c);
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
	if (rules->n == 0)
		return;
	px->local = calloc(1, sizeof *px->local);
	if (px->local == NULL || egress_local_load(px->local) < 0) {
		log_warn("egress: cannot list this host's addresses: %s", strerror(errno));
		free(px->local);
		px->local = NULL;
	}
}

void proxy_accept(struct proxy *px, int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct pconn *c = calloc(1, sizeof *c);
		if (c == NULL || relay_init(&c->c2u, PBUF) < 0 || relay_init(&c->u2c, PBUF) < 0) {
			if (c)
				relay_free(&c->c2u);
			free(c);
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

/* A lookup glibc may still write into keeps its pconn alive (as an orphan,
 * fds closed) until it ends; nothing waits for it. */
static void reap_orphans(struct proxy *px, bool all)
{
	for (struct pconn **pp = &px->orphans; *pp;) {
		struct pconn *o = *pp;
		if (!all && gai_error(&o->gai) == EAI_INPROGRESS) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		if (gai_error(&o->gai) != EAI_INPROGRESS) {
			if (o->gai.ar_result)
				freeaddrinfo(o->gai.ar_result);
			free(o);
		} /* else: the process is ending; glibc may still write, so never free */
	}
}

static void drop(struct proxy *px, struct pconn *c)
{
	/* what the client sent and nobody read goes first: closed with unread
	 * data, the socket would reset, and a refusal not yet read be lost */
	char sink[4096];
	for (int i = 0; c->cfd >= 0 && i < 64; i++)
		if (recv(c->cfd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
			break;
	evfd_close(px->event, &c->cfd, &c->creg);
	evfd_close(px->event, &c->ufd, &c->ureg);
	if (c->ai)
		freeaddrinfo(c->ai);
	relay_free(&c->c2u);
	relay_free(&c->u2c);
	px->bytes_up += c->c2u.bytes;
	px->bytes_down += c->u2c.bytes;
	struct pconn **pp = &px->conns;
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	px->nconns--;
	if (c->gai.ar_name && gai_error(&c->gai) == EAI_INPROGRESS) {
		gai_cancel(&c->gai);
		px->resolving--;
		c->next = px->orphans;
		px->orphans = c;
		return;
	}
	if (c->gai.ar_result)
		freeaddrinfo(c->gai.ar_result);
	free(c);
}

/* Outside dopoll: the ends of a relay, a failed connect, idle timeouts. */
static void settle(struct proxy *px, struct pconn *c)
{
	if (c->state == P_RESOLVING)
		resolve_check(c);
	if (c->state == P_CONNECT_FAILED) {
		evfd_close(px->event, &c->ufd, &c->ureg);
		c->state = P_HEAD;
		if (c->ai_next)
			try_connect(c);
		else
			refuse(c, 502, "Bad Gateway", "the upstream refused the connection");
	}
	if (c->state == P_RELAY && c->kind == K_HTTP) {
		bool drained = relay_pending(&c->u2c) == 0;
		if (c->resp_head && c->resp.done && drained)
			finish(c, "allowed", NULL);
		else if (c->u2c.eof && drained)
			finish(c,
			       c->resp_head && c->resp.kind == BODY_UNTIL_CLOSE ? "allowed"
			                                                        : "failed",
			       c->resp_head && c->resp.kind == BODY_UNTIL_CLOSE
			           ? NULL
			           : "the upstream closed before its response ended");
		else if (c->c2u.eof && !c->req.done)
			finish(c, "failed", "the client closed before its request ended");
		if (c->state == P_DONE && c->cfd >= 0) {
			shutdown(c->cfd, SHUT_WR); /* the client reads to the end, then EOF */
			/* what it sent past its request is unread: drop it, or the close
			 * would reset the connection before the response is read */
			char sink[4096];
			for (int i = 0; i < 64 && recv(c->cfd, sink, sizeof sink, MSG_DONTWAIT) > 0;
			     i++)
				;
		}
	} else if (c->state == P_RELAY) {
		/* tunnel: half-close once a direction is drained */
		if (c->c2u.eof && !relay_pending(&c->c2u) && !c->c2u.shut) {
			shutdown(c->ufd, SHUT_WR);
			c->c2u.shut = true;
		}
		if (c->u2c.eof && !relay_pending(&c->u2c) && !c->u2c.shut) {
			shutdown(c->cfd, SHUT_WR);
			c->u2c.shut = true;
		}
		if (c->c2u.shut && c->u2c.shut)
			finish(c, "allowed", NULL);
	}
	if (c->state != P_DONE && px->idle_timeout > 0 &&
	    ms_since(&c->last) > px->idle_timeout * 1000.0)
		finish(c, c->state == P_RELAY ? "allowed" : "failed", "idle timeout");
}

void proxy_reconcile(struct proxy *px)
{
	if (px->orphans)
		reap_orphans(px, false);
	for (struct pconn *c = px->conns, *next; c; c = next) {
		next = c->next;
		settle(px, c);
		if (c->state == P_DONE) {
			drop(px, c);
			continue;
		}
		short cev = 0, uev = 0;
		if (c->state == P_HEAD) {
			cev = POLLIN;
		} else if (c->state == P_CONNECTING) {
			uev = POLLOUT;
		} else if (c->state == P_RELAY) {
			cev = (short)((client_readable(c) ? POLLIN : 0) |
			              (relay_pending(&c->u2c) ? POLLOUT : 0));
			uev = (short)((upstream_readable(c) ? POLLIN : 0) |
			              (relay_pending(&c->c2u) ? POLLOUT : 0));
		}
		evfd_want(px->event, c->cfd, &c->creg, cev, on_client, c);
		evfd_want(px->event, c->ufd, &c->ureg, uev, on_upstream, c);
	}
}

void proxy_shutdown(struct proxy *px)
{
	while (px->conns) {
		finish(px->conns, "allowed", "session ended");
		drop(px, px->conns);
	}
	reap_orphans(px, true);
	free(px->local);
	px->local = NULL;
	if (px->bytes_up || px->bytes_down)
		log_info("egress totals: tenant=%s bytes_up=%llu bytes_down=%llu", px->tenant,
		         (unsigned long long)px->bytes_up, (unsigned long long)px->bytes_down);
}
