// SPDX-License-Identifier: MIT
/*
 * Destroying what hosts may be using, without stalling the event loop: the
 * controllers involved are suspended (new commands are held), a loop timer
 * and nvemu_ctrl_when_idle watch for their in-flight commands to drain; past
 * NVEMUD_TEARDOWN_ABORT_MS (or a suspend's timeout_ms) the rest is marked
 * aborted and still awaited, as each completes with Command Aborted once its
 * backend I/O ends. Only then is anything freed and the RPC answered.
 * Meanwhile the object is out of reach of other RPCs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The one daemon file on the engine's internal header: draining a namespace
 * follows the individual commands in flight that may use it (their NSID and
 * namespace, abort_status) and runs commands a suspend held, state the
 * engine keeps to itself.
 */
#include "engine/nvemu-internal.h"
#include "event-loop.h"
#include "rpc.h"
#include "teardown.h"

#define TICK_MS 10

const char NVEMUD_CTRL_DESTROYING[] = "being destroyed";

enum td_kind {
	TD_CTRL,
	TD_SUBSYS,
	TD_NS,
	TD_SUSPEND,
};

struct teardown {
	LIST_ENTRY(teardown) link; /* d->teardowns */
	enum td_kind kind;
	struct rpc_pending *reply;
	/* TD_SUBSYS: out of the registry, owned here; else the registry's. */
	struct nvemu_subsys *s;
	char nqn[NVEMU_NQN_MAX + 1];
	char name[NVEMUD_CTRL_NAME_MAX]; /* TD_CTRL, TD_SUSPEND */
	uint32_t nsid;			 /* TD_NS */
	struct nvemu_ns *ns;
	uint8_t uuid[16];
	/* The controllers to drain, by id: a host's may go away meanwhile. */
	uint16_t *cntlids;
	bool *resume; /* suspended by us, resumed after (a suspend that fails) */
	unsigned nr;
	/* TD_NS: the commands that may use the namespace, in flight when it went. */
	struct nvemu_req **reqs;
	unsigned nr_reqs;
	uint64_t deadline_ns;
	unsigned timeout_ms;
	bool aborted;
};

static const char *const kind_names[] = { "nvme_controller_destroy", "nvme_subsystem_destroy",
					   "nvme_namespace_destroy", "nvme_controller_suspend" };

static void td_tick_cb(struct loop_src *src, void *arg);

static void td_kick_cb(struct loop_src *src, void *arg)
{
	nvemud_teardown_run(arg);
}

/* A controller went idle (called from inside its last completion): continue from the loop. */
static void td_idle(void *arg)
{
	struct nvemud *d = arg;

	if (d->td_kick)
		loop_timer_arm(d->td_kick, 0, false);
}

int nvemud_teardown_init(struct nvemud *d)
{
	/* Made up front: a teardown must progress even when no descriptor is left. */
	d->td_tick = loop_add_disarmed_timer(d->loop, td_tick_cb, d);
	d->td_kick = loop_add_disarmed_timer(d->loop, td_kick_cb, d);
	return d->td_tick && d->td_kick ? 0 : -ENOMEM;
}

static void td_free(struct teardown *t)
{
	free(t->reqs);
	free(t->cntlids);
	free(t->resume);
	free(t);
}

static struct teardown *td_new(enum td_kind kind, struct nvemu_subsys *s, unsigned nr_max)
{
	struct teardown *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->kind = kind;
	t->s = s;
	snprintf(t->nqn, sizeof(t->nqn), "%s", nvemu_subsys_nqn(s));
	t->cntlids = calloc(nr_max + 1, sizeof(*t->cntlids));
	t->resume = calloc(nr_max + 1, sizeof(*t->resume));
	if (!t->cntlids || !t->resume) {
		td_free(t);
		return NULL;
	}
	t->timeout_ms = NVEMUD_TEARDOWN_ABORT_MS;
	return t;
}

