/* test_monitor.c - the root monitor's request table (moncheck.c): unknown
 * types, length bounds, requests out of state or out of phase (pre-auth,
 * login, session), the shape of authentication requests, and the audit
 * events a session process may and may not write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../sshd-frontend/monproto.h"

static size_t msg(char *buf, uint32_t type, int32_t channel, const char *payload, size_t len)
{
	struct mon_hdr h = {.type = type, .channel = channel};
	memcpy(buf, &h, sizeof h);
	if (len)
		memcpy(buf + sizeof h, payload, len);
	return sizeof h + len;
}

static void table(void **state)
{
	(void)state;
	struct mon_state st = {0};
	char b[sizeof(struct mon_hdr) + MON_MAX_PAYLOAD + 8];
	assert_string_equal(mon_check(&st, b, 3), "short message");
	assert_string_equal(mon_check(&st, b, msg(b, 99, 0, NULL, 0)), "unknown request");
	assert_string_equal(mon_check(&st, b, msg(b, MON_CLAIM, 1, "x", 1)), "bad length");
	assert_string_equal(mon_check(&st, b, msg(b, MON_CLAIM, -1, NULL, 0)), "bad channel");
	/* out of state: nothing claimed yet */
	assert_string_equal(mon_check(&st, b, msg(b, MON_RELEASE, 1, NULL, 0)),
	                    "release of a channel that holds no slot");
	assert_string_equal(mon_check(&st, b, msg(b, MON_RECORD, 1, NULL, 0)),
	                    "recording for a channel that holds no slot");
	assert_null(mon_check(&st, b, msg(b, MON_CLAIM, 1, NULL, 0)));
	mon_apply(&st, MON_CLAIM, 1);
	assert_string_equal(mon_check(&st, b, msg(b, MON_CLAIM, 1, NULL, 0)),
	                    "channel already holds a slot");
	assert_null(mon_check(&st, b, msg(b, MON_RECORD, 1, NULL, 0)));
	mon_apply(&st, MON_RECORD, 1);
	assert_string_equal(mon_check(&st, b, msg(b, MON_RECORD, 1, NULL, 0)),
	                    "channel already recorded");
	assert_null(mon_check(&st, b, msg(b, MON_RELEASE, 1, NULL, 0)));
	mon_apply(&st, MON_RELEASE, 1);
	assert_int_equal(st.nchan, 0);
	assert_string_equal(mon_check(&st, b, msg(b, MON_RELEASE, 1, NULL, 0)),
	                    "release of a channel that holds no slot");
	/* a channel-scope sandbox: for a claimed channel, once, well-formed */
	struct mon_spawn sp = {.pty = 1, .rows = 24, .cols = 80, .argc = 1, .envc = 2};
	const char *spb = (const char *)&sp;
	assert_string_equal(mon_check(&st, b, msg(b, MON_SPAWN, 2, spb, sizeof sp)),
	                    "sandbox for a channel that holds no slot");
	assert_string_equal(mon_check(&st, b, msg(b, MON_SPAWN, 2, spb, sizeof sp - 1)),
	                    "bad length");
	mon_apply(&st, MON_CLAIM, 2);
	assert_null(mon_check(&st, b, msg(b, MON_SPAWN, 2, spb, sizeof sp)));
	struct mon_spawn bad = sp;
	bad.argc = 0;
	assert_string_equal(mon_check(&st, b, msg(b, MON_SPAWN, 2, (const char *)&bad, sizeof bad)),
	                    "bad spawn request");
	bad = sp;
	bad.pty = 7;
	assert_string_equal(mon_check(&st, b, msg(b, MON_SPAWN, 2, (const char *)&bad, sizeof bad)),
	                    "bad spawn request");
	mon_apply(&st, MON_SPAWN, 2);
	assert_string_equal(mon_check(&st, b, msg(b, MON_SPAWN, 2, spb, sizeof sp)),
	                    "channel already has its sandbox");
	mon_apply(&st, MON_RELEASE, 2);
	/* notes: 'C' or 'T', at most 200 bytes */
	assert_null(mon_check(&st, b, msg(b, MON_NOTE, 0, "Cexec: ls", 9)));
	assert_string_equal(mon_check(&st, b, msg(b, MON_NOTE, 0, "A", 1)), "unknown note");
	assert_string_equal(mon_check(&st, b, msg(b, MON_NOTE, 0, NULL, 0)), "bad length");
	char big[MON_MAX_PAYLOAD + 1];
	memset(big, 'T', sizeof big);
	assert_string_equal(mon_check(&st, b, msg(b, MON_NOTE, 0, big, 201)), "bad length");
	assert_string_equal(mon_check(&st, b, msg(b, MON_AUDIT, 0, big, sizeof big)), "bad length");
	/* a full table refuses more claims */
	for (int i = 0; i < MON_MAX_CHANS; i++)
		mon_apply(&st, MON_CLAIM, 100 + i);
	assert_string_equal(mon_check(&st, b, msg(b, MON_CLAIM, 5, NULL, 0)), "too many channels");
	mon_state_free(&st);
}

