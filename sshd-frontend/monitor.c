/* monitor.c - the root monitor serving its unprivileged session process
 * (monproto.h): session slots counted by root in a root-owned directory,
 * recording files, audit events written with the monitor's own tenant, and
 * status notes passed to the master, and root's own session_timeout
 * backstop. Each request is checked first (moncheck.c); refusals are
 * logged. Runs as root; the caller's side is monitor_wrap.c. */
#include "monitor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/fmt.h"
#include "../sandbox/spawn.h"
#include "../sandbox/strblob.h"
#include "audit.h"
#include "log.h"
#include "record.h"
#include "notify.h"
#include "slots.h"
#include "../sandbox/workspace.h"

/* ---- recordings: root creates the files (MON_RECORD) ---- */

/* the regular files in the tenant's recordings directory: their bytes and
 * how many */
static unsigned long long dir_usage(const char *dir, long *files)
{
	unsigned long long total = 0;
	*files = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	struct dirent *de;
	struct stat st;
	while ((de = readdir(d)) != NULL)
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode)) {
			total += (unsigned long long)st.st_size;
			(*files)++;
		}
	closedir(d);
	return total;
}

static int record_open(const struct monitor *m, int channel, int *code, char *path)
{
	char dir[PATH_MAX - 64];
	fmt_into(dir, sizeof dir, "%s/recordings/%s", m->state_dir, m->tenant);
	int fd = -1;
	*code = MON_FAILED;
	bool have_dir = state_mkdir(dir, 0700) == 0;
	long files = 0;
	unsigned long long bytes = have_dir ? dir_usage(dir, &files) : 0;
	if (have_dir && ((m->record_total_max && bytes >= m->record_total_max) ||
	                 files >= m->record_max_files)) {
		*code = MON_FULL;
	} else if (have_dir) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		char ts[32];
		strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
		if (fmt_into(path, PATH_MAX, "%s/%s-%d-%d.cast", dir, ts, (int)getpid(), channel) <
		    0)
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			*code = MON_OK;
	}
	return fd;
}

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

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int monitor_deadline_ms(const struct monitor *m)
{
	if (m->session_timeout <= 0 || m->st.nchan == 0)
		return -1;
	int64_t oldest = m->st.chan[0].claimed_ms;
	for (int i = 1; i < m->st.nchan; i++)
		if (m->st.chan[i].claimed_ms < oldest)
			oldest = m->st.chan[i].claimed_ms;
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

static void do_claim(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct monitor *m = ctx;
	int32_t channel = h->channel;
	long held = 0;
	if (slots_claim_tag(m->slots_dir, m->max_sessions, getpid(), channel, &held) < 0) {
		waudit_event("limit_refused", "limit", "max_sessions", "tenant", m->tenant,
		             "source", m->source, NULL);
		reply(m, MON_FULL, (int)held, -1);
		return;
	}
	if (mon_apply(&m->st, MON_CLAIM, channel) < 0) {
		slots_release_tag(m->slots_dir, getpid(), channel);
		reply(m, MON_FAILED, ENOMEM, -1);
		return;
	}
	mon_chan_of(&m->st, channel)->claimed_ms = now_ms();
	reply(m, MON_OK, 0, -1);
}

static void do_spawn(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int memfd)
{
	struct monitor *m = ctx;
	int32_t channel = h->channel;
	struct mon_spawn req;
	memcpy(&req, p, sizeof req);
	char *blob = NULL;
	char **v = memfd >= 0 ? strblob_read(memfd, req.argc, req.envc, &blob) : NULL;
	if (v == NULL || m->spawn == NULL) {
		log_warn("monitor: tenant %s: spawn from pid %d refused: %s", m->tenant,
		         (int)m->peer, v == NULL ? "bad command strings" : "not here");
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

static void do_note(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct monitor *m = ctx;
	if (m->notify_fd < 0)
		return;
	char arg[200], line[NOTE_MAX];
	size_t n = len - 1 < sizeof arg - 1 ? len - 1 : sizeof arg - 1;
	memcpy(arg, p + 1, n);
	for (size_t i = 0; i < n; i++) /* one line: the master reads line by line */
		if (arg[i] == '\0')
			arg[i] = ' ';
	arg[n] = '\0';
	n = notify_line(line, p[0], arg); /* 'C' or 'T': moncheck.c checked it */
	if (write(m->notify_fd, line, n) < 0 && errno != EAGAIN) {
		close(m->notify_fd);
		m->notify_fd = -1;
	}
}

static void do_release(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct monitor *m = ctx;
	slots_release_tag(m->slots_dir, getpid(), h->channel);
	mon_apply(&m->st, MON_RELEASE, h->channel);
}

static void do_record(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int passed)
{
	struct monitor *m = ctx;
	int code;
	char path[PATH_MAX];
	if (m->record_mode == 0) { /* the tenant's policy, not the asker's */
		log_warn("monitor: tenant %s: recording refused: record = none", m->tenant);
		reply(m, MON_FAILED, EPERM, -1);
		return;
	}
	if (m->nrecorded >= m->record_max_files) {
		log_warn("monitor: tenant %s: recording refused: %ld this connection "
		         "(record_max_files)",
		         m->tenant, m->nrecorded);
		reply(m, MON_FULL, 0, -1);
		return;
	}
	int fd = record_open(m, h->channel, &code, path);
	if (fd >= 0) {
		m->nrecorded++;
		mon_apply(&m->st, MON_RECORD, h->channel);
		rec_keep(m, path);
	}
	reply(m, code, 0, fd);
	if (fd >= 0)
		close(fd);
}

static void do_audit(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	struct monitor *m = ctx;
	const char *event, *kv[2 * MON_AUDIT_MAX_KV + 2];
	size_t nkv;
	if (mon_audit_parse(p, len, &event, kv, &nkv) != NULL) /* checked: it passes */
		return;
	/* who it was is the monitor's to say: a user the session names goes,
	 * and a source it names is the connection's own */
	size_t out = 0;
	bool source = false;
	for (size_t i = 0; i + 1 < nkv; i += 2) {
		const char *k = kv[i] + (kv[i][0] == '#');
		if (!strcmp(k, "user") || !strcmp(k, "source")) {
			source |= !strcmp(k, "source");
			continue;
		}
		kv[out++] = kv[i];
		kv[out++] = kv[i + 1];
	}
	if (source && m->source) {
		kv[out++] = "source";
		kv[out++] = m->source;
	}
	waudit_eventv(m->peer, event, m->tenant, kv, out);
}

/* what a session process may ask (the pre-auth requests are monauth.c's) */
static mon_handler *const session_handlers[MON_NTYPES] = {
    [MON_CLAIM] = do_claim, [MON_RELEASE] = do_release, [MON_RECORD] = do_record,
    [MON_AUDIT] = do_audit, [MON_NOTE] = do_note,       [MON_SPAWN] = do_spawn,
};
/* an environment's env process: its egress proxy's audit events only */
static mon_handler *const env_handlers[MON_NTYPES] = {[MON_AUDIT] = do_audit};

static void serve_one(struct monitor *m, const char *msg, size_t n, int passed)
{
	char who[64];
	snprintf(who, sizeof who, "tenant %s pid %d", m->tenant, (int)m->peer);
	const char *why = mon_dispatch(&m->st, m->audit_only ? env_handlers : session_handlers, m,
	                               who, msg, n, passed);
	struct mon_hdr h = {0};
	if (why && n >= sizeof h)
		memcpy(&h, msg, sizeof h);
	if (why && (h.type == MON_CLAIM || h.type == MON_RECORD || h.type == MON_SPAWN))
		reply(m, MON_FAILED, EPERM, -1); /* never leave the asker waiting */
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
			log_warn(
			    "monitor: tenant %s: a message of over %zu bytes from pid %d refused",
			    m->tenant, sizeof msg - 1, (int)m->peer);
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
	mon_state_free(&m->st);
}
