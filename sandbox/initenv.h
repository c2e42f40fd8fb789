/* initenv.h - warren-init's environment mode (initenv.c). */
#ifndef WARREN_INITENV_H
#define WARREN_INITENV_H

/* Serves channel connections accepted on lfd until `linger_s` seconds after
 * the last one closed, or until ctl (the env process) goes away. */
int initenv_run(int ctl, int lfd, long linger_s, long pids_max);

#endif
