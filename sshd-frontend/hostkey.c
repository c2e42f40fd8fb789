/* hostkey.c - host key handling: read once in the master, handed to every
 * connection by ssh_bind (no per-connection key parsing). */
#include "hostkey.h"
#include "../sandbox/fmt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hostkey_load_or_generate(const char *path, ssh_key *out, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		ssh_key key = NULL;
		if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
			snprintf(err, errlen, "cannot generate an ed25519 host key");
			return -1;
		}
		char tmp[4096], pub[4096];
		fmt_into(tmp, sizeof tmp, "%s.tmp", path);
		fmt_into(pub, sizeof pub, "%s.pub", path);
		mode_t old = umask(077);
		unlink(tmp);
		int rc = ssh_pki_export_privkey_file(key, NULL, NULL, NULL, tmp);
		umask(old);
		if (rc != SSH_OK || chmod(tmp, 0600) < 0 || rename(tmp, path) < 0) {
			snprintf(err, errlen, "%s: cannot write the new host key", path);
			ssh_key_free(key);
			unlink(tmp);
			return -1;
		}
		char *b64 = NULL;
		if (ssh_pki_export_pubkey_base64(key, &b64) == SSH_OK) {
			FILE *f = fopen(pub, "we");
			if (f) {
				fprintf(f, "%s %s\n", ssh_key_type_to_char(ssh_key_type(key)), b64);
				fclose(f);
			}
			ssh_string_free_char(b64);
		}
		ssh_key_free(key);
	} else if (st.st_mode & 077) {
		snprintf(err, errlen, "%s: permissions %04o are too open (want 0600)", path,
		         (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, out) != SSH_OK) {
		snprintf(err, errlen, "%s: cannot read the host key", path);
		return -1;
	}
	return 0;
}
