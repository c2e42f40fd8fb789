/* preauth.c - a connection's unprivileged pre-auth process (preauth.h):
 * its jail (own uid, a user namespace that maps nothing, an empty root, no
 * effective capabilities, seccomp), libssh's auth callbacks relayed to the
 * monitor as typed requests, and the step that makes it the tenant once the
 * monitor has handed the login over. */
#include "preauth.h"
#include "../sandbox/fork.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/server.h>

#include "../sandbox/fmt.h"
#include "audit.h"
#include "confine.h"
#include "handover.h"
#include "log.h"
#include "monproto.h"
#include "session.h"

/* what becoming the tenant takes, permitted (never in effect) until then,
 * in its own user namespace only; SETPCAP to take them out of the bounding
 * set at the end */
static const cap_value_t keep[] = {CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT, CAP_SETPCAP};
#define NKEEP ((int)(sizeof keep / sizeof keep[0]))

struct pa {
	ssh_session session;
	int sock;
	const char *peer;
	pid_t monitor;
	bool authenticated;
	struct pa_io *io; /* until the login is handed over */
};

/* the one request in flight (header, then payload) and its answer: the
 * callbacks never overlap. On the heap, freed at the hand-over, so that its
 * 14 KiB do not stay with the session for its life. */
struct pa_io {
	char msg[sizeof(struct mon_hdr) + MON_MAX_REQUEST];
	struct mon_auth_reply r;
};

#define PAYLOAD(p) ((p)->io->msg + sizeof(struct mon_hdr))

static int root_path(const struct server_conf *srv, char *out, size_t len)
{
	return fmt_into(out, len, "%s/preauth-root", srv->state_dir);
}

static int set_caps(bool effective)
{
	cap_t c = cap_init();
	int rc = c ? cap_set_flag(c, CAP_PERMITTED, NKEEP, keep, CAP_SET) : -1;
	if (rc == 0 && effective)
		rc = cap_set_flag(c, CAP_EFFECTIVE, NKEEP, keep, CAP_SET);
	if (rc == 0)
		rc = cap_set_proc(c);
	cap_free(c);
	return rc;
}

/* Its own uid, then a user namespace of its own (which maps nothing until
 * the monitor writes the tenant's ids), then the empty root. */
static int jail(const struct server_conf *srv, int rootfd, char *err, size_t len)
{
	uid_t e = srv->preauth_uid_min + (uid_t)getpid();
	const char *step = "preauth_uids";
	if (e < srv->preauth_uid_min || e > srv->preauth_uid_max)
		errno = ERANGE;
	else if ((step = "uid",
	          setgroups(0, NULL) < 0 || setresgid(e, e, e) < 0 || setresuid(e, e, e) < 0))
		;
	else if ((step = "unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER) < 0))
		;
	else if ((step = "empty root", fchdir(rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0))
		;
	else {
		for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
			bool kept = false;
			for (int i = 0; i < NKEEP; i++)
				kept |= keep[i] == c;
			if (!kept && cap_drop_bound(c) < 0 && errno != EINVAL)
				return snprintf(err, len, "cap_drop_bound: %s", strerror(errno)),
				       -1;
		}
		step = "capabilities";
		if (set_caps(false) == 0 &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0 &&
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_DUMPABLE, 0) == 0)
			return 0;
	}
	snprintf(err, len, "%s: %s", step, strerror(errno));
	return -1;
}

/* (a directory's link count says nothing on btrfs: look) */
static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)) != NULL)
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

int preauth_prepare(const struct server_conf *srv, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	if (root_path(srv, path, sizeof path) < 0)
		return snprintf(err, errlen, "state_dir is too long"), -1;
	if ((mkdir(path, 0555) < 0 && errno != EEXIST) || lstat(path, &st) < 0)
		return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0222) || !dir_empty(path))
		return snprintf(err, errlen,
		                "%s: must be an empty directory owned by root, mode 0555", path),
		       -1;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
	unsigned long pid_max = 0;
	if (f && fscanf(f, "%lu", &pid_max) != 1)
		pid_max = 0;
	if (f)
		fclose(f);
	if (pid_max > (unsigned long)(srv->preauth_uid_max - srv->preauth_uid_min) + 1)
		return snprintf(err, errlen,
		                "[server] preauth_uids holds %lu uids, fewer than kernel.pid_max "
		                "(%lu): each pre-auth process takes the one at its pid",
		                (unsigned long)(srv->preauth_uid_max - srv->preauth_uid_min) + 1,
		                pid_max),
		       -1;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return snprintf(err, errlen, "pipe: %s", strerror(errno)), -1;
	pid_t pid = fork_child(0, NULL, 0);
	if (pid == 0) {
		char why[256] = "";
		int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || jail(srv, fd, why, sizeof why) < 0 || confine_preauth() < 0) {
			ssize_t w = write(p[1], why, strlen(why));
			(void)w;
			_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	char why[256] = "";
	ssize_t n = pid > 0 ? read(p[0], why, sizeof why - 1) : -1;
	why[n > 0 ? n : 0] = '\0';
	close(p[0]);
	int status = 1;
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(err, errlen,
	         "the pre-auth jail cannot be set up here (%s); it needs "
	         "unprivileged user namespaces, as bubblewrap does",
	         why[0] ? why : "fork failed");
	return -1;
}

