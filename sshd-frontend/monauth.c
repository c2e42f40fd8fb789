/* monauth.c - the root monitor's answers to its pre-auth process
 * (monauth.h): which tenant a user is, whether a key is one of theirs,
 * PAM for passwords and keyboard-interactive rounds, each attempt checked
 * against the tenant's auth policy, max_auth_tries counted here, every
 * success and failure logged and audited by root. */
#include "monauth.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "audit.h"
#include "authkeys.h"
#include "log.h"

/* Each failed password or keyboard-interactive attempt takes at least this
 * long, known user or not, so timing tells nothing about who exists. */
#define FAIL_FLOOR_MS 500

static void fail_floor(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
	if (ms < FAIL_FLOOR_MS) {
		struct timespec d = {0, (FAIL_FLOOR_MS - ms) * 1000000L};
		nanosleep(&d, NULL);
	}
}

/* A failed attempt; DISCONNECT once max_auth_tries is reached (as sshd:
 * the last failure is not answered), else DENIED. */
static int count_failure(struct auth_ctx *a, const char *user, const char *method, const char *why)
{
	a->failures++;
	log_info("auth failure: user=%.32s from=%s method=%s (%s) [%d/%d]", user, a->peer, method,
	         why, a->failures, a->srv->max_auth_tries);
	waudit_event("auth_failure", "user", user, "source", a->peer, "method", method, "reason",
	             why, NULL);
	if (a->failures < a->srv->max_auth_tries)
		return MON_AUTH_DENIED;
	log_warn("%s: too many authentication failures for %.32s", a->peer, user);
	waudit_event("limit_refused", "limit", "max_auth_tries", "user", user, "source", a->peer,
	             NULL);
	return MON_AUTH_DISCONNECT;
}

/* A tenant file, or with allow_system_users a system account (uid != 0)
 * that becomes a tenant with the [sandbox] defaults. */
static bool load_tenant(struct auth_ctx *a, const char *user)
{
	if (a->user_set)
		return a->have_tenant;
	a->user_set = true;
	snprintf(a->user, sizeof a->user, "%s", user);
	const struct server_conf *srv = a->srv;
	struct cfg_error e = {{0}};
	int rc =
	    strlen(user) < sizeof a->user ? config_load_tenant(srv, user, &a->tenant, &e) : -ENOENT;
	if (rc == -EINVAL)
		log_err("%s", e.msg); /* the operator's file is broken: say where */
	a->have_tenant = rc == 0;
	if (rc == -ENOENT && srv->allow_system_users && tenant_name_valid(user)) {
		struct passwd *pw = getpwnam(user);
		if (pw && pw->pw_uid != 0) {
			tenant_conf_start(&a->tenant, user, &srv->sandbox);
			a->tenant.path = strdup("(system user)");
			a->tenant.has_uid = true;
			a->tenant.uid = pw->pw_uid;
			a->have_tenant = a->tenant.path != NULL;
		}
	}
	a->policy = a->have_tenant && a->tenant.has_auth ? a->tenant.auth : srv->auth;
	if (!srv->use_pam)
		/* password and keyboard-interactive exist only through PAM */
		for (int i = 0; i < a->policy.nalts; i++)
			for (int j = 0; j < a->policy.nsteps[i]; j++)
				if (a->policy.steps[i][j] != AM_PUBLICKEY)
					a->policy.steps[i][j] = 0x100; /* never offered */
	return a->have_tenant;
}

/* OpenSSH refuses a change of user within one connection */
static bool user_ok(struct auth_ctx *a, const char *user, const char *method, int *res)
{
	if (a->user_set && strcmp(user, a->user) != 0) {
		*res = count_failure(a, user, method, "user changed during authentication");
		return false;
	}
	load_tenant(a, user);
	return true;
}

static int ssh_methods(unsigned m)
{
	return (m & AM_PUBLICKEY ? SSH_AUTH_METHOD_PUBLICKEY : 0) |
	       (m & AM_PASSWORD ? SSH_AUTH_METHOD_PASSWORD : 0) |
	       (m & AM_KBDINT ? SSH_AUTH_METHOD_INTERACTIVE : 0);
}

/* A method passed: the login is done (PAM's account check first), or
 * another method is still required. */
