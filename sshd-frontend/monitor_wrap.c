/* monitor_wrap.c - the session process's side of monproto.h (tenant uid, no
 * capabilities): each call sends one request to the connection's root
 * monitor (monitor.c) and, where one is due, waits for its reply. */
#include "monitor_wrap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../sandbox/fdpass.h"
#include "../sandbox/spawn.h"
#include "../sandbox/strblob.h"
#include "log.h"

int mon_claim(int sock, int channel, long *running)
{
	struct mon_hdr h = {.type = MON_CLAIM, .channel = channel};
	struct mon_reply r = {.code = MON_FAILED};
	struct timeval tmo = {5, 0};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	if (send(sock, &h, sizeof h, MSG_NOSIGNAL) != (ssize_t)sizeof h ||
	    recv(sock, &r, sizeof r, 0) != (ssize_t)sizeof r)
		return 0;
	*running = r.value;
	return r.code == MON_FULL ? -1 : r.code == MON_OK ? 1 : 0;
}

void mon_release(int sock, int channel)
{
	struct mon_hdr h = {.type = MON_RELEASE, .channel = channel};
	if (send(sock, &h, sizeof h, MSG_NOSIGNAL) < 0)
		log_debug("monitor: release: %s", strerror(errno));
}

int mon_spawn(int sock, int channel, const struct mon_spawn *req, char *const argv[],
              char *const envp[], struct sandbox_proc *out, char *err, size_t errlen)
{
	struct mon_spawn r = *req;
	int mfd = strblob_memfd(argv, envp, &r.argc, &r.envc);
	if (mfd < 0) {
		snprintf(err, errlen, "command and environment: %s", strerror(errno));
		return -1;
	}
	char msg[sizeof(struct mon_hdr) + sizeof r];
	struct mon_hdr h = {.type = MON_SPAWN, .channel = channel};
	memcpy(msg, &h, sizeof h);
	memcpy(msg + sizeof h, &r, sizeof r);
	struct mon_reply rep = {.code = MON_FAILED, .value = EIO};
	int fds[4], nfds = 0;
	struct timeval tmo = {30, 0};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	int sent = fdpass_send(sock, msg, sizeof msg, mfd);
	close(mfd);
	if (sent < 0 || fdpass_recvv(sock, &rep, sizeof rep, fds, 4, &nfds, 0) != sizeof rep ||
	    rep.code != MON_OK) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		snprintf(err, errlen, "%s",
		         strerror(rep.value > 0 && rep.value < 4096 ? rep.value : EIO));
		return -1;
	}
	if (sandbox_proc_unpack(out, rep.value, fds, nfds) == 0)
		return 0;
	snprintf(err, errlen, "no control socket from the monitor");
	return -1;
}

void mon_note(int sock, char kind, const char *text)
{
	char msg[sizeof(struct mon_hdr) + 200];
	struct mon_hdr h = {.type = MON_NOTE};
	memcpy(msg, &h, sizeof h);
	int n = snprintf(msg + sizeof h, sizeof msg - sizeof h, "%c%.180s", kind, text ? text : "");
	if (send(sock, msg, sizeof h + (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("monitor: note: %s", strerror(errno));
}
