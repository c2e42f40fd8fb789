/* log.c - stderr logging with a level; each line is written with one
 * write(2) so lines from many per-connection processes never interleave.
 * The message is escaped (fmt_escape): user names, commands and host names
 * from clients and tenants can never put a control sequence or a forged
 * line into the operator's log. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../sandbox/fmt.h"

static int cur_level = LOG_INFO_;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(int level)
{
	cur_level = level;
}

int log_get_level(void)
{
	return cur_level;
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > cur_level)
		return;
	char msg[1024], buf[1200];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (m < 0)
		msg[0] = '\0';
	int n = snprintf(buf, sizeof buf, "warrend[%d]: %s: ", (int)getpid(), names[level]);
	size_t len = (size_t)n + fmt_escape(buf + n, sizeof buf - (size_t)n - 1, msg);
	buf[len++] = '\n';
	ssize_t w = write(2, buf, len);
	(void)w;
}

/* one relayed line: printable ASCII as is (log_msg already escaped it),
 * anything else escaped; one write */
static void relay_line(const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char out[4 * sizeof((struct log_relay *)0)->buf + 2];
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch >= 0x20 && ch < 0x7f) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o++] = '\n';
	ssize_t w = write(2, out, o);
	(void)w;
}

int log_relay_pump(struct log_relay *r)
{
	if (r->fd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			if (r->len)
				relay_line(r->buf, r->len);
			r->len = 0;
			close(r->fd);
			r->fd = -1;
			return -1;
		}
		r->len += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < r->len; i++)
			if (r->buf[i] == '\n') {
				relay_line(r->buf + start, i - start);
				start = i + 1;
			}
		if (start == 0 && r->len == sizeof r->buf) { /* no line end: as one line */
			relay_line(r->buf, r->len);
			start = r->len;
		}
		memmove(r->buf, r->buf + start, r->len - start);
		r->len -= start;
	}
}
