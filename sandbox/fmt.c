/* fmt.c - bounded formatting that reports truncation, and escaping of
 * untrusted strings (see fmt.h). */
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

size_t fmt_escape(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (len == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		char e[4];
		size_t k = 0;
		if (*p == '\\') {
			e[k++] = '\\';
			e[k++] = '\\';
		} else if (*p < 0x20 || *p >= 0x7f) {
			e[k++] = '\\';
			e[k++] = 'x';
			e[k++] = hex[*p >> 4];
			e[k++] = hex[*p & 15];
		} else {
			e[k++] = (char)*p;
		}
		if (o + k >= len)
			break;
		for (size_t i = 0; i < k; i++)
			dst[o++] = e[i];
	}
	dst[o] = '\0';
	return o;
}
