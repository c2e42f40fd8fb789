/* initdetach.h - warren-init's detached PTY sessions: a PTY channel whose
 * connection dropped keeps running in the environment; init holds its
 * terminal, keeps what it prints (ring.h) and hands both to the channel that
 * reattaches. */
#ifndef WARREN_INITDETACH_H
#define WARREN_INITDETACH_H

#include <poll.h>
#include <stdbool.h>
#include <sys/types.h>

#define MAX_DETACHED 16

/* Takes the channel's command (child, its session sid), its PTY master and
 * the screen so far (memfd). The master must be sid's controlling terminal.
 * When the table is full the oldest entry goes: its session is returned in
 * *evicted (else 0) for the caller to hang up. 0, or -1 (nothing taken). */
int detach_add(pid_t child, pid_t sid, int master, int screen_fd, pid_t *evicted);

/* Hands over session id (its command's pid; 0: the latest): *master, a memfd
 * with the screen to replay, the command's pid and session. Resized to
 * rows x cols and redrawn (SIGWINCH to the foreground). -1: no such. */
int detach_take(pid_t id, int rows, int cols, int *master, int *screen_fd, pid_t *child,
                pid_t *sid);

/* The command exited while detached: the entry goes; true, with its session. */
bool detach_reaped(pid_t pid, pid_t *sid);

/* poll entries for the held terminals (their output is kept), and service */
int detach_pollfds(struct pollfd *pf);
void detach_service(const struct pollfd *pf, int n);

/* A memfd listing the detached sessions: "ID SECONDS COMMAND\n" each. */
int detach_list(void);

#endif
