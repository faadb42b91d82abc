/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nv-file.h"

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int nvemu_nvfile_write(const char *path, const char *buf, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 5);
	int fd, ret;

	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	ret = fd < 0 ? -errno : write_all(fd, buf, len);
	if (!ret && fdatasync(fd))
		ret = -errno;
	if (fd >= 0 && close(fd) && !ret)
		ret = -EIO;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret && fd >= 0)
		unlink(tmp);
	free(tmp);
	return ret;
}

int nvemu_nvfile_read(const char *path, size_t max, char **text, size_t *len)
{
	ssize_t n;
	char *buf;
	int fd;

	*text = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno != ENOENT)
		return -errno;
	if (fd < 0) {
		/* No state yet: the place must take one, or every later save would fail. */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return errno == ENOENT ? -ENOTDIR : -errno;
		close(fd);
		unlink(path);
		return -ENOENT;
	}
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, max + 1);
	close(fd);
	if (n < 0 || (size_t)n > max) {
		free(buf);
		return n < 0 ? -EIO : -EFBIG;
	}
	buf[n] = 0;
	*text = buf;
	*len = (size_t)n;
	return 0;
}

const char *nvemu_nvfile_strerror(int ret)
{
	if (ret == -ENOTDIR)
		return "its directory does not exist";
	if (ret == -EFBIG)
		return "too large to be a saved state";
	return strerror(-ret);
}

int nvemu_nvfile_u64(const char **s, int base, uint64_t max, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;
	int digits = 0;

	for (;; p++, digits++) {
		int d = *p >= '0' && *p <= '9'		       ? *p - '0'
			: base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
							       : -1;
		if (d < 0)
			break;
		if ((uint64_t)d > max || x > (max - (uint64_t)d) / (uint64_t)base)
			return -EINVAL;
		x = x * (uint64_t)base + (uint64_t)d;
	}
	if (!digits || digits > 20)
		return -EINVAL;
	*v = x;
	*s = p;
	return 0;
}

int nvemu_nvfile_expect(const char **s, char c)
{
	if (**s != c)
		return -EINVAL;
	(*s)++;
	return 0;
}

int nvemu_nvfile_lines(const char *text, size_t len, size_t max_line,
		       int (*fn)(void *arg, const char *line, unsigned lineno), void *arg)
{
	char *line = malloc(max_line);
	unsigned lineno = 0;
	size_t pos = 0;
	int ret = 0;

	if (!line)
		return -ENOMEM;
	while (!ret && pos < len) {
		size_t n = 0;

		while (pos < len && text[pos] != '\n') {
			if (n + 1 >= max_line || !text[pos]) {
				ret = -EINVAL;
				break;
			}
			line[n++] = text[pos++];
		}
		if (ret)
			break;
		if (pos == len) {
			ret = -EINVAL;
			break;
		}
		pos++;
		line[n] = 0;
		ret = fn(arg, line, lineno++) ? -EINVAL : 0;
	}
	free(line);
	return ret;
}