static int method_passed(struct auth_ctx *a, unsigned method, const char *name,
                         struct mon_auth_reply *r)
{
	a->done |= method;
	if (!a->have_tenant)
		return count_failure(a, a->user, name, "no such tenant");
	if (!auth_policy_complete(&a->policy, a->done)) {
		r->methods = ssh_methods(auth_policy_next(&a->policy, a->done));
		log_info("partial success: user=%s from=%s method=%s", a->user, a->peer, name);
		return MON_AUTH_PARTIAL;
	}
	if (a->srv->use_pam) {
		char msg[512] = "";
		a->pam = wpam_open(a->srv->pam_service, a->user, a->peer_host);
		if (a->pam == NULL || wpam_account(a->pam, msg, sizeof msg) < 0) {
			/* expired or locked: refused, with PAM's words on the client */
			log_warn("account refused by PAM: user=%s from=%s: %s", a->user, a->peer,
			         msg);
			snprintf(r->banner, sizeof r->banner, "warren: %.500s\r\n",
			         msg[0] ? msg : "account unavailable");
			wpam_end(a->pam);
			a->pam = NULL;
			return MON_AUTH_DISCONNECT;
		}
	}
	a->st.phase = MON_PHASE_AUTHED;
	a->method = name;
	return MON_AUTH_SUCCESS;
}

static int on_pubkey(struct auth_ctx *a, const char *p, struct mon_auth_reply *r)
{
	int sig = p[0]; /* 0 a query, 1 a valid signature, 2 a bad one */
	const char *user = p + 1;
	size_t off = 1 + strlen(user) + 1;
	int res = MON_AUTH_DENIED;
	if (!user_ok(a, user, "publickey", &res))
		return res;
	if (!(auth_policy_next(&a->policy, a->done) & AM_PUBLICKEY))
		return count_failure(a, user, "publickey", "method not allowed now");
	if (!a->have_tenant)
		return count_failure(a, user, "publickey", "no such tenant");
	char *text = (char *)p + off; /* "TYPE BASE64" (moncheck.c: terminated) */
	char *b64 = strchr(text, ' ');
	ssh_key key = NULL;
	if (b64) {
		*b64++ = '\0';
		enum ssh_keytypes_e type = ssh_key_type_from_name(text);
		if (type == SSH_KEYTYPE_UNKNOWN ||
		    ssh_pki_import_pubkey_base64(b64, type, &key) != SSH_OK)
			key = NULL;
	}
	bool ok = key && authkeys_match(&a->tenant, key);
	ssh_key_free(key);
	if (!ok)
		return count_failure(a, user, "publickey", "key not authorized");
	if (sig == 0)
		return MON_AUTH_SUCCESS; /* a query: libssh answers PK_OK */
	if (sig != 1)
		return count_failure(a, user, "publickey", "bad signature");
	return method_passed(a, AM_PUBLICKEY, "publickey", r);
}

static int on_password(struct auth_ctx *a, const char *p, struct mon_auth_reply *r)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const char *user = p, *password = p + strlen(p) + 1;
	int res = MON_AUTH_DENIED;
	if (!user_ok(a, user, "password", &res))
		return res;
	bool allowed = a->srv->use_pam && (auth_policy_next(&a->policy, a->done) & AM_PASSWORD);
	char msg[256];
	/* PAM runs for unknown users too: same work, same time, same answer */
	int rc =
	    allowed && tenant_name_valid(user)
	        ? wpam_password(a->srv->pam_service, user, a->peer_host, password, msg, sizeof msg)
	        : -1;
	if (rc < 0 || !a->have_tenant) {
		fail_floor(&t0);
		return count_failure(a, user, "password",
		                     allowed ? "wrong password" : "method not allowed");
	}
	return method_passed(a, AM_PASSWORD, "password", r);
}

/* the conversation's next round, or its end */
static int kbdint_next(struct auth_ctx *a, struct mon_auth_reply *r)
{
	enum wpam_step step =
	    a->kbd ? wpam_kbdint_next(a->kbd, &r->prompts, a->srv->login_grace_time * 1000)
	           : WPAM_FAILURE;
	if (step == WPAM_PROMPTS)
		return MON_AUTH_PROMPTS;
	wpam_kbdint_free(a->kbd);
	a->kbd = NULL;
	memset(&r->prompts, 0, sizeof r->prompts);
	if (step == WPAM_SUCCESS && a->have_tenant)
		return method_passed(a, AM_KBDINT, "keyboard-interactive", r);
	fail_floor(&a->kbd_started);
	return count_failure(a, a->user, "keyboard-interactive", "PAM refused");
}

