/* fuzz_notify.c - libFuzzer target: the status protocol's writer and
 * checker (sshd-frontend/notify.c). Whatever the argument, the writer makes
 * one line; the checker never lets an "A" or "E" through out of turn. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../sshd-frontend/notify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char arg[512];
	size_t n = size - 1 < sizeof arg - 1 ? size - 1 : sizeof arg - 1;
	memcpy(arg, data + 1, n);
	arg[n] = '\0';
	char line[NOTE_MAX];
	size_t len = notify_line(line, (char)data[0], arg);
	if (len > NOTE_MAX || line[len - 1] != '\n' || memchr(line, '\n', len - 1) != NULL)
		abort();
	line[len - 1] = '\0';
	for (int state = 0; state < 4; state++) {
		const char *a;
		enum note_kind k = notify_check(line, state & 1, state & 2, &a);
		if ((k == NOTE_AUTH && (state & 1)) || (k == NOTE_ENV && state != 1))
			abort();
		if (k != NOTE_NONE && a != line + 1)
			abort();
	}
	return 0;
}
