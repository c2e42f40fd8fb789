/* apigw.c - the API gateway process (see apigw.h): start-up as root (keys,
 * TLS contexts), the drop to api_uid, and one thread per tenant connection
 * that relays requests to the upstream with blocking I/O. The key is only
 * ever in this process's memory and in the upstream's TLS stream. */
#include "apigw.h"
#include "../sandbox/fork.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/seccomp.h"
#include "../sandbox/spawn.h"
#include <seccomp.h>
#include "apimeter.h"
#include "apireq.h"
#include "httpframe.h"
#include "../sshd-frontend/log.h"
#include "../sshd-frontend/privdrop.h"

#define GW_MAX_CONNS     64 /* concurrent tenant connections per gateway */
#define GW_MAX_LISTENERS 128
#define GW_HEAD_MAX      (64 << 10) /* a request or response head */
#define GW_BUF           (256 << 10)
#define GW_IDLE_SECONDS  300 /* a keep-alive client that says nothing */
#define GW_UPSTREAM_WAIT 600 /* a model may think for minutes */

struct gw_api {
	const struct api_conf *conf;
	char key[1024]; /* "" when it could not be read */
	SSL_CTX *tls;
	enum api_shape shape;
};

static struct gw_api apis[SANDBOX_MAX_APIS];
static const char *gw_tenant;
static int mon_fd = -1;
static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int nconns;
static int diag_fd = -1; /* NETLINK_SOCK_DIAG, used by the main thread only */

/* ---- start-up, as root ---- */

/* the key file's first line, trimmed; refuses control characters (a CR or
 * LF would split the header it goes into) */
static int read_key(const char *path, char *key, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, key, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	key[n] = '\0';
	key[strcspn(key, "\r\n")] = '\0';
	size_t l = strlen(key);
	while (l && (key[l - 1] == ' ' || key[l - 1] == '\t'))
		key[--l] = '\0';
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			l = 0;
	if (l == 0) {
		explicit_bzero(key, len);
		return -1;
	}
	return 0;
}

static SSL_CTX *tls_context(const struct api_conf *a)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
	    (a->ca_file && SSL_CTX_load_verify_locations(ctx, a->ca_file, NULL) != 1)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- I/O on the tenant's socket and the upstream's TLS stream ---- */

struct stream {
	int fd;
	SSL *ssl; /* NULL: plain (the tenant's side) */
};

