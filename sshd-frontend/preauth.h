/* preauth.h - a connection's unprivileged process: key exchange and
 * authentication as a uid of its own (preauth_uids) in a user namespace
 * that maps nothing, chrooted into an empty directory, no capabilities in
 * effect, under seccomp; every decision is its root monitor's (monauth.c).
 * Once the monitor has prepared the login and mapped the tenant's ids into
 * its namespace, it becomes the tenant and serves the session (session.c):
 * libssh's session state cannot move to another process. */
#ifndef WARREN_PREAUTH_H
#define WARREN_PREAUTH_H

#include "conn.h"

/* The empty root, made (or checked) by the master at start; a probe child
 * takes the jail's steps once, so a kernel without unprivileged user
 * namespaces is said at start, not at every login. 0, or -1 with err. */
int preauth_prepare(const struct server_conf *srv, char *err, size_t errlen);

/* The pre-auth process's life: jail, key exchange, authentication through
 * the monitor on sock, the login handed over, the session. peer names the
 * client in logs; ssh_connection is SSH_CONNECTION's value. */
_Noreturn void preauth_run(const struct conn_env *env, int fd, int sock, const char *peer,
                           const char *ssh_connection);

#endif
