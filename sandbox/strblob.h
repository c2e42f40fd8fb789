/* strblob.h - a command's argv and envp as one NUL-separated blob in a
 * sealed memfd: how a spawn request carries its strings to warren-init
 * (envd.c -> initenv.c) and to the root monitor (monitor.c), bounded on
 * both sides (INIT_SPAWN_MAX_STRS strings, INIT_SPAWN_MAX_BLOB bytes). */
#ifndef WARREN_STRBLOB_H
#define WARREN_STRBLOB_H

/* A sealed memfd holding argv then envp; their counts in *argc, *envc.
 * -1 with errno (E2BIG past the bounds). */
int strblob_memfd(char *const argv[], char *const envp[], int *argc, int *envc);

/* Back from a memfd the other side made: argv (argc strings, NULL), then
 * envp (envc strings, NULL), in one array pointing into *blob_out; free
 * both. NULL when counts, size or contents do not add up. */
char **strblob_read(int memfd, int argc, int envc, char **blob_out);

#endif