/* The request whose len bytes of payload are in PAYLOAD(p), its answer in
 * p->io->r; the monitor gone ends the connection. */
static void ask(struct pa *p, uint32_t type, size_t len)
{
	struct mon_hdr h = {.type = type};
	memcpy(p->io->msg, &h, sizeof h);
	ssize_t w = send(p->sock, p->io->msg, sizeof h + len, MSG_NOSIGNAL), n;
	explicit_bzero(p->io->msg, sizeof h + len); /* passwords, answers */
	do
		n = recv(p->sock, &p->io->r, sizeof p->io->r, 0);
	while (n < 0 && errno == EINTR);
	if (w < 0 || n != (ssize_t)sizeof p->io->r) {
		log_err("%s: pre-auth: the monitor is gone", p->peer);
		_exit(1);
	}
}

static size_t put_user(char *out, const char *user)
{
	size_t n = user ? strnlen(user, MON_USER_MAX) : 0;
	memcpy(out, user ? user : "", n);
	out[n] = '\0';
	return n + 1;
}

static int outcome(struct pa *p, struct mon_auth_reply *r)
{
	switch (r->result) {
	case MON_AUTH_SUCCESS:
		return SSH_AUTH_SUCCESS;
	case MON_AUTH_PARTIAL:
		ssh_set_auth_methods(p->session, r->methods);
		return SSH_AUTH_PARTIAL;
	case MON_AUTH_DISCONNECT:
		r->banner[sizeof r->banner - 1] = '\0';
		if (r->banner[0]) { /* as sshd: tell the user why, then disconnect */
			ssh_string b = ssh_string_from_char(r->banner);
			if (b)
				ssh_send_issue_banner(p->session, b);
			ssh_string_free(b);
		}
		ssh_disconnect(p->session);
		_exit(0);
	default:
		return SSH_AUTH_DENIED;
	}
}

static int auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *pubkey, char state,
                       void *ud)
{
	(void)s;
	struct pa *p = ud;
	if (p->authenticated) /* libssh refuses a second login; p->io is gone */
		return SSH_AUTH_DENIED;
	char *req = PAYLOAD(p);
	char *b64 = NULL;
	const char *type = ssh_key_type_to_char(ssh_key_type(pubkey));
	if (type == NULL || ssh_pki_export_pubkey_base64(pubkey, &b64) != SSH_OK)
		return SSH_AUTH_DENIED;
	req[0] = state == SSH_PUBLICKEY_STATE_NONE ? 0 : state == SSH_PUBLICKEY_STATE_VALID ? 1 : 2;
	size_t off = 1 + put_user(req + 1, user);
	int kl = snprintf(req + off, MON_KEYBLOB_MAX + 1, "%s %s", type, b64);
	ssh_string_free_char(b64);
	if (kl < 0 || kl > MON_KEYBLOB_MAX)
		return SSH_AUTH_DENIED;
	off += (size_t)kl + 1;
	bool signed_ok = state == SSH_PUBLICKEY_STATE_VALID;
	ask(p, MON_AUTH_PUBKEY, off);
	int rc = outcome(p, &p->io->r);
	if (rc == SSH_AUTH_SUCCESS && signed_ok)
		p->authenticated = true;
	return rc;
}

static int auth_password(ssh_session s, const char *user, const char *password, void *ud)
{
	(void)s;
	struct pa *p = ud;
	if (p->authenticated)
		return SSH_AUTH_DENIED;
	char *req = PAYLOAD(p);
	size_t off = put_user(req, user);
	size_t pl = strnlen(password, MON_SECRET_MAX);
	memcpy(req + off, password, pl);
	req[off + pl] = '\0';
	explicit_bzero((char *)password, strlen(password));
	ask(p, MON_AUTH_PASSWORD, off + pl + 1);
	int rc = outcome(p, &p->io->r);
	p->authenticated |= rc == SSH_AUTH_SUCCESS;
	return rc;
}

