// SPDX-License-Identifier: MIT
/* The daemon's event loop: pollers, adaptive busy polling, deletion from callbacks. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "event-loop.h"

struct counter {
	int calls;
	int work; /* returned by each call */
	struct loop_src *self;
	struct loop_src *victim; /* deleted from inside the callback */
};

static int count_poll(void *arg)
{
	struct counter *c = arg;

	c->calls++;
	if (c->victim) {
		loop_del(c->victim);
		c->victim = NULL;
	}
	return c->work;
}

static void test_pollers_run_each_iteration(void **state)
{
	struct loop *loop = loop_new();
	struct counter a = { 0 }, b = { .work = 1 };
	struct loop_src *pa, *pb;

	(void)state;
	assert_non_null(loop);
	pa = loop_add_poller(loop, count_poll, &a);
	pb = loop_add_poller(loop, count_poll, &b);
	assert_non_null(pa);
	assert_non_null(pb);
	/* No fd is ready: the pollers still run once per iteration. */
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(loop_run_once(loop, 0), 1);
	assert_int_equal(a.calls, 2);
	assert_int_equal(b.calls, 2);
	loop_del(pb);
	assert_int_equal(loop_run_once(loop, 0), 0);
	assert_int_equal(a.calls, 3);
	assert_int_equal(b.calls, 2);
	loop_free(loop);
}

/* Records the order callbacks ran in. */
struct order {
	char seen[16];
	int n;
};

struct tagged {
	struct order *o;
	char tag;
};

static int tag_poll(void *arg)
{
	struct tagged *t = arg;

	if (t->o->n < (int)sizeof(t->o->seen) - 1)
		t->o->seen[t->o->n++] = t->tag;
	return 0;
}

static void tag_fd(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	uint64_t v;

	(void)src;
	(void)revents;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		fail();
	tag_poll(arg);
}

/*
 * A flusher runs last in every iteration, after fd callbacks and every
 * poller, including pollers added after it: what they queue is in its batch.
 */
static void test_flusher_runs_last(void **state)
{
	struct loop *loop = loop_new();
	struct order o = { 0 };
	struct tagged f = { &o, 'F' }, p1 = { &o, 'p' }, p2 = { &o, 'q' }, e = { &o, 'e' };
	int efd = eventfd(1, EFD_NONBLOCK);
	struct loop_src *fs;

	(void)state;
	assert_non_null(loop);
	assert_true(efd >= 0);
	fs = loop_add_flusher(loop, tag_poll, &f);
	assert_non_null(fs);
	assert_non_null(loop_add_poller(loop, tag_poll, &p1));
	assert_non_null(loop_add_fd(loop, efd, EPOLLIN, tag_fd, &e));
	assert_non_null(loop_add_poller(loop, tag_poll, &p2));
	loop_run_once(loop, 0);
	assert_int_equal(o.n, 4);
	assert_int_equal(o.seen[0], 'e');
	assert_int_equal(o.seen[3], 'F');
	/* Deleted, it runs no more. */
	loop_del(fs);
	o.n = 0;
	loop_run_once(loop, 0);
	assert_int_equal(o.n, 2);
	assert_true(o.seen[0] != 'F' && o.seen[1] != 'F');
	loop_free(loop);
	close(efd);
}

