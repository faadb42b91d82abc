// SPDX-License-Identifier: MIT
/*
 * NVMe-MI endpoints on a DSP0253 serial line, for BMC stacks that speak MCTP
 * over a UART: a pty nvemud creates (the peer opens the slave it names), or
 * one peer at a time on a unix or TCP stream socket (a bridge to a UART).
 * A second peer on a socket is accepted and closed at once: a serial line
 * has two ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <nvemu/mctp.h>

#include "daemon.h"
#include "event-loop.h"
#include "util/unix-listen.h"

enum mi_serial_kind { MI_SERIAL_PTY, MI_SERIAL_UNIX, MI_SERIAL_TCP };

struct mi_serial {
	struct nvemud *d;
	struct nvemu_mctp_ep *ep;
	enum mi_serial_kind kind;
	char spec[NVEMUD_MI_SERIAL_SPEC_MAX]; /* as given, for save_config */
	char name[NVEMUD_MI_SERIAL_SPEC_MAX]; /* the pty, socket path or address:port */
	unsigned baud;
	int lfd;   /* listening socket; -1 for a pty */
	int slave; /* pty: held open so the master never reads a hang-up */
	int cfd;   /* the line: the pty master or the peer's socket; -1 when none */
	struct nvemu_mctp_serial *line;
	struct loop_src *lsrc, *csrc;
	uint64_t connects, refused;
};

static void line_close(struct mi_serial *s)
{
	loop_del(s->csrc);
	s->csrc = NULL;
	nvemu_mctp_serial_destroy(s->line);
	s->line = NULL;
	if (s->cfd >= 0)
		close(s->cfd);
	s->cfd = -1;
}

static void line_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct mi_serial *s = arg;
	int ret = nvemu_mctp_serial_handle(s->line);

	if (ret >= 0 || ret == -EAGAIN || ret == -EINTR)
		return;
	if (s->kind == MI_SERIAL_PTY) {
		/* Cannot happen while the slave is held; never spin on it. */
		nvemud_log(s->d, NVEMUD_LOG_WARN, "MI serial %s: %s", s->name, strerror(-ret));
		loop_del(s->csrc);
		s->csrc = NULL;
		return;
	}
	nvemud_log_peer(s->d, NVEMUD_LOG_INFO, "mi serial gone", s->name, NULL, 0, "MI serial %s: peer gone",
			s->name);
	line_close(s);
}

static int line_open(struct mi_serial *s, int fd, struct nvemu_error *err)
{
	int ret = nvemu_mctp_serial_create(fd, s->ep, &s->line, err);

	if (ret)
		return ret;
	s->cfd = fd;
	s->csrc = loop_add_fd(s->d->loop, fd, EPOLLIN, line_cb, s);
	if (!s->csrc) {
		s->cfd = -1;
		nvemu_mctp_serial_destroy(s->line);
		s->line = NULL;
		return nvemu_error_set(err, -ENOMEM, "serial: cannot watch the line");
	}
	return 0;
}

static void accept_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct mi_serial *s = arg;
	struct nvemu_error err = { 0 };
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return;
	if (s->line) {
		s->refused++;
		close(cfd);
		return;
	}
	if (line_open(s, cfd, &err)) {
		const struct nvemud_log_field f[] = { { NVEMUD_F_TRANSPORT, "mctp-serial" },
						      { NVEMUD_F_PEER, s->name } };

		nvemud_log_peer(s->d, NVEMUD_LOG_WARN, "mi serial open", s->name, f, 2,
				"MI serial %s: %s", s->name, err.msg);
		close(cfd);
		return;
	}
	s->connects++;
	nvemud_log_peer(s->d, NVEMUD_LOG_INFO, "mi serial connected", s->name, NULL, 0,
			"MI serial %s: peer connected", s->name);
}

