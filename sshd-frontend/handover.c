/* handover.c - the login as the monitor hands it to its pre-auth process
 * (handover.h): one sealed memfd and up to three descriptors, one message. */
#include "handover.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "log.h"
#include "monproto.h"

int handover_send(int sock, const struct handover *h, const int fds[HO_NFDS])
{
	int mfd = memfd_create("warren-login", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	if (write(mfd, h, sizeof *h) != (ssize_t)sizeof *h ||
	    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(mfd);
		errno = e ? e : EIO;
		return -1;
	}
	int out[1 + HO_NFDS], n = 0, mask = 0;
	out[n++] = mfd;
	for (int i = 0; i < HO_NFDS; i++)
		if (fds[i] >= 0) {
			out[n++] = fds[i];
			mask |= 1 << i;
		}
	struct mon_reply r = {.code = MON_OK, .value = mask};
	int rc = fdpass_sendv(sock, &r, sizeof r, out, n);
	close(mfd);
	return rc;
}

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static const char *profile_check(const struct profile *p)
{
	if (!TERMINATED(p->name) || !TERMINATED(p->store))
		return "profile name or store unterminated";
	if (p->nenv < 0 || p->nenv > PROFILE_MAX_ENV || p->nmaps < 0 || p->nmaps > PROFILE_MAX_MAPS)
		return "profile counts out of bounds";
	for (int i = 0; i < p->nenv; i++)
		if (!TERMINATED(p->env_name[i]) || !TERMINATED(p->env_value[i]))
			return "profile variable unterminated";
	for (int i = 0; i < p->nmaps; i++)
		if (!TERMINATED(p->maps[i].src) || !TERMINATED(p->maps[i].dst))
			return "profile mapping unterminated";
	return NULL;
}

const char *handover_check(const struct handover *h)
{
	if (!TERMINATED(h->tenant.name) || !h->tenant.name[0])
		return "tenant name";
	if (!TERMINATED(h->tenant.sandbox.shell) || !TERMINATED(h->tenant.sandbox.profile))
		return "shell unterminated";
	if (!TERMINATED(h->id_source) || !TERMINATED(h->workspace) ||
	    !TERMINATED(h->sessions_dir) || !TERMINATED(h->env_sock) || !TERMINATED(h->fail))
		return "a path unterminated";
	if (h->uid == 0 || h->gid == 0)
		return "root's ids";
	if (h->filter != 0 && h->filter != 1)
		return "bad filter index";
	for (int i = 0; i < SANDBOX_MAX_APIS; i++)
		if (h->host_api_port[i] < 0 || h->host_api_port[i] > 65535)
			return "bad API port";
	return h->have_profile ? profile_check(&h->profile) : NULL;
}

int handover_recv(int sock, struct handover *h, int fds[HO_NFDS])
{
	struct mon_reply r;
	int got[1 + HO_NFDS], n = 0;
	for (int i = 0; i < HO_NFDS; i++)
		fds[i] = -1;
	ssize_t len;
	do
		len = fdpass_recvv(sock, &r, sizeof r, got, 1 + HO_NFDS, &n, 0);
	while (len < 0 && errno == EINTR);
	if (len != (ssize_t)sizeof r || r.code != MON_OK || n < 1) {
		for (int i = 0; i < n; i++)
			close(got[i]);
		return -1;
	}
	struct stat st;
	bool ok = fstat(got[0], &st) == 0 && st.st_size == (off_t)sizeof *h &&
	          pread(got[0], h, sizeof *h, 0) == (ssize_t)sizeof *h;
	close(got[0]);
	int k = 1;
	for (int i = 0; i < HO_NFDS; i++)
		if ((r.value & (1 << i)) && k < n)
			fds[i] = got[k++];
	while (k < n)
		close(got[k++]);
	const char *why = ok ? handover_check(h) : "unreadable";
	if (why)
		log_err("the login handed over is malformed: %s", why);
	return why ? -1 : 0;
}
