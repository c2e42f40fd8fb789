/* strblob.c - argv and envp in a sealed memfd, written and read back with
 * their bounds checked (strblob.h). */
#include "strblob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "initproto.h"

int strblob_memfd(char *const argv[], char *const envp[], int *argc, int *envc)
{
	int fd = memfd_create("warren-spawn", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	*argc = *envc = 0;
	size_t total = 0;
	for (int pass = 0; pass < 2; pass++)
		for (char *const *v = pass ? envp : argv; v && *v; v++) {
			size_t l = strlen(*v) + 1;
			total += l;
			if (total > INIT_SPAWN_MAX_BLOB || *argc + *envc >= INIT_SPAWN_MAX_STRS ||
			    write(fd, *v, l) != (ssize_t)l) {
				close(fd);
				errno = E2BIG;
				return -1;
			}
			(pass ? (*envc)++ : (*argc)++);
		}
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	return fd;
}

char **strblob_read(int memfd, int argc, int envc, char **blob_out)
{
	struct stat st;
	if (argc < 1 || envc < 0 || argc + envc > INIT_SPAWN_MAX_STRS || fstat(memfd, &st) < 0 ||
	    st.st_size <= 0 || st.st_size > INIT_SPAWN_MAX_BLOB)
		return NULL;
	size_t len = (size_t)st.st_size;
	char *blob = malloc(len + 1);
	char **v = calloc((size_t)(argc + envc + 2), sizeof *v);
	if (blob == NULL || v == NULL || pread(memfd, blob, len, 0) != (ssize_t)len) {
		free(blob);
		free(v);
		return NULL;
	}
	blob[len] = '\0';
	size_t off = 0;
	for (int i = 0, k = 0; i < argc + envc; i++) {
		if (off >= len) {
			free(blob);
			free(v);
			return NULL;
		}
		v[k++] = blob + off;
		off += strlen(blob + off) + 1;
		if (i == argc - 1)
			v[k++] = NULL; /* argv ends, envp follows */
	}
	*blob_out = blob;
	return v;
}
