/* hostkey.h - load the server's host key, generating an ed25519 one on first start. */
#ifndef WARREN_HOSTKEY_H
#define WARREN_HOSTKEY_H

#include <libssh/libssh.h>

int hostkey_load_or_generate(const char *path, ssh_key *out, char *err, size_t errlen);

#endif
