/* strv.h - a growable, NULL-terminated vector of owned strings (argv, envp). */
#ifndef WARREN_STRV_H
#define WARREN_STRV_H

#include <stddef.h>

struct strv {
	char **v;
	size_t n, cap;
	int oom; /* sticky: set once an allocation failed */
};

int strv_add(struct strv *s, const char *str);
int strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strv_addn(struct strv *s, int count, ...); /* count strings */
void strv_free(struct strv *s);

#endif
