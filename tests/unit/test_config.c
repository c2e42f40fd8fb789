/* test_config.c - server and tenant INI parsing: defaults, overrides, and
 * FILE:LINE errors for everything an operator can get wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../sshd-frontend/config.h"
#include "testutil.h"

static const char *good = "; comment\n"
                          "[server]\n"
                          "listen = 127.0.0.1:2222\n"
                          "listen = [::1]:2223\n"
                          "host_key = /var/lib/warren/key\n"
                          "state_dir = /var/lib/warren\n"
                          "tenants_dir = /etc/warren/tenants.d\n"
                          "uid_range = 300000-300010\n"
                          "login_grace_time = 12\n"
                          "max_auth_tries = 3\n"
                          "max_startups = 7\n"
                          "[sandbox]\n"
                          "profile = node\n"
                          "network = none\n";

static void server_good(void **state)
{
	(void)state;
	struct server_conf s;
	struct cfg_error e = {{0}};
	const char *p = write_tmp(0, "good.conf", good);
	assert_int_equal(config_load_server(p, &s, &e), 0);
	assert_int_equal(s.nlisten, 2);
	assert_string_equal(s.listen[0].host, "127.0.0.1");
	assert_string_equal(s.listen[0].port, "2222");
	assert_string_equal(s.listen[1].host, "::1");
	assert_string_equal(s.listen[1].port, "2223");
	assert_string_equal(s.state_dir, "/var/lib/warren");
	assert_int_equal(s.uid_min, 300000);
	assert_int_equal(s.uid_max, 300010);
	assert_int_equal(s.login_grace_time, 12);
	assert_int_equal(s.max_auth_tries, 3);
	assert_int_equal(s.max_startups.start, 7);
	assert_int_equal(s.max_startups.full, 7);
	assert_int_equal(s.max_startups.rate, 100);
	assert_string_equal(s.sandbox.profile, "node");
	assert_string_equal(s.bwrap, "/usr/bin/bwrap");
	assert_null(s.template_dir);
	config_free_server(&s);
}

static void sandbox_keys(void **state)
{
	(void)state;
	struct server_conf s;
	struct cfg_error e = {{0}};
	const char *p = write_tmp(0, "keys.conf",
	                          "[server]\nlisten=127.0.0.1:22\nhost_key=/k\nstate_dir=/s\n"
	                          "tenants_dir=/t\nuse_pam = yes\nauth = publickey+password\n"
	                          "max_connections_per_source = 4\naudit_log = stderr\n"
	                          "[sandbox]\nmemory_max = 512M\ncpu_max = 1.5\npids_max = 64\n"
	                          "network = allowlist\nallow = api.anthropic.com:443\n"
	                          "deny = 10.0.0.1:*\nrecord = pty\nrecord_input = yes\n"
	                          "session_timeout = 3600\nmax_sessions = 4\n");
	assert_int_equal(config_load_server(p, &s, &e), 0);
	assert_true(s.use_pam);
	assert_int_equal(s.max_connections_per_source, 4);
	assert_int_equal(s.sandbox.memory_max, 512ULL << 20);
	assert_int_equal(s.sandbox.cpu_max_milli, 1500);
	assert_int_equal(s.sandbox.pids_max, 64);
	assert_int_equal(s.sandbox.network, NET_ALLOWLIST);
	assert_int_equal(s.sandbox.egress.n, 2);
	assert_true(s.sandbox.egress.r[1].deny);
	assert_int_equal(s.sandbox.record, 1);
	assert_true(s.sandbox.record_input);
	assert_int_equal(s.sandbox.session_timeout, 3600);
	assert_int_equal(s.sandbox.max_sessions, 4);
	/* a tenant's first allow replaces the server's list */
	struct tenant_conf t;
	const char *tp = write_tmp(1, "t.conf", "[tenant]\n[sandbox]\nallow = pypi.org:443\n");
	assert_int_equal(config_load_tenant_file(tp, "t", &s.sandbox, &t, &e), 0);
	assert_int_equal(t.sandbox.egress.n, 1);
	assert_string_equal(t.sandbox.egress.r[0].host, "pypi.org");
	config_free_tenant(&t);
	config_free_server(&s);
}

