/* fmt.h - bounded formatting that says when it truncated: a path cut short
 * must never be opened, created or chowned. */
#ifndef WARREN_FMT_H
#define WARREN_FMT_H

#include <stddef.h>

/* snprintf into buf; 0, or -ENAMETOOLONG when the result did not fit
 * (buf then holds an empty string, never a truncated path). */
int fmt_into(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
