/* authkeys.h - match a client's public key against a tenant's keys
 * (authorized_keys file and inline `key =` lines). */
#ifndef WARREN_AUTHKEYS_H
#define WARREN_AUTHKEYS_H

#include <libssh/libssh.h>
#include <stdbool.h>

#include "config.h"

/* Parses one authorized_keys line: "TYPE BASE64 [comment]". Lines with
 * options (from=, command=, restrict...) are refused rather than honoured
 * partially. Returns 1 parsed, 0 blank/comment, -1 error (why set). */
int authkeys_parse_line(const char *line, ssh_key *out, const char **why);

/* true when pub is one of t's keys; problems are logged with file:line. */
bool authkeys_match(const struct tenant_conf *t, const ssh_key pub);

#endif
