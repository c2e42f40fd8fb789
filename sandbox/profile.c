/* profile.c - build (on a miss) and activate Nix profiles. The cache is
 * state_dir/profiles/<name>.cache holding "key store-path"; the GC root is
 * the out-link state_dir/profiles/<name>/result-<key>, so the build a cache
 * entry names stays alive until a newer one replaces it. */
#include "profile.h"
#include "lockfile.h"
#include "fmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"
#include "workspace.h"

static void fnv(uint64_t *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		*h ^= p[i];
		*h *= 0x100000001b3ULL;
	}
}

static int key_walk(const char *dir, int depth, uint64_t *h, int *files)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	/* readdir order is not stable: combine entries order-independently */
	uint64_t acc = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "result"))
			continue;
		char path[PATH_MAX];
		fmt_into(path, sizeof path, "%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue;
		uint64_t e = 0xcbf29ce484222325ULL;
		fnv(&e, de->d_name, strlen(de->d_name));
		fnv(&e, &st.st_mode, sizeof st.st_mode);
		fnv(&e, &st.st_size, sizeof st.st_size);
		fnv(&e, &st.st_ino, sizeof st.st_ino);
		fnv(&e, &st.st_mtim, sizeof st.st_mtim);
		if (S_ISDIR(st.st_mode) && depth < 4) {
			uint64_t sub = 0xcbf29ce484222325ULL;
			if ((rc = key_walk(path, depth + 1, &sub, files)) < 0)
				break;
			fnv(&e, &sub, sizeof sub);
		}
		if (++*files > 1024) {
			rc = -E2BIG;
			break;
		}
		acc += e * 0x9e3779b97f4a7c15ULL + (e >> 29);
	}
	closedir(d);
	fnv(h, &acc, sizeof acc);
	return rc;
}

int profile_key(const char *dir, uint64_t *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	int files = 0;
	int rc = key_walk(dir, 0, &h, &files);
	*key = h;
	return rc;
}

static bool env_name_ok(const char *n)
{
	static const char *const reserved[] = {
	    "PATH",    "HOME", "USER", "LOGNAME", "SHELL", "LD_PRELOAD", "LD_LIBRARY_PATH",
	    "LD_AUDIT"};
	if (!n[0] || strlen(n) >= 64 || (n[0] >= '0' && n[0] <= '9'))
		return false;
	for (const char *c = n; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (!strcmp(n, reserved[i]))
			return false;
	return strncmp(n, "SSH_", 4) != 0;
}

static bool clean_abs(const char *p)
{
	return p[0] == '/' && !strstr(p, "/../") && !strstr(p, "/./") && !strstr(p, "//") &&
	       strcmp(p + strlen(p) - (strlen(p) >= 3 ? 3 : 0), "/..") != 0;
}

/* where a mapping may not land: the system, the kernel views, the store,
 * the workspace and warren's own files */
static bool dst_ok(const char *d)
{
	static const char *const no[] = {"/usr", "/etc",  "/proc", "/dev",
	                                 "/sys", "/nix",  "/home", "/run/warren",
	                                 "/bin", "/sbin", "/lib",  "/lib64"};
	if (!clean_abs(d) || strlen(d) >= 256 || !strcmp(d, "/"))
		return false;
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		size_t n = strlen(no[i]);
		if (!strncmp(d, no[i], n) && (d[n] == '\0' || d[n] == '/'))
			return false;
	}
	return true;
}

struct ini_ctx {
	struct profile *p;
	char *err;
	size_t errlen;
	bool failed;
};

static int ini_fail(struct ini_ctx *c, const char *what, const char *name)
{
	if (!c->failed)
		snprintf(c->err, c->errlen, "%s '%s'", what, name);
	c->failed = true;
	return 0;
}

static int profile_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	struct profile *p = c->p;
	if (!strcmp(section, "env")) {
		if (!env_name_ok(name) || strlen(value) >= sizeof p->env_value[0])
			return ini_fail(c, "env: refused variable", name);
		if (p->nenv == PROFILE_MAX_ENV)
			return ini_fail(c, "env: too many variables at", name);
		snprintf(p->env_name[p->nenv], sizeof p->env_name[0], "%s", name);
		snprintf(p->env_value[p->nenv++], sizeof p->env_value[0], "%s", value);
		return 1;
	}
	if (!strcmp(section, "paths")) {
		if (!dst_ok(name))
			return ini_fail(c, "paths: refused destination", name);
		if (strncmp(value, "/nix/store/", 11) != 0 || !clean_abs(value) ||
		    strlen(value) >= sizeof p->maps[0].src)
			return ini_fail(c, "paths: source must be a /nix/store path, not", value);
		if (p->nmaps == PROFILE_MAX_MAPS)
			return ini_fail(c, "paths: too many mappings at", name);
		snprintf(p->maps[p->nmaps].dst, sizeof p->maps[0].dst, "%s", name);
		snprintf(p->maps[p->nmaps++].src, sizeof p->maps[0].src, "%s", value);
		return 1;
	}
	return ini_fail(c, "unknown section", section);
}

