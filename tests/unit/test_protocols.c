/* test_protocols.c - the one checker of each private protocol: warren-init's
 * control and environment messages (sandbox/initcheck.c), the API
 * gateway's (egress/gwcheck.c), the status lines to the master
 * (sshd-frontend/notify.c), the login handed over (handover.c) and the
 * spawn helper's reply (spawncheck.c). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../egress/apigw.h"
#include "../../sandbox/initproto.h"
#include "../../sshd-frontend/handover.h"
#include "../../sshd-frontend/notify.h"
#include "../../sshd-frontend/spawnproto.h"

static void init_messages(void **state)
{
	(void)state;
	struct init_msg m = {.type = INIT_MSG_PTY};
	assert_null(init_msg_check(&m, sizeof m, true));
	assert_string_equal(init_msg_check(&m, sizeof m, false), "a descriptor is missing");
	assert_string_equal(init_msg_check(&m, sizeof m - 1, true), "bad length");
	m = (struct init_msg){.type = INIT_MSG_API, .value = 0};
	assert_string_equal(init_msg_check(&m, sizeof m, true), "bad port");
	m.value = 4711;
	assert_null(init_msg_check(&m, sizeof m, true));
	m = (struct init_msg){.type = INIT_MSG_ERROR, .value = 11};
	assert_null(init_msg_check(&m, sizeof m, false));
	m.value = -3;
	assert_string_equal(init_msg_check(&m, sizeof m, false), "bad errno");
	m = (struct init_msg){.type = INIT_MSG_SIGNAL, .value = NSIG};
	assert_string_equal(init_msg_check(&m, sizeof m, false), "bad signal");
	m = (struct init_msg){.type = 'w'};
	assert_string_equal(init_msg_check(&m, sizeof m, false), "unknown type");
	m = (struct init_msg){.type = INIT_MSG_EXIT, .value = 9};
	assert_null(init_msg_check(&m, sizeof m, false));
}

static void init_requests(void **state)
{
	(void)state;
	struct init_req r = {.type = INIT_REQ_SPAWN, .pty = 1, .rows = 24, .cols = 80, .argc = 2};
	assert_null(init_req_check(&r, sizeof r, 1));
	assert_string_equal(init_req_check(&r, sizeof r, 4), "wrong descriptors");
	r.pty = 0;
	assert_null(init_req_check(&r, sizeof r, 4));
	r.pty = 2;
	assert_string_equal(init_req_check(&r, sizeof r, 4), "bad pty");
	r = (struct init_req){.type = INIT_REQ_SPAWN, .argc = 0};
	assert_string_equal(init_req_check(&r, sizeof r, 4), "bad string counts");
	r = (struct init_req){.type = INIT_REQ_SPAWN, .argc = 1, .envc = INIT_SPAWN_MAX_STRS};
	assert_string_equal(init_req_check(&r, sizeof r, 4), "bad string counts");
	r = (struct init_req){.type = INIT_REQ_SPAWN, .argc = 1, .rows = 10001};
	assert_string_equal(init_req_check(&r, sizeof r, 4), "bad window size");
	r = (struct init_req){.type = INIT_REQ_KILL, .value = SIGHUP};
	assert_null(init_req_check(&r, sizeof r, 0));
	r.value = 0;
	assert_string_equal(init_req_check(&r, sizeof r, 0), "bad signal");
	r = (struct init_req){.type = INIT_REQ_DETACH};
	assert_null(init_req_check(&r, sizeof r, 2));
	assert_string_equal(init_req_check(&r, sizeof r, 1), "wrong descriptors");
	r = (struct init_req){.type = INIT_REQ_CONNECT, .value = 22, .family = 4};
	assert_null(init_req_check(&r, sizeof r, 0));
	assert_string_equal(init_req_check(&r, sizeof r, 1), "wrong descriptors");
	assert_string_equal(init_req_check(&r, 3, 0), "bad length");
	r.type = 'w';
	assert_string_equal(init_req_check(&r, sizeof r, 0), "unknown type");
}

static void gateway(void **state)
{
	(void)state;
	struct gw_msg m;
	memset(&m, 'x', sizeof m);
	m.type = GW_USAGE;
	m.api = 1;
	assert_null(gw_msg_check(&m, sizeof m, 2, 2u));
	assert_int_equal(strlen(m.model), sizeof m.model - 1); /* terminated in place */
	assert_int_equal(strlen(m.path), sizeof m.path - 1);
	assert_string_equal(gw_msg_check(&m, sizeof m, 2, 1u), "not one of the tenant's apis");
	m.api = 2;
	assert_string_equal(gw_msg_check(&m, sizeof m, 2, 7u), "not one of the tenant's apis");
	m.api = 0;
	m.type = 9;
	assert_string_equal(gw_msg_check(&m, sizeof m, 2, 1u), "unknown type");
	assert_string_equal(gw_msg_check(&m, sizeof m - 1, 2, 1u), "bad length");
	struct gw_fdmsg f = {.type = GW_LISTEN, .api = 0};
	assert_null(gw_fdmsg_check(&f, sizeof f, true, 1u));
	assert_string_equal(gw_fdmsg_check(&f, sizeof f, false, 1u), "a descriptor is missing");
	assert_string_equal(gw_fdmsg_check(&f, sizeof f, true, 2u), "not one of the tenant's apis");
	f.type = GW_CLOSE;
	assert_null(gw_fdmsg_check(&f, sizeof f, false, 0u));
}

