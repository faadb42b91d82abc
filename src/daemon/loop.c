// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loop.h"

struct loop_src {
	struct loop *loop;
	int fd;
	bool is_timer;
	bool dead;
	loop_fd_cb fd_cb;
	loop_timer_cb timer_cb;
	void *arg;
	struct loop_src *next_dead;
};

struct loop {
	int epfd;
	bool stop;
	bool dispatching;
	struct loop_src *dead; /* freed after the current dispatch round */
	unsigned nr_srcs;
	struct loop_src **srcs; /* every live source, for loop_free */
	unsigned srcs_cap;
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
	return loop;
}

static int track(struct loop *loop, struct loop_src *src)
{
	if (loop->nr_srcs == loop->srcs_cap) {
		unsigned cap = loop->srcs_cap ? loop->srcs_cap * 2 : 16;
		struct loop_src **n = realloc(loop->srcs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		loop->srcs = n;
		loop->srcs_cap = cap;
	}
	loop->srcs[loop->nr_srcs++] = src;
	return 0;
}

static void untrack(struct loop *loop, struct loop_src *src)
{
	for (unsigned i = 0; i < loop->nr_srcs; i++) {
		if (loop->srcs[i] == src) {
			loop->srcs[i] = loop->srcs[--loop->nr_srcs];
			return;
		}
	}
}

static void reap(struct loop *loop)
{
	while (loop->dead) {
		struct loop_src *s = loop->dead;

		loop->dead = s->next_dead;
		free(s);
	}
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	while (loop->nr_srcs)
		loop_del(loop->srcs[0]);
	reap(loop);
	close(loop->epfd);
	free(loop->srcs);
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
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 || track(loop, src) < 0) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		free(src);
		return NULL;
	}
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
	untrack(loop, src);
	/* epoll may still hold an event for it in this round's array. */
	src->next_dead = loop->dead;
	loop->dead = src;
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
	struct loop_src *src;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (arm(fd, ms, periodic) < 0) {
		close(fd);
		return NULL;
	}
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