static void server_defaults(void **state)
{
	(void)state;
	struct server_conf s;
	struct cfg_error e = {{0}};
	const char *p =
	    write_tmp(0, "min.conf",
	              "[server]\nlisten=127.0.0.1:22\nhost_key=/k\nstate_dir=/s\ntenants_dir=/t\n");
	assert_int_equal(config_load_server(p, &s, &e), 0);
	assert_int_equal(s.login_grace_time, 30);
	assert_int_equal(s.max_auth_tries, 6);
	assert_int_equal(s.max_startups.start, 20); /* above two flooding sources cap */
	assert_int_equal(s.max_startups.rate, 30);
	assert_int_equal(s.max_startups.full, 100);
	assert_int_equal(s.max_startups_per_source, 10);
	assert_int_equal(s.max_connections_per_source, 100);
	assert_int_equal(s.penalty.noauth, 1);
	assert_int_equal(s.penalty.min, 15);
	assert_int_equal(s.uid_min, 200000);
	assert_int_equal(s.sandbox.network, NET_NONE);
	assert_string_equal(s.sandbox.profile, "none");
	config_free_server(&s);
}

/* Each bad file must fail with the exact FILE:LINE prefix and a hint. */
struct bad_case {
	const char *text;
	int line;
	const char *needle;
};

static void server_bad(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
	    {"[server]\nlisten = 127.0.0.1:2222\nbogus = 1\n", 3, "unknown key 'bogus'"},
	    {"[server]\n\n[nonsense]\nx = 1\n", 4, "unknown section [nonsense]"},
	    {"[server]\nlisten = 127.0.0.1\n", 2, "listen: expected HOST:PORT"},
	    {"[server]\nlisten = 127.0.0.1:99999\n", 2, "listen"},
	    {"[server]\nuid_range = 5-4\n", 2, "uid_range"},
	    {"[server]\nuid_range = 0-100\n", 2, "uid_range"},
	    {"[server]\nlogin_grace_time = soon\n", 2, "login_grace_time: expected an integer"},
	    {"[server]\nmax_startups = 0\n", 2, "max_startups"},
	    {"[server]\nmax_startups = 10:30\n", 2, "START:RATE:FULL"},
	    {"[server]\nmax_startups = 10:0:100\n", 2, "START:RATE:FULL"},
	    {"[server]\nmax_startups = 20:30:10\n", 2, "FULL >= START"},
	    {"[server]\npenalty_exempt = 10.0.0.0/8\n", 2, "penalty_exempt: expected an IPv4"},
	    {"[server]\nstate_dir = relative/path\n", 2, "absolute path"},
	    {"[server]\nstate_dir = /a\nstate_dir = /b\n", 3, "given twice"},
	    {"[server]\nthis line has no equals sign\n", 2, "syntax error"},
	    {"[sandbox]\nnetwork = sometimes\n", 2, "network: expected none, allowlist or host"},
	    {"[sandbox]\nprofile = ../../etc\n", 2, "not a valid profile name"},
	    {"[server]\nlog_level = chatty\n", 2, "log_level"},
	    {"[server]\naudit_log = audit.jsonl\n", 2, "audit_log: expected an absolute path"},
	    {"[server]\nuse_pam = maybe\n", 2, "use_pam: expected yes or no"},
	    {"[server]\nauth = publickey+hostbased\n", 2, "auth: unknown method"},
	    {"[server]\nmax_channels = 0\n", 2, "max_channels"},
	    {"[sandbox]\nrecord = sometimes\n", 2, "record: expected none, pty or all"},
	    {"[sandbox]\nallow = example.com\n", 2, "allow: expected HOST:PORT"},
	    {"[sandbox]\ndeny = *:443\n", 2, "deny: expected HOST:PORT"},
	    {"[sandbox]\nmemory_max = 12Q\n", 2, "memory_max: expected a size"},
	    {"[sandbox]\ncpu_max = lots\n", 2, "cpu_max: expected a number of cores"},
	    {"[sandbox]\ncpu_max = nan\n", 2, "cpu_max: expected a number of cores"},
	    {"[sandbox]\ncpu_max = inf\n", 2, "cpu_max: expected a number of cores"},
	    {"[sandbox]\nmax_sessions = -1\n", 2, "max_sessions"},
	    {"[sandbox]\nnested_sandbox = perhaps\n", 2, "nested_sandbox: expected yes or no"},
	    {"[sandbox]\nsandbox_scope = host\n", 2, "sandbox_scope: expected tenant or channel"},
	    {"[sandbox]\nlinger = -5\n", 2, "linger"},
	    {"[sandbox]\nlinger = 9999999\n", 2, "linger"},
	    {"[sandbox]\nallow_tcp_forwarding = sometimes\n", 2,
	     "allow_tcp_forwarding: expected yes, no, local or remote"},
	    {"[sandbox]\nallow_agent_forwarding = 2\n", 2, "allow_agent_forwarding: expected yes"},
	    {"[server]\nlisten=127.0.0.1:22\nhost_key=/k\nstate_dir=/s\ntenants_dir=/t\n"
	     "auth = password\n",
	     0, "need use_pam = yes"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct server_conf s;
		struct cfg_error e = {{0}};
		const char *p = write_tmp(0, "bad.conf", cases[i].text);
		assert_int_equal(config_load_server(p, &s, &e), -22);
		char prefix[256];
		/* line 0: a whole-file problem, reported as "FILE: ..." */
		if (cases[i].line)
			snprintf(prefix, sizeof prefix, "%s:%d: ", p, cases[i].line);
		else
			snprintf(prefix, sizeof prefix, "%s: ", p);
		if (strncmp(e.msg, prefix, strlen(prefix)) != 0 || !strstr(e.msg, cases[i].needle))
			fail_msg("case %zu: got '%s', want prefix '%s' and '%s'", i, e.msg, prefix,
			         cases[i].needle);
	}
}