static ssize_t s_read(struct stream *s, char *p, size_t n)
{
	if (s->ssl == NULL) {
		ssize_t r;
		do
			r = recv(s->fd, p, n, 0);
		while (r < 0 && errno == EINTR);
		return r;
	}
	size_t got = 0;
	int rc = SSL_read_ex(s->ssl, p, n, &got);
	if (rc == 1)
		return (ssize_t)got;
	return SSL_get_error(s->ssl, rc) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static int s_write(struct stream *s, const char *p, size_t n)
{
	while (n) {
		size_t put = 0;
		if (s->ssl) {
			if (SSL_write_ex(s->ssl, p, n, &put) != 1)
				return -1;
		} else {
			ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			put = (size_t)w;
		}
		p += put;
		n -= put;
	}
	return 0;
}

/* a buffer of bytes read from one side and not yet used */
struct inbuf {
	char *p;
	size_t len;
};

static void consume(struct inbuf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* reads until the buffer holds a whole head; its length, 0 at a clean EOF
 * before any byte, -1 on error or an oversized head */
static long read_head(struct stream *s, struct inbuf *b)
{
	for (;;) {
		char *end = b->len >= 4 ? memmem(b->p, b->len, "\r\n\r\n", 4) : NULL;
		if (end)
			return (long)(end + 4 - b->p);
		if (b->len >= GW_HEAD_MAX)
			return -1;
		ssize_t r = s_read(s, b->p + b->len, GW_BUF - b->len);
		if (r <= 0)
			return r == 0 && b->len == 0 ? 0 : -1;
		b->len += (size_t)r;
	}
}

/* feeds the buffer (and then reads of src) through the framing, writing
 * the message's bytes to dst; bytes past its end stay in the buffer.
 * 0, -1 when src failed, -2 when dst failed (the relay goes on without it) */
static int relay_body(struct stream *src, struct inbuf *b, struct body_scan *bs, struct stream *dst,
                      int64_t *bytes)
{
	int rc = 0;
	for (;;) {
		if (b->len) {
			long n = http_body_feed(bs, b->p, b->len);
			if (n < 0)
				return -1;
			if (rc == 0 && n > 0 && s_write(dst, b->p, (size_t)n) < 0)
				rc = -2;
			*bytes += n;
			consume(b, (size_t)n);
		}
		if (bs->done)
			return rc;
		ssize_t r = s_read(src, b->p + b->len, GW_BUF - b->len);
		if (r <= 0) {
			if (r == 0 && bs->kind == BODY_UNTIL_CLOSE)
				bs->done = true;
			return bs->done ? rc : -1;
		}
		b->len += (size_t)r;
	}
}

/* ---- the upstream ---- */

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	int fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = {.tv_sec = 15};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		int one = 1;
		struct timeval tv = {.tv_sec = GW_UPSTREAM_WAIT};
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	return fd;
}

static void up_close(struct stream *up)
{
	if (up->ssl) {
		SSL_free(up->ssl);
		up->ssl = NULL;
	}
	if (up->fd >= 0)
		close(up->fd);
	up->fd = -1;
}

/* TLS to the upstream, its certificate checked against the host name (or
 * IP address) in `upstream`; 0, or -1 with why */
static int up_open(struct stream *up, const struct gw_api *a, const char **why)
{
	const struct api_conf *c = a->conf;
	up->fd = tcp_connect(c->host, c->port);
	if (up->fd < 0) {
		*why = "cannot connect";
		return -1;
	}
	up->ssl = SSL_new(a->tls);
	struct in6_addr ip;
	bool literal =
	    inet_pton(AF_INET, c->host, &ip) == 1 || inet_pton(AF_INET6, c->host, &ip) == 1;
	if (up->ssl == NULL || SSL_set_fd(up->ssl, up->fd) != 1 ||
	    (literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(up->ssl), c->host)
	             : (SSL_set_tlsext_host_name(up->ssl, c->host) &&
	                SSL_set1_host(up->ssl, c->host))) != 1) {
		*why = "TLS set-up failed";
		up_close(up);
		return -1;
	}
	if (SSL_connect(up->ssl) != 1) {
		long v = SSL_get_verify_result(up->ssl);
		*why = v != X509_V_OK ? X509_verify_cert_error_string(v) : "TLS handshake failed";
		ERR_clear_error();
		up_close(up);
		return -1;
	}
	return 0;
}

/* an idle kept-alive upstream that the peer closed (or that sent something
 * unasked) is not reused */
static bool up_stale(const struct stream *up)
{
	struct pollfd pf = {.fd = up->fd, .events = POLLIN};
	return poll(&pf, 1, 0) != 0 || (up->ssl && SSL_pending(up->ssl));
}

/* ---- the monitor ---- */

