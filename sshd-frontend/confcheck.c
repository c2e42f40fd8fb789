/* confcheck.c - warrend -t: the server file, every tenant file, each profile
 * they name evaluated once, bwrap, and that tenants can reach state_dir;
 * each problem on stderr with its file (and line, from config.c). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sandbox/disk.h"
#include "../sandbox/fmt.h"
#include "../sandbox/profile.h"
#include "config.h"
#include "master.h"

/* Tenants (bwrap runs as them) must be able to reach their workspace. */
int check_traversable(const char *path, char *err, size_t len)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + strlen(buf); p > buf; p = strrchr(buf, '/')) {
		*p = '\0';
		const char *dir = buf[0] ? buf : "/";
		struct stat st;
		if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			snprintf(err, len, "%s is not searchable by tenants (mode %04o)", dir,
			         (unsigned)(st.st_mode & 07777));
			return -1;
		}
		if (!buf[0])
			break;
	}
	return 0;
}

struct check_ctx {
	const struct server_conf *srv;
	int bad;
	char checked[64][64]; /* profiles evaluated already */
	int nchecked;
};

/* Evaluates a profile once per -t run; reports where it is named. */
static void check_profile(struct check_ctx *cc, const char *where, const char *name)
{
	const struct server_conf *srv = cc->srv;
	if (srv->profiles_dir == NULL || !strcmp(name, "none"))
		return;
	for (int i = 0; i < cc->nchecked; i++)
		if (!strcmp(cc->checked[i], name))
			return;
	if (cc->nchecked < 64)
		snprintf(cc->checked[cc->nchecked++], sizeof cc->checked[0], "%s", name);
	char flake[PATH_MAX];
	if (fmt_into(flake, sizeof flake, "%s/%s/flake.nix", srv->profiles_dir, name) < 0 ||
	    access(flake, R_OK) < 0) {
		fprintf(stderr, "%s: profile '%s': %s: %s\n", where, name, flake, strerror(errno));
		cc->bad = 1;
		return;
	}
	struct profile_builder b = {.profiles_dir = srv->profiles_dir,
	                            .state_dir = srv->state_dir,
	                            .nix = srv->nix,
	                            .offline = srv->nix_offline};
	char detail[1500] = "";
	if (profile_evaluate(&b, name, detail, sizeof detail) < 0) {
		/* nix's last line says why (an input it cannot fetch, a syntax error) */
		char *last = detail;
		for (char *nl; (nl = strchr(last, '\n')) && nl[1];)
			last = nl + 1;
		fprintf(stderr, "%s: profile '%s' does not evaluate: %s%s", where, name, last,
		        last[0] && last[strlen(last) - 1] == '\n' ? "" : "\n");
		cc->bad = 1;
	}
}

static void check_tenant(const char *path, const char *name, void *ud)
{
	struct check_ctx *cc = ud;
	const struct server_conf *srv = cc->srv;
	if (!tenant_name_valid(name)) {
		fprintf(stderr, "%s: '%s' is not a valid tenant name\n", path, name);
		cc->bad = 1;
		return;
	}
	struct tenant_conf t;
	struct cfg_error e;
	if (config_load_tenant_file(path, name, &srv->sandbox, &t, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		cc->bad = 1;
		return;
	}
	if (config_check_tenant(srv, &t, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		cc->bad = 1;
	}
	if (!srv->use_pam && t.has_auth && (auth_policy_all(&t.auth) & (AM_PASSWORD | AM_KBDINT))) {
		fprintf(stderr,
		        "%s: auth names password or keyboard-interactive, which need "
		        "use_pam = yes in %s\n",
		        path, srv->path);
		cc->bad = 1;
	}
	check_profile(cc, path, t.sandbox.profile);
	const char *why;
	if (t.sandbox.disk_max && !disk_supported(&why)) {
		fprintf(stderr, "%s: disk_max is set, but %s: tenant %s cannot log in\n", path, why,
		        name);
		cc->bad = 1;
	}
	if (t.nkeys == 0 && t.authorized_keys == NULL)
		fprintf(stderr, "%s: warning: no keys; tenant %s cannot log in\n", path, name);
	config_free_tenant(&t);
}

static int check_tenants(const struct server_conf *srv)
{
	struct check_ctx cc = {.srv = srv};
	check_profile(&cc, srv->path, srv->sandbox.profile);
	int rc = config_for_each_tenant(srv, check_tenant, &cc);
	if (rc < 0) {
		fprintf(stderr, "%s: tenants_dir %s: %s\n", srv->path, srv->tenants_dir,
		        strerror(-rc));
		return 1;
	}
	return cc.bad;
}

int confcheck_run(const struct server_conf *srv, const char *cfgpath)
{
	int bad = check_tenants(srv);
	if (access(srv->bwrap, X_OK) < 0) {
		fprintf(stderr, "%s: bwrap %s: %s\n", srv->path, srv->bwrap, strerror(errno));
		bad = 1;
	}
	char err[512] = "";
	struct stat st;
	if (stat(srv->state_dir, &st) == 0 &&
	    check_traversable(srv->state_dir, err, sizeof err) < 0) {
		fprintf(stderr, "%s: state_dir: %s\n", srv->path, err);
		bad = 1;
	}
	/* the template is copied as the tenant: it must be able to get there */
	if (srv->template_dir) {
		char inside[PATH_MAX + 8];
		snprintf(inside, sizeof inside, "%s/.", srv->template_dir);
		errno = 0;
		if (stat(srv->template_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "%s: template_dir %s: %s\n", srv->path, srv->template_dir,
			        errno ? strerror(errno) : "not a directory");
			bad = 1;
		} else if (check_traversable(inside, err, sizeof err) < 0) {
			fprintf(stderr, "%s: template_dir: %s (it is copied as the tenant)\n",
			        srv->path, err);
			bad = 1;
		}
	}
	if (!bad)
		printf("%s: OK\n", cfgpath);
	return bad;
}