static void server_missing_required(void **state)
{
	(void)state;
	struct server_conf s;
	struct cfg_error e = {{0}};
	const char *p =
	    write_tmp(0, "noport.conf", "[server]\nhost_key=/k\nstate_dir=/s\ntenants_dir=/t\n");
	assert_int_equal(config_load_server(p, &s, &e), -22);
	assert_non_null(strstr(e.msg, "listen is required"));
	assert_int_equal(config_load_server("/nonexistent/warren.conf", &s, &e), -22);
	assert_non_null(strstr(e.msg, "/nonexistent/warren.conf: No such file"));
}

static void overlong_line(void **state)
{
	(void)state;
	char text[1200];
	snprintf(text, sizeof text, "[tenant]\nkey = ssh-rsa %0900d\nuid = 5\n", 0);
	struct tenant_conf t;
	struct cfg_error e = {{0}};
	struct sandbox_conf d = {.profile = "default", .shell = "/bin/sh"};
	const char *p = write_tmp(1, "long.conf", text);
	assert_int_equal(config_load_tenant_file(p, "long", &d, &t, &e), -22);
	assert_non_null(strstr(e.msg, ":2: line longer than"));
}

static void tenant_good_and_override(void **state)
{
	(void)state;
	struct tenant_conf t;
	struct cfg_error e = {{0}};
	struct sandbox_conf d = {.profile = "default", .network = NET_NONE, .shell = "/bin/bash"};
	const char *p =
	    write_tmp(1, "alice.conf",
	              "[tenant]\nuid = 20001\nauthorized_keys = /etc/warren/keys/alice.pub\n"
	              "key = ssh-ed25519 AAAA one\nkey = ssh-ed25519 BBBB two\n"
	              "[sandbox]\nprofile = python\nnetwork = host\n");
	assert_int_equal(config_load_tenant_file(p, "alice", &d, &t, &e), 0);
	assert_true(t.has_uid);
	assert_int_equal(t.uid, 20001);
	assert_string_equal(t.authorized_keys, "/etc/warren/keys/alice.pub");
	assert_int_equal(t.nkeys, 2);
	assert_int_equal(t.key_lines[1], 5);
	assert_string_equal(t.sandbox.profile, "python");
	assert_int_equal(t.sandbox.network, NET_HOST);
	assert_string_equal(t.sandbox.shell, "/bin/bash"); /* inherited */
	config_free_tenant(&t);
}

