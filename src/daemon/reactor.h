/* SPDX-License-Identifier: MIT */
/*
 * Reactors: event loops on threads of their own that serve NVMe/TCP I/O
 * queues (SPDK's poll groups). Reactor 0 is the main loop, which also keeps
 * the control plane; reactors 1..N-1 are threads. See docs/architecture.md
 * "Threading model".
 */
#ifndef NVEMUD_REACTOR_H
#define NVEMUD_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <nvemu/error.h>

struct nvemud;
struct loop;
struct nvemu_ctrl;

#define NVEMUD_REACTORS_MAX 64

struct nvemud_reactor_params {
	unsigned nr;		       /* reactors, main loop included; 0: 1 */
	int cpus[NVEMUD_REACTORS_MAX]; /* pin reactor i to cpus[i] (nr_cpus of them) */
	unsigned nr_cpus;
};

/*
 * Parse --cpus: a list of CPUs ("0,2-3") or a count ("4"); a count over
 * the CPUs online is refused. Fills p; 0 or -EINVAL (err names the option).
 */
int nvemud_reactor_parse_cpus(const char *arg, struct nvemud_reactor_params *p,
			      struct nvemu_error *err);

/*
 * Make reactors 1..nr-1 and start their threads; the main loop (d->loop)
 * becomes reactor 0 and takes the model lock while it dispatches. Call
 * before the main loop runs. 0 or -errno (logged).
 */
int nvemud_reactors_start(struct nvemud *d, const struct nvemud_reactor_params *p);
/*
 * Stop and join the threads, then run what was still posted to them: from
 * then on the calling thread may act on every loop's objects (shutdown
 * drains and frees them single-threaded).
 */
void nvemud_reactors_stop(struct nvemud *d);
/* Free the reactor loops (after the NVMe/TCP target is gone). */
void nvemud_reactors_free(struct nvemud *d);

unsigned nvemud_nr_reactors(const struct nvemud *d);
/* The loop with the fewest I/O queues (a new queue counts from now). */
struct loop *nvemud_reactor_pick(struct nvemud *d);
/* A queue picked with nvemud_reactor_pick left the loop. */
void nvemud_reactor_put(struct loop *loop);
/* A loop's reactor ID (0: the main loop, or a loop that is none). */
unsigned nvemud_reactor_id(const struct loop *loop);
/* The daemon a reactor's loop belongs to (NULL: not a reactor's). */
struct nvemud *nvemud_reactor_owner(const struct loop *loop);
/*
 * The reactor serving I/O queue qid of an NVMe/TCP controller (0 for the
 * admin queue, other transports, or no such queue): iostat's core_id.
 */
unsigned nvemud_tcp_queue_reactor(struct nvemud *d, const struct nvemu_ctrl *ctrl, uint16_t qid);

#endif
