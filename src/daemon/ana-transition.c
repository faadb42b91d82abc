// SPDX-License-Identifier: MIT
/*
 * ANA "change" is a transition, not a place to stay: a path reported in
 * ANA Change state must reach another state within ANATT, or hosts give
 * up on it (NVMe Base, Asymmetric Namespace Access: the controller
 * transitions out of the change state within the ANA Transition Time). So
 * a listener's group set to "change" moves on by itself to its next state
 * after a delay below ANATT, as a storage array finishing a failover would.
 *
 * A pending transition names its subsystem, port and group, never pointers:
 * when the timer fires, what is gone is simply skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "event-loop.h"
#include "rpc.h"

struct ana_pending {
	LIST_ENTRY(ana_pending) link;
	struct nvemud *d;
	struct loop_src *timer;
	char nqn[NVEMU_NQN_MAX + 1];
	uint16_t port_id;
	uint32_t grp;
	enum nvemu_ana_state next;
};

static void pending_free(struct ana_pending *p)
{
	LIST_REMOVE(p, link);
	loop_del(p->timer);
	free(p);
}

static void pending_fire(struct loop_src *src, void *arg)
{
	struct ana_pending *p = arg;
	struct nvemud *d = p->d;
	struct nvemu_subsys *s = nvemud_find_subsys(d, p->nqn);
	struct nvemu_error err = {0};
	enum nvemu_ana_state cur;

	(void)src;
	/* Only out of change: a state set meanwhile by RPC stands. */
	if (s && !nvemu_port_get_ana_state(s, p->port_id, p->grp, &cur) &&
	    cur == NVEMU_ANA_CHANGE) {
		if (nvemu_port_set_ana_state(s, p->port_id, p->grp, p->next, &err))
			nvemud_log(d, NVEMUD_LOG_WARN, "%s: ANA group %u: %s", p->nqn, p->grp,
				   err.msg);
		else
			nvemud_log(d, NVEMUD_LOG_INFO, "%s: port %u ANA group %u: change -> %s",
				   p->nqn, p->port_id, p->grp, nvemu_ana_state_name(p->next));
	}
	pending_free(p);
}

void nvemud_ana_cancel(struct nvemud *d, const char *nqn, uint16_t port_id, uint32_t grp)
{
	struct ana_pending *p, *n;

	for (p = LIST_FIRST(&d->ana_pending); p; p = n) {
		n = LIST_NEXT(p, link);
		if ((!nqn || !strcmp(p->nqn, nqn)) && (!nqn || p->port_id == port_id) &&
		    (!grp || p->grp == grp))
			pending_free(p);
	}
}

int nvemud_ana_schedule(struct nvemud *d, struct nvemu_subsys *s, uint16_t port_id, uint32_t grp,
			enum nvemu_ana_state next, unsigned ms)
{
	struct ana_pending *p;

	if (!d->loop)
		return 0; /* in process: no timers; the state stays until set again */
	p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->d = d;
	snprintf(p->nqn, sizeof(p->nqn), "%s", nvemu_subsys_nqn(s));
	p->port_id = port_id;
	p->grp = grp;
	p->next = next;
	p->timer = loop_add_timer(d->loop, ms, false, pending_fire, p);
	if (!p->timer) {
		free(p);
		return -1;
	}
	LIST_INSERT_HEAD(&d->ana_pending, p, link);
	return 0;
}
