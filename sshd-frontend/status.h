/* status.h - `warrend --status` / `--kill ID`: a root-only UNIX socket in
 * state_dir on which the master lists sessions and ends one on request. */
#ifndef WARREN_STATUS_H
#define WARREN_STATUS_H

#include <stddef.h>

/* master side */
int status_listen(const char *state_dir);
/* Reads one request from a freshly accepted client and writes the answer;
 * list() fills buf with one line per session, kill(id) ends one. */
void status_serve(int fd, size_t (*list)(char *buf, size_t len), int (*kill_id)(long id));

/* client side: prints the answer; returns the exit code */
int status_client(const char *state_dir, const char *request);

#endif
