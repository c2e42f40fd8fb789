/* fmt.c - bounded formatting that reports truncation (see fmt.h). */
#include "fmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int fmt_into(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}
