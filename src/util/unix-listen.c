// SPDX-License-Identifier: MIT
/* Owner-only listening unix sockets that never take a live server's path. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix-listen.h"

/* 0: something accepts on addr; -ECONNREFUSED: a dead socket; else -errno. */
static int probe(const struct sockaddr_un *addr, int type)
{
	int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (fd < 0)
		return -errno;
	/* Non-blocking: a server with a full backlog (or stopped) answers EAGAIN, not a hang. */
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) && errno != EAGAIN &&
	    errno != EINPROGRESS)
		ret = errno == EPROTOTYPE ? 0 : -errno; /* bound, of another type: in use */
	close(fd);
	return ret;
}

int nvemu_unix_listen(const char *path, int type, int backlog, const char *what,
		      struct nvemu_error *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd, ret;

	if (!path || !*path || strlen(path) >= sizeof(addr.sun_path))
		return nvemu_error_set(err, -ENAMETOOLONG,
				       "%s socket %s: empty or longer than %zu bytes", what,
				       path ? path : "(null)", sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return nvemu_error_set(err, -EEXIST,
					       "%s socket %s: exists and is not a socket; not "
					       "replacing it",
					       what, path);
		ret = probe(&addr, type);
		if (!ret)
			return nvemu_error_set(err, -EADDRINUSE,
					       "%s socket %s: another process is serving it", what,
					       path);
		if (ret != -ECONNREFUSED && ret != -ENOENT)
			return nvemu_error_set(err, ret,
					       "%s socket %s: cannot tell whether it is in use: %s",
					       what, path, strerror(-ret));
		/* Stale: its server is gone. */
		if (unlink(path) && errno != ENOENT)
			return nvemu_error_set(err, -errno,
					       "%s socket %s: cannot remove the stale socket: %s",
					       what, path, strerror(errno));
	}
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nvemu_error_set(err, -errno, "%s socket: %s", what, strerror(errno));
	/* Owner-only from the start: no window in which the umask's mode applies. */
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (ret) {
		ret = -errno;
		close(fd);
		return nvemu_error_set(err, ret, "%s socket %s: %s", what, path, strerror(-ret));
	}
	if (chmod(path, 0600) || listen(fd, backlog)) {
		ret = -errno;
		close(fd);
		unlink(path);
		return nvemu_error_set(err, ret, "%s socket %s: %s", what, path, strerror(-ret));
	}
	return fd;
}
