/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one event loop (epoll). Front ends, the RPC server and
 * backend completion fds register here; timers are timerfds, so an idle
 * daemon sleeps in epoll_wait.
 */
#ifndef NVEMUD_EVENT_LOOP_H
#define NVEMUD_EVENT_LOOP_H

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
void loop_stop(struct loop *loop);
bool loop_stopped(const struct loop *loop);

#endif
