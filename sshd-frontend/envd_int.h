/* envd_int.h - what the environment's own processes share (envmon.c forks
 * the env process of envproc.c); not for the session side. */
#ifndef WARREN_ENVD_INT_H
#define WARREN_ENVD_INT_H

#include "envd.h"

/* The env process: drops to the tenant, starts the sandbox on listen_fd,
 * serves it until it ends; the exit code. gw_fd: the API gateway's socket
 * (-1: none). */
int env_process(const struct envd_ctx *ctx, int listen_fd, int gw_fd);
/* both ends of a pipe */
struct sockaddr_un;
int envd_unix_addr(const char *path, struct sockaddr_un *a);
void envd_close_pair(int p[2]);

#endif
