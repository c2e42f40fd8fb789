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
#include <unistd.h>

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

void waudit_event(const char *event, ...)
{
	if (audit_fd < 0)
		return;
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
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	va_list ap;
	va_start(ap, event);
	for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		if (v == NULL)
			continue;
		if (k[0] == '#')
			json_object_object_add(o, k + 1,
			                       json_object_new_int64(strtoll(v, NULL, 10)));
		else
			json_object_object_add(o, k, json_object_new_string(v));
	}
	va_end(ap);
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