static void notify(void **state)
{
	(void)state;
	char line[NOTE_MAX];
	size_t n = notify_line(line, NOTE_COMMAND, "ls\nA-root");
	assert_int_equal(n, 11);
	assert_memory_equal(line, "Cls A-root\n", 11);
	char big[400];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(notify_line(line, NOTE_COMMAND, big), NOTE_MAX);
	assert_int_equal(line[NOTE_MAX - 1], '\n');
	const char *arg;
	assert_int_equal(notify_check("Aalice", false, false, &arg), NOTE_AUTH);
	assert_string_equal(arg, "alice");
	assert_int_equal(notify_check("Amallory", true, false, &arg), NOTE_NONE);
	assert_int_equal(notify_check("A", false, false, &arg), NOTE_NONE);
	assert_int_equal(notify_check("E123", false, false, &arg), NOTE_NONE);
	assert_int_equal(notify_check("E123", true, false, &arg), NOTE_ENV);
	assert_int_equal(notify_check("E123", true, true, &arg), NOTE_NONE);
	assert_int_equal(notify_check("Cvim", true, true, &arg), NOTE_COMMAND);
	assert_int_equal(notify_check("T", true, true, &arg), NOTE_TRAFFIC);
	assert_int_equal(notify_check("", true, true, &arg), NOTE_NONE);
	assert_int_equal(notify_check("Z", true, true, &arg), NOTE_NONE);
}

static void handover(void **state)
{
	(void)state;
	static struct handover h;
	memset(&h, 0, sizeof h);
	snprintf(h.tenant.name, sizeof h.tenant.name, "alice");
	h.uid = h.gid = 200001;
	assert_null(handover_check(&h));
	h.uid = 0;
	assert_string_equal(handover_check(&h), "root's ids");
	h.uid = 200001;
	memset(h.workspace, 'w', sizeof h.workspace);
	assert_string_equal(handover_check(&h), "a path unterminated");
	h.workspace[0] = '\0';
	h.filter = 2;
	assert_string_equal(handover_check(&h), "bad filter index");
	h.filter = 1;
	h.have_profile = true;
	h.profile.nenv = PROFILE_MAX_ENV + 1;
	assert_string_equal(handover_check(&h), "profile counts out of bounds");
	h.profile.nenv = 1;
	memset(h.profile.env_value[0], 'v', sizeof h.profile.env_value[0]);
	assert_string_equal(handover_check(&h), "profile variable unterminated");
	h.profile.env_value[0][0] = '\0';
	assert_null(handover_check(&h));
	h.host_api_port[0] = 70000;
	assert_string_equal(handover_check(&h), "bad API port");
}

static void spawn_reply(void **state)
{
	(void)state;
	struct spawn_reply r = {.rc = 0, .mask = 15};
	assert_null(spawn_reply_check(&r, sizeof r, 4));
	assert_string_equal(spawn_reply_check(&r, sizeof r, 3),
	                    "descriptors do not match the mask");
	r.mask = 8 | 4;
	assert_null(spawn_reply_check(&r, sizeof r, 2));
	r.mask = 7;
	assert_string_equal(spawn_reply_check(&r, sizeof r, 3), "bad descriptor mask");
	r = (struct spawn_reply){.rc = -2};
	memset(r.err, 'e', sizeof r.err);
	assert_null(spawn_reply_check(&r, sizeof r, 0));
	assert_int_equal(strlen(r.err), sizeof r.err - 1);
	assert_string_equal(spawn_reply_check(&r, sizeof r, 1), "bad failure");
	r.rc = 5;
	assert_string_equal(spawn_reply_check(&r, sizeof r, 0), "bad descriptor mask");
	assert_string_equal(spawn_reply_check(&r, 4, 0), "bad length");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_messages), cmocka_unit_test(init_requests),
	    cmocka_unit_test(gateway),       cmocka_unit_test(notify),
	    cmocka_unit_test(handover),      cmocka_unit_test(spawn_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
