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

/* Wait up to timeout_ms (-1: forever) and dispatch; returns events handled or -errno. */
int loop_run_once(struct loop *loop, int timeout_ms);
/* Run until loop_stop(). */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);
bool loop_stopped(const struct loop *loop);

#endif