static void td_hold(struct teardown *t, struct nvemu_ctrl *ctrl, bool admin_only)
{
	t->cntlids[t->nr] = ctrl->cntlid;
	t->resume[t->nr] = !nvemu_ctrl_is_suspended(ctrl);
	t->nr++;
	nvemu_ctrl_suspend(ctrl, admin_only);
}

static bool req_on_ns(const struct teardown *t, const struct nvemu_req *r)
{
	return r->ns == t->ns || r->cmd.nsid == t->nsid || r->cmd.nsid == NVME_NSID_ALL;
}

/* Is r (recorded at the start) still in flight on a controller of the subsystem? */
static bool req_live(const struct teardown *t, const struct nvemu_req *r)
{
	for (unsigned i = 0; i < t->s->nr_ctrls; i++)
		for (struct nvemu_req *x = LIST_FIRST(&t->s->ctrls[i]->inflight_reqs); x;
		     x = LIST_NEXT(x, inflight_link))
			if (x == r)
				return req_on_ns(t, r);
	return false;
}

/*
 * A namespace: only the commands that may point at it matter; the hosts'
 * other I/O goes on. It is detached, so no new command reaches it.
 */
static bool ns_quiet(struct nvemud *d, struct teardown *t)
{
	bool idle = true, expired = !t->aborted && nvemud_now_ns() >= t->deadline_ns;

	for (unsigned i = 0; i < t->nr_reqs; i++) {
		struct nvemu_req *r = t->reqs[i];

		if (!r)
			continue;
		if (!req_live(t, r)) {
			t->reqs[i] = NULL;
			continue;
		}
		idle = false;
		if (expired && !r->abort_status) {
			r->abort_status = NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ);
			/* Held by its backend on purpose (a stopped error bdev): end it now. */
			if (!nvemu_req_cancel_io(r))
				t->reqs[i] = NULL;
		}
	}
	if (expired && !idle) {
		t->aborted = true;
		nvemud_log(d, NVEMUD_LOG_WARN,
			   "%s: %s namespace %u: commands still in flight after %u ms, aborting them",
			   kind_names[t->kind], t->nqn, t->nsid, t->timeout_ms);
	}
	return idle;
}

/* True once none of t's controllers has a command in flight. */
static bool td_quiet(struct nvemud *d, struct teardown *t)
{
	bool idle = true;

	if (t->kind == TD_NS)
		return ns_quiet(d, t);

	for (unsigned i = 0; i < t->nr; i++) {
		struct nvemu_ctrl *ctrl = nvemu_subsys_ctrl(t->s, t->cntlids[i]);

		if (!ctrl)
			continue;
		if (!nvemu_ctrl_inflight(ctrl) && !STAILQ_EMPTY(&ctrl->held) && t->kind != TD_SUSPEND) {
			/*
			 * Held commands (an MI tunnel's) would keep the controller
			 * from being removed: run them, aborted, and drain again.
			 */
			nvemu_ctrl_resume(ctrl);
			nvemu_ctrl_suspend(ctrl, false);
			nvemu_ctrl_abort_inflight(ctrl);
		}
		if (nvemu_ctrl_inflight(ctrl))
			idle = false;
	}
	if (idle)
		return true;
	if (!t->aborted && nvemud_now_ns() >= t->deadline_ns) {
		t->aborted = true;
		for (unsigned i = 0; i < t->nr; i++) {
			struct nvemu_ctrl *ctrl = nvemu_subsys_ctrl(t->s, t->cntlids[i]);

			if (!ctrl || !nvemu_ctrl_inflight(ctrl))
				continue;
			nvemud_log(d, NVEMUD_LOG_WARN,
				   "%s: %s controller %u: %u commands still in flight after %u ms, aborting them",
				   kind_names[t->kind], t->nqn, ctrl->cntlid,
				   nvemu_ctrl_inflight(ctrl), t->timeout_ms);
			nvemu_ctrl_abort_inflight(ctrl);
		}
	}
	for (unsigned i = 0; i < t->nr; i++) {
		struct nvemu_ctrl *ctrl = nvemu_subsys_ctrl(t->s, t->cntlids[i]);

		if (ctrl && nvemu_ctrl_inflight(ctrl))
			nvemu_ctrl_when_idle(ctrl, td_idle, d);
	}
	return false;
}

