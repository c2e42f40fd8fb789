/* accept.c - the master's step for one new connection: admission (per-source
 * penalties and caps first, then max_startups' random early drop; refusals
 * logged once per kind and window), then the fork of its connection process
 * (conn.c), which closes everything of the master's. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "../sandbox/fork.h"
#include "audit.h"
#include "conn.h"
#include "log.h"
#include "master.h"
#include "warm.h"

static struct penalties *penalties; /* per source; NULL when penalties are off */
static struct refusals refusals = {.window = 10};
static const struct server_conf *admit_conf; /* the config accept_one last used */

void accept_init(const struct server_conf *srv)
{
	unsigned seed;
	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	srandom(seed); /* max_startups' early drop must not be predictable */
	penalties = calloc(1, sizeof *penalties);
	if (penalties)
		penalty_init(penalties, &srv->penalty);
	else
		log_warn("no memory for per-source penalties: they are off");
}

void accept_reload(const struct server_conf *srv)
{
	if (penalties)
		penalties->conf = srv->penalty; /* sources keep what they accrued */
}

static bool exempt(const struct server_conf *srv, const char *key)
{
	char k[ADMIT_KEY_MAX];
	for (int i = 0; i < srv->npenalty_exempt; i++)
		if (admit_key_of_text(srv->penalty_exempt[i], &srv->source_net, k, sizeof k) == 0 &&
		    !strcmp(k, key))
			return true;
	return false;
}

/* a connection from key ended before it authenticated */
void accept_penalise(const char *key)
{
	if (penalties && admit_conf && !exempt(admit_conf, key))
		penalty_noauth(penalties, key, time(NULL));
}

static void refusal_report(enum admit_reason why, unsigned long count)
{
	char n[32];
	snprintf(n, sizeof n, "%lu", count);
	log_warn("refused %lu more connection(s) in the last %d s: %s", count, refusals.window,
	         admit_reason_name(why));
	waudit_event("limit_refused", "limit", admit_reason_name(why), "#count", n, NULL);
}

/* one refusal: logged and audited when it is the first of its kind in a
 * window, counted otherwise (a flood must not flood the logs) */
static void refuse_conn(int fd, enum admit_reason why, const char *host, const char *detail,
                        const char *line)
{
	if (refusal_note(&refusals, why, time(NULL))) {
		log_warn("refusing connection from %s: %s (%s); further refusals of this kind "
		         "are counted for %d s",
		         host, admit_reason_name(why), detail, refusals.window);
		waudit_event("limit_refused", "limit", admit_reason_name(why), "source", host,
		             NULL);
	}
	if (line) {
		ssize_t w = write(fd, line, strlen(line));
		(void)w;
	}
}

/* per source first (a flood from one source must not spend the slots
 * others need), then max_startups' random early drop */
static bool admitted(int fd, const struct server_conf *srv, const char *host, const char *key)
{
	char detail[96];
	long left = penalties ? penalty_left(penalties, key, time(NULL)) : 0;
	if (left > 0 && !exempt(srv, key)) {
		char line[128];
		snprintf(detail, sizeof detail, "%ld s left", left);
		snprintf(line, sizeof line,
		         "warren: too many unauthenticated connections from your "
		         "address; try again in %ld s\r\n",
		         left);
		refuse_conn(fd, R_PENALTY, host, detail, line);
		return false;
	}
	int same, same_unauth, unauth = children_unauth();
	children_from(key, &same, &same_unauth);
	if (srv->max_connections_per_source > 0 && same >= srv->max_connections_per_source) {
		snprintf(detail, sizeof detail, "%d", srv->max_connections_per_source);
		refuse_conn(fd, R_PER_SOURCE, host, detail,
		            "warren: too many connections from your address\r\n");
		return false;
	}
	if (srv->max_startups_per_source > 0 && same_unauth >= srv->max_startups_per_source) {
		snprintf(detail, sizeof detail, "%d unauthenticated", srv->max_startups_per_source);
		refuse_conn(fd, R_SOURCE_STARTUPS, host, detail, NULL);
		return false;
	}
	if (admit_early_drop(&srv->max_startups, unauth, (int)(random() % 100))) {
		snprintf(detail, sizeof detail, "%d unauthenticated, %d:%d:%d", unauth,
		         srv->max_startups.start, srv->max_startups.rate, srv->max_startups.full);
		refuse_conn(fd, R_STARTUPS, host, detail, NULL);
		return false;
	}
	return true;
}

void accept_one(int lfd, const struct conn_env *tmpl, const struct master_fds *mf)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	char host[INET6_ADDRSTRLEN] = "?", key[ADMIT_KEY_MAX];
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, NULL, 0, NI_NUMERICHOST);
	admit_source_key((struct sockaddr *)&ss, sl, &tmpl->srv->source_net, key, sizeof key);
	admit_conf = tmpl->srv;
	if (!admitted(fd, tmpl->srv, host, key)) {
		close(fd);
		return;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(fd);
		return;
	}
	warm_fill_holes();
	/* a killed master takes its connections (and their sandboxes) with it:
	 * a restart never finds orphans */
	pid_t pid = fork_child(FORK_RESET_SIGNALS | FORK_DIE_WITH_PARENT, NULL, 0);
	if (pid < 0) {
		log_err("fork: %s", strerror(errno));
		close(fd);
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		for (int i = 0; i < mf->nl; i++)
			close(mf->lfds[i]);
		close(mf->sfd);
		children_forget();
		if (mf->stfd >= 0)
			close(mf->stfd);
		signal(SIGPIPE, SIG_IGN);
		struct conn_env env = *tmpl;
		env.notify_fd = p[1];
		conn_handle(fd, &env);
	}
	close(fd);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (children_add(pid, p[0], host, key) < 0) {
		close(p[0]);
		kill(pid, SIGKILL);
	}
}

int accept_flush(void)
{
	refusal_flush(&refusals, time(NULL), refusal_report);
	return 1000 * refusals.window; /* wake to write the summaries even when idle */
}
