/* strv.c - growable string vectors; an allocation failure is sticky so callers
 * can add many entries and check once. */
#include "strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int strv_push(struct strv *s, char *owned)
{
	if (owned == NULL) {
		s->oom = 1;
		return -1;
	}
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof *v);
		if (v == NULL) {
			free(owned);
			s->oom = 1;
			return -1;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
	return 0;
}

int strv_add(struct strv *s, const char *str)
{
	return strv_push(s, strdup(str));
}

int strv_addf(struct strv *s, const char *fmt, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(&p, fmt, ap);
	va_end(ap);
	return strv_push(s, rc < 0 ? NULL : p);
}

int strv_addn(struct strv *s, int count, ...)
{
	va_list ap;
	int rc = 0;
	va_start(ap, count);
	for (int i = 0; i < count; i++)
		if (strv_add(s, va_arg(ap, const char *)) < 0)
			rc = -1;
	va_end(ap);
	return rc;
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}
