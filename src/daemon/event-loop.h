/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one event loop (epoll). Front ends, the RPC server and
 * backend completion fds register here; timers are timerfds, so an idle
 * daemon sleeps in epoll_wait.
 */
#ifndef NVEMUD_EVENT_LOOP_H
#define NVEMUD_EVENT_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_src;

/* events: EPOLLIN/EPOLLOUT/...; revents as epoll reported them. */
typedef void (*loop_fd_cb)(struct loop_src *src, int fd, uint32_t revents, void *arg);
typedef void (*loop_timer_cb)(struct loop_src *src, void *arg);

struct loop *loop_new(void);
/* Frees every remaining source (closing timerfds, not other fds). */
void loop_free(struct loop *loop);

struct loop_src *loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb,
			     void *arg);
int loop_mod_fd(struct loop_src *src, uint32_t events);
/* Safe from inside any callback, including the source's own. */
void loop_del(struct loop_src *src);

/* Fires after ms, then every ms if periodic. */
struct loop_src *loop_add_timer(struct loop *loop, unsigned ms, bool periodic,
				loop_timer_cb cb, void *arg);
/*
 * A timer made up front and armed later, for what must still work when no
 * descriptor is left (backing off EMFILE, draining a teardown).
 */
struct loop_src *loop_add_disarmed_timer(struct loop *loop, loop_timer_cb cb, void *arg);
/* (Re)arm: after ms (0: at once), then every ms if periodic. */
int loop_timer_arm(struct loop_src *src, unsigned ms, bool periodic);
int loop_timer_disarm(struct loop_src *src);

/*
 * Pollers run once per loop iteration, after the fd events: for work that
 * has no fd (doorbells in shared memory) or that is batched until the
 * iteration ends (backend submissions). cb returns > 0 when it did work.
 *
 * The loop busy-polls (epoll with a zero timeout) for busy_poll_us after
 * the last fd event or poller work, then sleeps: a busy target keeps its
 * core and answers without a wake-up, an idle one costs nothing. A poller
 * marked needs_polling (loop_poller_set_needs_polling) has nothing that
 * wakes the loop when work arrives, so while one exists the loop sleeps at
 * most idle_poll_ms.
 */
typedef int (*loop_poll_cb)(void *arg);

struct loop_src *loop_add_poller(struct loop *loop, loop_poll_cb cb, void *arg);
void loop_poller_set_needs_polling(struct loop_src *src, bool on);
/*
 * Flushers are pollers that run after all the others, the last thing of an
 * iteration before the loop may sleep: they start what the fd callbacks and
 * pollers queued (a backend's batched submissions) in one go.
 */
struct loop_src *loop_add_flusher(struct loop *loop, loop_poll_cb cb, void *arg);

#define LOOP_BUSY_POLL_US_DEFAULT 0
#define LOOP_IDLE_POLL_MS_DEFAULT 1
#define LOOP_BUSY_POLL_US_MAX	  1000000u
#define LOOP_IDLE_POLL_MS_MAX	  1000u
/* 0 busy_poll_us: never spin. idle_poll_ms: 1..LOOP_IDLE_POLL_MS_MAX. */
void loop_set_polling(struct loop *loop, unsigned busy_poll_us, unsigned idle_poll_ms);
/* The busy_poll_us in effect (0: the loop never spins). */
unsigned loop_busy_poll_us(const struct loop *loop);

struct loop_stats {
	uint64_t iterations;
	uint64_t sleeps;    /* epoll_wait calls that could block */
	uint64_t busy_polls; /* epoll_wait calls with a zero timeout */
};
void loop_get_stats(const struct loop *loop, struct loop_stats *st);

/*
 * Wait up to timeout_ms (-1: forever; shortened while busy-polling or while
 * a poller needs polling), dispatch, run the pollers; returns fd events and
 * poller work handled, or -errno.
 */
int loop_run_once(struct loop *loop, int timeout_ms);
/* Run until loop_stop(). */
int loop_run(struct loop *loop);
/* Safe from any thread (wakes the loop when messages are enabled). */
void loop_stop(struct loop *loop);
bool loop_stopped(const struct loop *loop);

/*
 * ---- several loops on several threads (reactor.c)
 *
 * The model (subsystems, controllers, the NVMe/TCP target's associations)
 * is kept consistent by one mutex, the model lock: a loop given it holds it
 * while it dispatches (callbacks, pollers, messages) and lets it go while
 * it waits in epoll_wait. A callback may let it go around a system call
 * that touches nothing shared (loop_io_unlock / loop_io_lock), which is
 * where the reactors run in parallel: socket receive and send.
 */
void loop_set_lock(struct loop *loop, pthread_mutex_t *lock);
void loop_io_unlock(struct loop *loop);
void loop_io_lock(struct loop *loop);

/*
 * A message runs fn(msg) on the loop's thread, under its lock, in the order
 * posted. The caller owns msg (embed it), which must stay valid until fn ran.
 */
struct loop_msg {
	struct loop_msg *next;
	void (*fn)(struct loop_msg *msg);
};
/* An eventfd that wakes the loop for messages; 0 or -errno. */
int loop_enable_messages(struct loop *loop);
/* Thread-safe; never fails once messages are enabled (without: runs fn at once). */
void loop_post(struct loop *loop, struct loop_msg *msg);
/* Run the messages already posted (after the loop's thread ended). */
void loop_run_messages(struct loop *loop);
/*
 * Whether the calling thread may act on the loop's objects directly: the
 * thread inside loop_run, or any thread while the loop does not run.
 */
bool loop_on_thread(const struct loop *loop);
/* What the loop's owner hangs on it (the reactor), NULL by default. */
void loop_set_user(struct loop *loop, void *user);
void *loop_user(const struct loop *loop);

#endif