int profile_read_ini(const char *path, struct profile *p, char *err, size_t errlen)
{
	p->nenv = p->nmaps = 0;
	struct ini_ctx c = {.p = p, .err = err, .errlen = errlen};
	int rc = ini_parse(path, profile_ini_line, &c);
	if (rc == -1)
		return errno == ENOENT ? 0 : -1; /* no profile.ini: PATH only */
	if (c.failed || rc != 0) {
		if (!c.failed)
			snprintf(err, errlen, "%s:%d: syntax error", path, rc);
		return -1;
	}
	return 0;
}

static int read_cache(const char *path, uint64_t key, char *store, size_t len)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	unsigned long long k;
	char buf[PATH_MAX];
	int ok = fscanf(f, "%llx %4095s", &k, buf) == 2 && k == key;
	fclose(f);
	if (!ok || strncmp(buf, "/nix/store/", 11) != 0)
		return -1;
	struct stat st;
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
		return -1; /* collected or deleted: rebuild */
	fmt_into(store, len, "%s", buf);
	return 0;
}

/* Removes GC roots of older builds of this profile. */
static void drop_old_roots(const char *rootdir, const char *keep)
{
	DIR *d = opendir(rootdir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (!strncmp(de->d_name, "result-", 7) && strcmp(de->d_name, keep) != 0) {
			char p[PATH_MAX];
			fmt_into(p, sizeof p, "%s/%s", rootdir, de->d_name);
			unlink(p);
		}
	closedir(d);
}

/* nix VERB [--option substituters ''] ARGS... with a fixed environment;
 * returns spawn_capture's status, nix's output tail in detail. */
static int run_nix(const struct profile_builder *b, const char *verb, char *const *args,
                   char *detail, size_t detaillen)
{
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)b->nix;
	argv[n++] = (char *)"--extra-experimental-features";
	argv[n++] = (char *)"nix-command flakes";
	argv[n++] = (char *)verb;
	argv[n++] = (char *)"--no-write-lock-file";
	if (b->offline) {
		argv[n++] = (char *)"--option";
		argv[n++] = (char *)"substituters";
		argv[n++] = (char *)"";
	}
	for (int i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"HOME=/root", (char *)"LC_ALL=C",
	                NULL};
	return spawn_capture(argv, envp, detail, detaillen);
}

int profile_evaluate(const struct profile_builder *b, const char *name, char *detail,
                     size_t detaillen)
{
	char ref[PATH_MAX + 64];
	if (fmt_into(ref, sizeof ref, "path:%s/%s#packages.x86_64-linux.default.drvPath",
	             b->profiles_dir, name) < 0) {
		snprintf(detail, detaillen, "path too long");
		return -1;
	}
	char *const args[] = {(char *)"--raw", ref, NULL};
	return run_nix(b, "eval", args, detail, detaillen) == 0 ? 0 : -1;
}

static int build(const struct profile_builder *b, const char *name, const char *flakedir,
                 uint64_t key, const char *rootdir, char *store, size_t storelen, char *err,
                 size_t errlen, char *detail, size_t detaillen)
{
	char link[PATH_MAX], linkname[64], ref[PATH_MAX + 8];
	fmt_into(linkname, sizeof linkname, "result-%016llx", (unsigned long long)key);
	if (fmt_into(link, sizeof link, "%s/%s", rootdir, linkname) < 0 ||
	    fmt_into(ref, sizeof ref, "path:%s", flakedir) < 0) {
		snprintf(err, errlen, "profile '%s': path too long", name);
		return -1;
	}
	char *const args[] = {(char *)"--out-link", link, ref, NULL};
	int rc = run_nix(b, "build", args, detail, detaillen);
	char target[PATH_MAX];
	ssize_t tl = rc == 0 ? readlink(link, target, sizeof target - 1) : -1;
	if (tl <= 0) {
		snprintf(err, errlen, "profile '%s': nix build of %s failed (status %d)", name, ref,
		         rc);
		return -1;
	}
	target[tl] = '\0';
	fmt_into(store, storelen, "%s", target);
	drop_old_roots(rootdir, linkname);
	return 0;
}

/* A failed build is remembered (state_dir/profiles/NAME.failed: key, failures,
 * next try) so logins are refused at once instead of each re-running nix;
 * it is retried after a backoff that doubles up to an hour, or at once when
 * the flake's files change (another key). */
#define RETRY_FIRST 30
#define RETRY_MAX   3600

static long retry_after(const char *failp, uint64_t key, long now, int *failures)
{
	*failures = 0;
	FILE *f = fopen(failp, "re");
	if (f == NULL)
		return 0;
	unsigned long long k;
	long next;
	int n;
	int ok = fscanf(f, "%llx %d %ld", &k, &n, &next) == 3;
	fclose(f);
	if (!ok || k != key || n < 1)
		return 0; /* another flake: try it */
	*failures = n;
	return next > now ? next - now : 0;
}

