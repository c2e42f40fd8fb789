/* monitor.c - the root monitor serving its unprivileged session process
 * (monproto.h): session slots counted by root in a root-owned directory,
 * recording files, audit events written with the monitor's own tenant, and
 * status notes passed to the master, and root's own session_timeout
 * backstop. Each request is checked first (moncheck.c); refusals are
 * logged. Also the session side's wrappers. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/fmt.h"
#include "../sandbox/spawn.h"
#include "../sandbox/strblob.h"
#include "audit.h"
#include "log.h"
#include "record.h"
#include "slots.h"

static void reply(struct monitor *m, int code, int value, int fd)
{
	struct mon_reply r = {.code = code, .value = value};
	if (fdpass_send(m->sock, &r, sizeof r, fd) < 0)
		log_debug("monitor: reply: %s", strerror(errno));
}

/* the sandbox's descriptors, those it has, after the reply; value says which */
static void reply_proc(struct monitor *m, const struct sandbox_proc *p)
{
	int fds[4], mask;
	int n = sandbox_proc_pack(p, fds, &mask);
	struct mon_reply r = {.code = MON_OK, .value = mask};
	if (fdpass_sendv(m->sock, &r, sizeof r, fds, n) < 0)
		log_debug("monitor: reply: %s", strerror(errno));
}

