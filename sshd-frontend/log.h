/* log.h - one line per event on stderr, "warrend[pid]: level: text", the
 * format journald and an operator's grep both handle. */
#ifndef WARREN_LOG_H
#define WARREN_LOG_H

#include <stddef.h>

enum { LOG_ERR_ = 0, LOG_WARN_, LOG_INFO_, LOG_DEBUG_ };

void log_set_level(int level);
int log_get_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR_, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN_, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO_, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG_, __VA_ARGS__)

/* A tenant-uid process's stderr is a pipe, never the log file: its root
 * parent relays what comes out of it (log_relay_pump), line by line, each
 * line written to the log in one write with control bytes and non-ASCII
 * escaped, so a taken-over process can neither write raw bytes into the
 * operator's log nor truncate or rewrite it. */
struct log_relay {
	int fd; /* the pipe's read end, non-blocking; -1: none */
	size_t len;
	char buf[2048]; /* a line not yet ended */
};
/* Relays what is waiting; at the pipe's end (or on error) flushes what is
 * left, closes fd and returns -1. */
int log_relay_pump(struct log_relay *r);

#endif
