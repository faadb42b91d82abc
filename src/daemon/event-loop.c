// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "event-loop.h"

struct loop_src {
	struct loop *loop;
	int fd;
	bool is_timer;
	bool is_poller;
	bool needs_polling;
	bool dead;
	loop_poll_cb poll_cb;
	loop_fd_cb fd_cb;
	loop_timer_cb timer_cb;
	void *arg;
	LIST_ENTRY(loop_src) link;	 /* loop->srcs while live */
	SLIST_ENTRY(loop_src) dead_link; /* loop->dead once deleted */
	LIST_ENTRY(loop_src) poll_link;	 /* loop->pollers or ->flushers until reaped */
};

struct loop {
	int epfd;
	bool stop;
	bool dispatching;
	SLIST_HEAD(, loop_src) dead; /* freed after the current dispatch round */
	LIST_HEAD(, loop_src) srcs;  /* every live source, for loop_free */
	LIST_HEAD(, loop_src) pollers;
	LIST_HEAD(, loop_src) flushers; /* run after the pollers */
	unsigned needs_polling; /* live pollers marked so */
	unsigned busy_poll_us;
	unsigned idle_poll_ms;
	uint64_t last_work_ns;
	struct loop_stats st;

	pthread_mutex_t *lock; /* the model lock, held while dispatching */
	bool locked;	       /* by this loop's thread, now */
	bool running;	       /* inside loop_run (atomic) */
	pthread_t thread;      /* which thread, while running */
	int msg_fd;	       /* eventfd: messages posted (-1: none) */
	struct loop_src *msg_src;
	pthread_mutex_t msg_lock;
	struct loop_msg *msg_head, **msg_tail;
	void *user;
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
	LIST_INIT(&loop->pollers);
	LIST_INIT(&loop->flushers);
	SLIST_INIT(&loop->dead);
	loop->busy_poll_us = LOOP_BUSY_POLL_US_DEFAULT;
	loop->idle_poll_ms = LOOP_IDLE_POLL_MS_DEFAULT;
	loop->msg_fd = -1;
	loop->msg_tail = &loop->msg_head;
	pthread_mutex_init(&loop->msg_lock, NULL);
	return loop;
}

static void reap(struct loop *loop)
{
	while (!SLIST_EMPTY(&loop->dead)) {
		struct loop_src *s = SLIST_FIRST(&loop->dead);

		SLIST_REMOVE_HEAD(&loop->dead, dead_link);
		/* Pollers leave their list only here: a poller round may be walking it. */
		if (s->is_poller)
			LIST_REMOVE(s, poll_link);
		free(s);
	}
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	loop_run_messages(loop);
	while (!LIST_EMPTY(&loop->srcs))
		loop_del(LIST_FIRST(&loop->srcs));
	reap(loop);
	if (loop->msg_fd >= 0)
		close(loop->msg_fd);
	pthread_mutex_destroy(&loop->msg_lock);
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
	if (src->is_poller)
		loop_poller_set_needs_polling(src, false);
	else
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

static struct loop_src *add_poller(struct loop *loop, loop_poll_cb cb, void *arg,
				   bool flusher)
{
	struct loop_src *src = calloc(1, sizeof(*src));

	if (!src)
		return NULL;
	src->loop = loop;
	src->fd = -1;
	src->is_poller = true;
	src->poll_cb = cb;
	src->arg = arg;
	LIST_INSERT_HEAD(&loop->srcs, src, link);
	if (flusher)
		LIST_INSERT_HEAD(&loop->flushers, src, poll_link);
	else
		LIST_INSERT_HEAD(&loop->pollers, src, poll_link);
	return src;
}

struct loop_src *loop_add_poller(struct loop *loop, loop_poll_cb cb, void *arg)
{
	return add_poller(loop, cb, arg, false);
}

struct loop_src *loop_add_flusher(struct loop *loop, loop_poll_cb cb, void *arg)
{
	return add_poller(loop, cb, arg, true);
}

void loop_poller_set_needs_polling(struct loop_src *src, bool on)
{
	if (!src || src->dead || src->needs_polling == on)
		return;
	src->needs_polling = on;
	if (on)
		src->loop->needs_polling++;
	else
		src->loop->needs_polling--;
}

void loop_set_polling(struct loop *loop, unsigned busy_poll_us, unsigned idle_poll_ms)
{
	if (busy_poll_us > LOOP_BUSY_POLL_US_MAX)
		busy_poll_us = LOOP_BUSY_POLL_US_MAX;
	if (!idle_poll_ms)
		idle_poll_ms = 1;
	if (idle_poll_ms > LOOP_IDLE_POLL_MS_MAX)
		idle_poll_ms = LOOP_IDLE_POLL_MS_MAX;
	loop->busy_poll_us = busy_poll_us;
	loop->idle_poll_ms = idle_poll_ms;
}

void loop_get_stats(const struct loop *loop, struct loop_stats *st)
{
	*st = loop->st;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_pollers(struct loop *loop)
{
	struct loop_src *p;
	int work = 0;

	LIST_FOREACH(p, &loop->pollers, poll_link) {
		int r;

		if (p->dead)
			continue;
		r = p->poll_cb(p->arg);
		if (r > 0)
			work += r;
	}
	return work;
}

/* Last in an iteration: what the callbacks and pollers queued starts here. */
static int run_flushers(struct loop *loop)
{
	struct loop_src *p;
	int work = 0;

	LIST_FOREACH(p, &loop->flushers, poll_link) {
		int r;

		if (p->dead)
			continue;
		r = p->poll_cb(p->arg);
		if (r > 0)
			work += r;
	}
	return work;
}

/* The wait the caller asked for, shortened by busy and needed polling. */
static int effective_timeout(struct loop *loop, int timeout_ms, uint64_t *now)
{
	if (timeout_ms == 0)
		return 0;
	if (loop->busy_poll_us && loop->last_work_ns) {
		*now = now_ns();
		if (*now - loop->last_work_ns < (uint64_t)loop->busy_poll_us * 1000u)
			return 0;
	}
	if (loop->needs_polling && (timeout_ms < 0 || (unsigned)timeout_ms > loop->idle_poll_ms))
		return (int)loop->idle_poll_ms;
	return timeout_ms;
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	struct epoll_event evs[64];
	uint64_t now = 0;
	int tmo = effective_timeout(loop, timeout_ms, &now);
	int n, work, io = 0;

	loop->st.iterations++;
	if (tmo)
		loop->st.sleeps++;
	else
		loop->st.busy_polls++;
	n = epoll_wait(loop->epfd, evs, 64, tmo);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	loop_io_lock(loop);
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
			io++;
			src->fd_cb(src, src->fd, evs[i].events, src->arg);
		}
	}
	work = run_pollers(loop);
	work += run_flushers(loop);
	loop->dispatching = false;
	reap(loop);
	loop_io_unlock(loop);
	/* Timers are not traffic: a periodic tick must not keep the loop spinning. */
	if ((io > 0 || work > 0) && loop->busy_poll_us)
		loop->last_work_ns = now_ns();
	return n + work;
}