#define P(s) s, sizeof s /* a payload with its final NUL */

static void audit(void **state)
{
	(void)state;
	const char *event, *kv[2 * MON_AUDIT_MAX_KV];
	size_t n;
	assert_null(mon_audit_parse(P("session_end\0#channel\0003\0type\0exec"), &event, kv, &n));
	assert_string_equal(event, "session_end");
	assert_int_equal(n, 4);
	assert_string_equal(kv[0], "#channel");
	assert_string_equal(kv[1], "3");
	assert_string_equal(kv[3], "exec");
	/* a session process cannot write a login, nor another tenant's line */
	assert_string_equal(mon_audit_parse(P("auth_success\0method\0publickey"), &event, kv, &n),
	                    "an event a session may not write");
	assert_string_equal(mon_audit_parse(P("session_end\0tenant\0bob"), &event, kv, &n),
	                    "bad key");
	assert_string_equal(mon_audit_parse(P("session_end\0#pid\0001"), &event, kv, &n),
	                    "bad key");
	assert_string_equal(mon_audit_parse(P("session_end\0ts\0x"), &event, kv, &n), "bad key");
	assert_string_equal(mon_audit_parse(P("session_end\0Type\0x"), &event, kv, &n), "bad key");
	assert_string_equal(mon_audit_parse(P("session_end\0\0x"), &event, kv, &n), "bad key");
	assert_string_equal(mon_audit_parse(P("session_end\0type"), &event, kv, &n),
	                    "a key without a value");
	assert_string_equal(mon_audit_parse("session_end", 11, &event, kv, &n), "unterminated");
	char many[4096];
	size_t off = (size_t)snprintf(many, sizeof many, "timeout") + 1;
	for (int i = 0; i < MON_AUDIT_MAX_KV + 1; i++)
		off += (size_t)snprintf(many + off, sizeof many - off, "k") + 1,
		    off += (size_t)snprintf(many + off, sizeof many - off, "v") + 1;
	assert_string_equal(mon_audit_parse(many, off, &event, kv, &n), "too many pairs");
}

/* pre-auth: only the authentication requests, well-formed; then the login,
 * once; then only session requests */
#define LIT(type, lit) msg(b, type, 0, lit, sizeof lit - 1)