/* the tenant environment's keys: defaults, and each value a tenant may set */
static void environment_keys(void **state)
{
	(void)state;
	struct server_conf s;
	struct cfg_error e = {{0}};
	const char *p = write_tmp(0, "env.conf",
	                          "[server]\nlisten = 127.0.0.1:2222\nhost_key = /k\n"
	                          "state_dir = /s\ntenants_dir = /t\n");
	assert_int_equal(config_load_server(p, &s, &e), 0);
	assert_false(s.sandbox.scope_channel);
	assert_int_equal(s.sandbox.linger, 600);
	assert_int_equal(s.sandbox.tcp_forwarding, FWD_LOCAL | FWD_REMOTE);
	assert_true(s.sandbox.agent_forwarding);
	static const struct {
		const char *lines;
		bool channel;
		long linger;
		int fwd;
		bool agent;
	} cases[] = {
	    {"sandbox_scope = channel\nlinger = 0\n", true, 0, 3, true},
	    {"allow_tcp_forwarding = local\nallow_agent_forwarding = no\n", false, 600, 1, false},
	    {"allow_tcp_forwarding = remote\nlinger = 30\n", false, 30, 2, true},
	    {"allow_tcp_forwarding = no\nsandbox_scope = tenant\n", false, 600, 0, true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "[tenant]\nuid = 20001\n[sandbox]\n%s", cases[i].lines);
		struct tenant_conf t;
		assert_int_equal(
		    config_load_tenant_file(write_tmp(1, "t.conf", text), "t", &s.sandbox, &t, &e),
		    0);
		assert_int_equal(t.sandbox.scope_channel, cases[i].channel);
		assert_int_equal(t.sandbox.linger, cases[i].linger);
		assert_int_equal(t.sandbox.tcp_forwarding, cases[i].fwd);
		assert_int_equal(t.sandbox.agent_forwarding, cases[i].agent);
		config_free_tenant(&t);
	}
	config_free_server(&s);
}

static void tenant_bad(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
	    {"[tenant]\nuid = 0\n", 2, "uid: expected an integer in 1.."},
	    {"[tenant]\nuid = -5\n", 2, "uid"},
	    {"[tenant]\nshell = /bin/sh\n", 2, "unknown key 'shell' in [tenant]"},
	    {"[tenant]\n[server]\nlisten = 1.2.3.4:5\n", 3, "unknown section [server]"},
	    {"[tenant]\nauthorized_keys = keys.pub\n", 2, "absolute path"},
	};
	struct sandbox_conf d = {.profile = "default", .shell = "/bin/sh"};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tenant_conf t;
		struct cfg_error e = {{0}};
		const char *p = write_tmp(1, "bad.conf", cases[i].text);
		assert_int_equal(config_load_tenant_file(p, "bad", &d, &t, &e), -22);
		char prefix[256];
		snprintf(prefix, sizeof prefix, "%s:%d: ", p, cases[i].line);
		if (strncmp(e.msg, prefix, strlen(prefix)) != 0 || !strstr(e.msg, cases[i].needle))
			fail_msg("case %zu: got '%s'", i, e.msg);
	}
}

static void names_and_parsers(void **state)
{
	(void)state;
	assert_true(tenant_name_valid("alice"));
	assert_true(tenant_name_valid("_svc-agent_2"));
	assert_false(tenant_name_valid(""));
	assert_false(tenant_name_valid("Alice"));
	assert_false(tenant_name_valid("../root"));
	assert_false(tenant_name_valid("a/b"));
	assert_false(tenant_name_valid("-rf"));
	assert_false(tenant_name_valid("abcdefghijabcdefghijabcdefghijabc")); /* 33 chars */
	struct listen_addr a;
	assert_int_equal(parse_listen("[::]:22", &a), 0);
	assert_string_equal(a.host, "::");
	assert_int_equal(parse_listen("host:0", &a), -1);
	assert_int_equal(parse_listen(":22", &a), -1);
	assert_int_equal(parse_listen("[::1]22", &a), -1);
	uid_t lo, hi;
	assert_int_equal(parse_uid_range("1000-1000", &lo, &hi), 0);
	assert_int_equal(parse_uid_range("999-2000", &lo, &hi), -1);
	assert_int_equal(parse_uid_range("2000", &lo, &hi), -1);
	assert_int_equal(parse_uid_range("2000-x", &lo, &hi), -1);
}

/* [api NAME] sections: upstream split into host, port and path prefix; a
 * quoted prefix keeps its space, a bare word gets one; tenants' names
 * resolved to a mask; bad values named with their line */
