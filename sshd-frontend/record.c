/* record.c - asciicast v2 writing in the session process (json-c does the
 * string escaping); the file itself is created by the root monitor
 * (monitor.c, MON_RECORD) and arrives as a descriptor. */
#include "record.h"
#include "../sandbox/fmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/workspace.h"
#include "monproto.h"

/* the fd, -1 on failure, -2 when the tenant's recordings are full */
static int recv_fd(int sock)
{
	struct mon_reply rep = {.code = MON_FAILED};
	int fd;
	if (fdpass_recv(sock, &rep, sizeof rep, &fd, 0) <= 0 || rep.code != MON_OK || fd < 0) {
		if (fd >= 0)
			close(fd);
		return rep.code == MON_FULL ? -2 : -1;
	}
	return fd;
}

static void write_line(struct recording *r, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);
	if (r->written + len + 1 > r->max) {
		record_stop(r); /* size cap reached: the recording ends here */
		return;
	}
	char *line = malloc(len + 1);
	if (line == NULL)
		return;
	memcpy(line, s, len);
	line[len] = '\n';
	if (write(r->fd, line, len + 1) == (ssize_t)(len + 1))
		r->written += len + 1;
	free(line);
}

int record_start(struct recording *r, int sock, int channel, int cols, int rows, const char *term,
                 const char *title, uint64_t max_bytes)
{
	r->fd = -1;
	struct mon_hdr req = {.type = MON_RECORD, .channel = channel};
	struct timeval tmo = {2, 0};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	if (send(sock, &req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req)
		return -1;
	int fd = recv_fd(sock);
	if (fd < 0)
		return fd;
	r->fd = fd;
	r->written = 0;
	r->max = max_bytes ? max_bytes : ~0ULL;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	json_object *h = json_object_new_object();
	json_object_object_add(h, "version", json_object_new_int(2));
	json_object_object_add(h, "width", json_object_new_int(cols));
	json_object_object_add(h, "height", json_object_new_int(rows));
	json_object_object_add(h, "timestamp", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(h, "title", json_object_new_string(title));
	json_object *env = json_object_new_object();
	if (term)
		json_object_object_add(env, "TERM", json_object_new_string(term));
	json_object_object_add(h, "env", env);
	write_line(r, h);
	json_object_put(h);
	return 0;
}

void record_event(struct recording *r, const char *kind, const void *data, size_t len)
{
	if (r->fd < 0)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t =
	    (double)(now.tv_sec - r->t0.tv_sec) + (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
	json_object *a = json_object_new_array();
	json_object_array_add(a, json_object_new_double(t));
	json_object_array_add(a, json_object_new_string(kind));
	json_object_array_add(a, json_object_new_string_len(data, (int)len));
	write_line(r, a);
	json_object_put(a);
}

void record_stop(struct recording *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}
