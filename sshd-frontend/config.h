/* config.h - warrend's server configuration and per-tenant files (INI, via inih).
 * Every error carries FILE:LINE so an operator can fix it without guessing. */
#ifndef WARREN_CONFIG_H
#define WARREN_CONFIG_H

#include <stdbool.h>
#include <sys/types.h>

#include "../sandbox/policy.h"
#include "admit.h"
#include "authpolicy.h"

#define CFG_MAX_LISTEN 16
#define CFG_MAX_KEYS   64
#define CFG_NAME_MAX   32

struct listen_addr {
	char host[64];
	char port[8];
};

/* [api NAME]: an upstream model API served to tenants through warren's
 * gateway, which holds the key (apigw.c) */
struct api_conf {
	char name[CFG_NAME_MAX + 1];
	int line, key_line; /* its first key's line, key_file's: for errors */
	char host[256];     /* from upstream = https://HOST[:PORT][/PREFIX] */
	char port[8];
	char prefix[256];      /* path prefix, "" or "/v1" (no trailing slash) */
	char *key_file;        /* root-only; read by the gateway before it drops root */
	char header[64];       /* the credential header warren sets */
	char value_prefix[32]; /* e.g. "Bearer " */
	char base_url_env[64];
	char key_env[64];
	char placeholder[128]; /* what key_env holds inside the sandbox */
	char *ca_file;         /* extra CA bundle for the upstream; NULL: system store only */
	unsigned long long budget_tokens;  /* per tenant per UTC day, input + output; 0 = none */
	unsigned long long reserve_tokens; /* reserved per request in flight (reserve.h) */
	int max_inflight;                  /* a tenant's requests in flight at once; 0 = any */
};

struct server_conf {
	char *path;
	struct listen_addr listen[CFG_MAX_LISTEN];
	int nlisten;
	char *host_key;
	char *state_dir;
	char *tenants_dir;
	char *template_dir; /* NULL when unset */
	char *bwrap;        /* path of the bwrap binary */
	char *sftp_server;  /* OpenSSH sftp-server, run inside the sandbox */
	char *cgroup_root;  /* where cgroupfs is mounted */
	char *profiles_dir; /* admin's flakes; NULL: profiles are not activated */
	char *nix;
	bool nix_offline;
	bool use_pam;
	char *pam_service;
	bool allow_system_users;
	struct auth_policy auth; /* default for tenants without `auth =` */
	uid_t uid_min, uid_max;
	/* pre-auth processes: one uid each (min + its pid), no tenant's */
	uid_t preauth_uid_min, preauth_uid_max;
	int login_grace_time; /* seconds */
	int max_auth_tries;
	struct startups max_startups;   /* unauthenticated connections, start:rate:full */
	int max_startups_per_source;    /* unauthenticated, per source; 0 = no limit */
	int max_channels;               /* per connection */
	int max_connections_per_source; /* all connections per source; 0 = no limit */
	struct penalty_conf penalty;    /* per source, for connections that never authenticate */
	char penalty_exempt[8][ADMIT_KEY_MAX]; /* addresses whose networks are never penalised */
	struct admit_net source_net;           /* source_net_block: what one source is */
	int npenalty_exempt;
	int drain_timeout;         /* seconds, on SIGTERM */
	int client_alive_interval; /* seconds; 0 = off */
	int client_alive_count_max;
	char *audit_log; /* file, "stderr", or NULL */
	int log_level;   /* 0 error .. 3 debug */
	uid_t api_uid;   /* the API gateway processes' uid: no tenant's, not in uid_range */
	struct api_conf apis[SANDBOX_MAX_APIS];
	int napis;
	struct sandbox_conf sandbox;
};

struct tenant_conf {
	char name[CFG_NAME_MAX + 1];
	char *path;
	bool has_uid;
	uid_t uid;
	char *authorized_keys;    /* file path, NULL when unset */
	char *keys[CFG_MAX_KEYS]; /* inline `key =` lines, as written */
	int key_lines[CFG_MAX_KEYS];
	int nkeys;
	bool has_auth;
	struct auth_policy auth;
	struct sandbox_conf sandbox;
};

/* Error text "FILE:LINE: what is wrong" (or "FILE: ..." when no line applies). */
struct cfg_error {
	char msg[512];
};

int config_load_server(const char *path, struct server_conf *out, struct cfg_error *err);
void config_free_server(struct server_conf *c);

/* Loads tenants_dir/<name>.conf on top of the server's [sandbox] defaults.
 * Returns 0, -ENOENT when no such tenant, or -EINVAL with err filled. */
int config_load_tenant(const struct server_conf *srv, const char *name, struct tenant_conf *out,
                       struct cfg_error *err);
int config_load_tenant_file(const char *path, const char *name, const struct sandbox_conf *defaults,
                            struct tenant_conf *out, struct cfg_error *err);
void config_free_tenant(struct tenant_conf *t);
/* *dst = *src but for src's unused egress rules (sandbox_conf_copy): a
 * connection's copies keep their untouched pages zero and shared. */
void tenant_conf_copy(struct tenant_conf *dst, const struct tenant_conf *src);
/* A tenant with no settings of its own yet: name and the server's [sandbox]
 * defaults, all else zero (*t's unused egress rules are left as they are). */
void tenant_conf_start(struct tenant_conf *t, const char *name,
                       const struct sandbox_conf *defaults);

/* Calls fn for every tenants_dir/<name>.conf (name as written, up to 63
 * characters, not yet validated). Returns 0, or -errno when the directory
 * cannot be read. */
int config_for_each_tenant(const struct server_conf *srv,
                           void (*fn)(const char *path, const char *name, void *ud), void *ud);

/* Resolves sb's `api =` names against the server's [api] sections into
 * sb->api_mask; -1 with "FILE:LINE: ..." when one is unknown. */
int config_resolve_apis(const struct server_conf *srv, struct sandbox_conf *sb,
                        struct cfg_error *err);
/* what a tenant file can only be checked against with the server's
 * configuration at hand (api names, api_uid); -1 with err */
int config_check_tenant(const struct server_conf *srv, struct tenant_conf *t,
                        struct cfg_error *err);
/* index of [api name], or -1 */
int config_api_index(const struct server_conf *srv, const char *name);

/* A tenant name is a login name and a file name: [a-z_][a-z0-9_-]{0,31}. */
bool tenant_name_valid(const char *name);

int parse_listen(const char *value, struct listen_addr *out);
int parse_uid_range(const char *value, uid_t *min, uid_t *max);

#endif
