// SPDX-License-Identifier: MIT
/*
 * systemd's service notification protocol (sd_notify(3)): one datagram to
 * $NOTIFY_SOCKET per state change, and WATCHDOG=1 pings from the event loop
 * when the unit sets WatchdogSec. Written against the documented protocol
 * so that nvemud needs no libsystemd; without $NOTIFY_SOCKET it does nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "event-loop.h"

int nvemud_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t sl;
	size_t pl;
	ssize_t n;
	int fd;

	if (!path || !*path)
		return 0;
	pl = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || pl >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, pl);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
	close(fd);
	return n < 0 ? -errno : 0;
}

static void watchdog_cb(struct loop_src *src, void *arg)
{
	(void)src;
	(void)arg;
	nvemud_sd_notify("WATCHDOG=1");
}

/*
 * Pings at half the interval systemd asks for, from the loop itself: a
 * stuck loop stops pinging and systemd restarts the service.
 */
struct loop_src *nvemud_sd_watchdog_start(struct loop *loop)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long us;
	char *end;

	if (!usec || !getenv("NOTIFY_SOCKET"))
		return NULL;
	if (pid && strtol(pid, NULL, 10) != getpid())
		return NULL; /* meant for another process */
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno || *end || us < 2000)
		return NULL;
	return loop_add_timer(loop, (unsigned)(us / 2000 > 3600000 ? 3600000 : us / 2000), true,
			      watchdog_cb, NULL);
}

/* ---- socket activation (sd_listen_fds(3)): fds from 3, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES */

#define SD_LISTEN_FDS_START 3

int nvemud_sd_listen_fd(const char *name, char *path, size_t path_size, char *msg,
			size_t msg_size)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);
	int n, idx = 0, fd, v;
	char *end;
	long p;

	if (!pid || !fds)
		return -1;
	errno = 0;
	p = strtol(pid, &end, 10);
	if (errno || *end || p != getpid())
		return -1; /* meant for another process */
	n = (int)strtol(fds, &end, 10);
	if (*end || n < 1 || n > 64) {
		snprintf(msg, msg_size, "LISTEN_FDS: a number from 1 to 64: %s", fds);
		return -2;
	}
	/* Named sockets (FileDescriptorName=): the one called name, else the first. */
	for (int i = 0; names && i < n; i++) {
		const char *s = names;
		size_t nl = strlen(name);

		for (int j = 0; j < i && s; j++) {
			s = strchr(s, ':');
			s = s ? s + 1 : NULL;
		}
		if (s && !strncmp(s, name, nl) && (s[nl] == ':' || !s[nl])) {
			idx = i;
			break;
		}
	}
	fd = SD_LISTEN_FDS_START + idx;
	/* Ours alone: not passed on to anything nvemud starts. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; i < n; i++)
		if (i != idx)
			close(SD_LISTEN_FDS_START + i);
	sl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &sl) || v != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &sl) || !v) {
		snprintf(msg, msg_size, "socket activation: fd %d is not a listening stream socket", fd);
		return -2;
	}
	sl = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) || sa.sun_family != AF_UNIX ||
	    sl <= offsetof(struct sockaddr_un, sun_path) || !sa.sun_path[0]) {
		snprintf(msg, msg_size, "socket activation: fd %d is not a unix socket with a path", fd);
		return -2;
	}
	snprintf(path, path_size, "%.*s", (int)(sl - offsetof(struct sockaddr_un, sun_path)),
		 sa.sun_path);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		snprintf(msg, msg_size, "socket activation: fd %d: %s", fd, strerror(errno));
		return -2;
	}
	return fd;
}
