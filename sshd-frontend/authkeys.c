/* authkeys.c - authorized keys parsing and matching via libssh's pki API. */
#include "authkeys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

int authkeys_parse_line(const char *line, ssh_key *out, const char **why)
{
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '\n' || *line == '#')
		return 0;
	char type[64], b64[16384];
	if (sscanf(line, "%63s %16383s", type, b64) != 2) {
		*why = "expected: KEYTYPE BASE64 [comment]";
		return -1;
	}
	enum ssh_keytypes_e kt = ssh_key_type_from_name(type);
	if (kt == SSH_KEYTYPE_UNKNOWN) {
		*why = strchr(type, '=') || strchr(type, ',') ? "key options are not supported"
		                                              : "unknown key type";
		return -1;
	}
	if (kt == SSH_KEYTYPE_DSS || strstr(type, "-cert-v01")) {
		*why = "DSA keys and certificates are not accepted";
		return -1;
	}
	if (ssh_pki_import_pubkey_base64(b64, kt, out) != SSH_OK) {
		*why = "cannot decode the key";
		return -1;
	}
	return 1;
}

static bool match_line(const char *line, const char *file, int lineno, const ssh_key pub)
{
	ssh_key k = NULL;
	const char *why = NULL;
	int rc = authkeys_parse_line(line, &k, &why);
	if (rc < 0) {
		log_warn("%s:%d: key ignored: %s", file, lineno, why);
		return false;
	}
	if (rc == 0)
		return false;
	bool ok = ssh_key_cmp(k, pub, SSH_KEY_CMP_PUBLIC) == 0;
	ssh_key_free(k);
	return ok;
}

bool authkeys_match(const struct tenant_conf *t, const ssh_key pub)
{
	for (int i = 0; i < t->nkeys; i++)
		if (match_line(t->keys[i], t->path, t->key_lines[i], pub))
			return true;
	if (t->authorized_keys == NULL)
		return false;
	FILE *f = fopen(t->authorized_keys, "re");
	if (f == NULL) {
		log_warn("%s: authorized_keys %s: cannot open", t->path, t->authorized_keys);
		return false;
	}
	char line[17000];
	int lineno = 0;
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		lineno++;
		found = match_line(line, t->authorized_keys, lineno, pub);
	}
	fclose(f);
	return found;
}