static void remember_failure(const char *failp, uint64_t key, long now, int failures)
{
	long wait = RETRY_FIRST;
	for (int i = 1; i < failures && wait < RETRY_MAX; i++)
		wait *= 2;
	if (wait > RETRY_MAX)
		wait = RETRY_MAX;
	char tmp[PATH_MAX + 8];
	if (fmt_into(tmp, sizeof tmp, "%s.tmp", failp) < 0)
		return;
	FILE *f = fopen(tmp, "we");
	if (f == NULL)
		return;
	int ok = fprintf(f, "%016llx %d %ld\n", (unsigned long long)key, failures, now + wait) > 0;
	if (fclose(f) == 0 && ok)
		rename(tmp, failp);
}

/* Under the profile's lock: the cache again (another login may have built
 * it), else a build unless a recent failure of the same flake says wait. */
static int build_or_wait(const struct profile_builder *b, const char *name, const char *flakedir,
                         uint64_t key, const char *dir, const char *rootdir, const char *cache,
                         struct profile *out, char *err, size_t errlen, char *detail,
                         size_t detaillen)
{
	if (read_cache(cache, key, out->store, sizeof out->store) == 0)
		return 0;
	char failp[PATH_MAX + 64];
	if (fmt_into(failp, sizeof failp, "%s/%s.failed", dir, name) < 0)
		return -1;
	long now = (long)time(NULL);
	int failures;
	long wait = retry_after(failp, key, now, &failures);
	if (wait > 0) {
		snprintf(err, errlen,
		         "profile '%s': its build failed %d time(s); next try in %ld s or when "
		         "the flake changes",
		         name, failures, wait);
		return -1;
	}
	if (build(b, name, flakedir, key, rootdir, out->store, sizeof out->store, err, errlen,
	          detail, detaillen) < 0) {
		remember_failure(failp, key, (long)time(NULL), failures + 1);
		return -1;
	}
	unlink(failp);
	char tmp[PATH_MAX + 80];
	if (fmt_into(tmp, sizeof tmp, "%s.tmp", cache) == 0) {
		FILE *f = fopen(tmp, "we");
		if (f) {
			int ok =
			    fprintf(f, "%016llx %s\n", (unsigned long long)key, out->store) > 0;
			if (fclose(f) == 0 && ok)
				rename(tmp, cache); /* atomic: a reader sees old or new */
		}
	}
	return 0;
}

int profile_activate(const struct profile_builder *b, const char *name, struct profile *out,
                     char *err, size_t errlen, char *detail, size_t detaillen)
{
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", name);
	if (detaillen)
		detail[0] = '\0';
	char flakedir[PATH_MAX], flake[PATH_MAX + 16];
	if (fmt_into(flakedir, sizeof flakedir, "%s/%s", b->profiles_dir, name) < 0 ||
	    fmt_into(flake, sizeof flake, "%s/flake.nix", flakedir) < 0) {
		snprintf(err, errlen, "profile '%s': path too long", name);
		return -1;
	}
	if (access(flake, R_OK) < 0) {
		snprintf(err, errlen, "profile '%s': %s: %s", name, flake, strerror(errno));
		return -1;
	}
	uint64_t key;
	if (profile_key(flakedir, &key) < 0) {
		snprintf(err, errlen, "profile '%s': cannot read %s", name, flakedir);
		return -1;
	}
	char dir[PATH_MAX], rootdir[PATH_MAX + 64], cache[PATH_MAX + 64], lockp[PATH_MAX + 64];
	fmt_into(dir, sizeof dir, "%s/profiles", b->state_dir);
	fmt_into(rootdir, sizeof rootdir, "%s/%s", dir, name);
	fmt_into(cache, sizeof cache, "%s/%s.cache", dir, name);
	out->cache_hit = read_cache(cache, key, out->store, sizeof out->store) == 0;
	if (!out->cache_hit) {
		if (state_mkdir(dir, 0755) < 0 || state_mkdir(rootdir, 0755) < 0) {
			snprintf(err, errlen, "profile '%s': cannot create %s", name, rootdir);
			return -1;
		}
		/* one build per profile at a time; the others wait and reuse it */
		fmt_into(lockp, sizeof lockp, "%s/%s.lock", dir, name);
		int lfd = lockfile_take(lockp);
		if (lfd < 0) {
			snprintf(err, errlen, "profile '%s': %s: %s", name, lockp, strerror(-lfd));
			return -1;
		}
		int rc = build_or_wait(b, name, flakedir, key, dir, rootdir, cache, out, err,
		                       errlen, detail, detaillen);
		close(lfd);
		if (rc < 0)
			return -1;
	}
	char ini[PATH_MAX + 32];
	fmt_into(ini, sizeof ini, "%s/share/warren/profile.ini", out->store);
	char e2[300] = "";
	if (profile_read_ini(ini, out, e2, sizeof e2) < 0) {
		snprintf(err, errlen, "profile '%s': %s: %s", name, ini, e2);
		return -1;
	}
	return 0;
}
