// SPDX-License-Identifier: MIT
/*
 * systemd's service notification protocol (sd_notify(3)): one datagram to
 * $NOTIFY_SOCKET per state change, and WATCHDOG=1 pings from the event loop
 * when the unit sets WatchdogSec. Written against the documented protocol
 * so that nvemud needs no libsystemd; without $NOTIFY_SOCKET it does nothing.
 */
#include <errno.h>
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