static void test_poller_deletes_another(void **state)
{
	struct loop *loop = loop_new();
	struct counter a = { 0 }, b = { 0 };

	(void)state;
	a.self = loop_add_poller(loop, count_poll, &a);
	b.self = loop_add_poller(loop, count_poll, &b);
	/* Whichever runs first deletes the other; the other must not run after. */
	a.victim = b.self;
	b.victim = a.self;
	loop_run_once(loop, 0);
	assert_int_equal(a.calls + b.calls, 1);
	loop_run_once(loop, 0);
	assert_int_equal(a.calls + b.calls, 2);
	loop_free(loop);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* needs_polling shortens an infinite wait to idle_poll_ms; clearing it restores it. */
static void test_needs_polling_bounds_the_wait(void **state)
{
	struct loop *loop = loop_new();
	struct counter a = { 0 };
	struct loop_src *p = loop_add_poller(loop, count_poll, &a);
	struct loop_stats st;
	uint64_t t0;

	(void)state;
	loop_set_polling(loop, 0, 5);
	loop_poller_set_needs_polling(p, true);
	t0 = mono_ms();
	/* -1 would block forever without the poller: it returns after ~5 ms. */
	assert_true(loop_run_once(loop, -1) >= 0);
	assert_int_equal(a.calls, 1);
	assert_true(mono_ms() - t0 < 5000);
	loop_get_stats(loop, &st);
	assert_int_equal(st.sleeps, 1);
	assert_int_equal(st.busy_polls, 0);
	/* Without it, a bounded wait keeps its own length. */
	loop_poller_set_needs_polling(p, false);
	assert_true(loop_run_once(loop, 1) >= 0);
	loop_del(p);
	loop_free(loop);
}

/* After work, the loop polls with a zero timeout within the busy window only. */
static void test_busy_poll_after_work(void **state)
{
	struct loop *loop = loop_new();
	struct counter a = { .work = 1 };
	struct loop_src *p = loop_add_poller(loop, count_poll, &a);
	struct loop_stats st;

	(void)state;
	loop_set_polling(loop, LOOP_BUSY_POLL_US_MAX, 1);
	/* First iteration: no work seen yet, so it may sleep (timeout 0 anyway). */
	loop_run_once(loop, 1);
	/* The poller did work: the next waits are busy polls although -1 was asked. */
	loop_run_once(loop, -1);
	loop_run_once(loop, -1);
	loop_get_stats(loop, &st);
	assert_int_equal(st.iterations, 3);
	assert_int_equal(st.busy_polls, 2);
	/* Busy polling off: a timed wait sleeps. */
	a.work = 0;
	loop_set_polling(loop, 0, 1);
	loop_run_once(loop, 1);
	loop_get_stats(loop, &st);
	assert_int_equal(st.sleeps, 2);
	loop_del(p);
	loop_free(loop);
}

static void efd_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	uint64_t v;
	int *hits = arg;

	(void)src;
	(void)revents;
	if (read(fd, &v, sizeof(v)) == sizeof(v))
		(*hits)++;
}

/* An idle loop with busy polling enabled sleeps once the window has passed. */
static void test_idle_sleeps(void **state)
{
	struct loop *loop = loop_new();
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int hits = 0;
	uint64_t one = 1;
	struct loop_src *s;
	struct loop_stats st;

	(void)state;
	loop_set_polling(loop, 1000, 1); /* 1 ms window */
	s = loop_add_fd(loop, efd, EPOLLIN, efd_cb, &hits);
	assert_non_null(s);
	assert_int_equal(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_int_equal(loop_run_once(loop, 100), 1);
	assert_int_equal(hits, 1);
	usleep(20000); /* past the window */
	assert_int_equal(loop_run_once(loop, 10), 0);
	loop_get_stats(loop, &st);
	assert_int_equal(st.sleeps, 2);
	assert_int_equal(st.busy_polls, 0);
	loop_del(s);
	close(efd);
	loop_free(loop);
}


/* ---- threads: messages, the model lock, stop from another thread */

struct msg_rec {
	struct loop_msg m;
	int seq;
	pthread_t ran_on;
	bool lock_held;
	struct msg_log *log;
};

struct msg_log {
	pthread_mutex_t *lock;
	struct loop *loop;
	int order[64];
	int n;
	bool on_thread;
};

static void msg_fn(struct loop_msg *m)
{
	struct msg_rec *r = (struct msg_rec *)m;

	r->ran_on = pthread_self();
	/* The loop holds the model lock while it runs a message: trylock fails. */
	r->lock_held = pthread_mutex_trylock(r->log->lock) == EBUSY;
	if (!r->lock_held)
		pthread_mutex_unlock(r->log->lock);
	r->log->on_thread = loop_on_thread(r->log->loop);
	r->log->order[r->log->n++] = r->seq;
}

static void *run_loop(void *arg)
{
	return (void *)(intptr_t)loop_run(arg);
}

/* Posted from the main thread, messages run in order on the loop's thread, under its lock. */
static void test_messages_run_on_the_loop_thread(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct loop *loop = loop_new();
	struct msg_log log = { .lock = &lock, .loop = loop };
	struct msg_rec recs[32];
	pthread_t th;
	void *ret;

	(void)state;
	assert_int_equal(loop_enable_messages(loop), 0);
	loop_set_lock(loop, &lock);
	assert_true(loop_on_thread(loop)); /* not running: anyone may act */
	assert_int_equal(pthread_create(&th, NULL, run_loop, loop), 0);
	for (int i = 0; i < 32; i++) {
		recs[i] = (struct msg_rec){ .m.fn = msg_fn, .seq = i, .log = &log };
		loop_post(loop, &recs[i].m);
		if (i == 15)
			usleep(2000); /* a second batch after the loop slept again */
	}
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&lock);
		bool done = log.n == 32;
		pthread_mutex_unlock(&lock);
		if (done)
			break;
		usleep(1000);
	}
	pthread_mutex_lock(&lock);
	assert_int_equal(log.n, 32);
	assert_false(loop_on_thread(loop)); /* running on th: not this thread's */
	pthread_mutex_unlock(&lock);
	loop_stop(loop); /* wakes it from another thread */
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
	for (int i = 0; i < 32; i++) {
		assert_int_equal(log.order[i], i);
		assert_true(pthread_equal(recs[i].ran_on, th));
		assert_true(recs[i].lock_held);
	}
	assert_true(log.on_thread);
	assert_true(loop_on_thread(loop)); /* stopped: anyone again */
	loop_free(loop);
}

