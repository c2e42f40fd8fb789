/* monitor_wrap.h - the session process's calls to its root monitor
 * (monproto.h); monitor.h is the monitor's own side. */
#ifndef WARREN_MONITOR_WRAP_H
#define WARREN_MONITOR_WRAP_H

#include <stddef.h>

#include "monproto.h"

struct sandbox_proc;

/* The session process's side. 1: claimed; 0: not, but go on (the
 * bookkeeping failed: never refuse for that); -1: max_sessions reached,
 * *running set. */
int mon_claim(int sock, int channel, long *running);
void mon_release(int sock, int channel);
void mon_note(int sock, char kind, const char *text);
/* sandbox_scope = channel: the monitor starts the channel's sandbox (the
 * session process execs nothing). out gets the descriptors, pid 0: the
 * sandbox has ended when its control socket closes. 0, or -1 with err. */
int mon_spawn(int sock, int channel, const struct mon_spawn *req, char *const argv[],
              char *const envp[], struct sandbox_proc *out, char *err, size_t errlen);

#endif
