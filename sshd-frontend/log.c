/* log.c - stderr logging with a level; each line is written with one
 * write(2) so lines from many per-connection processes never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

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
	char buf[1024];
	int n = snprintf(buf, sizeof buf, "warrend[%d]: %s: ", (int)getpid(), names[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof buf - 2)
		len = sizeof buf - 2;
	for (size_t i = (size_t)n; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[len++] = '\n';
	ssize_t w = write(2, buf, len);
	(void)w;
}
