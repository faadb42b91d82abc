// SPDX-License-Identifier: MIT
/*
 * Configuration and snapshot files: read only from regular files of bounded
 * size, written atomically and never over a bdev's backing file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpc.h"

/* A configuration or snapshot file larger than this is refused (not read). */
#define JSON_FILE_MAX (64u << 20)

int nvemud_read_json_file(const char *path, const char *field, json_t **out,
			  struct rpc_err *e)
{
	/* Non-blocking open: a FIFO must not stall the daemon before it is refused. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	json_error_t jerr;
	struct stat st;
	char *buf;
	size_t len = 0;

	*out = NULL;
	if (fd < 0)
		return rpc_err_set(e, RPC_ERR_IO, "%s: cannot read %.150s: %s", field, path,
				   strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: %.150s is not a regular file",
				   field, path);
	}
	if ((uint64_t)st.st_size > JSON_FILE_MAX) {
		close(fd);
		return rpc_err_set(e, RPC_ERR_LIMIT, "%s: %.150s is larger than %u MiB", field,
				   path, JSON_FILE_MAX >> 20);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	while (len <= (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			free(buf);
			close(fd);
			return rpc_err_set(e, RPC_ERR_IO, "%s: cannot read %.150s: %s", field,
					   path, strerror(err));
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > (size_t)st.st_size) {
		free(buf);
		return rpc_err_set(e, RPC_ERR_IO, "%s: %.150s changed while being read", field,
				   path);
	}
	*out = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (!*out)
		return rpc_err_set(e, RPC_ERR_PARSE, "%s: %.150s:%d:%d: %.80s", field, path,
				   jerr.line, jerr.column, jerr.text);
	return 0;
}

/* Write atomically: a crash never leaves half a file under the final name. */
static int write_json_file(const char *path, json_t *j, struct rpc_err *e)
{
	char tmp[4200];
	struct stat st;
	int fd, err;

	/* Never write through (or block on) a FIFO, device or directory at the name. */
	if (!lstat(path, &st) && !S_ISREG(st.st_mode))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "filename: %.200s exists and is not a regular file", path);
	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return rpc_err_set(e, RPC_ERR_IO, "filename: cannot write %.200s: %s", path,
				   strerror(errno));
	if (json_dumpfd(j, fd, JSON_INDENT(2) | JSON_SORT_KEYS) || fsync(fd)) {
		err = errno;
		close(fd);
		unlink(tmp);
		return rpc_err_set(e, RPC_ERR_IO, "filename: cannot write %.200s: %s", path,
				   strerror(err));
	}
	close(fd);
	if (rename(tmp, path)) {
		err = errno;
		unlink(tmp);
		return rpc_err_set(e, RPC_ERR_IO, "filename: cannot write %.200s: %s", path,
				   strerror(err));
	}
	return 0;
}

int nvemud_write_json(struct nvemud *d, const char *path, json_t *j, struct rpc_err *e)
{
	struct stat st, bst;

	/* Overwriting a bdev's backing file with JSON would destroy the disk under it. */
	if (!stat(path, &st)) {
		for (unsigned i = 0; i < d->nr_bdevs; i++) {
			const char *f = d->bdevs[i].filename;

			if (f && !stat(f, &bst) && bst.st_dev == st.st_dev && bst.st_ino == st.st_ino)
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
						   "filename: %.200s is the backing file of bdev %s",
						   path, d->bdevs[i].bdev->name);
		}
	}
	return write_json_file(path, j, e);
}
