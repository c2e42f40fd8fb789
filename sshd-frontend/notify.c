/* notify.c - the status protocol's writer and its one checker (notify.h);
 * pure. */
#include "notify.h"

#include <string.h>

size_t notify_line(char *buf, char kind, const char *arg)
{
	size_t n = 0;
	buf[n++] = kind == '\n' || kind == '\r' || kind == '\0' ? '?' : kind;
	for (const char *p = arg ? arg : ""; *p && n < NOTE_MAX - 1; p++)
		buf[n++] = *p == '\n' || *p == '\r' ? ' ' : *p;
	buf[n++] = '\n';
	return n;
}

enum note_kind notify_check(const char *line, bool authed, bool env_told, const char **arg)
{
	*arg = line + (line[0] != '\0');
	switch (line[0]) {
	case NOTE_AUTH:
		return authed || line[1] == '\0' ? NOTE_NONE : NOTE_AUTH;
	case NOTE_ENV:
		return authed && !env_told ? NOTE_ENV : NOTE_NONE;
	case NOTE_COMMAND:
		return NOTE_COMMAND;
	case NOTE_TRAFFIC:
		return NOTE_TRAFFIC;
	default:
		return NOTE_NONE;
	}
}
