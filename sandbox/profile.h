/* profile.h - Nix profiles: an admin's flake per profile, built once into
 * the shared read-only /nix/store, cached by the flake's files (nix-direnv
 * style: a hit never runs nix), and activated per session as data for the
 * sandbox (PATH first entry, environment, path mappings). */
#ifndef WARREN_PROFILE_H
#define WARREN_PROFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROFILE_MAX_ENV  32
#define PROFILE_MAX_MAPS 16

struct profile_map {
	char src[PATH_MAX]; /* inside /nix/store */
	char dst[256];      /* absolute path inside the sandbox */
};

struct profile {
	char name[64];
	char store[PATH_MAX]; /* the built output, e.g. /nix/store/...-warren-profile-node */
	char env_name[PROFILE_MAX_ENV][64];
	char env_value[PROFILE_MAX_ENV][512];
	int nenv;
	struct profile_map maps[PROFILE_MAX_MAPS];
	int nmaps;
	bool cache_hit; /* false: this call ran a build */
};

struct profile_builder {
	const char *profiles_dir; /* admin's flakes: profiles_dir/<name>/flake.nix */
	const char *state_dir;    /* cache and GC roots: state_dir/profiles/ */
	const char *nix;          /* the nix binary */
	bool offline;             /* --option substituters '' */
};

/* Change detector over the profile directory's files (names, sizes,
 * mtimes, inodes): equal keys mean nothing to rebuild. */
int profile_key(const char *dir, uint64_t *key);

/* Resolves `name` to a built store path, building on a cache miss (as the
 * caller: root; profiles come only from the admin's profiles_dir), then
 * reads its share/warren/profile.ini. Returns 0, or -1 with err set (a
 * line for the log; the nix output tail goes to `detail`). */
int profile_activate(const struct profile_builder *b, const char *name, struct profile *out,
                     char *err, size_t errlen, char *detail, size_t detaillen);

/* Evaluates the profile's flake (fetching its inputs, building nothing):
 * 0 when it would build, else -1 with nix's output tail in detail. For
 * `warrend -t`. */
int profile_evaluate(const struct profile_builder *b, const char *name, char *detail,
                     size_t detaillen);

/* Parses share/warren/profile.ini of an output: [env] NAME = value and
 * [paths] /dest = /nix/store/...; rejects anything outside those rules. */
int profile_read_ini(const char *path, struct profile *p, char *err, size_t errlen);

#endif