static void phases(void **state)
{
	(void)state;
	struct mon_state st = {.phase = MON_PHASE_PREAUTH};
	static char b[sizeof(struct mon_hdr) + MON_MAX_REQUEST + 8];
	assert_string_equal(mon_check(&st, b, msg(b, MON_CLAIM, 1, NULL, 0)),
	                    "out of phase: not before authentication");
	assert_string_equal(mon_check(&st, b, LIT(MON_AUDIT, "session_end\0")),
	                    "out of phase: not before authentication");
	assert_string_equal(mon_check(&st, b, msg(b, MON_LOGIN, 0, NULL, 0)),
	                    "out of phase: not before authentication");
	/* publickey: state byte, user, "TYPE BASE64" */
	assert_null(mon_check(&st, b, LIT(MON_AUTH_PUBKEY, "\1alice\0ssh-ed25519 AAAA\0")));
	assert_null(mon_check(&st, b, LIT(MON_AUTH_PUBKEY, "\2alice\0ssh-ed25519 AAAA\0")));
	assert_string_equal(mon_check(&st, b, LIT(MON_AUTH_PUBKEY, "\3alice\0k\0")),
	                    "bad publickey request");
	assert_string_equal(mon_check(&st, b, LIT(MON_AUTH_PUBKEY, "\1alice\0k")),
	                    "bad publickey request"); /* unterminated key */
	assert_string_equal(mon_check(&st, b, LIT(MON_AUTH_PUBKEY, "\1alice\0k\0x")),
	                    "bad publickey request"); /* bytes after it */
	/* password: user and password, both terminated, nothing after */
	assert_null(mon_check(&st, b, LIT(MON_AUTH_PASSWORD, "alice\0pw\0")));
	assert_string_equal(mon_check(&st, b, LIT(MON_AUTH_PASSWORD, "alice\0pw")),
	                    "bad password request");
	static char user[MON_USER_MAX + 8];
	memset(user, 'a', sizeof user);
	user[MON_USER_MAX + 1] = '\0';
	user[MON_USER_MAX + 2] = 'p';
	user[MON_USER_MAX + 3] = '\0';
	assert_string_equal(mon_check(&st, b, msg(b, MON_AUTH_PASSWORD, 0, user, MON_USER_MAX + 4)),
	                    "bad password request"); /* a user name past the bound */
	assert_null(mon_check(&st, b, LIT(MON_KBDINT_START, "alice\0")));
	assert_string_equal(mon_check(&st, b, LIT(MON_KBDINT_START, "alice")),
	                    "bad keyboard-interactive request");
	assert_null(mon_check(&st, b, LIT(MON_KBDINT_ANSWER, "123456\0")));
	assert_null(mon_check(&st, b, msg(b, MON_KBDINT_ANSWER, 0, NULL, 0)));
	assert_string_equal(mon_check(&st, b, LIT(MON_KBDINT_ANSWER, "x")), "bad answers");
	static char many[WPAM_MAX_PROMPTS + 1];
	memset(many, 0, sizeof many);
	assert_string_equal(mon_check(&st, b, msg(b, MON_KBDINT_ANSWER, 0, many, sizeof many)),
	                    "bad answers");
	static char big[MON_MAX_REQUEST + 1];
	memset(big, 'k', sizeof big);
	assert_string_equal(mon_check(&st, b, msg(b, MON_AUTH_PUBKEY, 0, big, sizeof big)),
	                    "bad length");
	/* authenticated (monauth.c sets it): the login only, once */
	st.phase = MON_PHASE_AUTHED;
	assert_string_equal(mon_check(&st, b, LIT(MON_AUTH_PASSWORD, "alice\0pw\0")),
	                    "out of phase: only the login now");
	assert_string_equal(mon_check(&st, b, msg(b, MON_CLAIM, 1, NULL, 0)),
	                    "out of phase: only the login now");
	assert_string_equal(mon_check(&st, b, LIT(MON_LOGIN, "x")), "bad length");
	assert_null(mon_check(&st, b, msg(b, MON_LOGIN, 0, NULL, 0)));
	mon_apply(&st, MON_LOGIN, 0);
	assert_int_equal(st.phase, MON_PHASE_SESSION);
	assert_string_equal(mon_check(&st, b, msg(b, MON_LOGIN, 0, NULL, 0)),
	                    "out of phase: authentication is over");
	assert_string_equal(mon_check(&st, b, LIT(MON_AUTH_PUBKEY, "\1alice\0k\0")),
	                    "out of phase: authentication is over");
	assert_null(mon_check(&st, b, msg(b, MON_CLAIM, 1, NULL, 0)));
	mon_state_free(&st);
}

/* the one dispatch: a request that passes reaches its type's handler, with
 * its payload and descriptor; a refused one, or one this side has no
 * handler for, reaches none and is counted */
static int handled_type = -1, handled_fd = -2;
static size_t handled_len;
static void handler(void *ctx, const struct mon_hdr *h, const char *p, size_t len, int fd)
{
	(void)p;
	*(int *)ctx += 1;
	handled_type = (int)h->type;
	handled_len = len;
	handled_fd = fd;
}

static void dispatch(void **state)
{
	(void)state;
	struct mon_state st = {0};
	char b[sizeof(struct mon_hdr) + MON_MAX_PAYLOAD + 8];
	mon_handler *fn[MON_NTYPES] = {[MON_NOTE] = handler, [MON_CLAIM] = handler};
	int calls = 0;
	assert_null(mon_dispatch(&st, fn, &calls, "test", b, msg(b, MON_NOTE, 0, "Cls", 3), 7));
	assert_int_equal(calls, 1);
	assert_int_equal(handled_type, MON_NOTE);
	assert_int_equal(handled_len, 3);
	assert_int_equal(handled_fd, 7);
	/* refused by its check: no handler runs */
	assert_string_equal(
	    mon_dispatch(&st, fn, &calls, "test", b, msg(b, MON_NOTE, 0, "X", 1), -1),
	    "unknown note");
	/* valid, but not served on this side */
	assert_string_equal(
	    mon_dispatch(&st, fn, &calls, "test", b, msg(b, MON_RELEASE, 1, NULL, 0), -1),
	    "release of a channel that holds no slot");
	mon_apply(&st, MON_CLAIM, 1);
	assert_string_equal(
	    mon_dispatch(&st, fn, &calls, "test", b, msg(b, MON_RELEASE, 1, NULL, 0), -1),
	    "not served here");
	assert_int_equal(calls, 1);
	assert_int_equal(st.refused, 3);
	assert_string_equal(mon_name(MON_SPAWN), "spawn");
	assert_string_equal(mon_name(999), "unknown");
	mon_state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(table),
	    cmocka_unit_test(phases),
	    cmocka_unit_test(audit),
	    cmocka_unit_test(dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
