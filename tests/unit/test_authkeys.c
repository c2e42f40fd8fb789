/* test_authkeys.c - authorized key lines: accepted forms, refused forms
 * (options, DSA, certificates, garbage), and matching inline and file keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sshd-frontend/authkeys.h"
#include "testutil.h"

static ssh_key k1, k2;
static char line1[512], line2[512];

static int setup(void **state)
{
	(void)state;
	char *b64;
	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &k1) != SSH_OK ||
	    ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &k2) != SSH_OK)
		return -1;
	ssh_pki_export_pubkey_base64(k1, &b64);
	snprintf(line1, sizeof line1, "ssh-ed25519 %s alice@laptop\n", b64);
	ssh_string_free_char(b64);
	ssh_pki_export_pubkey_base64(k2, &b64);
	snprintf(line2, sizeof line2, "ssh-ed25519 %s", b64);
	ssh_string_free_char(b64);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ssh_key_free(k1);
	ssh_key_free(k2);
	return 0;
}

static void parse(void **state)
{
	(void)state;
	ssh_key k = NULL;
	const char *why = NULL;
	assert_int_equal(authkeys_parse_line(line1, &k, &why), 1);
	assert_int_equal(ssh_key_cmp(k, k1, SSH_KEY_CMP_PUBLIC), 0);
	ssh_key_free(k);
	assert_int_equal(authkeys_parse_line("   \n", &k, &why), 0);
	assert_int_equal(authkeys_parse_line("# comment", &k, &why), 0);
	char opt[600];
	snprintf(opt, sizeof opt, "command=\"/bin/true\" %s", line1);
	assert_int_equal(authkeys_parse_line(opt, &k, &why), -1);
	assert_string_equal(why, "key options are not supported");
	assert_int_equal(authkeys_parse_line("ssh-dss AAAAB3NzaC1kc3MAAACBAP", &k, &why), -1);
	assert_int_equal(authkeys_parse_line("ssh-ed25519-cert-v01@openssh.com AAAA", &k, &why),
	                 -1);
	assert_int_equal(authkeys_parse_line("ssh-ed25519 !!!notbase64!!!", &k, &why), -1);
	assert_string_equal(why, "cannot decode the key");
	assert_int_equal(authkeys_parse_line("ssh-ed25519", &k, &why), -1);
}

static void match(void **state)
{
	(void)state;
	struct tenant_conf t = {0};
	strcpy(t.name, "alice");
	t.path = (char *)"/test/alice.conf";
	t.keys[0] = line2;
	t.key_lines[0] = 3;
	t.nkeys = 1;
	assert_true(authkeys_match(&t, k2));
	assert_false(authkeys_match(&t, k1));
	char text[1200];
	snprintf(text, sizeof text, "# keys\nbroken line here\n%s", line1);
	t.authorized_keys = (char *)write_tmp(2, "alice.pub", text);
	assert_true(authkeys_match(&t, k1));
	t.nkeys = 0;
	assert_false(authkeys_match(&t, k2));
	t.authorized_keys = (char *)"/nonexistent/keys";
	assert_false(authkeys_match(&t, k1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse),
	    cmocka_unit_test(match),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