static int kbdint_prompt(ssh_message msg, struct wpam_prompts *wp)
{
	const char *prompts[WPAM_MAX_PROMPTS];
	char echo[WPAM_MAX_PROMPTS];
	int n = wp->n < 0 ? 0 : wp->n > WPAM_MAX_PROMPTS ? WPAM_MAX_PROMPTS : wp->n;
	wp->info[sizeof wp->info - 1] = '\0';
	for (int i = 0; i < n; i++) {
		wp->text[i][WPAM_TEXT - 1] = '\0';
		prompts[i] = wp->text[i];
		echo[i] = wp->echo[i];
	}
	ssh_message_auth_interactive_request(msg, "", wp->info, (unsigned)n, prompts, echo);
	return 0;
}

/* the answers to the last round, each cut at MON_SECRET_MAX */
static size_t kbdint_answers(struct pa *p, char *req)
{
	int n = ssh_userauth_kbdint_getnanswers(p->session);
	size_t len = 0;
	for (int i = 0; n <= WPAM_MAX_PROMPTS && i < n; i++) {
		const char *a = ssh_userauth_kbdint_getanswer(p->session, (unsigned)i);
		size_t al = a ? strnlen(a, MON_SECRET_MAX) : 0;
		memcpy(req + len, a ? a : "", al);
		len += al;
		req[len++] = '\0';
		if (a)
			explicit_bzero((char *)a, strlen(a));
	}
	return len;
}

/* keyboard-interactive (libssh 0.10 has no callback for it); once the
 * session runs, session.c's callbacks take the place of these */
static int on_message(ssh_session s, ssh_message msg, void *ud)
{
	(void)s;
	struct pa *p = ud;
	int type = ssh_message_type(msg);
	if (type != SSH_REQUEST_AUTH || ssh_message_subtype(msg) != SSH_AUTH_METHOD_INTERACTIVE ||
	    p->authenticated)
		return 1; /* libssh answers with a failure */
	bool answers = ssh_message_auth_kbdint_is_response(msg);
	size_t len = answers ? kbdint_answers(p, PAYLOAD(p))
	                     : put_user(PAYLOAD(p), ssh_message_auth_user(msg));
	ask(p, answers ? MON_KBDINT_ANSWER : MON_KBDINT_START, len);
	if (p->io->r.result == MON_AUTH_PROMPTS)
		return kbdint_prompt(msg, &p->io->r.prompts);
	int rc = outcome(p, &p->io->r);
	if (rc == SSH_AUTH_SUCCESS || rc == SSH_AUTH_PARTIAL) {
		p->authenticated = rc == SSH_AUTH_SUCCESS;
		ssh_message_auth_reply_success(msg, rc == SSH_AUTH_PARTIAL);
	} else {
		ssh_message_reply_default(msg);
	}
	return 0;
}

/* The key exchange, its packets read here rather than in libssh's own
 * loop so that each is acknowledged at once: OpenSSH's client keeps Nagle on
 * until a session is interactive and holds its KEX_ECDH_INIT until its
 * KEXINIT is acknowledged, which a delayed ACK put off by 40 ms (the
 * server, having just sent its own KEXINIT, has nothing to send back). The
 * monitor's login_grace_time bounds the wait. */
static int key_exchange(ssh_session session, int fd)
{
	const int one = 1;
	ssh_set_blocking(session, 0);
	int rc;
	while ((rc = ssh_handle_key_exchange(session)) == SSH_AGAIN) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (ssh_get_poll_flags(session) & SSH_WRITE_PENDING)
			pf.events |= POLLOUT;
		if (poll(&pf, 1, -1) < 0 && errno != EINTR)
			return SSH_ERROR;
		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	}
	ssh_set_blocking(session, 1);
	return rc;
}

/* key exchange, then the auth callbacks until one succeeds */
static ssh_event handshake(struct pa *p, const struct conn_env *env, int fd)
{
	ssh_session session = ssh_new();
	if (session == NULL || ssh_bind_accept_fd(env->bind, session, fd) != SSH_OK) {
		log_err("%s: cannot set up the SSH session", p->peer);
		_exit(1);
	}
	p->session = session;
	static struct ssh_server_callbacks_struct cb;
	cb = (struct ssh_server_callbacks_struct){
	    .userdata = p,
	    .auth_pubkey_function = auth_pubkey,
	    .auth_password_function = auth_password,
	};
	ssh_callbacks_init(&cb);
	ssh_set_server_callbacks(session, &cb);
	ssh_set_message_callback(session, on_message, p);
	/* Offer every method the server has, to everyone: offering per-user
	 * methods would tell a prober which users exist. The monitor checks
	 * each attempt against the user's own policy. */
	ssh_set_auth_methods(
	    session,
	    SSH_AUTH_METHOD_PUBLICKEY |
	        (env->srv->use_pam ? SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_INTERACTIVE : 0));
	if (key_exchange(session, fd) != SSH_OK) {
		log_info("%s: key exchange failed: %s", p->peer, ssh_get_error(session));
		_exit(1);
	}
	ssh_event event = ssh_event_new();
	if (event == NULL || ssh_event_add_session(event, session) != SSH_OK) {
		log_err("%s: cannot create the event loop", p->peer);
		_exit(1);
	}
	while (!p->authenticated)
		if (ssh_event_dopoll(event, 1000) == SSH_ERROR) {
			log_info("%s: disconnected before authentication", p->peer);
			_exit(0);
		}
	return event;
}

