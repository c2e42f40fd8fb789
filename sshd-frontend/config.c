/* config.c - parse warrend.conf and tenants.d/<name>.conf with inih.
 * We feed inih through our own line reader so every handler call knows its
 * line number (Debian's inih is built without INI_HANDLER_LINENO). */
#include "config.h"
#include "../sandbox/fmt.h"

#include "../sandbox/hostport.h"
#include "../egress/httpframe.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parse_ctx {
	const char *path;
	FILE *fp;
	int line;
	bool failed;
	struct cfg_error *err;
	bool too_long;
	/* exactly one of these is set */
	struct server_conf *srv;
	struct tenant_conf *ten;
	bool rules_reset; /* a tenant's first allow/deny replaces the defaults */
	bool apis_reset;  /* a tenant's first api = replaces the defaults */
	/* which single-valued keys were seen, to refuse duplicates */
	char seen[96][48];
	int nseen;
};

static int fail(struct parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse_ctx *c, const char *fmt, ...)
{
	if (!c->failed) {
		char buf[400];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		snprintf(c->err->msg, sizeof c->err->msg, "%s:%d: %s", c->path, c->line, buf);
		c->failed = true;
	}
	return 0;
}

/* inih calls this for each line; we count lines and catch overlong ones,
 * which inih would otherwise split silently into two "lines". */
static char *counting_reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	char *r = fgets(str, num, c->fp);
	if (r == NULL)
		return NULL;
	c->line++;
	size_t n = strlen(str);
	if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(c->fp)) {
		if (!c->failed) {
			fail(c,
			     "line longer than %d characters (put long keys in an authorized_keys "
			     "file)",
			     num - 2);
		}
		int ch;
		while ((ch = fgetc(c->fp)) != EOF && ch != '\n')
			;
		str[0] = '\0'; /* an empty line for inih */
	}
	return r;
}

static bool once(struct parse_ctx *c, const char *section, const char *name)
{
	char key[48];
	snprintf(key, sizeof key, "%s.%s", section, name);
	for (int i = 0; i < c->nseen; i++)
		if (strcmp(c->seen[i], key) == 0) {
			fail(c, "'%s' given twice in [%s]", name, section);
			return false;
		}
	if (c->nseen < (int)(sizeof c->seen / sizeof c->seen[0]))
		snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", key);
	return true;
}

static int parse_int(struct parse_ctx *c, const char *name, const char *v, long min, long max,
                     int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end != '\0' || n < min || n > max)
		return fail(c, "%s: expected an integer in %ld..%ld, got '%s'", name, min, max, v);
	*out = (int)n;
	return 1;
}

static int set_str(struct parse_ctx *c, char **dst, const char *v, bool absolute)
{
	if (absolute && v[0] != '/')
		return fail(c, "expected an absolute path, got '%s'", v);
	free(*dst);
	*dst = v[0] ? strdup(v) : NULL;
	if (v[0] && *dst == NULL)
		return fail(c, "out of memory");
	return 1;
}

int parse_listen(const char *value, struct listen_addr *out)
{
	const char *port;
	size_t plen;
	if (hostport_split(value, strlen(value), out->host, sizeof out->host, &port, &plen) < 0 ||
	    port == NULL)
		return -1;
	int p = hostport_port(port, plen);
	if (p < 0 || p > 65535)
		return -1;
	snprintf(out->port, sizeof out->port, "%d", p & 0xffff);
	return 0;
}

int parse_uid_range(const char *value, uid_t *min, uid_t *max)
{
	char *end;
	errno = 0;
	unsigned long a = strtoul(value, &end, 10);
	if (errno || end == value || *end != '-' || value[0] == '-')
		return -1;
	const char *b_s = end + 1;
	unsigned long b = strtoul(b_s, &end, 10);
	if (errno || end == b_s || *end != '\0' || *b_s == '-')
		return -1;
	/* uid 0 is never a tenant; stay below the overflow uid and 2^31 */
	if (a < 1000 || b < a || b >= 0x7fffffffUL)
		return -1;
	*min = (uid_t)a;
	*max = (uid_t)b;
	return 0;
}