static void refuse(struct monitor *m, uint32_t type, const char *why)
{
	m->st.refused++;
	if (m->st.refused <= 20 || m->st.refused % 1000 == 0)
		log_warn("monitor: tenant %s: request %u from pid %d refused: %s (%u so far)",
		         m->tenant, (unsigned)type, (int)m->peer, why, m->st.refused);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void claimed_drop(struct monitor *m, int32_t channel)
{
	for (int i = 0; i < m->nclaimed; i++)
		if (m->claimed[i].chan == channel) {
			m->nclaimed--;
			m->claimed[i] = m->claimed[m->nclaimed];
			return;
		}
}

int monitor_deadline_ms(const struct monitor *m)
{
	if (m->session_timeout <= 0 || m->nclaimed == 0)
		return -1;
	int64_t oldest = m->claimed[0].ms;
	for (int i = 1; i < m->nclaimed; i++)
		if (m->claimed[i].ms < oldest)
			oldest = m->claimed[i].ms;
	int64_t due = oldest + (m->session_timeout + MON_TIMEOUT_GRACE_S) * 1000;
	int64_t left = due - now_ms();
	return left < 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

bool monitor_overdue(const struct monitor *m)
{
	return monitor_deadline_ms(m) == 0;
}

int monitor_wake_ms(const struct monitor *m)
{
	int dl = monitor_deadline_ms(m);
	if (m->nrec > 0) {
		int64_t left = m->rec_next_ms - now_ms();
		int rec = left < 0                     ? 0
		          : left > MON_RECORD_CHECK_MS ? MON_RECORD_CHECK_MS
		                                       : (int)left;
		if (dl < 0 || dl > rec)
			dl = rec;
	}
	return dl;
}

bool monitor_record_over(struct monitor *m, bool now)
{
	if (m->nrec == 0 || (!now && now_ms() < m->rec_next_ms))
		return false;
	m->rec_next_ms = now_ms() + MON_RECORD_CHECK_MS;
	bool over = false;
	for (int i = 0; i < m->nrec; i++) {
		struct stat st;
		if (stat(m->rec_paths[i], &st) < 0 ||
		    (unsigned long long)st.st_size <= m->record_max)
			continue;
		int fd = open(m->rec_paths[i], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)m->record_max) < 0)
			log_warn("monitor: cutting a recording back: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		over = true;
	}
	return over;
}

/* the path of a recording just handed out, to watch (root's directory: the
 * session process holds only the descriptor) */
static void rec_keep(struct monitor *m, const char *path)
{
	if (m->record_max == 0)
		return;
	if (m->nrec == m->caprec) {
		int cap = m->caprec ? 2 * m->caprec : 16;
		char **p = realloc(m->rec_paths, (size_t)cap * sizeof *p);
		if (p == NULL)
			return; /* unwatched: the session process's own cap still holds */
		m->rec_paths = p;
		m->caprec = cap;
	}
	if ((m->rec_paths[m->nrec] = strdup(path)) != NULL && m->nrec++ == 0)
		m->rec_next_ms = now_ms() + MON_RECORD_CHECK_MS;
}

static void do_claim(struct monitor *m, int32_t channel)
{
	long held = 0;
	if (slots_claim_tag(m->slots_dir, m->max_sessions, getpid(), channel, &held) < 0) {
		waudit_event("limit_refused", "limit", "max_sessions", "tenant", m->tenant,
		             "source", m->source, NULL);
		reply(m, MON_FULL, (int)held, -1);
		return;
	}
	mon_apply(&m->st, MON_CLAIM, channel);
	if (m->nclaimed < MON_MAX_CHANS) {
		m->claimed[m->nclaimed].chan = channel;
		m->claimed[m->nclaimed++].ms = now_ms();
	}
	reply(m, MON_OK, 0, -1);
}

static void do_spawn(struct monitor *m, int32_t channel, const char *p, int memfd)
{
	struct mon_spawn req;
	memcpy(&req, p, sizeof req);
	char *blob = NULL;
	char **v = memfd >= 0 ? strblob_read(memfd, req.argc, req.envc, &blob) : NULL;
	if (v == NULL || m->spawn == NULL) {
		refuse(m, MON_SPAWN, v == NULL ? "bad command strings" : "not here");
		reply(m, MON_FAILED, v == NULL ? EINVAL : ENOSYS, -1);
	} else {
		struct sandbox_proc proc = {
		    .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .ctl_fd = -1};
		int rc = m->spawn(m->spawn_ud, &req, v, v + req.argc + 1, &proc);
		mon_apply(&m->st, MON_SPAWN, channel); /* once, whatever came of it */
		if (rc < 0)
			reply(m, MON_FAILED, -rc, -1);
		else
			reply_proc(m, &proc);
		sandbox_proc_close_fds(&proc); /* the session process has them now */
	}
	free(v);
	free(blob);
}

static void do_note(struct monitor *m, const char *p, size_t len)
{
	if (m->notify_fd < 0)
		return;
	char line[220];
	size_t n = len < 200 ? len : 200;
	memcpy(line, p, n);
	for (size_t i = 1; i < n; i++) /* one line: the master reads line by line */
		if (line[i] == '\n' || line[i] == '\r' || line[i] == '\0')
			line[i] = ' ';
	line[n++] = '\n';
	if (write(m->notify_fd, line, n) < 0 && errno != EAGAIN) {
		close(m->notify_fd);
		m->notify_fd = -1;
	}
}

static void serve_one(struct monitor *m, const char *msg, size_t n, int passed)
{
	struct mon_hdr h = {0}; /* type 0 (none) when the message is too short */
	if (n >= sizeof h)
		memcpy(&h, msg, sizeof h);
	const char *why = mon_check(&m->st, msg, n);
	if (why == NULL && m->audit_only && h.type != MON_AUDIT)
		why = "not for an environment";
	if (why) {
		refuse(m, h.type, why);
		if (h.type == MON_CLAIM || h.type == MON_RECORD || h.type == MON_SPAWN)
			reply(m, MON_FAILED, EPERM, -1); /* never leave the asker waiting */
		return;
	}
	const char *p = msg + sizeof h;
	size_t len = n - sizeof h;
	if (h.type == MON_CLAIM) {
		do_claim(m, h.channel);
	} else if (h.type == MON_RELEASE) {
		slots_release_tag(m->slots_dir, getpid(), h.channel);
		mon_apply(&m->st, MON_RELEASE, h.channel);
		claimed_drop(m, h.channel);
	} else if (h.type == MON_RECORD) {
		int code;
		char path[PATH_MAX];
		int fd = record_open(m->state_dir, m->tenant, m->record_total_max, h.channel, &code,
		                     path);
		if (fd >= 0) {
			mon_apply(&m->st, MON_RECORD, h.channel);
			rec_keep(m, path);
		}
		reply(m, code, 0, fd);
		if (fd >= 0)
			close(fd);
	} else if (h.type == MON_AUDIT) {
		const char *event, *kv[2 * MON_AUDIT_MAX_KV];
		size_t nkv;
		why = mon_audit_parse(p, len, &event, kv, &nkv);
		if (why)
			refuse(m, h.type, why);
		else
			waudit_eventv(m->peer, event, m->tenant, kv, nkv);
	} else if (h.type == MON_NOTE) {
		do_note(m, p, len);
	} else if (h.type == MON_SPAWN) {
		do_spawn(m, h.channel, p, passed);
	}
}

void monitor_serve(struct monitor *m)
{
	static char msg[sizeof(struct mon_hdr) + MON_MAX_PAYLOAD + 1];
	while (m->sock >= 0) {
		int fd = -1, nfds = 0; /* a descriptor only MON_SPAWN brings (its strings) */
		ssize_t n =
		    fdpass_recvv(m->sock, msg, sizeof msg, &fd, 1, &nfds, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close(m->sock);
			m->sock = -1;
			return;
		}
		if ((size_t)n > sizeof msg - 1)
			refuse(m, 0, "message too long");
		else
			serve_one(m, msg, (size_t)n, nfds ? fd : -1);
		if (nfds && fd >= 0)
			close(fd);
	}
}

void monitor_release_all(struct monitor *m)
{
	for (int i = 0; i < m->st.nchan; i++)
		slots_release_tag(m->slots_dir, getpid(), m->st.chan[i].id);
	m->st.nchan = 0;
	m->nclaimed = 0;
}

/* ---- the session process's side ---- */

int mon_claim(int sock, int channel, long *running)
{
	struct mon_hdr h = {.type = MON_CLAIM, .channel = channel};
	struct mon_reply r = {.code = MON_FAILED};
	struct timeval tmo = {5, 0};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	if (send(sock, &h, sizeof h, MSG_NOSIGNAL) != (ssize_t)sizeof h ||
	    recv(sock, &r, sizeof r, 0) != (ssize_t)sizeof r)
		return 0;
	*running = r.value;
	return r.code == MON_FULL ? -1 : r.code == MON_OK ? 1 : 0;
}

void mon_release(int sock, int channel)
{
	struct mon_hdr h = {.type = MON_RELEASE, .channel = channel};
	if (send(sock, &h, sizeof h, MSG_NOSIGNAL) < 0)
		log_debug("monitor: release: %s", strerror(errno));
}

int mon_spawn(int sock, int channel, const struct mon_spawn *req, char *const argv[],
              char *const envp[], struct sandbox_proc *out, char *err, size_t errlen)
{
	struct mon_spawn r = *req;
	int mfd = strblob_memfd(argv, envp, &r.argc, &r.envc);
	if (mfd < 0) {
		snprintf(err, errlen, "command and environment: %s", strerror(errno));
		return -1;
	}
	char msg[sizeof(struct mon_hdr) + sizeof r];
	struct mon_hdr h = {.type = MON_SPAWN, .channel = channel};
	memcpy(msg, &h, sizeof h);
	memcpy(msg + sizeof h, &r, sizeof r);
	struct mon_reply rep = {.code = MON_FAILED, .value = EIO};
	int fds[4], nfds = 0;
	struct timeval tmo = {30, 0};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	int sent = fdpass_send(sock, msg, sizeof msg, mfd);
	close(mfd);
	if (sent < 0 || fdpass_recvv(sock, &rep, sizeof rep, fds, 4, &nfds, 0) != sizeof rep ||
	    rep.code != MON_OK) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		snprintf(err, errlen, "%s",
		         strerror(rep.value > 0 && rep.value < 4096 ? rep.value : EIO));
		return -1;
	}
	if (sandbox_proc_unpack(out, rep.value, fds, nfds) == 0)
		return 0;
	snprintf(err, errlen, "no control socket from the monitor");
	return -1;
}

void mon_note(int sock, char kind, const char *text)
{
	char msg[sizeof(struct mon_hdr) + 200];
	struct mon_hdr h = {.type = MON_NOTE};
	memcpy(msg, &h, sizeof h);
	int n = snprintf(msg + sizeof h, sizeof msg - sizeof h, "%c%.180s", kind, text ? text : "");
	if (send(sock, msg, sizeof h + (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("monitor: note: %s", strerror(errno));
}
