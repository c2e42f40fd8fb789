/* audit.c - JSON-lines audit records; each gets ts, pid and event. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monproto.h"

static int audit_fd = -1;

int waudit_open(const char *dest)
{
	if (dest == NULL)
		return 0;
	if (!strcmp(dest, "stderr")) {
		audit_fd = 2;
		return 0;
	}
	int fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (audit_fd > 2)
		close(audit_fd);
	audit_fd = fd;
	return 0;
}

static int fwd_sock = -1;

void waudit_forward(int sock)
{
	fwd_sock = sock;
	if (audit_fd > 2)
		close(audit_fd);
	audit_fd = -1;
}

static void write_event(pid_t pid, const char *event, const char *tenant, const char **kv,
                        size_t nkv)
{
	json_object *o = json_object_new_object();
	if (o == NULL)
		return;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char ts[40];
	size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "pid", json_object_new_int((int)pid));
	if (tenant)
		json_object_object_add(o, "tenant", json_object_new_string(tenant));
	for (size_t i = 0; i + 1 < nkv; i += 2) {
		const char *k = kv[i], *v = kv[i + 1];
		if (k[0] == '#')
			json_object_object_add(o, k + 1,
			                       json_object_new_int64(strtoll(v, NULL, 10)));
		else
			json_object_object_add(o, k, json_object_new_string(v));
	}
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);
	char *line = malloc(len + 1);
	if (line) {
		memcpy(line, s, len);
		line[len] = '\n';
		ssize_t w = write(audit_fd, line, len + 1); /* one write: lines never interleave */
		(void)w;
		free(line);
	}
	json_object_put(o);
}

void waudit_eventv(pid_t pid, const char *event, const char *tenant, const char **kv, size_t nkv)
{
	if (audit_fd >= 0)
		write_event(pid, event, tenant, kv, nkv);
}

/* to the monitor: "event\0key\0value\0..." without the tenant, which the
 * monitor sets; an event too large for one message is cut at a pair */
static void forward_event(const char *event, const char **kv, size_t nkv)
{
	char msg[sizeof(struct mon_hdr) + MON_MAX_PAYLOAD];
	struct mon_hdr h = {.type = MON_AUDIT};
	memcpy(msg, &h, sizeof h);
	size_t off = sizeof h;
	size_t el = strlen(event) + 1;
	if (el > MON_MAX_PAYLOAD)
		return;
	memcpy(msg + off, event, el);
	off += el;
	for (size_t i = 0; i + 1 < nkv; i += 2) {
		size_t kl = strlen(kv[i]) + 1, vl = strlen(kv[i + 1]) + 1;
		if (strcmp(kv[i], "tenant") == 0)
			continue;
		if (off + kl + vl > sizeof msg)
			break;
		memcpy(msg + off, kv[i], kl);
		memcpy(msg + off + kl, kv[i + 1], vl);
		off += kl + vl;
	}
	if (send(fwd_sock, msg, off, MSG_NOSIGNAL) < 0)
		fwd_sock = -1; /* the monitor is gone: so is the connection */
}

void waudit_event(const char *event, ...)
{
	if (audit_fd < 0 && fwd_sock < 0)
		return;
	const char *kv[2 * MON_AUDIT_MAX_KV];
	size_t n = 0;
	va_list ap;
	va_start(ap, event);
	for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		if (v == NULL || n + 2 > sizeof kv / sizeof kv[0])
			continue;
		kv[n++] = k;
		kv[n++] = v;
	}
	va_end(ap);
	if (fwd_sock >= 0)
		forward_event(event, kv, n);
	else
		write_event(getpid(), event, NULL, kv, n);
}