bool tenant_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CFG_NAME_MAX)
		return false;
	if (!(islower((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!(islower(ch) || isdigit(ch) || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* "512M", "2G", "65536", "0"/"none" (no limit) */
static int parse_size(struct parse_ctx *c, const char *name, const char *v, unsigned long long *out)
{
	if (strcmp(v, "none") == 0 || strcmp(v, "max") == 0) {
		*out = 0;
		return 1;
	}
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned long long mult = 1;
	if (*end == 'K' || *end == 'k')
		mult = 1ULL << 10;
	else if (*end == 'M' || *end == 'm')
		mult = 1ULL << 20;
	else if (*end == 'G' || *end == 'g')
		mult = 1ULL << 30;
	else if (*end == 'T' || *end == 't')
		mult = 1ULL << 40;
	if (mult > 1)
		end++;
	if (errno || end == v || *end != '\0' || v[0] == '-' || n > (~0ULL) / mult)
		return fail(c, "%s: expected a size like 512M or 2G (or none), got '%s'", name, v);
	*out = n * mult;
	return 1;
}

static int parse_bool(struct parse_ctx *c, const char *name, const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return fail(c, "%s: expected yes or no, got '%s'", name, v);
	return 1;
}

/* cores as a decimal: "1.5" -> 1500 thousandths */
static int parse_cores(struct parse_ctx *c, const char *name, const char *v, long *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	/* !(in range) also refuses nan, which every comparison lets through */
	if (errno || end == v || *end != '\0' || !(d >= 0 && d <= 4096))
		return fail(c, "%s: expected a number of cores like 1 or 0.5, got '%s'", name, v);
	*out = (long)(d * 1000 + 0.5);
	if (d > 0 && *out < 10)
		return fail(c, "%s: at least 0.01 cores", name);
	return 1;
}

/* whole-number keys: name, bounds, where the value goes */
struct num_key {
	const char *name;
	long min, max;
	size_t off;
};

static const struct num_key sandbox_nums[] = {
    {"pids_max", 0, 4194304, offsetof(struct sandbox_conf, pids_max)},
    {"max_sessions", 0, 100000, offsetof(struct sandbox_conf, max_sessions)},
    {"max_connections", 0, 100000, offsetof(struct sandbox_conf, max_connections)},
    {"proxy_max_connections", 0, 100000, offsetof(struct sandbox_conf, proxy_max_connections)},
    {"proxy_idle_timeout", 0, 0x7fffffff, offsetof(struct sandbox_conf, proxy_idle_timeout)},
    {"session_timeout", 0, 0x7fffffff, offsetof(struct sandbox_conf, session_timeout)},
    {"idle_timeout", 0, 0x7fffffff, offsetof(struct sandbox_conf, idle_timeout)},
    {"linger", 0, 7 * 86400, offsetof(struct sandbox_conf, linger)},
    {"record_max_files", 1, 1000000, offsetof(struct sandbox_conf, record_max_files)},
};

static const struct num_key server_nums[] = {
    {"login_grace_time", 1, 3600, offsetof(struct server_conf, login_grace_time)},
    {"max_auth_tries", 1, 100, offsetof(struct server_conf, max_auth_tries)},
    {"max_startups_per_source", 0, 100000, offsetof(struct server_conf, max_startups_per_source)},
    {"penalty_noauth", 0, 3600, offsetof(struct server_conf, penalty.noauth)},
    {"penalty_min", 0, 86400, offsetof(struct server_conf, penalty.min)},
    {"penalty_max", 1, 86400, offsetof(struct server_conf, penalty.max)},
    {"max_channels", 1, 1000, offsetof(struct server_conf, max_channels)},
    {"max_connections_per_source", 0, 100000,
     offsetof(struct server_conf, max_connections_per_source)},
    {"drain_timeout", 0, 86400, offsetof(struct server_conf, drain_timeout)},
    {"client_alive_interval", 0, 86400, offsetof(struct server_conf, client_alive_interval)},
    {"client_alive_count_max", 1, 1000, offsetof(struct server_conf, client_alive_count_max)},
};

/* 1 parsed, 0 error reported, -1 not a key of this table; sandbox values are
 * long, server values int */
static int num_key(struct parse_ctx *c, const struct num_key *keys, size_t n, void *base,
                   bool is_long, const char *name, const char *v)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(name, keys[i].name) != 0)
			continue;
		int val;
		if (!parse_int(c, name, v, keys[i].min, keys[i].max, &val))
			return 0;
		if (is_long)
			*(long *)((char *)base + keys[i].off) = val;
		else
			*(int *)((char *)base + keys[i].off) = val;
		return 1;
	}
	return -1;
}

/* `api = NAME` (repeatable) or `api = none`; a tenant's first replaces the
 * server's defaults. Names are checked once the [api] sections are known. */
static int sandbox_api(struct parse_ctx *c, struct sandbox_conf *sb, const char *v)
{
	if (c->ten && !c->apis_reset) {
		sb->napi_names = 0;
		sb->api_mask = 0;
		c->apis_reset = true;
	}
	if (!strcmp(v, "none")) {
		sb->napi_names = 0;
		return 1;
	}
	if (!tenant_name_valid(v))
		return fail(c, "api: '%s' is not a valid api name", v);
	if (sb->napi_names == SANDBOX_MAX_APIS)
		return fail(c, "too many api lines (max %d)", SANDBOX_MAX_APIS);
	snprintf(sb->api_names[sb->napi_names], sizeof sb->api_names[0], "%s", v);
	sb->api_lines[sb->napi_names++] = c->line;
	sb->api_file = c->srv ? c->srv->path : c->ten->path;
	return 1;
}

static int sandbox_key(struct parse_ctx *c, struct sandbox_conf *sb, const char *name,
                       const char *v)
{
	if (!strcmp(name, "allow") || !strcmp(name, "deny")) {
		if (c->ten && !c->rules_reset) {
			sb->egress.n = 0;
			c->rules_reset = true;
		}
		if (sb->egress.n == EGRESS_MAX_RULES)
			return fail(c, "too many allow/deny rules (max %d)", EGRESS_MAX_RULES);
		if (egress_parse(v, name[0] == 'd', &sb->egress.r[sb->egress.n]) < 0)
			return fail(
			    c,
			    "%s: expected HOST:PORT, *.DOMAIN:PORT or IP:PORT (port may be *), "
			    "got '%s'",
			    name, v);
		sb->egress.n++;
		return 1;
	}
	if (!strcmp(name, "api"))
		return sandbox_api(c, sb, v);
	if (!once(c, "sandbox", name))
		return 0;
	int rc = num_key(c, sandbox_nums, sizeof sandbox_nums / sizeof sandbox_nums[0], sb, true,
	                 name, v);
	if (rc >= 0)
		return rc;
	if (strcmp(name, "profile") == 0) {
		if (!tenant_name_valid(v))
			return fail(c, "profile: '%s' is not a valid profile name", v);
		snprintf(sb->profile, sizeof sb->profile, "%s", v);
	} else if (strcmp(name, "network") == 0) {
		if (strcmp(v, "none") == 0)
			sb->network = NET_NONE;
		else if (strcmp(v, "host") == 0)
			sb->network = NET_HOST;
		else if (strcmp(v, "allowlist") == 0)
			sb->network = NET_ALLOWLIST;
		else
			return fail(c, "network: expected none, allowlist or host, got '%s'", v);
	} else if (strcmp(name, "shell") == 0) {
		if (v[0] != '/' || strlen(v) >= sizeof sb->shell)
			return fail(c, "shell: expected an absolute path, got '%s'", v);
		snprintf(sb->shell, sizeof sb->shell, "%s", v);
	} else if (strcmp(name, "nested_sandbox") == 0) {
		return parse_bool(c, name, v, &sb->nested_sandbox);
	} else if (strcmp(name, "memory_max") == 0) {
		return parse_size(c, name, v, &sb->memory_max);
	} else if (strcmp(name, "tmp_size") == 0) {
		return parse_size(c, name, v, &sb->tmp_size);
	} else if (strcmp(name, "cpu_max") == 0) {
		return parse_cores(c, name, v, &sb->cpu_max_milli);
	} else if (strcmp(name, "record") == 0) {
		if (!strcmp(v, "none"))
			sb->record = 0;
		else if (!strcmp(v, "pty"))
			sb->record = 1;
		else if (!strcmp(v, "all"))
			sb->record = 2;
		else
			return fail(c, "record: expected none, pty or all, got '%s'", v);
	} else if (strcmp(name, "sandbox_scope") == 0) {
		if (strcmp(v, "tenant") && strcmp(v, "channel"))
			return fail(c, "sandbox_scope: expected tenant or channel, got '%s'", v);
		sb->scope_channel = v[0] == 'c';
	} else if (strcmp(name, "allow_tcp_forwarding") == 0) {
		static const char *const words[] = {"no", "local", "remote", "yes", "all"};
		static const int bits[] = {0, FWD_LOCAL, FWD_REMOTE, FWD_LOCAL | FWD_REMOTE,
		                           FWD_LOCAL | FWD_REMOTE};
		size_t i = 0;
		while (i < 5 && strcmp(v, words[i]))
			i++;
		if (i == 5)
			return fail(
			    c, "allow_tcp_forwarding: expected yes, no, local or remote, got '%s'",
			    v);
		sb->tcp_forwarding = bits[i];
	} else if (strcmp(name, "allow_agent_forwarding") == 0) {
		return parse_bool(c, name, v, &sb->agent_forwarding);
	} else if (strcmp(name, "record_input") == 0) {
		return parse_bool(c, name, v, &sb->record_input);
	} else if (strcmp(name, "record_max_bytes") == 0) {
		return parse_size(c, name, v, &sb->record_max_bytes);
	} else if (strcmp(name, "record_total_max") == 0) {
		return parse_size(c, name, v, &sb->record_total_max);
	} else if (strcmp(name, "disk_max") == 0) {
		if (!parse_size(c, name, v, &sb->disk_max))
			return 0;
		if (sb->disk_max && sb->disk_max < (16ULL << 20))
			return fail(c, "disk_max: at least 16M (or none), got '%s'", v);
		return 1;
	} else {
		return fail(c, "unknown key '%s' in [sandbox]", name);
	}
	return 1;
}

static int auth_key(struct parse_ctx *c, const char *v, struct auth_policy *out)
{
	const char *bad = NULL;
	if (auth_policy_parse(v, out, &bad) < 0)
		return fail(c, "auth: %s in '%s'", bad, v);
	return 1;
}

int config_api_index(const struct server_conf *srv, const char *name)
{
	for (int i = 0; i < srv->napis; i++)
		if (!strcmp(srv->apis[i].name, name))
			return i;
	return -1;
}

/* upstream = https://HOST[:PORT][/PREFIX] */
static int api_upstream(struct parse_ctx *c, struct api_conf *a, const char *v)
{
	if (strncmp(v, "https://", 8) != 0)
		return fail(c,
		            "upstream: must be an https:// URL (warren sends the key only over "
		            "TLS), got '%s'",
		            v);
	const char *hp = v + 8, *slash = strchr(hp, '/');
	size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
	const char *port;
	size_t plen;
	if (hl == 0 || hostport_split(hp, hl, a->host, sizeof a->host, &port, &plen) < 0 ||
	    a->host[0] == '\0')
		return fail(c, "upstream: expected https://HOST[:PORT][/PATH], got '%s'", v);
	int pn = port ? hostport_port(port, plen) : 443;
	if (pn <= 0 || pn > 65535)
		return fail(c, "upstream: bad port in '%s'", v);
	snprintf(a->port, sizeof a->port, "%d", pn);
	const char *pre = slash ? slash : "";
	size_t pl = strlen(pre);
	while (pl && pre[pl - 1] == '/')
		pl--;
	if (pl >= sizeof a->prefix || strpbrk(pre, "?# \t"))
		return fail(c, "upstream: path must be plain and under %zu characters, got '%s'",
		            sizeof a->prefix, v);
	snprintf(a->prefix, sizeof a->prefix, "%.*s", (int)pl, pre);
	return 1;
}

/* an environment variable name: [A-Za-z_][A-Za-z0-9_]* */
static bool env_name_ok(const char *v)
{
	if (!v[0] || isdigit((unsigned char)v[0]))
		return false;
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return false;
	return true;
}

/* a header field name (RFC 9110 token characters) */
static bool header_name_ok(const char *v)
{
	if (!v[0])
		return false;
	for (const char *p = v; *p; p++)
		if (!http_tchar(*p))
			return false;
	return true;
}

static int copy_checked(struct parse_ctx *c, const char *name, char *dst, size_t len, const char *v,
                        bool (*ok)(const char *), const char *what)
{
	if (strlen(v) >= len || (v[0] && !ok(v)))
		return fail(c, "%s: expected %s, got '%s'", name, what, v);
	snprintf(dst, len, "%s", v);
	return 1;
}

static bool printable(const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int api_key(struct parse_ctx *c, const char *api_name, const char *name, const char *v)
{
	struct server_conf *s = c->srv;
	if (!tenant_name_valid(api_name))
		return fail(c, "[api %s]: expected a name like [api anthropic]", api_name);
	int i = config_api_index(s, api_name);
	if (i < 0) {
		if (s->napis == SANDBOX_MAX_APIS)
			return fail(c, "too many [api] sections (max %d)", SANDBOX_MAX_APIS);
		i = s->napis++;
		struct api_conf *n = &s->apis[i];
		snprintf(n->name, sizeof n->name, "%s", api_name);
		n->line = c->line;
		snprintf(n->header, sizeof n->header, "x-api-key");
		snprintf(n->placeholder, sizeof n->placeholder,
		         "sk-ant-warren-placeholder-the-gateway-holds-the-key");
		n->reserve_tokens = 4096;
	}
	struct api_conf *a = &s->apis[i];
	char sec[48];
	snprintf(sec, sizeof sec, "api %s", api_name);
	if (!once(c, sec, name))
		return 0;
	if (!strcmp(name, "upstream"))
		return api_upstream(c, a, v);
	if (!strcmp(name, "key_file")) {
		a->key_line = c->line;
		return set_str(c, &a->key_file, v, true);
	}
	if (!strcmp(name, "ca_file"))
		return set_str(c, &a->ca_file, v, true);
	if (!strcmp(name, "header"))
		return copy_checked(c, name, a->header, sizeof a->header, v, header_name_ok,
		                    "a header name");
	if (!strcmp(name, "base_url_env"))
		return copy_checked(c, name, a->base_url_env, sizeof a->base_url_env, v,
		                    env_name_ok, "an environment variable name");
	if (!strcmp(name, "key_env"))
		return copy_checked(c, name, a->key_env, sizeof a->key_env, v, env_name_ok,
		                    "an environment variable name");
	if (!strcmp(name, "placeholder"))
		return copy_checked(c, name, a->placeholder, sizeof a->placeholder, v, printable,
		                    "printable text");
	if (!strcmp(name, "prefix")) {
		/* inih trims values: "Bearer " needs quotes; a bare word gets one space */
		size_t n = strlen(v);
		char buf[sizeof a->value_prefix];
		if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
			snprintf(buf, sizeof buf, "%.*s", (int)(n - 2), v + 1);
		else
			snprintf(buf, sizeof buf, "%s%s", v, n ? " " : "");
		if (n + 1 >= sizeof buf || !printable(buf))
			return fail(
			    c, "prefix: expected short printable text like \"Bearer \", got '%s'",
			    v);
		memcpy(a->value_prefix, buf, sizeof buf);
		return 1;
	}
	if (!strcmp(name, "budget_tokens")) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-')
			return fail(c,
			            "budget_tokens: expected a whole number of tokens (0 = no "
			            "budget), got '%s'",
			            v);
		a->budget_tokens = n;
		return 1;
	}
	if (!strcmp(name, "reserve_tokens") || !strcmp(name, "max_inflight")) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		bool tokens = name[0] == 'r';
		if (errno || end == v || *end || v[0] == '-' ||
		    (tokens && (n == 0 || n > 1ULL << 32)) || (!tokens && n > 100000))
			return fail(c, "%s: expected %s, got '%s'", name,
			            tokens ? "a whole number of tokens, 1 or more"
			                   : "a number of requests (0 = any)",
			            v);
		if (tokens)
			a->reserve_tokens = n;
		else
			a->max_inflight = (int)n;
		return 1;
	}
	return fail(c, "unknown key '%s' in [api %s]", name, api_name);
}

static int server_handler(void *user, const char *section, const char *name, const char *v)
{
	struct parse_ctx *c = user;
	struct server_conf *s = c->srv;
	if (strcmp(section, "sandbox") == 0)
		return sandbox_key(c, &s->sandbox, name, v);
	if (strncmp(section, "api ", 4) == 0)
		return api_key(c, section + 4, name, v);
	if (strcmp(section, "server") != 0)
		return fail(c, "unknown section [%s]", section);
	if (strcmp(name, "source_net_block") == 0) {
		if (admit_parse_net(v, &s->source_net) < 0)
			return fail(c,
			            "source_net_block: expected V4:V6 prefix lengths (1-32:1-128), "
			            "got '%s'",
			            v);
		return 1;
	}
	if (strcmp(name, "max_startups") == 0) {
		if (admit_parse_startups(v, &s->max_startups) < 0)
			return fail(c,
			            "max_startups: expected N or START:RATE:FULL (RATE 1-100, "
			            "FULL >= START), got '%s'",
			            v);
		return 1;
	}
	if (strcmp(name, "penalty_exempt") == 0) {
		if (s->npenalty_exempt ==
		    (int)(sizeof s->penalty_exempt / sizeof s->penalty_exempt[0]))
			return fail(c, "too many penalty_exempt sources (max 8)");
		char key[ADMIT_KEY_MAX];
		if (admit_key_of_text(v, &s->source_net, key, sizeof key) < 0 ||
		    snprintf(s->penalty_exempt[s->npenalty_exempt], ADMIT_KEY_MAX, "%s", v) >=
		        ADMIT_KEY_MAX)
			return fail(c, "penalty_exempt: expected an IPv4 or IPv6 address, got '%s'",
			            v);
		s->npenalty_exempt++;
		return 1;
	}
	if (strcmp(name, "listen") == 0) {
		if (s->nlisten == CFG_MAX_LISTEN)
			return fail(c, "too many listen addresses (max %d)", CFG_MAX_LISTEN);
		if (parse_listen(v, &s->listen[s->nlisten]) < 0)
			return fail(c, "listen: expected HOST:PORT or [V6]:PORT, got '%s'", v);
		s->nlisten++;
		return 1;
	}
	if (!once(c, "server", name))
		return 0;
	int rc =
	    num_key(c, server_nums, sizeof server_nums / sizeof server_nums[0], s, false, name, v);
	if (rc >= 0)
		return rc;
	if (strcmp(name, "host_key") == 0)
		return set_str(c, &s->host_key, v, true);
	if (strcmp(name, "state_dir") == 0)
		return set_str(c, &s->state_dir, v, true);
	if (strcmp(name, "tenants_dir") == 0)
		return set_str(c, &s->tenants_dir, v, true);
	if (strcmp(name, "template_dir") == 0)
		return set_str(c, &s->template_dir, v, true);
	if (strcmp(name, "bwrap") == 0)
		return set_str(c, &s->bwrap, v, true);
	if (strcmp(name, "profiles_dir") == 0)
		return set_str(c, &s->profiles_dir, v, true);
	if (strcmp(name, "nix") == 0)
		return set_str(c, &s->nix, v, true);
	if (strcmp(name, "nix_offline") == 0)
		return parse_bool(c, name, v, &s->nix_offline);
	if (strcmp(name, "use_pam") == 0)
		return parse_bool(c, name, v, &s->use_pam);
	if (strcmp(name, "allow_system_users") == 0)
		return parse_bool(c, name, v, &s->allow_system_users);
	if (strcmp(name, "pam_service") == 0) {
		if (!tenant_name_valid(v))
			return fail(c, "pam_service: '%s' is not a valid service name", v);
		return set_str(c, &s->pam_service, v, false);
	}
	if (strcmp(name, "auth") == 0)
		return auth_key(c, v, &s->auth);
	if (strcmp(name, "cgroup_root") == 0)
		return set_str(c, &s->cgroup_root, v, true);
	if (strcmp(name, "sftp_server") == 0)
		return set_str(c, &s->sftp_server, v, true);
	if (strcmp(name, "api_uid") == 0) {
		int uid;
		if (!parse_int(c, name, v, 1, 0x7ffffffe, &uid))
			return 0;
		s->api_uid = (uid_t)uid;
		return 1;
	}
	if (strcmp(name, "uid_range") == 0) {
		if (parse_uid_range(v, &s->uid_min, &s->uid_max) < 0)
			return fail(
			    c, "uid_range: expected MIN-MAX with 1000 <= MIN <= MAX, got '%s'", v);
		return 1;
	}
	if (strcmp(name, "preauth_uids") == 0) {
		if (parse_uid_range(v, &s->preauth_uid_min, &s->preauth_uid_max) < 0)
			return fail(
			    c, "preauth_uids: expected MIN-MAX with 1000 <= MIN <= MAX, got '%s'",
			    v);
		return 1;
	}
	if (strcmp(name, "audit_log") == 0) {
		if (strcmp(v, "stderr") != 0 && v[0] != '/')
			return fail(c, "audit_log: expected an absolute path or stderr, got '%s'",
			            v);
		return set_str(c, &s->audit_log, v, false);
	}
	if (strcmp(name, "log_level") == 0) {
		static const char *lv[] = {"error", "warn", "info", "debug"};
		for (int i = 0; i < 4; i++)
			if (strcmp(v, lv[i]) == 0) {
				s->log_level = i;
				return 1;
			}
		return fail(c, "log_level: expected error, warn, info or debug, got '%s'", v);
	}
	return fail(c, "unknown key '%s' in [server]", name);
}

static int tenant_handler(void *user, const char *section, const char *name, const char *v)
{
	struct parse_ctx *c = user;
	struct tenant_conf *t = c->ten;
	if (strcmp(section, "sandbox") == 0)
		return sandbox_key(c, &t->sandbox, name, v);
	if (strcmp(section, "tenant") != 0)
		return fail(c, "unknown section [%s]", section);
	if (strcmp(name, "key") == 0) {
		if (t->nkeys == CFG_MAX_KEYS)
			return fail(c, "too many keys (max %d)", CFG_MAX_KEYS);
		t->keys[t->nkeys] = strdup(v);
		if (t->keys[t->nkeys] == NULL)
			return fail(c, "out of memory");
		t->key_lines[t->nkeys++] = c->line;
		return 1;
	}
	if (!once(c, "tenant", name))
		return 0;
	if (strcmp(name, "uid") == 0) {
		int uid;
		if (!parse_int(c, name, v, 1, 0x7ffffffe, &uid))
			return 0;
		t->has_uid = true;
		t->uid = (uid_t)uid;
		return 1;
	}
	if (strcmp(name, "authorized_keys") == 0)
		return set_str(c, &t->authorized_keys, v, true);
	if (strcmp(name, "auth") == 0) {
		t->has_auth = true;
		return auth_key(c, v, &t->auth);
	}
	return fail(c, "unknown key '%s' in [tenant]", name);
}

static int run_parse(struct parse_ctx *c, ini_handler h, struct cfg_error *err)
{
	c->fp = fopen(c->path, "re");
	if (c->fp == NULL) {
		int e = errno;
		snprintf(err->msg, sizeof err->msg, "%s: %s", c->path, strerror(e));
		return e == ENOENT ? -ENOENT : -EINVAL;
	}
	int rc = ini_parse_stream(counting_reader, c, h, c);
	fclose(c->fp);
	c->fp = NULL;
	if (c->failed)
		return -EINVAL;
	if (rc != 0) {
		/* inih's own syntax error (no '=' or bad section header) */
		snprintf(err->msg, sizeof err->msg,
		         "%s:%d: syntax error (expected [section] or key = value)", c->path,
		         rc > 0 ? rc : c->line);
		return -EINVAL;
	}
	return 0;
}

int config_resolve_apis(const struct server_conf *srv, struct sandbox_conf *sb,
                        struct cfg_error *err)
{
	sb->api_mask = 0;
	for (int i = 0; i < sb->napi_names; i++) {
		int k = config_api_index(srv, sb->api_names[i]);
		if (k < 0) {
			snprintf(err->msg, sizeof err->msg,
			         "%s:%d: api: no [api %s] section in the server configuration",
			         sb->api_file ? sb->api_file : "?", sb->api_lines[i],
			         sb->api_names[i]);
			return -1;
		}
		sb->api_mask |= 1u << k;
	}
	return 0;
}

/* what the gateway will need: an upstream, and a key only root can read */
static int check_api(const struct server_conf *s, const struct api_conf *a, struct cfg_error *err)
{
	struct stat st;
	const char *why = NULL, *file = "";
	int line = a->key_line;
	if (!a->host[0]) {
		line = a->line;
		why = "upstream is required";
	} else if (!a->key_file) {
		line = a->line;
		why = "key_file is required";
	} else if (stat(a->key_file, &st) < 0) {
		why = strerror(errno);
		file = a->key_file;
	} else if (!S_ISREG(st.st_mode)) {
		why = "key_file is not a regular file";
	} else if (st.st_uid != 0 || (st.st_mode & 077)) {
		why = "key_file must be owned by root and readable by no one else (chmod 600)";
	} else if (st.st_size == 0) {
		why = "key_file is empty";
	} else if (a->ca_file && access(a->ca_file, R_OK) < 0) {
		why = strerror(errno);
		file = a->ca_file;
	}
	if (why == NULL)
		return 0;
	snprintf(err->msg, sizeof err->msg, "%s:%d: [api %s]: %s%s%s", s->path, line, a->name, file,
	         file[0] ? ": " : "", why);
	return -1;
}

static int check_apis(struct server_conf *s, struct cfg_error *err)
{
	for (int i = 0; i < s->napis; i++)
		if (check_api(s, &s->apis[i], err) < 0)
			return -1;
	if (s->api_uid == 0)
		s->api_uid = s->uid_min - 1;
	if (s->api_uid >= s->uid_min && s->api_uid <= s->uid_max) {
		snprintf(err->msg, sizeof err->msg,
		         "%s: [server] api_uid %u is inside uid_range %u-%u (tenants' uids)",
		         s->path, (unsigned)s->api_uid, (unsigned)s->uid_min, (unsigned)s->uid_max);
		return -1;
	}
	/* a pre-auth process's uid is nobody else's */
	if (!(s->preauth_uid_max < s->uid_min || s->preauth_uid_min > s->uid_max) ||
	    (s->api_uid >= s->preauth_uid_min && s->api_uid <= s->preauth_uid_max)) {
		snprintf(err->msg, sizeof err->msg,
		         "%s: [server] preauth_uids %u-%u overlaps uid_range %u-%u or api_uid %u",
		         s->path, (unsigned)s->preauth_uid_min, (unsigned)s->preauth_uid_max,
		         (unsigned)s->uid_min, (unsigned)s->uid_max, (unsigned)s->api_uid);
		return -1;
	}
	return config_resolve_apis(s, &s->sandbox, err);
}

static void sandbox_defaults(struct sandbox_conf *sb)
{
	memset(sb, 0, sizeof *sb);
	/* no toolchain unless the operator names one: a profile that cannot
	 * build (no binary cache) must not lock out every tenant */
	snprintf(sb->profile, sizeof sb->profile, "none");
	sb->network = NET_NONE;
	snprintf(sb->shell, sizeof sb->shell, "/bin/bash");
	sb->memory_max = 2ULL << 30;
	sb->pids_max = 512;
	sb->tmp_size = 256ULL << 20;
	sb->proxy_max_connections = 64;
	sb->max_connections = 32;
	sb->record_max_bytes = 64ULL << 20;
	sb->record_total_max = 1ULL << 30;
	sb->record_max_files = 10000;
	sb->proxy_idle_timeout = 300;
	sb->linger = 600;
	sb->tcp_forwarding = FWD_LOCAL | FWD_REMOTE;
	sb->agent_forwarding = true;
}

int config_load_server(const char *path, struct server_conf *s, struct cfg_error *err)
{
	memset(s, 0, sizeof *s);
	s->login_grace_time = 30;
	s->max_auth_tries = 6;
	s->max_startups = (struct startups){.start = 20, .rate = 30, .full = 100};
	s->source_net = ADMIT_NET_DEFAULT;
	s->max_startups_per_source = 10;
	s->max_connections_per_source = 100;
	s->penalty = (struct penalty_conf){.noauth = 1, .min = 15, .max = 600};
	s->max_channels = 10;
	s->drain_timeout = 30;
	s->client_alive_count_max = 3;
	s->uid_min = 200000;
	s->uid_max = 299999;
	/* as many as pids can be (PID_MAX_LIMIT), above systemd's container range */
	s->preauth_uid_min = 2130706432;
	s->preauth_uid_max = 2130706432 + 4194303;
	s->log_level = 2;
	sandbox_defaults(&s->sandbox);
	const char *unused;
	auth_policy_parse("publickey", &s->auth, &unused);
	s->path = strdup(path);
	if (s->path == NULL)
		return -ENOMEM;

	struct parse_ctx c = {.path = path, .err = err, .srv = s};
	int rc = run_parse(&c, server_handler, err);
	if (rc < 0) {
		config_free_server(s);
		return rc == -ENOENT ? -EINVAL : rc;
	}
	const char *missing = NULL;
	if (s->nlisten == 0)
		missing = "listen";
	else if (s->host_key == NULL)
		missing = "host_key";
	else if (s->state_dir == NULL)
		missing = "state_dir";
	else if (s->tenants_dir == NULL)
		missing = "tenants_dir";
	if (!missing && !s->use_pam && (auth_policy_all(&s->auth) & (AM_PASSWORD | AM_KBDINT))) {
		snprintf(err->msg, sizeof err->msg,
		         "%s: [server] auth names password or keyboard-interactive, which need "
		         "use_pam = yes",
		         path);
		config_free_server(s);
		return -EINVAL;
	}
	if (missing) {
		snprintf(err->msg, sizeof err->msg, "%s: [server] %s is required", path, missing);
		config_free_server(s);
		return -EINVAL;
	}
	if (check_apis(s, err) < 0) {
		config_free_server(s);
		return -EINVAL;
	}
	if ((s->bwrap == NULL && (s->bwrap = strdup("/usr/bin/bwrap")) == NULL) ||
	    (s->sftp_server == NULL &&
	     (s->sftp_server = strdup("/usr/lib/openssh/sftp-server")) == NULL) ||
	    (s->cgroup_root == NULL && (s->cgroup_root = strdup("/sys/fs/cgroup")) == NULL) ||
	    (s->pam_service == NULL && (s->pam_service = strdup("warren")) == NULL) ||
	    (s->nix == NULL && (s->nix = strdup("/usr/bin/nix")) == NULL)) {
		config_free_server(s);
		return -ENOMEM;
	}
	return 0;
}

void config_free_server(struct server_conf *s)
{
	if (s == NULL)
		return;
	free(s->path);
	free(s->host_key);
	free(s->state_dir);
	free(s->tenants_dir);
	free(s->template_dir);
	free(s->bwrap);
	free(s->sftp_server);
	free(s->cgroup_root);
	free(s->pam_service);
	free(s->profiles_dir);
	free(s->audit_log);
	free(s->nix);
	for (int i = 0; i < s->napis; i++) {
		free(s->apis[i].key_file);
		free(s->apis[i].ca_file);
	}
	memset(s, 0, sizeof *s);
}

_Static_assert(offsetof(struct tenant_conf, sandbox) + sizeof(struct sandbox_conf) ==
                   sizeof(struct tenant_conf),
               "sandbox is tenant_conf's last member");

void tenant_conf_copy(struct tenant_conf *dst, const struct tenant_conf *src)
{
	memmove(dst, src, offsetof(struct tenant_conf, sandbox));
	sandbox_conf_copy(&dst->sandbox, &src->sandbox);
}

void tenant_conf_start(struct tenant_conf *t, const char *name, const struct sandbox_conf *defaults)
{
	memset(t, 0, offsetof(struct tenant_conf, sandbox));
	snprintf(t->name, sizeof t->name, "%s", name);
	sandbox_conf_copy(&t->sandbox, defaults);
}

int config_load_tenant_file(const char *path, const char *name, const struct sandbox_conf *defaults,
                            struct tenant_conf *t, struct cfg_error *err)
{
	tenant_conf_start(t, name, defaults);
	t->path = strdup(path);
	if (t->path == NULL)
		return -ENOMEM;
	struct parse_ctx c = {.path = path, .err = err, .ten = t};
	int rc = run_parse(&c, tenant_handler, err);
	if (rc < 0)
		config_free_tenant(t);
	return rc;
}

int config_load_tenant(const struct server_conf *srv, const char *name, struct tenant_conf *out,
                       struct cfg_error *err)
{
	if (!tenant_name_valid(name)) {
		snprintf(err->msg, sizeof err->msg, "'%s' is not a valid tenant name", name);
		return -ENOENT;
	}
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s/%s.conf", srv->tenants_dir, name) >=
	    sizeof path)
		return -ENOENT;
	int rc = config_load_tenant_file(path, name, &srv->sandbox, out, err);
	if (rc == 0 && config_check_tenant(srv, out, err) < 0) {
		config_free_tenant(out);
		return -EINVAL;
	}
	return rc;
}