static int on_kbdint_start(struct auth_ctx *a, const char *user, struct mon_auth_reply *r)
{
	int res = MON_AUTH_DENIED;
	if (!user_ok(a, user, "keyboard-interactive", &res))
		return res;
	if (!a->srv->use_pam || !(auth_policy_next(&a->policy, a->done) & AM_KBDINT))
		return count_failure(a, a->user, "keyboard-interactive", "method not allowed");
	wpam_kbdint_free(a->kbd);
	clock_gettime(CLOCK_MONOTONIC, &a->kbd_started);
	/* unknown users get a real PAM conversation too (PAM fails them) */
	a->kbd = tenant_name_valid(a->user)
	             ? wpam_kbdint_start(a->srv->pam_service, a->user, a->peer_host)
	             : NULL;
	return kbdint_next(a, r);
}

static int on_kbdint_answer(struct auth_ctx *a, const char *p, size_t len, struct mon_auth_reply *r)
{
	const char *ans[WPAM_MAX_PROMPTS];
	int n = 0;
	for (size_t off = 0; off < len && n < WPAM_MAX_PROMPTS; off += strlen(p + off) + 1)
		ans[n++] = p + off;
	if (a->kbd && wpam_kbdint_answer(a->kbd, n, ans) < 0) {
		wpam_kbdint_free(a->kbd);
		a->kbd = NULL;
	}
	return kbdint_next(a, r);
}

/* one request being answered: the handlers fill the reply */
struct auth_req {
	struct auth_ctx *a;
	struct mon_auth_reply *r;
	bool login; /* MON_LOGIN: authentication is over */
};

static void h_pubkey(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct auth_req *q = ctx;
	q->r->result = on_pubkey(q->a, p, q->r);
}

static void h_password(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct auth_req *q = ctx;
	q->r->result = on_password(q->a, p, q->r);
}

static void h_kbdint_start(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct auth_req *q = ctx;
	q->r->result = on_kbdint_start(q->a, p, q->r);
}

static void h_kbdint_answer(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct auth_req *q = ctx;
	q->r->result = on_kbdint_answer(q->a, p, len, q->r);
}

static void h_login(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct auth_req *q = ctx;
	mon_apply(&q->a->st, MON_LOGIN, 0);
	q->login = true;
}

/* what a pre-auth process may ask (the session's requests are monitor.c's) */
static mon_handler *const auth_handlers[MON_NTYPES] = {
    [MON_AUTH_PUBKEY] = h_pubkey,
    [MON_AUTH_PASSWORD] = h_password,
    [MON_KBDINT_START] = h_kbdint_start,
    [MON_KBDINT_ANSWER] = h_kbdint_answer,
    [MON_LOGIN] = h_login,
};

/* The pre-auth process went away, or is told to go: wait for it, end. */
static _Noreturn void finish(struct auth_ctx *a)
{
	close(a->sock);
	waitpid(a->child, NULL, 0);
	log_relay_pump(a->log); /* what it wrote last */
	wpam_kbdint_free(a->kbd);
	_exit(0);
}

void monauth_serve(struct auth_ctx *a)
{
	static char msg[sizeof(struct mon_hdr) + MON_MAX_REQUEST + 1];
	static struct mon_auth_reply r;
	a->st.phase = MON_PHASE_PREAUTH;
	a->policy = a->srv->auth;
	for (;;) {
		/* its stderr too, as it comes: nothing it logs waits for the login */
		struct pollfd pf[2] = {{.fd = a->sock, .events = POLLIN},
		                       {.fd = a->log->fd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			finish(a);
		if (pf[1].revents)
			log_relay_pump(a->log);
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = recv(a->sock, msg, sizeof msg, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			finish(a);       /* gone: it said why (key exchange, disconnect) */
		memset(&r, 0, sizeof r); /* refused: MON_AUTH_DENIED */
		struct auth_req q = {.a = a, .r = &r};
		char who[INET6_ADDRSTRLEN + 40];
		snprintf(who, sizeof who, "%s pre-auth pid %d", a->peer, (int)a->child);
		mon_dispatch(&a->st, auth_handlers, &q, who, msg, (size_t)n, -1);
		if (q.login)
			return;
		explicit_bzero(msg, (size_t)n); /* passwords, answers */
		if (send(a->sock, &r, sizeof r, MSG_NOSIGNAL) < 0)
			finish(a);
		if (r.result == MON_AUTH_DISCONNECT)
			finish(a);
	}
}
