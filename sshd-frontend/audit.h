/* audit.h - the audit trail (functions are prefixed "waudit_": libaudit, which
 * libpam loads, owns the audit_* names): one JSON object per line (json-c), flushed per
 * event, to a file or stderr. Never passwords, keys or command output. */
#ifndef WARREN_AUDIT_H
#define WARREN_AUDIT_H

/* Opens the destination once in the master (O_APPEND); every process forked
 * later writes to the same fd, one write(2) per line. NULL: no audit log. */
int waudit_open(const char *dest);

/* event, then key/value string pairs, NULL-terminated. A key starting with
 * '#' carries a number (written as a JSON number, without the '#'). */
void waudit_event(const char *event, ...) __attribute__((sentinel));

#endif