int config_check_tenant(const struct server_conf *srv, struct tenant_conf *t, struct cfg_error *err)
{
	if (config_resolve_apis(srv, &t->sandbox, err) < 0)
		return -1;
	if (t->has_uid && t->uid == srv->api_uid) {
		snprintf(err->msg, sizeof err->msg,
		         "%.400s: uid %u is the API gateway's (api_uid); choose another", t->path,
		         (unsigned)t->uid);
		return -1;
	}
	return 0;
}

int config_for_each_tenant(const struct server_conf *srv,
                           void (*fn)(const char *path, const char *name, void *ud), void *ud)
{
	DIR *d = opendir(srv->tenants_dir);
	if (d == NULL)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
			continue;
		char name[64], path[PATH_MAX];
		snprintf(name, sizeof name, "%.*s", (int)(l - 5), de->d_name);
		fmt_into(path, sizeof path, "%s/%s", srv->tenants_dir, de->d_name);
		fn(path, name, ud);
	}
	closedir(d);
	return 0;
}

void config_free_tenant(struct tenant_conf *t)
{
	if (t == NULL)
		return;
	free(t->path);
	free(t->authorized_keys);
	for (int i = 0; i < t->nkeys; i++)
		free(t->keys[i]);
	memset(t, 0, sizeof *t);
}