static void td_unwatch(struct teardown *t)
{
	for (unsigned i = 0; i < t->nr; i++) {
		struct nvemu_ctrl *ctrl = nvemu_subsys_ctrl(t->s, t->cntlids[i]);

		if (ctrl)
			nvemu_ctrl_when_idle(ctrl, NULL, NULL);
	}
}

/* Everything drained: do the work. 0 or -1 with e set. */
static int td_finish(struct nvemud *d, struct teardown *t, struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemud_ctrl *c;
	struct nvemu_ns *ns;
	int ret = 0;

	td_unwatch(t);
	switch (t->kind) {
	case TD_SUSPEND:
		c = nvemud_find_ctrl(d, t->name);
		if (c)
			c->busy = NULL;
		break;
	case TD_CTRL:
		c = nvemud_find_ctrl(d, t->name);
		if (nvemu_subsys_ctrl(t->s, t->cntlids[0]) &&
		    nvemu_subsys_remove_ctrl(t->s, t->cntlids[0], &nerr)) {
			if (c)
				c->busy = NULL;
			return rpc_err_nvemu(e, &nerr);
		}
		if (c)
			nvemud_del_ctrl(d, c);
		break;
	case TD_NS:
		/* Unless a host deleted it meanwhile (and maybe made another one there). */
		ns = nvemu_subsys_ns(t->s, t->nsid);
		if (ns && ns == t->ns && !memcmp(ns->uuid, t->uuid, 16) &&
		    nvemu_subsys_remove_ns(t->s, t->nsid, &nerr))
			ret = rpc_err_nvemu(e, &nerr);
		break;
	case TD_SUBSYS:
		/* Its MI endpoints last: a tunnelled command of theirs may have been in flight. */
		nvemud_mi_remove_subsys(d, t->s);
		nvemu_subsys_destroy(t->s);
		t->s = NULL;
		break;
	}
	return ret;
}

static void td_unlink(struct nvemud *d, struct teardown *t)
{
	LIST_REMOVE(t, link);
	if (LIST_EMPTY(&d->teardowns) && d->td_tick)
		loop_timer_disarm(d->td_tick);
}

/* Start t: done at once (0 / -1) when nothing is in flight, else RPC_DEFERRED. */
static int td_start(struct nvemud *d, struct teardown *t, struct rpc_err *e)
{
	int ret;

	t->deadline_ns = nvemud_now_ns() + (uint64_t)t->timeout_ms * 1000000ull;
	if (td_quiet(d, t)) {
		ret = td_finish(d, t, e);
		td_free(t);
		return ret;
	}
	t->reply = rpc_defer(d);
	if (!t->reply) {
		/* Callers checked rpc_can_defer(); this is out of memory. */
		td_unwatch(t);
		rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
		td_finish(d, t, e);
		td_free(t);
		return -1;
	}
	LIST_INSERT_HEAD(&d->teardowns, t, link);
	if (d->td_tick)
		loop_timer_arm(d->td_tick, TICK_MS, true);
	nvemud_log(d, NVEMUD_LOG_DEBUG, "%s: %s: waiting for commands in flight",
		   kind_names[t->kind], t->name[0] ? t->name : t->nqn);
	return RPC_DEFERRED;
}