/* the bounding set keeps nothing (what is in effect still works) */
static int drop_bound_kept(void)
{
	for (int i = 0; i < NKEEP; i++) /* SETPCAP, which this takes, last */
		if (cap_drop_bound(keep[i]) < 0)
			return -1;
	return 0;
}

/* The monitor has mapped the tenant's ids into our namespace: take them,
 * and the host's root back (the descriptor it sent), for good. */
static int become(const struct pa *p, const struct handover *h, int rootfd)
{
	const char *step = "ids";
	if (h->uid == 0 || h->gid == 0 || rootfd < 0)
		errno = EINVAL;
	else if ((step = "capabilities", set_caps(true) < 0))
		;
	else if ((step = "root", fchdir(rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0))
		;
	else if ((step = "bounding set", drop_bound_kept() < 0))
		;
	else if ((step = "switch", setgroups(0, NULL) < 0 ||
	                               setresgid(h->gid, h->gid, h->gid) < 0 ||
	                               setresuid(h->uid, h->uid, h->uid) < 0))
		;
	else {
		int rc = 0;
		cap_t none = cap_init();
		rc |= none ? cap_set_proc(none) : -1;
		cap_free(none);
		step = "drop";
		if (rc == 0 && prctl(PR_SET_DUMPABLE, 0) == 0 &&
		    prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() == p->monitor &&
		    setuid(0) < 0 && getuid() == h->uid && getgid() == h->gid) {
			close(rootfd);
			return 0;
		}
	}
	log_err("%s: becoming %u:%u failed at %s: %s", p->peer, (unsigned)h->uid, (unsigned)h->gid,
	        step, strerror(errno));
	return -1;
}

/* What a profile holds, the used entries only: the rest of its 90 KiB
 * stays untouched (zero pages) for the session's life. */
static struct profile *copy_profile(const struct profile *src)
{
	struct profile *p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	snprintf(p->name, sizeof p->name, "%s", src->name);
	snprintf(p->store, sizeof p->store, "%s", src->store);
	p->nenv = src->nenv < PROFILE_MAX_ENV ? src->nenv : PROFILE_MAX_ENV;
	for (int i = 0; i < p->nenv; i++) {
		snprintf(p->env_name[i], sizeof p->env_name[i], "%s", src->env_name[i]);
		snprintf(p->env_value[i], sizeof p->env_value[i], "%s", src->env_value[i]);
	}
	p->nmaps = src->nmaps < PROFILE_MAX_MAPS ? src->nmaps : PROFILE_MAX_MAPS;
	for (int i = 0; i < p->nmaps; i++) {
		snprintf(p->maps[i].src, sizeof p->maps[i].src, "%s", src->maps[i].src);
		snprintf(p->maps[i].dst, sizeof p->maps[i].dst, "%s", src->maps[i].dst);
	}
	p->cache_hit = src->cache_hit;
	return p;
}

/* The login as handed over, into the session's own storage: the hand-over
 * itself (128 KiB, mostly an unused profile) is not kept for the session's
 * life. */
static void take_login(struct session_ctx *sx, struct tenant_conf *tenant, const struct handover *h)
{
	tenant_conf_copy(tenant, &h->tenant);
	sx->tenant = tenant;
	sx->id.uid = h->uid;
	sx->id.gid = h->gid;
	sx->workspace = strdup(h->workspace);
	snprintf(sx->fail, sizeof sx->fail, "%s", h->fail);
	if (h->have_profile && (sx->profile = copy_profile(&h->profile)) == NULL)
		snprintf(sx->fail, sizeof sx->fail, "profile '%.60s': out of memory",
		         h->profile.name);
	sx->sessions_dir = strdup(h->sessions_dir);
	sx->env_sock = strdup(h->env_sock);
	if (sx->workspace == NULL || sx->sessions_dir == NULL || sx->env_sock == NULL) {
		log_err("session process: out of memory");
		_exit(1);
	}
	memcpy(sx->host_api_port, h->host_api_port, sizeof sx->host_api_port);
}

/* After the login: the session, as the tenant. */
static _Noreturn void serve_session(struct pa *p, const struct conn_env *env, ssh_event event,
                                    const char *ssh_connection)
{
	static struct session_ctx sx;
	static struct tenant_conf tenant;
	static char id_source[48];
	struct handover *h = calloc(1, sizeof *h);
	int fds[HO_NFDS];
	struct mon_hdr hd = {.type = MON_LOGIN};
	if (h == NULL || send(p->sock, &hd, sizeof hd, MSG_NOSIGNAL) < 0 ||
	    handover_recv(p->sock, h, fds) < 0) {
		log_info("%s: the monitor handed no login over", p->peer);
		_exit(1);
	}
	explicit_bzero(p->io, sizeof *p->io);
	free(p->io);
	p->io = NULL;
	if (become(p, h, fds[HO_ROOT]) < 0)
		_exit(1);
	/* static storage never written before in this process, so zero: only
	 * what differs is set, which leaves the untouched pages shared zero
	 * pages (a whole-struct assignment would dirty all 27 KiB) */
	sx.session = p->session;
	sx.event = event;
	sx.srv = env->srv;
	sx.facts = *env->facts;
	sx.filter = &env->filters[h->filter ? 1 : 0];
	sx.mon_sock = p->sock;
	sx.api_sock = fds[HO_API];
	sx.env_member = fds[HO_MEMBER];
	take_login(&sx, &tenant, h);
	snprintf(id_source, sizeof id_source, "%.*s", (int)sizeof h->id_source - 1, h->id_source);
	sx.id.source = id_source;
	free(h);
	sx.init_helper = env->init_helper;
	snprintf(sx.ssh_connection, sizeof sx.ssh_connection, "%s", ssh_connection);
	log_debug("session process for %s runs as %u:%u (%s)", tenant.name, (unsigned)sx.id.uid,
	          (unsigned)sx.id.gid, id_source);
	int rc = session_run(&sx);
	ssh_disconnect(p->session);
	ssh_free(p->session);
	_exit(rc);
}

/* all but stdin/out/err, the client's socket and the monitor's */
static void close_others(int a, int b, int c)
{
	int keep_fds[3] = {a, b, c};
	for (int i = 0; i < 3; i++) /* sort */
		for (int j = i + 1; j < 3; j++)
			if (keep_fds[j] < keep_fds[i]) {
				int t = keep_fds[i];
				keep_fds[i] = keep_fds[j];
				keep_fds[j] = t;
			}
	unsigned lo = 3;
	for (int i = 0; i < 3; i++) {
		if ((unsigned)keep_fds[i] > lo)
			close_range(lo, (unsigned)keep_fds[i] - 1, 0);
		if ((unsigned)keep_fds[i] + 1 > lo)
			lo = (unsigned)keep_fds[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
/* ASan/UBSan builds (tests): a report file is opened when there is a
 * report, and the jail's root has nowhere to put it: this process's reports
 * go to warrend's log instead, where the tests look for them too */
static void sanitizer_report_fd(void)
{
	__sanitizer_set_report_fd((void *)2L);
}
#else
static void sanitizer_report_fd(void)
{
}
#endif

_Noreturn void preauth_run(const struct conn_env *env, int fd, int sock, const char *peer,
                           const char *ssh_connection)
{
	static struct pa p;
	p.sock = sock; /* p is zero (static, untouched): its buffers stay so until used */
	p.peer = peer;
	p.monitor = getppid();
	if ((p.io = calloc(1, sizeof *p.io)) == NULL) {
		log_err("%s: pre-auth: out of memory", peer);
		_exit(1);
	}
	char path[PATH_MAX], err[300] = "";
	int rootfd = root_path(env->srv, path, sizeof path) < 0
	                 ? -1
	                 : open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	/* root's: the audit log, the master's pipe, anything else inherited */
	waudit_forward(sock);
	sanitizer_report_fd();
	close_others(fd, sock, rootfd < 0 ? fd : rootfd);
	if (rootfd < 0 || jail(env->srv, rootfd, err, sizeof err) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != p.monitor ||
	    confine_preauth() < 0) {
		log_err("%s: pre-auth jail: %s", peer, err[0] ? err : strerror(errno));
		_exit(1);
	}
	close(rootfd);
	ssh_event event = handshake(&p, env, fd);
	serve_session(&p, env, event, ssh_connection);
}
