/* audit.h - the audit trail (functions are prefixed "waudit_": libaudit, which
 * libpam loads, owns the audit_* names): one JSON object per line (json-c), flushed per
 * event, to a file or stderr. Never passwords, keys or command output. */
#ifndef WARREN_AUDIT_H
#define WARREN_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

/* Opens the destination once in the master (O_APPEND); every process forked
 * later writes to the same fd, one write(2) per line. NULL: no audit log. */
int waudit_open(const char *dest);

/* event, then key/value string pairs, NULL-terminated. A key starting with
 * '#' carries a number (written as a JSON number, without the '#'). */
void waudit_event(const char *event, ...) __attribute__((sentinel));

/* In an unprivileged process: no audit fd; events go to the root monitor on
 * sock (MON_AUDIT), which checks them and writes them with its tenant. */
void waudit_forward(int sock);
/* The monitor's side: an event a session process sent, already checked. */
void waudit_eventv(pid_t pid, const char *event, const char *tenant, const char **kv, size_t nkv);

#endif
