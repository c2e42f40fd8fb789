/* record.h - session recordings in asciicast v2 (asciinema play plays them):
 * files created by the root monitor under state_dir/recordings/<tenant>/,
 * mode 0600 in a 0700 root directory, and written by the session process
 * through the descriptor the monitor hands over. */
#ifndef WARREN_RECORD_H
#define WARREN_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct recording {
	int fd; /* -1: not recording */
	struct timespec t0;
	uint64_t written, max;
};

/* session side: ask the monitor for a file, write the header; 0, -1 on
 * failure, -2 when the tenant's recordings are at record_total_max */
int record_start(struct recording *r, int sock, int channel, int cols, int rows, const char *term,
                 const char *title, uint64_t max_bytes);
/* kind "o" output, "i" input, "r" resize ("COLSxROWS") */
void record_event(struct recording *r, const char *kind, const void *data, size_t len);
void record_stop(struct recording *r);

#endif
