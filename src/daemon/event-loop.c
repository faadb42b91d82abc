// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "event-loop.h"

struct loop_src {
	struct loop *loop;
	int fd;
	bool is_timer;
	bool dead;
	loop_fd_cb fd_cb;
	loop_timer_cb timer_cb;
	void *arg;
	LIST_ENTRY(loop_src) link;	 /* loop->srcs while live */
	SLIST_ENTRY(loop_src) dead_link; /* loop->dead once deleted */
};

struct loop {
	int epfd;
	bool stop;
	bool dispatching;
	SLIST_HEAD(, loop_src) dead; /* freed after the current dispatch round */
	LIST_HEAD(, loop_src) srcs;  /* every live source, for loop_free */
};

struct loop *loop_new(void)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	LIST_INIT(&loop->srcs);
	SLIST_INIT(&loop->dead);
	return loop;
}

static void reap(struct loop *loop)
{
	while (!SLIST_EMPTY(&loop->dead)) {
		struct loop_src *s = SLIST_FIRST(&loop->dead);

		SLIST_REMOVE_HEAD(&loop->dead, dead_link);
		free(s);
	}
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	while (!LIST_EMPTY(&loop->srcs))
		loop_del(LIST_FIRST(&loop->srcs));
	reap(loop);
	close(loop->epfd);
	free(loop);
}

static struct loop_src *add(struct loop *loop, int fd, uint32_t events)
{
	struct loop_src *src = calloc(1, sizeof(*src));
	struct epoll_event ev = { .events = events };

	if (!src)
		return NULL;
	src->loop = loop;
	src->fd = fd;
	ev.data.ptr = src;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(src);
		return NULL;
	}
	LIST_INSERT_HEAD(&loop->srcs, src, link);
	return src;
}

struct loop_src *loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb,
			     void *arg)
{
	struct loop_src *src = add(loop, fd, events);

	if (src) {
		src->fd_cb = cb;
		src->arg = arg;
	}
	return src;
}

int loop_mod_fd(struct loop_src *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (epoll_ctl(src->loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_del(struct loop_src *src)
{
	struct loop *loop;

	if (!src || src->dead)
		return;
	loop = src->loop;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	if (src->is_timer)
		close(src->fd);
	src->dead = true;
	LIST_REMOVE(src, link);
	/* epoll may still hold an event for it in this round's array. */
	SLIST_INSERT_HEAD(&loop->dead, src, dead_link);
	if (!loop->dispatching)
		reap(loop);
}

static int arm(int fd, unsigned ms, bool periodic)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (!ms)
		its.it_value.tv_nsec = 1; /* 0 would disarm */
	if (periodic)
		its.it_interval = its.it_value;
	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int loop_timer_arm(struct loop_src *src, unsigned ms, bool periodic)
{
	return arm(src->fd, ms, periodic);
}

int loop_timer_disarm(struct loop_src *src)
{
	struct itimerspec its = { 0 };

	return timerfd_settime(src->fd, 0, &its, NULL) < 0 ? -errno : 0;
}

struct loop_src *loop_add_disarmed_timer(struct loop *loop, loop_timer_cb cb, void *arg)
{
	struct loop_src *src;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return NULL;
	src = add(loop, fd, EPOLLIN);
	if (!src) {
		close(fd);
		return NULL;
	}
	src->is_timer = true;
	src->timer_cb = cb;
	src->arg = arg;
	return src;
}

struct loop_src *loop_add_timer(struct loop *loop, unsigned ms, bool periodic,
				loop_timer_cb cb, void *arg)
{
	struct loop_src *src = loop_add_disarmed_timer(loop, cb, arg);

	if (src && loop_timer_arm(src, ms, periodic) < 0) {
		loop_del(src);
		return NULL;
	}
	return src;
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(loop->epfd, evs, 64, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	loop->dispatching = true;
	for (int i = 0; i < n; i++) {
		struct loop_src *src = evs[i].data.ptr;

		if (src->dead)
			continue;
		if (src->is_timer) {
			uint64_t ticks;

			if (read(src->fd, &ticks, sizeof(ticks)) != sizeof(ticks))
				continue;
			src->timer_cb(src, src->arg);
		} else {
			src->fd_cb(src, src->fd, evs[i].events, src->arg);
		}
	}
	loop->dispatching = false;
	reap(loop);
	return n;
}

int loop_run(struct loop *loop)
{
	while (!loop->stop) {
		int ret = loop_run_once(loop, -1);

		if (ret < 0)
			return ret;
	}
	return 0;
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}

bool loop_stopped(const struct loop *loop)
{
	return loop->stop;
}
