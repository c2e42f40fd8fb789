/* log.c - stderr logging with a level; each line is written with one
 * write(2) so lines from many per-connection processes never interleave.
 * The message is escaped (fmt_escape): user names, commands and host names
 * from clients and tenants can never put a control sequence or a forged
 * line into the operator's log. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
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
