/* pam_otp_test.c - a PAM module for the tests only (never installed): a
 * second factor that shows an info line and asks for a one-time code (echo
 * on), and an account check that refuses listed users as expired.
 *   auth    ... pam_otp_test.so code=424242 users=carol,dave
 *   account ... pam_otp_test.so expired=erin */
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdlib.h>
#include <string.h>

static const char *arg(int argc, const char **argv, const char *key)
{
	size_t n = strlen(key);
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], key, n) && argv[i][n] == '=')
			return argv[i] + n + 1;
	return NULL;
}

static int listed(const char *list, const char *user)
{
	if (!list || !user)
		return 0;
	size_t n = strlen(user);
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && !strncmp(p, user, n))
			return 1;
		p += l + (p[l] == ',');
	}
	return 0;
}

int pam_sm_authenticate(pam_handle_t *h, int flags, int argc, const char **argv)
{
	(void)flags;
	const char *user = NULL;
	if (pam_get_user(h, &user, NULL) != PAM_SUCCESS)
		return PAM_AUTH_ERR;
	if (!listed(arg(argc, argv, "users"), user))
		return PAM_IGNORE;
	pam_info(h, "A code was sent to your token.");
	char *resp = NULL;
	if (pam_prompt(h, PAM_PROMPT_ECHO_ON, &resp, "One-time code: ") != PAM_SUCCESS || !resp)
		return PAM_AUTH_ERR;
	const char *code = arg(argc, argv, "code");
	int ok = code && !strcmp(resp, code);
	free(resp);
	return ok ? PAM_SUCCESS : PAM_AUTH_ERR;
}

int pam_sm_setcred(pam_handle_t *h, int flags, int argc, const char **argv)
{
	(void)h, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS;
}

int pam_sm_acct_mgmt(pam_handle_t *h, int flags, int argc, const char **argv)
{
	(void)flags;
	const char *user = NULL;
	if (pam_get_user(h, &user, NULL) != PAM_SUCCESS)
		return PAM_USER_UNKNOWN;
	if (listed(arg(argc, argv, "expired"), user)) {
		pam_error(h, "Your account has expired; please contact your administrator.");
		return PAM_ACCT_EXPIRED;
	}
	return PAM_SUCCESS;
}
