/* testutil.h - helpers shared by the cmocka unit tests: temp files. */
#ifndef WARREN_TESTUTIL_H
#define WARREN_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes text to a fresh temp file; returns its path (static buffer per slot). */
static inline const char *write_tmp(int slot, const char *name, const char *text)
{
	static char dirs[8][64];
	static char paths[8][160];
	if (!dirs[slot][0]) {
		snprintf(dirs[slot], sizeof dirs[slot], "/tmp/warren-unit-XXXXXX");
		if (!mkdtemp(dirs[slot]))
			abort();
	}
	snprintf(paths[slot], sizeof paths[slot], "%s/%s", dirs[slot], name);
	FILE *f = fopen(paths[slot], "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
	return paths[slot];
}

#endif
