/* monauth.h - the root monitor's side of authentication: it answers its
 * unprivileged pre-auth process's requests (monproto.h: is this key
 * allowed, a password, keyboard-interactive rounds) with the tenant's
 * policy, PAM, max_auth_tries and the audit log, none of which the process
 * that speaks to the client holds. */
#ifndef WARREN_MONAUTH_H
#define WARREN_MONAUTH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "../pam/pam.h"
#include "authpolicy.h"
#include "config.h"
#include "log.h"
#include "monproto.h"

struct auth_ctx {
	const struct server_conf *srv;
	int sock;              /* to the pre-auth process */
	struct log_relay *log; /* its stderr, relayed to the log (log.h) */
	pid_t child;           /* the pre-auth process, later the session process */
	char peer[INET6_ADDRSTRLEN + 8];
	char peer_host[INET6_ADDRSTRLEN];
	char user[CFG_NAME_MAX + 1];
	bool user_set;
	bool have_tenant;
	struct tenant_conf tenant;
	int failures;
	struct auth_policy policy;
	unsigned done; /* methods passed so far (AM_*) */
	const char *method;
	struct wpam *pam;        /* account + session handle, kept by the monitor */
	struct wpam_kbdint *kbd; /* keyboard-interactive conversation in progress */
	struct timespec kbd_started;
	struct mon_state st; /* the pre-auth process's requests: phase, refusals */
};

/* Answers the pre-auth process until it asks for its login after a
 * success (returns), or goes away, or runs out of tries (exits). */
void monauth_serve(struct auth_ctx *a);

#endif