/* Posted while the loop does not run, a message waits for loop_run_messages. */
static void test_messages_wait_until_run(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct loop *loop = loop_new();
	struct msg_log log = { .lock = &lock, .loop = loop };
	struct msg_rec r = { .m.fn = msg_fn, .seq = 7, .log = &log };

	(void)state;
	assert_int_equal(loop_enable_messages(loop), 0);
	loop_post(loop, &r.m);
	assert_int_equal(log.n, 0);
	loop_run_messages(loop);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.order[0], 7);
	assert_false(r.lock_held); /* no lock set, none held */
	loop_free(loop);
}

struct unlock_arg {
	struct loop *loop;
	pthread_mutex_t *lock;
	bool free_inside;
};

static void unlock_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct unlock_arg *a = arg;
	uint64_t v;

	(void)src;
	(void)revents;
	if (read(fd, &v, sizeof(v)) < 0)
		return;
	loop_io_unlock(a->loop);
	/* Another thread can take the model lock while this one is in a system call. */
	a->free_inside = pthread_mutex_trylock(a->lock) == 0;
	if (a->free_inside)
		pthread_mutex_unlock(a->lock);
	loop_io_lock(a->loop);
}

static void test_io_unlock(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct loop *loop = loop_new();
	int efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	struct unlock_arg a = { .loop = loop, .lock = &lock };
	struct loop_src *s;

	(void)state;
	loop_set_lock(loop, &lock);
	s = loop_add_fd(loop, efd, EPOLLIN, unlock_cb, &a);
	assert_int_equal(loop_run_once(loop, 100), 1);
	assert_true(a.free_inside);
	/* Released after the round: */
	assert_int_equal(pthread_mutex_trylock(&lock), 0);
	pthread_mutex_unlock(&lock);
	loop_del(s);
	close(efd);
	loop_free(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pollers_run_each_iteration),
		cmocka_unit_test(test_poller_deletes_another),
		cmocka_unit_test(test_flusher_runs_last),
		cmocka_unit_test(test_needs_polling_bounds_the_wait),
		cmocka_unit_test(test_busy_poll_after_work),
		cmocka_unit_test(test_idle_sleeps),
		cmocka_unit_test(test_messages_run_on_the_loop_thread),
		cmocka_unit_test(test_messages_wait_until_run),
		cmocka_unit_test(test_io_unlock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
