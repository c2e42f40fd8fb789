/* pam.c - PAM for warren. Keyboard-interactive runs pam_authenticate in a
 * child process (OpenSSH's approach without threads): its conversation
 * function sends each batch of PAM messages over a socketpair and blocks for
 * the answers, so the SSH side never blocks inside PAM. Secrets are wiped
 * with explicit_bzero as soon as PAM has them. */
#include "pam.h"
#include "../sandbox/fork.h"

#include <errno.h>
#include <poll.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void append(char *buf, size_t len, const char *text)
{
	size_t used = strlen(buf);
	if (used && used + 1 < len)
		buf[used++] = '\n', buf[used] = '\0';
	snprintf(buf + used, len - used, "%s", text);
}

/* ---- password ---- */

struct pw_conv {
	const char *password;
	char *msg;
	size_t msglen;
	int answered;
};

static int password_conv(int n, const struct pam_message **m, struct pam_response **r, void *ud)
{
	struct pw_conv *c = ud;
	struct pam_response *resp = calloc((size_t)n, sizeof *resp);
	if (resp == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (m[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			/* the password answers the first hidden prompt only */
			if (c->answered++ == 0) {
				resp[i].resp = strdup(c->password);
				break;
			}
			goto fail;
		case PAM_TEXT_INFO:
		case PAM_ERROR_MSG:
			if (c->msg)
				append(c->msg, c->msglen, m[i]->msg);
			break;
		default:
			goto fail;
		}
	}
	*r = resp;
	return PAM_SUCCESS;
fail:
	for (int i = 0; i < n; i++)
		if (resp[i].resp) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	free(resp);
	return PAM_CONV_ERR;
}

int wpam_password(const char *service, const char *user, const char *rhost, const char *password,
                  char *msg, size_t msglen)
{
	struct pw_conv c = {.password = password, .msg = msg, .msglen = msglen};
	struct pam_conv conv = {password_conv, &c};
	pam_handle_t *h = NULL;
	if (msg && msglen)
		msg[0] = '\0';
	int rc = pam_start(service, user, &conv, &h);
	if (rc == PAM_SUCCESS && rhost)
		pam_set_item(h, PAM_RHOST, rhost);
	if (rc == PAM_SUCCESS)
		rc = pam_authenticate(h, PAM_DISALLOW_NULL_AUTHTOK);
	if (h)
		pam_end(h, rc);
	return rc == PAM_SUCCESS ? 0 : -1;
}

/* ---- keyboard-interactive ---- */

/* wire format, both ways: int32 kind, int32 count, then per item:
 * int32 style, int32 len, bytes. kind 'P' prompts, 'A' answers, 'R' result. */
static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_item(int fd, int style, const char *s)
{
	int32_t hdr[2] = {style, (int32_t)strlen(s)};
	return send_all(fd, hdr, sizeof hdr) < 0 || send_all(fd, s, strlen(s)) < 0 ? -1 : 0;
}

/* Reads one item into buf (NUL-terminated, truncated to len); -1 on error. */
static int recv_item(int fd, int *style, char *buf, size_t len)
{
	int32_t hdr[2];
	if (recv_all(fd, hdr, sizeof hdr) < 0 || hdr[1] < 0 || hdr[1] > 65536)
		return -1;
	*style = hdr[0];
	size_t n = (size_t)hdr[1];
	char *tmp = malloc(n + 1);
	if (tmp == NULL || recv_all(fd, tmp, n) < 0) {
		free(tmp);
		return -1;
	}
	tmp[n] = '\0';
	snprintf(buf, len, "%s", tmp);
	explicit_bzero(tmp, n);
	free(tmp);
	return 0;
}

static int relay_conv(int n, const struct pam_message **m, struct pam_response **r, void *ud)
{
	int fd = *(int *)ud;
	if (n <= 0 || n > WPAM_MAX_PROMPTS * 2)
		return PAM_CONV_ERR;
	int32_t hdr[2] = {'P', n};
	if (send_all(fd, hdr, sizeof hdr) < 0)
		return PAM_CONV_ERR;
	for (int i = 0; i < n; i++)
		if (send_item(fd, m[i]->msg_style, m[i]->msg ? m[i]->msg : "") < 0)
			return PAM_CONV_ERR;
	if (recv_all(fd, hdr, sizeof hdr) < 0 || hdr[0] != 'A' || hdr[1] != n)
		return PAM_CONV_ERR;
	struct pam_response *resp = calloc((size_t)n, sizeof *resp);
	if (resp == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		char buf[WPAM_TEXT];
		int style;
		if (recv_item(fd, &style, buf, sizeof buf) < 0) {
			for (int j = 0; j < i; j++)
				free(resp[j].resp);
			free(resp);
			return PAM_CONV_ERR;
		}
		if (m[i]->msg_style == PAM_PROMPT_ECHO_OFF || m[i]->msg_style == PAM_PROMPT_ECHO_ON)
			resp[i].resp = strdup(buf);
		explicit_bzero(buf, sizeof buf);
	}
	*r = resp;
	return PAM_SUCCESS;
}

struct wpam_kbdint {
	pid_t pid;
	int fd;
	int n_pending; /* items in the last batch, for answer() */
	int styles[WPAM_MAX_PROMPTS * 2];
};

struct wpam_kbdint *wpam_kbdint_start(const char *service, const char *user, const char *rhost)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	pid_t pid = fork_child(0, NULL, 0);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	if (pid == 0) {
		close(sv[0]);
		signal(SIGALRM, SIG_DFL);
		int fd = sv[1];
		struct pam_conv conv = {relay_conv, &fd};
		pam_handle_t *h = NULL;
		int rc = pam_start(service, user, &conv, &h);
		if (rc == PAM_SUCCESS && rhost)
			pam_set_item(h, PAM_RHOST, rhost);
		if (rc == PAM_SUCCESS)
			rc = pam_authenticate(h, PAM_DISALLOW_NULL_AUTHTOK);
		int32_t res[2] = {'R', rc};
		send_all(fd, res, sizeof res);
		if (h)
			pam_end(h, rc);
		_exit(0);
	}
	close(sv[1]);
	struct wpam_kbdint *k = calloc(1, sizeof *k);
	if (k == NULL) {
		close(sv[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return NULL;
	}
	k->pid = pid;
	k->fd = sv[0];
	return k;
}

enum wpam_step wpam_kbdint_next(struct wpam_kbdint *k, struct wpam_prompts *p, int timeout_ms)
{
	memset(p, 0, sizeof *p);
	for (;;) {
		struct pollfd pf = {.fd = k->fd, .events = POLLIN};
		if (poll(&pf, 1, timeout_ms) <= 0)
			return WPAM_FAILURE;
		int32_t hdr[2];
		if (recv_all(k->fd, hdr, sizeof hdr) < 0)
			return WPAM_FAILURE;
		if (hdr[0] == 'R')
			return hdr[1] == PAM_SUCCESS ? WPAM_SUCCESS : WPAM_FAILURE;
		if (hdr[0] != 'P' || hdr[1] <= 0 || hdr[1] > WPAM_MAX_PROMPTS * 2)
			return WPAM_FAILURE;
		k->n_pending = hdr[1];
		int prompts = 0;
		for (int i = 0; i < hdr[1]; i++) {
			char buf[WPAM_TEXT];
			int style;
			if (recv_item(k->fd, &style, buf, sizeof buf) < 0)
				return WPAM_FAILURE;
			k->styles[i] = style;
			if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
				if (p->n == WPAM_MAX_PROMPTS)
					return WPAM_FAILURE;
				snprintf(p->text[p->n], WPAM_TEXT, "%s", buf);
				p->echo[p->n++] = style == PAM_PROMPT_ECHO_ON;
				prompts++;
			} else {
				append(p->info, sizeof p->info, buf);
			}
		}
		if (prompts)
			return WPAM_PROMPTS;
		/* only informational text: acknowledge and keep it for the next prompt */
		char keep[sizeof p->info];
		snprintf(keep, sizeof keep, "%s", p->info);
		if (wpam_kbdint_answer(k, 0, NULL) < 0)
			return WPAM_FAILURE;
		memset(p, 0, sizeof *p);
		snprintf(p->info, sizeof p->info, "%s", keep);
	}
}

int wpam_kbdint_answer(struct wpam_kbdint *k, int n, const char *const *answers)
{
	int32_t hdr[2] = {'A', k->n_pending};
	if (send_all(k->fd, hdr, sizeof hdr) < 0)
		return -1;
	int a = 0;
	for (int i = 0; i < k->n_pending; i++) {
		bool prompt =
		    k->styles[i] == PAM_PROMPT_ECHO_OFF || k->styles[i] == PAM_PROMPT_ECHO_ON;
		const char *s = prompt && a < n ? answers[a++] : "";
		if (send_item(k->fd, 0, s) < 0)
			return -1;
	}
	return a == n ? 0 : -1;
}

void wpam_kbdint_free(struct wpam_kbdint *k)
{
	if (k == NULL)
		return;
	close(k->fd);
	kill(k->pid, SIGKILL);
	while (waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(k);
}

/* ---- account and session ---- */

struct wpam {
	pam_handle_t *h;
	char msgs[WPAM_TEXT * 2];
	bool session_open;
	int last;
};

static int collect_conv(int n, const struct pam_message **m, struct pam_response **r, void *ud)
{
	struct wpam *w = ud;
	struct pam_response *resp = calloc((size_t)n, sizeof *resp);
	if (resp == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (m[i]->msg_style == PAM_TEXT_INFO || m[i]->msg_style == PAM_ERROR_MSG) {
			append(w->msgs, sizeof w->msgs, m[i]->msg);
		} else {
			free(resp); /* no prompting after authentication */
			return PAM_CONV_ERR;
		}
	}
	*r = resp;
	return PAM_SUCCESS;
}

struct wpam *wpam_open(const char *service, const char *user, const char *rhost)
{
	struct wpam *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	struct pam_conv conv = {collect_conv, w};
	if (pam_start(service, user, &conv, &w->h) != PAM_SUCCESS) {
		free(w);
		return NULL;
	}
	if (rhost)
		pam_set_item(w->h, PAM_RHOST, rhost);
	return w;
}

static int result(struct wpam *w, int rc, char *msg, size_t msglen)
{
	w->last = rc;
	if (msg && msglen)
		snprintf(msg, msglen, "%s", w->msgs[0] ? w->msgs : pam_strerror(w->h, rc));
	w->msgs[0] = '\0';
	return rc == PAM_SUCCESS ? 0 : -1;
}

int wpam_account(struct wpam *w, char *msg, size_t msglen)
{
	w->msgs[0] = '\0';
	return result(w, pam_acct_mgmt(w->h, PAM_SILENT), msg, msglen);
}

int wpam_session_open(struct wpam *w, char *msg, size_t msglen)
{
	w->msgs[0] = '\0';
	int rc = pam_open_session(w->h, 0);
	w->session_open = rc == PAM_SUCCESS;
	return result(w, rc, msg, msglen);
}

void wpam_session_close(struct wpam *w)
{
	if (w && w->session_open) {
		w->last = pam_close_session(w->h, 0);
		w->session_open = false;
	}
}

void wpam_end(struct wpam *w)
{
	if (w == NULL)
		return;
	pam_end(w->h, w->last);
	free(w);
}