static void api_sections(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* key_file must be root's */
	const char *key = write_tmp(2, "key", "sk-test\n");
	chmod(key, 0600);
	char text[1024];
	snprintf(text, sizeof text,
	         "[server]\nlisten = 127.0.0.1:2222\nhost_key = /k\nstate_dir = /s\n"
	         "tenants_dir = /t\nuid_range = 300000-300010\n"
	         "[api a]\nupstream = https://api.example.com/v1/\nkey_file = %s\n"
	         "header = Authorization\nprefix = \"Bearer \"\nbudget_tokens = 500\n"
	         "[api b]\nupstream = https://[::1]:8443\nkey_file = %s\nprefix = Token\n"
	         "base_url_env = B_URL\n[sandbox]\napi = b\n",
	         key, key);
	struct server_conf s;
	struct cfg_error e = {{0}};
	assert_int_equal(config_load_server(write_tmp(0, "api.conf", text), &s, &e), 0);
	assert_int_equal(s.napis, 2);
	assert_string_equal(s.apis[0].host, "api.example.com");
	assert_string_equal(s.apis[0].port, "443");
	assert_string_equal(s.apis[0].prefix, "/v1");
	assert_string_equal(s.apis[0].header, "Authorization");
	assert_string_equal(s.apis[0].value_prefix, "Bearer ");
	assert_int_equal(s.apis[0].budget_tokens, 500);
	assert_string_equal(s.apis[1].host, "::1");
	assert_string_equal(s.apis[1].port, "8443");
	assert_string_equal(s.apis[1].prefix, "");
	assert_string_equal(s.apis[1].header, "x-api-key");
	assert_string_equal(s.apis[1].value_prefix, "Token ");
	assert_string_equal(s.apis[1].base_url_env, "B_URL");
	assert_int_equal(s.sandbox.api_mask, 2u);
	assert_int_equal(s.api_uid, 299999);
	config_free_server(&s);
	static const struct {
		const char *line, *want;
	} bad[] = {
	    {"header = bad name", "api.conf:7: header: expected a header name"},
	    {"base_url_env = 1X", "api.conf:7: base_url_env: expected an environment variable"},
	    {"budget_tokens = -1", "api.conf:7: budget_tokens: expected a whole number"},
	    {"upstream = https://", "api.conf:7: upstream: expected https://HOST"},
	    {"color = red", "api.conf:7: unknown key 'color' in [api a]"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text,
		         "[server]\nlisten = 127.0.0.1:2222\nhost_key = /k\nstate_dir = /s\n"
		         "tenants_dir = /t\n[api a]\n%s\nkey_file = %s\n",
		         bad[i].line, key);
		assert_int_equal(config_load_server(write_tmp(0, "api.conf", text), &s, &e), -22);
		assert_non_null(strstr(e.msg, bad[i].want));
	}
}

/* preauth_uids: a default as large as PID_MAX_LIMIT, a range of its own;
 * one that overlaps the tenants' or the gateway's uid is refused */
static void preauth_uids(void **state)
{
	(void)state;
	static const char head[] = "[server]\nlisten = 127.0.0.1:2222\nhost_key = /k\n"
	                           "state_dir = /s\ntenants_dir = /t\n";
	char text[512];
	struct server_conf s;
	struct cfg_error e = {{0}};
	snprintf(text, sizeof text, "%s", head);
	assert_int_equal(config_load_server(write_tmp(0, "pre.conf", text), &s, &e), 0);
	assert_int_equal(s.preauth_uid_max - s.preauth_uid_min + 1, 4194304);
	assert_true(s.preauth_uid_min > s.uid_max);
	config_free_server(&s);
	snprintf(text, sizeof text, "%spreauth_uids = 5000000-5099999\n", head);
	assert_int_equal(config_load_server(write_tmp(0, "pre.conf", text), &s, &e), 0);
	assert_int_equal(s.preauth_uid_min, 5000000);
	assert_int_equal(s.preauth_uid_max, 5099999);
	config_free_server(&s);
	static const struct {
		const char *lines, *want;
	} bad[] = {
	    {"preauth_uids = 250000-260000\n", "preauth_uids 250000-260000 overlaps uid_range"},
	    {"preauth_uids = 100000-300000\n", "overlaps uid_range 200000-299999"},
	    {"preauth_uids = 199999-199999\n", "or api_uid 199999"},
	    {"preauth_uids = 9-5\n", "pre.conf:6: preauth_uids: expected MIN-MAX"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "%s%s", head, bad[i].lines);
		assert_int_equal(config_load_server(write_tmp(0, "pre.conf", text), &s, &e), -22);
		if (strstr(e.msg, bad[i].want) == NULL)
			fail_msg("%s: got '%s'", bad[i].lines, e.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(server_good),      cmocka_unit_test(api_sections),
	    cmocka_unit_test(sandbox_keys),     cmocka_unit_test(server_defaults),
	    cmocka_unit_test(server_bad),       cmocka_unit_test(server_missing_required),
	    cmocka_unit_test(overlong_line),    cmocka_unit_test(tenant_good_and_override),
	    cmocka_unit_test(tenant_bad),       cmocka_unit_test(names_and_parsers),
	    cmocka_unit_test(environment_keys), cmocka_unit_test(preauth_uids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
