// SPDX-License-Identifier: MIT
/*
 * The daemon's virtio-blk exports (include/nvemu/vhost-blk.h): a registry
 * by name (VblkCtrl<n>, as NVIDIA SNAP names them), the event-loop adapters
 * the exports run on, and what the rest of the daemon asks of them: whose
 * controllers and ports they are (not the user's, not saved as such), and
 * detaching them when their namespace or subsystem goes, so that their
 * guests see I/O errors, never stale data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvemu/ctrl-state.h>

#include "event-loop.h"
#include "rpc.h"

/* ---- on the daemon's loop (the NVMe/TCP target's adapters have the same shape) */

struct vblk_watch {
	struct loop_src *src;
	nvemu_vblk_fd_cb cb;
	void *arg;
};

static void vblk_watch_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct vblk_watch *w = arg;

	/* w may be freed by the callback (del_fd): do not touch it after. */
	w->cb(fd, revents, w->arg);
}

static void *vblk_add_fd(void *loop, int fd, uint32_t events, nvemu_vblk_fd_cb cb, void *arg)
{
	struct vblk_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->src = loop_add_fd(loop, fd, events, vblk_watch_cb, w);
	if (!w->src) {
		free(w);
		return NULL;
	}
	return w;
}

static int vblk_mod_fd(void *loop, void *handle, uint32_t events)
{
	return loop_mod_fd(((struct vblk_watch *)handle)->src, events);
}

static void vblk_del_fd(void *loop, void *handle)
{
	struct vblk_watch *w = handle;

	/* loop_del keeps the source until the dispatch round ends; w is ours. */
	loop_del(w->src);
	free(w);
}

static const struct nvemu_vblk_loop_ops vblk_loop_ops = {
	.add_fd = vblk_add_fd,
	.mod_fd = vblk_mod_fd,
	.del_fd = vblk_del_fd,
};

const struct nvemu_vblk_loop_ops *nvemud_vblk_loop_ops(void)
{
	return &vblk_loop_ops;
}

void nvemud_vblk_log(void *arg, int level, const char *msg)
{
	static const int map[] = { NVEMUD_LOG_ERR, NVEMUD_LOG_WARN, NVEMUD_LOG_INFO,
				   NVEMUD_LOG_DEBUG };

	const char *colon = strchr(msg, ':');
	char who[NVEMUD_CTRL_NAME_MAX + 64];

	/* Messages start with the export or socket they concern: rate limited per one. */
	snprintf(who, sizeof(who), "%.*s", colon ? (int)(colon - msg) : (int)sizeof(who) - 1, msg);
	const struct nvemud_log_field f[] = { { NVEMUD_F_TRANSPORT, "vhost-user-blk" },
					      { NVEMUD_F_PEER, who } };

	nvemud_log_peer(arg, level < 0 ? NVEMUD_LOG_ERR : level > 3 ? NVEMUD_LOG_DEBUG : map[level],
			"virtio-blk", who, f, 2, "virtio-blk: %s", msg);
}

/* ---- the registry */

struct nvemud_vblk *nvemud_vblk_add(struct nvemud *d, const char *name, struct nvemu_vblk *vb,
				    json_t *params)
{
	struct nvemud_vblk *v = calloc(1, sizeof(*v)), *last = NULL, *it;
	unsigned idx;

	if (!v)
		return NULL;
	snprintf(v->name, sizeof(v->name), "%s", name);
	/* Keep generated names from colliding with restored ones. */
	if (sscanf(name, "VblkCtrl%u", &idx) == 1 && idx >= d->next_vblk_idx)
		d->next_vblk_idx = idx + 1;
	v->vb = vb;
	v->params = json_incref(params);
	LIST_FOREACH(it, &d->vblks, link)
		last = it;
	if (last)
		LIST_INSERT_AFTER(last, v, link);
	else
		LIST_INSERT_HEAD(&d->vblks, v, link);
	return v;
}

struct nvemud_vblk *nvemud_vblk_find(struct nvemud *d, const char *name)
{
	struct nvemud_vblk *v;

	LIST_FOREACH(v, &d->vblks, link)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

void nvemud_vblk_del(struct nvemud *d, struct nvemud_vblk *v, void (*done)(void *arg), void *arg)
{
	LIST_REMOVE(v, link);
	nvemu_vblk_destroy(v->vb, done, arg);
	json_decref(v->params);
	free(v);
}

bool nvemud_vblk_owns_ctrl(struct nvemud *d, const struct nvemu_ctrl *ctrl)
{
	struct nvemud_vblk *v;

	LIST_FOREACH(v, &d->vblks, link)
		if (ctrl && nvemu_vblk_ctrl(v->vb) == ctrl)
			return true;
	return false;
}

bool nvemud_vblk_owns_port(struct nvemud *d, struct nvemu_subsys *s, uint16_t port_id)
{
	struct nvemud_vblk *v;

	LIST_FOREACH(v, &d->vblks, link) {
		struct nvemu_ctrl *ctrl = nvemu_vblk_ctrl(v->vb);

		if (ctrl && nvemu_ctrl_subsys(ctrl) == s &&
		    nvemu_ctrl_params(ctrl)->port_id == port_id)
			return true;
	}
	return false;
}

static void ns_gone_detached(void *arg)
{
	/* Nothing waits: the namespace's teardown waits for the export's commands. */
}

void nvemud_vblk_ns_removed(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid)
{
	struct nvemud_vblk *v;

	LIST_FOREACH(v, &d->vblks, link) {
		struct nvemu_vblk_info vi;

		nvemu_vblk_get_info(v->vb, &vi);
		if (!vi.attached || vi.detaching || vi.target.subsys != s ||
		    (nsid && vi.target.nsid != nsid))
			continue;
		nvemud_log(d, NVEMUD_LOG_WARN,
			   "%s: namespace %u of %s goes away: detached, its I/O fails", v->name,
			   vi.target.nsid, nvemu_subsys_nqn(s));
		nvemu_vblk_detach(v->vb, ns_gone_detached, NULL);
	}
}

static void count_done(void *arg)
{
	(*(unsigned *)arg)++;
}

void nvemud_vblk_free_all(struct nvemud *d, unsigned timeout_ms)
{
	uint64_t deadline = nvemud_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	const struct timespec ts = { 0, 200000 };
	unsigned started = 0, *done = calloc(1, sizeof(*done));

	if (!done)
		return;
	while (!LIST_EMPTY(&d->vblks)) {
		started++;
		nvemud_vblk_del(d, LIST_FIRST(&d->vblks), count_done, done);
	}
	while (*done < started && nvemud_now_ns() < deadline)
		if (!nvemud_poll_backends(d))
			nanosleep(&ts, NULL);
	if (*done < started)
		/* The counter stays allocated: a late completion still counts into it. */
		nvemud_log(d, NVEMUD_LOG_WARN, "%u virtio-blk exports still had requests at shutdown",
			   started - *done);
	else
		free(done);
}