static int open_pty(struct mi_serial *s, struct nvemu_error *err)
{
	struct termios t;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	const char *n;

	if (m < 0)
		return nvemu_error_set(err, -errno, "serial: no pty: %s", strerror(errno));
	n = grantpt(m) || unlockpt(m) ? NULL : ptsname(m);
	if (!n || strlen(n) >= sizeof(s->name)) {
		close(m);
		return nvemu_error_set(err, -EIO, "serial: cannot set up the pty");
	}
	snprintf(s->name, sizeof(s->name), "%s", n);
	s->slave = open(s->name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	/* Raw both ways: flag and escape bytes must pass untouched. */
	if (s->slave < 0 || tcgetattr(s->slave, &t)) {
		close(m);
		return nvemu_error_set(err, -EIO, "serial: cannot open %s", s->name);
	}
	cfmakeraw(&t);
	tcsetattr(s->slave, TCSANOW, &t);
	if (line_open(s, m, err)) {
		close(m);
		return -EIO;
	}
	return 0;
}

/* "tcp:HOST:PORT" (PORT 0: any free port; [v6]:PORT too). */
static int open_tcp(struct mi_serial *s, const char *addr, struct nvemu_error *err)
{
	char host[NVEMUD_MI_SERIAL_SPEC_MAX], port[16], rhost[64], rport[16];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	size_t hl;
	int fd, one = 1;

	if (!colon || colon == addr || strlen(colon + 1) >= sizeof(port))
		return nvemu_error_set(err, -EINVAL, "serial: tcp:ADDRESS:PORT, got tcp:%s", addr);
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl > 2 && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	snprintf(host, sizeof(host), "%.*s", (int)hl, addr);
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (getaddrinfo(host, port, &hints, &ai) || !ai)
		return nvemu_error_set(err, -EINVAL, "serial: %s:%s is not a numeric address and port",
				       host, port);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, rhost, sizeof(rhost), rport, sizeof(rport),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		int e = errno;

		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return nvemu_error_set(err, -e, "serial: cannot listen on %s:%s: %s", host, port,
				       strerror(e));
	}
	freeaddrinfo(ai);
	snprintf(s->name, sizeof(s->name), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", rhost,
		 rport);
	s->lfd = fd;
	return 0;
}

static int open_listener(struct mi_serial *s, struct nvemu_error *err)
{
	int ret;

	if (s->kind == MI_SERIAL_UNIX) {
		snprintf(s->name, sizeof(s->name), "%s", s->spec + 5);
		ret = nvemu_unix_listen(s->name, SOCK_STREAM, 4, "MI serial socket", err);
		if (ret < 0)
			return ret;
		s->lfd = ret;
	} else {
		ret = open_tcp(s, s->spec + 4, err);
		if (ret)
			return ret;
	}
	s->lsrc = loop_add_fd(s->d->loop, s->lfd, EPOLLIN, accept_cb, s);
	if (!s->lsrc)
		return nvemu_error_set(err, -ENOMEM, "serial: cannot watch the listener");
	return 0;
}

int nvemud_mi_serial_open(struct nvemud *d, struct nvemu_mctp_ep *ep, const char *spec,
			  unsigned baud, struct mi_serial **out, struct nvemu_error *err)
{
	struct mi_serial *s;
	int ret;

	if (!d->loop)
		return nvemu_error_set(err, -EINVAL, "serial: needs the daemon's event loop");
	if (!spec || strlen(spec) >= sizeof(s->spec))
		return nvemu_error_set(err, -EINVAL, "serial: at most %d characters",
				       NVEMUD_MI_SERIAL_SPEC_MAX - 1);
	s = calloc(1, sizeof(*s));
	if (!s)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	*s = (struct mi_serial){ .d = d, .ep = ep, .baud = baud, .lfd = -1, .slave = -1,
				 .cfd = -1 };
	snprintf(s->spec, sizeof(s->spec), "%s", spec);
	if (!strcmp(spec, "pty")) {
		s->kind = MI_SERIAL_PTY;
		ret = open_pty(s, err);
	} else if (!strncmp(spec, "unix:", 5) && spec[5] == '/') {
		s->kind = MI_SERIAL_UNIX;
		ret = open_listener(s, err);
	} else if (!strncmp(spec, "tcp:", 4)) {
		s->kind = MI_SERIAL_TCP;
		ret = open_listener(s, err);
	} else {
		ret = nvemu_error_set(err, -EINVAL,
				      "serial: pty, unix:/ABSOLUTE/PATH or tcp:ADDRESS:PORT, got %.64s",
				      spec);
	}
	if (ret) {
		nvemud_mi_serial_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

void nvemud_mi_serial_close(struct mi_serial *s)
{
	if (!s)
		return;
	line_close(s);
	loop_del(s->lsrc);
	if (s->lfd >= 0) {
		close(s->lfd);
		if (s->kind == MI_SERIAL_UNIX)
			unlink(s->name);
	}
	if (s->slave >= 0)
		close(s->slave);
	free(s);
}

const char *nvemud_mi_serial_spec(const struct mi_serial *s)
{
	return s->spec;
}

const char *nvemud_mi_serial_name(const struct mi_serial *s)
{
	return s->name;
}

unsigned nvemud_mi_serial_baud(const struct mi_serial *s)
{
	return s->baud;
}

bool nvemud_mi_serial_connected(const struct mi_serial *s)
{
	return s->kind == MI_SERIAL_PTY || s->line;
}
