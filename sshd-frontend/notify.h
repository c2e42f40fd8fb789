/* notify.h - the status protocol: lines a connection process writes to the
 * master on its pipe (the master lists them in warrend --status), one
 * '\n'-terminated line each:
 *   "A<tenant>"  the monitor: authenticated (frees a max_startups slot);
 *                only the first counts, later ones come from the tenant
 *   "E<pid>"     the monitor: its tenant's environment started (the env
 *                monitor's pid, the master's child); only right after "A"
 *   "C<command>" the session process, through MON_NOTE: a command started
 *   "T"          the same: traffic (at most every 2 s)
 * notify.c writes and checks them; tests/fuzz/fuzz_notify.c drives it. */
#ifndef WARREN_NOTIFY_H
#define WARREN_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

enum note_kind {
	NOTE_NONE = 0, /* ignored */
	NOTE_AUTH = 'A',
	NOTE_ENV = 'E',
	NOTE_COMMAND = 'C',
	NOTE_TRAFFIC = 'T',
};

#define NOTE_MAX 220 /* a line, '\n' included */

/* "<kind><arg>\n" into buf (NOTE_MAX), arg cut and with no line breaks:
 * its length. */
size_t notify_line(char *buf, char kind, const char *arg);
/* The one checker: a line received (without its '\n'), given what came
 * before (authed: an "A" did; env_told: the "E" did). Its kind, with *arg
 * (into line), or NOTE_NONE when it is to be ignored. The caller checks
 * that an "E"'s pid is its own child (and takes no other "E" after it). */
enum note_kind notify_check(const char *line, bool authed, bool env_told, const char **arg);

#endif
