/* SPDX-License-Identifier: MIT */
/*
 * The keyring: named secrets read from files (SPDK's keyring_file module:
 * keyring_file_add_key, keyring_file_remove_key, keyring_get_keys). Hosts
 * refer to them by name (nvmf_subsystem_add_host --dhchap_key/--dhchap_ctrlr_key),
 * so secrets never travel over the RPC socket nor land in save_config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <nvemu/tcp.h>

#include "daemon.h"
#include "rpc.h"

#define KEY_NAME_MAX  64
#define KEY_FILE_MAX  1024 /* a DHHC-1 secret or a PSK interchange string is < 200 bytes */
#define KEYRING_MAX   1024

static struct nvemud_key *find_key(struct nvemud *d, const char *name)
{
	for (unsigned i = 0; i < d->nr_keys; i++)
		if (!strcmp(d->keys[i].name, name))
			return &d->keys[i];
	return NULL;
}

const char *nvemud_key_secret(struct nvemud *d, const char *name)
{
	struct nvemud_key *k = find_key(d, name);

	return k ? k->secret : NULL;
}

static void key_free(struct nvemud_key *k)
{
	if (k->secret)
		OPENSSL_cleanse(k->secret, strlen(k->secret));
	free(k->secret);
	free(k->name);
	free(k->path);
}

void nvemud_keyring_free(struct nvemud *d)
{
	for (unsigned i = 0; i < d->nr_keys; i++)
		key_free(&d->keys[i]);
	free(d->keys);
	d->keys = NULL;
	d->nr_keys = 0;
}

/* The file's secret: owner-only permissions, printable, one line. NULL: e set. */
static char *read_key_file(const char *path, struct rpc_err *e)
{
	char buf[KEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	char *s;
	int fd;

	if (path[0] != '/') {
		rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "path: must be absolute");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		rpc_err_set(e, RPC_ERR_IO, "path: %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "path: %s: not a regular file", path);
		return NULL;
	}
	/* As SPDK: a secret others can read is refused. */
	if (st.st_mode & 077) {
		close(fd);
		rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
			    "path: %s: permissions 0%o let others read it (chmod 0600)", path,
			    (unsigned)(st.st_mode & 0777));
		return NULL;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n > KEY_FILE_MAX) {
		OPENSSL_cleanse(buf, sizeof(buf));
		rpc_err_set(e, n < 0 ? RPC_ERR_IO : RPC_ERR_INVALID_PARAMS,
			    "path: %s: %s", path, n < 0 ? strerror(errno) : "over 1 KiB");
		return NULL;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] < 0x21 || buf[i] > 0x7e) {
			OPENSSL_cleanse(buf, sizeof(buf));
			rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				    "path: %s: the key must be one line of printable characters",
				    path);
			return NULL;
		}
	}
	if (!n) {
		rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "path: %s: empty", path);
		return NULL;
	}
	s = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!s)
		rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	return s;
}

static int keyring_file_add_key(struct nvemud *d, json_t *params, json_t **result,
				struct rpc_err *e)
{
	const char *name = rpc_str(params, "name"), *path = rpc_str(params, "path");
	struct nvemud_key k = { 0 }, *keys;

	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "name: letters, digits, '_', '-' and '.' only");
	if (find_key(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: key %s exists", name);
	if (d->nr_keys >= KEYRING_MAX)
		return rpc_err_set(e, RPC_ERR_LIMIT, "name: at most %u keys", KEYRING_MAX);
	k.secret = read_key_file(path, e);
	if (!k.secret)
		return -1;
	k.name = strdup(name);
	k.path = strdup(path);
	keys = k.name && k.path ? realloc(d->keys, (d->nr_keys + 1) * sizeof(*keys)) : NULL;
	if (!keys) {
		key_free(&k);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	d->keys = keys;
	d->keys[d->nr_keys++] = k;
	return 0;
}

/* Whether a host of some subsystem was added with the key. */
static bool key_in_use(struct nvemud *d, const char *name)
{
	for (unsigned i = 0; d->tcp && i < d->nr_subsys; i++) {
		const char *a, *b;

		for (unsigned h = 0; !nvemu_tcp_get_host_auth(d->tcp, d->subsys[i], h, &a, &b); h++)
			if ((a && !strcmp(a, name)) || (b && !strcmp(b, name)))
				return true;
	}
	return false;
}

static int keyring_file_remove_key(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemud_key *k = find_key(d, name);

	if (!k)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no key %s", name);
	if (key_in_use(d, name))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "name: key %s is in use by a host (nvmf_subsystem_remove_host first)",
				   name);
	key_free(k);
	*k = d->keys[--d->nr_keys];
	return 0;
}

static int keyring_get_keys(struct nvemud *d, json_t *params, json_t **result,
			    struct rpc_err *e)
{
	json_t *arr = json_array();

	/* Never the secret itself. */
	for (unsigned i = 0; i < d->nr_keys; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "name",
						     d->keys[i].name, "module", "keyring_file",
						     "path", d->keys[i].path, "removed", 0));
	*result = arr;
	return 0;
}

void nvemud_keyring_save(struct nvemud *d, json_t *calls)
{
	for (unsigned i = 0; i < d->nr_keys; i++)
		json_array_append_new(calls, json_pack("{s:s, s:{s:s, s:s}}", "method",
						       "keyring_file_add_key", "params", "name",
						       d->keys[i].name, "path", d->keys[i].path));
}

const struct rpc_method rpc_keyring_methods[] = {
	{ "keyring_file_add_key", keyring_file_add_key,
	  (const struct rpc_param[]){ { "name", RPC_P_STR, true, 1, KEY_NAME_MAX },
				      { "path", RPC_P_STR, true, 1, 4095 },
				      { .name = NULL } },
	  "Add a key read from a file (owner-only permissions): a DH-HMAC-CHAP secret (DHHC-1:..) or a TLS PSK (NVMeTLSkey-1:..)." },
	{ "keyring_file_remove_key", keyring_file_remove_key,
	  (const struct rpc_param[]){ { "name", RPC_P_STR, true, 1, KEY_NAME_MAX }, { .name = NULL } },
	  "Remove a key no host uses." },
	{ "keyring_get_keys", keyring_get_keys, (const struct rpc_param[]){ { .name = NULL } },
	  "List the keys (names and files, never the secrets)." },
	{ .name = NULL },
};