static bool budget_ok(int api, struct gw_budget *b)
{
	struct gw_msg m = {.type = GW_BUDGET, .api = api};
	pthread_mutex_lock(&mon_lock);
	bool ok = send(mon_fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m &&
	          recv(mon_fd, b, sizeof *b, 0) == (ssize_t)sizeof *b;
	pthread_mutex_unlock(&mon_lock);
	if (!ok) {
		log_warn("gateway for %s: no budget answer from the monitor; refusing", gw_tenant);
		b->ok = 0;
		b->budget = b->used = 0;
	}
	return b->ok != 0;
}

static void report(struct gw_msg *m)
{
	m->type = GW_USAGE;
	pthread_mutex_lock(&mon_lock);
	if (send(mon_fd, m, sizeof *m, MSG_NOSIGNAL) < 0)
		log_warn("gateway for %s: usage report lost: %s", gw_tenant, strerror(errno));
	pthread_mutex_unlock(&mon_lock);
}

/* ---- one request ---- */

struct client {
	int api;
	int port; /* the endpoint's, for the Host check */
	struct stream in, up;
	struct inbuf cb, ub; /* bytes from the client, from the upstream */
};

static int reply_error(struct client *c, int status, const char *msg, bool close_after)
{
	char out[2048];
	size_t n = apireq_error(apis[c->api].shape, status, msg, close_after, out, sizeof out);
	return s_write(&c->in, out, n);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void meter_data(void *ud, const char *p, size_t n)
{
	apimeter_feed(ud, p, n);
}

/* the response: head (1xx heads skipped) and body to the client, metered.
 * 0 when the client's connection may carry another request */
static int relay_response(struct client *c, const struct api_req *r, struct gw_msg *m)
{
	long hl;
	int status;
	for (;;) {
		hl = read_head(&c->up, &c->ub);
		if (hl <= 0 || sscanf(c->ub.p, "HTTP/1.%*[01] %3d", &status) != 1 ||
		    http_head_check(c->ub.p, (size_t)hl, false) != NULL) {
			up_close(&c->up); /* never reused after a framing error */
			return -1;
		}
		if (status >= 200 || status == 101)
			break;
		consume(&c->ub, (size_t)hl);
	}
	m->status = status;
	struct body_scan bs;
	struct api_meter meter;
	const char *ct = NULL;
	size_t ctl = 0;
	http_header(c->ub.p, (size_t)hl, "Content-Type", &ct, &ctl);
	apimeter_init(&meter, ct, ctl);
	if (status == 101 || http_body_init(&bs, c->ub.p, (size_t)hl, status, r->is_head) < 0) {
		up_close(&c->up);
		return -1; /* no upgrades (Upgrade is not passed on), no bad framing */
	}
	bool up_close_after = false;
	const char *v;
	size_t vl;
	if (http_header(c->ub.p, (size_t)hl, "Connection", &v, &vl) && vl >= 5 &&
	    !strncasecmp(v, "close", 5))
		up_close_after = true;
	int rc = s_write(&c->in, c->ub.p, (size_t)hl) < 0 ? -2 : 0;
	consume(&c->ub, (size_t)hl);
	bs.on_data = meter_data;
	bs.ud = &meter;
	struct stream gone = {-1, NULL};
	int b = relay_body(&c->up, &c->ub, &bs, rc == 0 ? &c->in : &gone, &m->bytes_down);
	rc = rc ? rc : b;
	if (b == -1 || bs.kind == BODY_UNTIL_CLOSE)
		up_close_after = true;
	apimeter_finish(&meter);
	snprintf(m->model, sizeof m->model, "%s", meter.u.model);
	m->input = meter.u.input;
	m->output = meter.u.output;
	m->cache_read = meter.u.cache_read;
	m->cache_creation = meter.u.cache_creation;
	apimeter_free(&meter);
	if (up_close_after)
		up_close(&c->up);
	/* the client can go on unless it missed bytes or saw a body end by close */
	return rc == 0 && bs.kind != BODY_UNTIL_CLOSE ? 0 : -1;
}

/* no key, or over budget: the gateway answers itself and nothing goes
 * upstream (the body is read and dropped). -1 when the request may go on,
 * else whether the connection can carry another request */
static int refuse(struct client *c, const struct api_req *r, struct body_scan *bs, struct gw_msg *m)
{
	struct gw_api *a = &apis[c->api];
	struct gw_budget b;
	if (!a->key[0]) {
		m->status = 503;
		reply_error(c, 503, "warren: the operator's key for this API could not be read",
		            true);
		return 0;
	}
	/* no budget and no cap in flight: no question for the monitor on every
	 * request; else the monitor reserves for this one (reserve.h) */
	if (a->conf->budget_tokens == 0 && a->conf->max_inflight == 0)
		return -1;
	if (budget_ok(c->api, &b)) {
		m->reservation = b.reservation;
		return -1;
	}
	char msg[256];
	if (b.inflight)
		snprintf(msg, sizeof msg,
		         "warren: tenant %s has %d requests to %s in flight (max_inflight, set by "
		         "the operator); retry when one has finished",
		         gw_tenant, a->conf->max_inflight, a->conf->name);
	else
		snprintf(msg, sizeof msg,
		         "warren: tenant %s is over its daily budget for %s: %lld of %lld tokens "
		         "used today (UTC), %lld reserved by requests in flight; budget_tokens is "
		         "set by the operator",
		         gw_tenant, a->conf->name, (long long)b.used, (long long)b.budget,
		         (long long)b.reserved);
	m->status = 429;
	reply_error(c, 429, msg, r->close);
	struct stream none = {-1, NULL};
	return !r->close && relay_body(&c->in, &c->cb, bs, &none, &m->bytes_up) != -1;
}

/* one request of the client's; false when the connection is done */
static bool serve_request(struct client *c)
{
	long hl = read_head(&c->in, &c->cb);
	if (hl <= 0) {
		if (hl < 0 && c->cb.len >= GW_HEAD_MAX)
			reply_error(c, 431, "warren: request head too large", true);
		return false;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct gw_api *a = &apis[c->api];
	struct api_target t = {.host = a->conf->host,
	                       .port = a->conf->port,
	                       .prefix = a->conf->prefix,
	                       .header = a->conf->header,
	                       .value_prefix = a->conf->value_prefix,
	                       .key = a->key,
	                       .route_port = c->port};
	struct api_req r;
	const char *why = NULL;
	static __thread char head[GW_HEAD_MAX + 2048];
	long outl = apireq_rewrite(c->cb.p, (size_t)hl, &t, &r, head, sizeof head, &why);
	struct body_scan bs;
	if (outl < 0 || http_body_init(&bs, c->cb.p, (size_t)hl, 0, false) < 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "warren: bad request: %s", why ? why : "invalid framing");
		reply_error(c, 400, msg, true);
		return false;
	}
	consume(&c->cb, (size_t)hl);
	struct gw_msg m = {.api = c->api};
	snprintf(m.method, sizeof m.method, "%s", r.method);
	snprintf(m.path, sizeof m.path, "%s", r.path);
	int refused = refuse(c, &r, &bs, &m);
	if (refused >= 0) {
		m.duration_ms = (int32_t)ms_since(&t0);
		report(&m);
		return refused == 1;
	}
	if (c->up.fd >= 0 && up_stale(&c->up))
		up_close(&c->up);
	if (c->up.fd < 0 && up_open(&c->up, a, &why) < 0) {
		char msg[400];
		snprintf(msg, sizeof msg, "warren: upstream %s:%s unreachable: %s", a->conf->host,
		         a->conf->port, why);
		log_warn("gateway for %s: [api %s] %s:%s: %s", gw_tenant, a->conf->name,
		         a->conf->host, a->conf->port, why);
		m.status = 502;
		reply_error(c, 502, msg, true);
		m.duration_ms = (int32_t)ms_since(&t0);
		report(&m);
		return false;
	}
	if (r.expect_continue)
		s_write(&c->in, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	int rc = s_write(&c->up, head, (size_t)outl) < 0 ? -1 : 0;
	explicit_bzero(head, (size_t)outl);
	if (rc == 0)
		rc = relay_body(&c->in, &c->cb, &bs, &c->up, &m.bytes_up);
	if (rc == 0)
		rc = relay_response(c, &r, &m);
	else
		up_close(&c->up);
	if (m.status == 0)
		reply_error(c, 502, "warren: the upstream ended the exchange early", true);
	m.duration_ms = (int32_t)ms_since(&t0);
	report(&m);
	return rc == 0 && !r.close;
}

/* The connection ends, but what the client still sends (a body after a
 * refusal, say) is read and dropped for a moment first: closed with unread
 * data, the socket would answer with a reset, and the client could lose
 * the error reply it has not read yet (RFC 9112 9.6, a lingering close). */
static void lingering_close(int fd)
{
	char sink[4096];
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	shutdown(fd, SHUT_WR);
	/* at most 1 MiB and 2 s: a client that trickles holds no thread longer */
	for (int budget = 256; budget > 0; budget--) {
		int left = 2000 - (int)ms_since(&t0);
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, left) <= 0 ||
		    recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
			break;
	}
	close(fd);
}

static void *client_thread(void *arg)
{
	struct client *c = arg;
	char *cbuf = malloc(GW_BUF), *ubuf = malloc(GW_BUF);
	c->cb = (struct inbuf){cbuf, 0};
	c->ub = (struct inbuf){ubuf, 0};
	c->up = (struct stream){-1, NULL};
	if (cbuf && ubuf)
		while (serve_request(c))
			;
	up_close(&c->up);
	lingering_close(c->in.fd);
	free(cbuf);
	free(ubuf);
	free(c);
	atomic_fetch_sub(&nconns, 1);
	return NULL;
}

/* the owner of the peer's socket of a loopback TCP connection, as the
 * kernel's sock_diag reports it (as ss -e shows); -1 when unknown */
static long long peer_socket_uid(int fd)
{
	struct sockaddr_in me, peer;
	socklen_t ml = sizeof me, pl = sizeof peer;
	if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 || me.sin_family != AF_INET ||
	    peer.sin_family != AF_INET)
		return -1;
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {.nh = {.nlmsg_len = sizeof req,
	                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	                .nlmsg_flags = NLM_F_REQUEST},
	         .r = {.sdiag_family = AF_INET,
	               .sdiag_protocol = IPPROTO_TCP,
	               .idiag_states = ~0u,
	               .id = {.idiag_sport = peer.sin_port,
	                      .idiag_dport = me.sin_port,
	                      .idiag_src = {peer.sin_addr.s_addr},
	                      .idiag_dst = {me.sin_addr.s_addr},
	                      .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}}};
	int nl = diag_fd; /* opened before the seccomp filter, which refuses new ones */
	if (nl < 0)
		return -1;
	long long uid = -1;
	union {
		struct nlmsghdr nh;
		char buf[8192];
	} ans;
	ssize_t n;
	if (send(nl, &req, sizeof req, 0) == (ssize_t)sizeof req &&
	    (n = recv(nl, &ans, sizeof ans, 0)) > 0 && NLMSG_OK(&ans.nh, (size_t)n) &&
	    ans.nh.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
	    ans.nh.nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		uid = ((struct inet_diag_msg *)NLMSG_DATA(&ans.nh))->idiag_uid;
	return uid;
}

static void accept_one(int lfd, int api, long long peer_uid)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (peer_uid >= 0) {
		long long got = peer_socket_uid(fd);
		if (got != peer_uid) {
			log_warn("gateway for %s: refused a connection from uid %lld on the host's "
			         "loopback (the tenant's endpoint)",
			         gw_tenant, got);
			close(fd);
			return;
		}
	}
	struct timeval tv = {.tv_sec = GW_IDLE_SECONDS};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct client *c = calloc(1, sizeof *c);
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 << 10);
	if (c && atomic_fetch_add(&nconns, 1) < GW_MAX_CONNS) {
		c->api = api;
		c->in.fd = fd;
		struct sockaddr_in local;
		socklen_t ll = sizeof local;
		if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
		    local.sin_family == AF_INET)
			c->port = ntohs(local.sin_port);
		if (pthread_create(&th, &at, client_thread, c) == 0) {
			pthread_attr_destroy(&at);
			return;
		}
	}
	atomic_fetch_sub(&nconns, c ? 1 : 0);
	char out[512];
	size_t n = apireq_error(apis[api].shape, 503,
	                        "warren: too many concurrent API connections for this session",
	                        true, out, sizeof out);
	if (send(fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("gateway: refusal not sent");
	close(fd);
	free(c);
	pthread_attr_destroy(&at);
}

/* ---- the main loop: listeners from the session, accepts ---- */

struct listener {
	int fd, api, channel;
	long long peer_uid;
};

static void take_listener(int sess, struct listener *l, int *nl, unsigned mask)
{
	struct gw_fdmsg msg;
	int fd = -1;
	ssize_t n = fdpass_recv(sess, &msg, sizeof msg, &fd, MSG_DONTWAIT);
	if (n < 0 || gw_fdmsg_check(&msg, (size_t)n, fd >= 0, mask) != NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (msg.type == GW_CLOSE) {
		for (int i = 0; i < *nl; i++)
			if (l[i].channel == msg.channel) {
				close(l[i].fd);
				l[i--] = l[--*nl];
			}
	} else if (*nl < GW_MAX_LISTENERS) {
		l[(*nl)++] = (struct listener){fd, msg.api, msg.channel, msg.peer_uid};
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
}

static void serve(int sess, unsigned mask)
{
	struct listener l[GW_MAX_LISTENERS];
	int nl = 0;
	for (;;) {
		struct pollfd pf[GW_MAX_LISTENERS + 1];
		pf[0] = (struct pollfd){.fd = sess, .events = POLLIN};
		for (int i = 0; i < nl; i++)
			pf[i + 1] = (struct pollfd){.fd = l[i].fd, .events = POLLIN};
		if (poll(pf, (nfds_t)nl + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < nl; i++)
			if (pf[i + 1].revents & POLLIN)
				accept_one(l[i].fd, l[i].api, l[i].peer_uid);
		if (pf[0].revents & POLLIN)
			take_listener(sess, l, &nl, mask);
		else if (pf[0].revents & (POLLHUP | POLLERR))
			return; /* the session process is gone */
	}
}

static void gateway_main(const struct server_conf *srv, const char *tenant, unsigned mask, int sess)
{
	gw_tenant = tenant;
	for (int i = 0; i < srv->napis; i++) {
		if (!(mask & (1u << i)))
			continue;
		apis[i].conf = &srv->apis[i];
		apis[i].shape = apireq_shape(srv->apis[i].header);
		if (read_key(srv->apis[i].key_file, apis[i].key, sizeof apis[i].key) < 0)
			log_err("gateway for %s: [api %s] key_file %s unreadable or empty", tenant,
			        srv->apis[i].name, srv->apis[i].key_file);
		apis[i].tls = tls_context(&srv->apis[i]);
		if (apis[i].tls == NULL) {
			log_err("gateway for %s: [api %s]: cannot set up TLS (ca_file?)", tenant,
			        srv->apis[i].name);
			explicit_bzero(apis[i].key, sizeof apis[i].key);
		}
	}
	if (privdrop_to(srv->api_uid, srv->api_uid) < 0)
		_exit(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* after the drop: setuid clears it */
	if (getppid() == 1)
		_exit(1);
	/* the sandboxes' syscall filter too (no ptrace, namespaces, mounts,
	 * keyrings, bpf...): this process parses bytes a tenant sends */
	diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	void *filter = NULL;
	struct seccomp_opts so = {.nested_sandbox = false};
	if (seccomp_build(&so, &filter) < 0 || seccomp_load(filter) < 0) {
		log_err("gateway for %s: cannot load the seccomp filter", tenant);
		_exit(1);
	}
	seccomp_free(filter);
	signal(SIGPIPE, SIG_IGN);
	serve(sess, mask);
	_exit(0);
}

/* the re-executed gateway: fd 3 to the monitor, fd 4 to the session;
 * argv: warren-apigw --api-gateway CONFIG TENANT MASK */
int apigw_exec_main(int argc, char **argv)
{
	struct server_conf srv;
	struct cfg_error err;
	if (argc != 5 || fcntl(3, F_GETFD) < 0 || fcntl(4, F_GETFD) < 0) {
		fprintf(stderr, "warren-apigw: started by warrend only\n");
		return 2;
	}
	prctl(PR_SET_NAME, "warren-apigw"); /* exec'd from /proc/self/exe: "exe" in ps */
	if (config_load_server(argv[2], &srv, &err) < 0) {
		log_err("gateway: %s", err.msg);
		return 1;
	}
	log_set_level(srv.log_level);
	unsigned long mask = strtoul(argv[4], NULL, 10);
	if (!tenant_name_valid(argv[3]) || mask == 0 || mask >= (1ul << srv.napis)) {
		log_err("gateway: bad arguments");
		return 2;
	}
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fcntl(4, F_SETFD, FD_CLOEXEC);
	mon_fd = 3;
	struct timeval tv = {.tv_sec = 10}; /* a budget answer never takes long */
	setsockopt(mon_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	gateway_main(&srv, argv[3], (unsigned)mask, 4);
	return 0;
}

int apigw_start(struct apigw *gw, const struct server_conf *srv, const char *tenant, unsigned mask)
{
	int mon[2], sess[2];
	gw->pid = -1;
	gw->monitor_fd = gw->session_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, mon) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sess) < 0) {
		close(mon[0]);
		close(mon[1]);
		return -1;
	}
	pid_t pid = fork_child(0, NULL, 0);
	if (pid == 0) {
		/* a fresh image: none of the monitor's memory (host key, the
		 * connection's crypto state, other tenants' names) comes along */
		int m = fcntl(mon[1], F_DUPFD, 10), q = fcntl(sess[1], F_DUPFD, 10);
		if (m < 0 || q < 0 || dup2(m, 3) < 0 || dup2(q, 4) < 0)
			_exit(127);
		static const int keep[] = {3, 4};
		fork_keep_only_fds(keep, 2);
		char maskbuf[16];
		snprintf(maskbuf, sizeof maskbuf, "%u", mask);
		char *args[] = {(char *)"warren-apigw",
		                (char *)"--api-gateway",
		                srv->path,
		                (char *)tenant,
		                maskbuf,
		                NULL};
		execv("/proc/self/exe", args);
		log_err("gateway: exec: %s", strerror(errno));
		_exit(127);
	}
	close(mon[1]);
	close(sess[1]);
	if (pid < 0) {
		close(mon[0]);
		close(sess[0]);
		return -1;
	}
	gw->pid = pid;
	gw->monitor_fd = mon[0];
	gw->session_fd = sess[0];
	return 0;
}