void nvemud_teardown_run(struct nvemud *d)
{
	struct teardown *t = LIST_FIRST(&d->teardowns), *next;

	for (; t; t = next) {
		struct rpc_err e = { 0 };
		int ret;

		next = LIST_NEXT(t, link);
		if (!td_quiet(d, t))
			continue;
		td_unlink(d, t);
		ret = td_finish(d, t, &e);
		rpc_pending_done(t->reply, ret ? NULL : json_true(), ret ? &e : NULL);
		td_free(t);
		/* The reply may have run more RPCs (another client's turn): start over. */
		next = LIST_FIRST(&d->teardowns);
	}
}

static void td_tick_cb(struct loop_src *src, void *arg)
{
	nvemud_teardown_run(arg);
}

static int no_wait(struct nvemud *d, const char *what, unsigned inflight, struct rpc_err *e)
{
	return rpc_err_set(e, RPC_ERR_BUSY,
			   "%s has %u commands in flight; not waited for inside load_config", what,
			   inflight);
}

int nvemud_teardown_ctrl(struct nvemud *d, struct nvemud_ctrl *c, struct rpc_err *e)
{
	struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
	struct teardown *t;

	if (!ctrl)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "controller %s vanished", c->name);
	if (nvemu_ctrl_inflight(ctrl) && !rpc_can_defer(d))
		return no_wait(d, c->name, nvemu_ctrl_inflight(ctrl), e);
	t = td_new(TD_CTRL, c->subsys, 1);
	if (!t)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	snprintf(t->name, sizeof(t->name), "%s", c->name);
	c->busy = NVEMUD_CTRL_DESTROYING;
	/* The guest loses the device first: no new commands from it. */
	nvemud_vfu_stop(d, c);
	td_hold(t, ctrl, false);
	return td_start(d, t, e);
}

int nvemud_suspend_ctrl(struct nvemud *d, struct nvemud_ctrl *c, bool admin_only,
			unsigned timeout_ms, struct rpc_err *e)
{
	struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
	struct teardown *t;

	if (!ctrl)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "controller %s vanished", c->name);
	if (nvemu_ctrl_inflight(ctrl) && !rpc_can_defer(d)) {
		/* Inside load_config: hold new commands, do not wait for the rest. */
		nvemu_ctrl_suspend(ctrl, admin_only);
		return 0;
	}
	t = td_new(TD_SUSPEND, c->subsys, 1);
	if (!t)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	snprintf(t->name, sizeof(t->name), "%s", c->name);
	t->timeout_ms = timeout_ms;
	c->busy = "being suspended";
	td_hold(t, ctrl, admin_only);
	return td_start(d, t, e);
}

int nvemud_teardown_ns(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid,
		       struct rpc_err *e)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);
	struct teardown *t;
	unsigned n = 0;

	if (!ns)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nsid: no namespace %u in %s", nsid,
				   nvemu_subsys_nqn(s));
	t = td_new(TD_NS, s, 0);
	if (!t)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	t->nsid = nsid;
	t->ns = ns;
	memcpy(t->uuid, ns->uuid, 16);
	/* Commands in flight that may point at it (detached controllers' too). */
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		n += nvemu_ctrl_inflight(s->ctrls[i]);
	if (n) {
		t->reqs = calloc(n, sizeof(*t->reqs));
		if (!t->reqs) {
			td_free(t);
			return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
		}
	}
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		for (struct nvemu_req *r = LIST_FIRST(&s->ctrls[i]->inflight_reqs);
		     r && t->nr_reqs < n; r = LIST_NEXT(r, inflight_link))
			if (req_on_ns(t, r))
				t->reqs[t->nr_reqs++] = r;
	if (t->nr_reqs && !rpc_can_defer(d)) {
		n = t->nr_reqs;
		td_free(t);
		return no_wait(d, "the namespace", n, e);
	}
	/* Hosts see it go (Namespace Attribute Changed); new commands to it fail. */
	nvemud_tcp_ns_removed(d, s, nsid);
	return td_start(d, t, e);
}

