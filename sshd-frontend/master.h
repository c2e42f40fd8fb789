/* master.h - the warrend master's parts, all root: main.c (command-line
 * modes), confcheck.c (warrend -t), master.c (set-up and the accept loop),
 * accept.c (admission and the fork of a connection), children.c (the table
 * of connection and environment processes and their status lines). */
#ifndef WARREN_MASTER_H
#define WARREN_MASTER_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct cg;
struct conn_env;

/* master.c: set up (state_dir, warren-init, filters, host key, listeners,
 * cgroups) and serve until drained; the exit code. */
int master_run(struct server_conf *srv);

/* confcheck.c: warrend -t; 0 when the configuration and every tenant file
 * (and their profiles) are usable, else 1 with each problem on stderr. */
int confcheck_run(const struct server_conf *srv, const char *cfgpath);
/* Tenants (bwrap runs as them) must be able to reach path: 0, or -1 with err. */
int check_traversable(const char *path, char *err, size_t len);

/* children.c: the master's children, connections and environments */
int children_add(pid_t pid, int notify_fd, const char *source, const char *key);
void children_reap(struct cg *cg);
size_t children_count(void);
void children_signal(int sig);
/* their status pipes, for poll: n entries at most; how many were written */
size_t children_pollfds(struct pollfd *p, size_t n);
/* a status pipe poll found readable */
void children_status_ready(int fd);
/* warrend --status and --kill (status.c serves them) */
size_t children_list(char *buf, size_t len);
int children_kill(long id);
/* connections from key, and how many of them have not authenticated */
void children_from(const char *key, int *same, int *same_unauth);
int children_unauth(void);
/* in a new connection process: none of the others' business */
void children_forget(void);

/* accept.c: admission (per-source penalties and caps, max_startups) and the
 * fork of a connection process */
struct master_fds {
	const int *lfds;
	int nl;
	int sfd;  /* the master's signalfd */
	int stfd; /* the status socket, -1: none */
};
void accept_init(const struct server_conf *srv);
void accept_reload(const struct server_conf *srv);
/* a connection from key ended before it authenticated */
void accept_penalise(const char *key);
/* writes the refusal summaries due; how long the loop may sleep (ms) */
int accept_flush(void);
void accept_one(int lfd, const struct conn_env *tmpl, const struct master_fds *mf);

#endif
