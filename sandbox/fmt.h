/* fmt.h - bounded formatting that says when it truncated (a path cut short
 * must never be opened, created or chowned), and escaping of strings a
 * tenant or client controls before they reach a log line or a terminal. */
#ifndef WARREN_FMT_H
#define WARREN_FMT_H

#include <stddef.h>

/* snprintf into buf; 0, or -ENAMETOOLONG when the result did not fit
 * (buf then holds an empty string, never a truncated path). */
int fmt_into(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies src into dst (always terminated) with every byte outside printable
 * ASCII written as \xNN and a backslash as \\, as OpenSSH's logging does
 * (strnvis): no escape sequence, newline or C1 control gets through. A
 * truncated result never ends inside an escape. Returns strlen(dst). */
size_t fmt_escape(char *dst, size_t len, const char *src);

#endif