int loop_run(struct loop *loop)
{
	int ret = 0;

	loop->thread = pthread_self();
	__atomic_store_n(&loop->running, true, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&loop->stop, __ATOMIC_ACQUIRE)) {
		ret = loop_run_once(loop, -1);
		if (ret < 0)
			break;
		ret = 0;
	}
	__atomic_store_n(&loop->running, false, __ATOMIC_RELEASE);
	return ret;
}

void loop_stop(struct loop *loop)
{
	uint64_t one = 1;

	__atomic_store_n(&loop->stop, true, __ATOMIC_RELEASE);
	if (loop->msg_fd >= 0 && write(loop->msg_fd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: the loop is awake anyway. */
	}
}

bool loop_stopped(const struct loop *loop)
{
	return __atomic_load_n(&loop->stop, __ATOMIC_ACQUIRE);
}

/* ---- threads: the model lock and messages */

void loop_set_lock(struct loop *loop, pthread_mutex_t *lock)
{
	loop->lock = lock;
}

void loop_io_unlock(struct loop *loop)
{
	if (loop->lock && loop->locked) {
		loop->locked = false;
		pthread_mutex_unlock(loop->lock);
	}
}

void loop_io_lock(struct loop *loop)
{
	if (loop->lock && !loop->locked) {
		pthread_mutex_lock(loop->lock);
		loop->locked = true;
	}
}

bool loop_on_thread(const struct loop *loop)
{
	return !__atomic_load_n(&loop->running, __ATOMIC_ACQUIRE) ||
	       pthread_equal(loop->thread, pthread_self());
}

void loop_set_user(struct loop *loop, void *user)
{
	loop->user = user;
}

void *loop_user(const struct loop *loop)
{
	return loop->user;
}

void loop_run_messages(struct loop *loop)
{
	struct loop_msg *m;

	for (;;) {
		pthread_mutex_lock(&loop->msg_lock);
		m = loop->msg_head;
		if (m) {
			loop->msg_head = m->next;
			if (!loop->msg_head)
				loop->msg_tail = &loop->msg_head;
		}
		pthread_mutex_unlock(&loop->msg_lock);
		if (!m)
			return;
		m->next = NULL;
		m->fn(m);
	}
}

static void msg_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another round already took the count */
	}
	loop_run_messages(arg);
}

int loop_enable_messages(struct loop *loop)
{
	if (loop->msg_fd >= 0)
		return 0;
	loop->msg_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->msg_fd < 0)
		return -errno;
	loop->msg_src = loop_add_fd(loop, loop->msg_fd, EPOLLIN, msg_cb, loop);
	if (!loop->msg_src) {
		close(loop->msg_fd);
		loop->msg_fd = -1;
		return -ENOMEM;
	}
	return 0;
}

void loop_post(struct loop *loop, struct loop_msg *msg)
{
	uint64_t one = 1;
	bool first;

	if (loop->msg_fd < 0) {
		msg->fn(msg);
		return;
	}
	msg->next = NULL;
	pthread_mutex_lock(&loop->msg_lock);
	first = !loop->msg_head;
	*loop->msg_tail = msg;
	loop->msg_tail = &msg->next;
	pthread_mutex_unlock(&loop->msg_lock);
	/* Only the first message of a batch costs a wake-up. */
	if (first && write(loop->msg_fd, &one, sizeof(one)) < 0) {
		/* saturated counter: the loop is awake anyway */
	}
}

unsigned loop_busy_poll_us(const struct loop *loop)
{
	return loop->busy_poll_us;
}
