/* pam.h - warren's PAM integration: password and keyboard-interactive
 * authentication, account checks, and the session that the root monitor opens
 * before the tenant's session starts and closes after it ends. */
#ifndef WARREN_PAM_H
#define WARREN_PAM_H

#include <stdbool.h>
#include <stddef.h>

#define WPAM_MAX_PROMPTS 8
#define WPAM_TEXT        512

/* Password: pam_authenticate answering echo-off prompts with `password`.
 * Returns 0 on success, -1 on failure (msg gets PAM's text, if any). */
int wpam_password(const char *service, const char *user, const char *rhost, const char *password,
                  char *msg, size_t msglen);

/* Keyboard-interactive: PAM runs in a child process whose conversation is
 * relayed here, one batch of prompts at a time. */
struct wpam_kbdint;
struct wpam_prompts {
	int n;
	char text[WPAM_MAX_PROMPTS][WPAM_TEXT];
	bool echo[WPAM_MAX_PROMPTS];
	char info[WPAM_TEXT * 2]; /* PAM_TEXT_INFO / PAM_ERROR_MSG text before the prompts */
};
enum wpam_step { WPAM_PROMPTS, WPAM_SUCCESS, WPAM_FAILURE };

struct wpam_kbdint *wpam_kbdint_start(const char *service, const char *user, const char *rhost);
/* Waits (up to timeout_ms) for the next batch or the result. */
enum wpam_step wpam_kbdint_next(struct wpam_kbdint *k, struct wpam_prompts *p, int timeout_ms);
int wpam_kbdint_answer(struct wpam_kbdint *k, int n, const char *const *answers);
void wpam_kbdint_free(struct wpam_kbdint *k);

/* Account and session, in the process that will become the monitor. */
struct wpam;
struct wpam *wpam_open(const char *service, const char *user, const char *rhost);
/* pam_acct_mgmt; on refusal msg holds PAM's text (or pam_strerror). */
int wpam_account(struct wpam *h, char *msg, size_t msglen);
int wpam_session_open(struct wpam *h, char *msg, size_t msglen);
void wpam_session_close(struct wpam *h);
void wpam_end(struct wpam *h);

#endif