int nvemud_teardown_subsys(struct nvemud *d, struct nvemu_subsys *s, struct rpc_err *e)
{
	struct teardown *t;
	unsigned inflight = 0;

	for (unsigned i = 0; i < s->nr_ctrls; i++)
		inflight += nvemu_ctrl_inflight(s->ctrls[i]);
	if (inflight && !rpc_can_defer(d))
		return no_wait(d, nvemu_subsys_nqn(s), inflight, e);
	t = td_new(TD_SUBSYS, s, s->nr_ctrls);
	if (!t)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	/* Out of reach at once: hosts disconnected, controller names (and guests) gone. */
	nvemud_tcp_remove_subsys(d, s);
	nvemud_vfu_stop_subsys(d, s);
	nvemud_del_subsys(d, s);
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		td_hold(t, s->ctrls[i], false);
	return td_start(d, t, e);
}

bool nvemud_ns_destroying(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid)
{
	struct teardown *t;

	LIST_FOREACH(t, &d->teardowns, link)
		if (t->kind == TD_NS && t->s == s && t->nsid == nsid)
			return true;
	return false;
}

bool nvemud_subsys_busy(struct nvemud *d, struct nvemu_subsys *s)
{
	struct teardown *t;

	LIST_FOREACH(t, &d->teardowns, link)
		if (t->s == s)
			return true;
	return false;
}

bool nvemud_nqn_destroying(struct nvemud *d, const char *nqn)
{
	struct teardown *t;

	LIST_FOREACH(t, &d->teardowns, link)
		if (t->kind == TD_SUBSYS && !strcmp(t->nqn, nqn))
			return true;
	return false;
}

static unsigned td_inflight(struct nvemud *d)
{
	struct teardown *t;
	unsigned n = 0;

	LIST_FOREACH(t, &d->teardowns, link)
		for (unsigned i = 0; i < t->nr; i++) {
			struct nvemu_ctrl *ctrl = nvemu_subsys_ctrl(t->s, t->cntlids[i]);

			if (ctrl)
				n += nvemu_ctrl_inflight(ctrl);
		}
	return n;
}

void nvemud_teardown_drive(struct nvemud *d, const bool *done, unsigned timeout_ms)
{
	uint64_t deadline = nvemud_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	const struct timespec ts = { 0, 100000 };

	while (!LIST_EMPTY(&d->teardowns) && !(done && *done)) {
		int n = nvemud_poll_backends(d);
		struct teardown *t;

		/* Subsystems being destroyed are out of the registry: poll them too. */
		LIST_FOREACH(t, &d->teardowns, link)
			if (t->kind == TD_SUBSYS)
				n += nvemu_subsys_poll(t->s) > 0;
		nvemud_teardown_run(d);
		if (timeout_ms && nvemud_now_ns() >= deadline)
			break;
		if (!n && !LIST_EMPTY(&d->teardowns) && td_inflight(d))
			nanosleep(&ts, NULL);
	}
}

void nvemud_teardown_finish_all(struct nvemud *d, unsigned timeout_ms)
{
	nvemud_teardown_drive(d, NULL, timeout_ms);
	while (!LIST_EMPTY(&d->teardowns)) {
		struct teardown *t = LIST_FIRST(&d->teardowns);
		struct rpc_err e = { 0 };

		nvemud_log(d, NVEMUD_LOG_WARN, "%s: %s: %u commands never completed",
			   kind_names[t->kind], t->name[0] ? t->name : t->nqn, td_inflight(d));
		td_unlink(d, t);
		td_unwatch(t);
		/* Shutdown frees everything anyway; only an owned subsystem is ours to free. */
		if (t->kind == TD_SUBSYS) {
			nvemud_mi_remove_subsys(d, t->s);
			nvemu_subsys_destroy(t->s);
		}
		rpc_err_set(&e, RPC_ERR_BUSY, "shutting down");
		rpc_pending_done(t->reply, NULL, &e);
		td_free(t);
	}
	loop_del(d->td_kick);
	loop_del(d->td_tick);
	d->td_kick = d->td_tick = NULL;
}
