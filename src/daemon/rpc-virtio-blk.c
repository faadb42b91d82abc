// SPDX-License-Identifier: MIT
/*
 * virtio_blk_controller_* methods (NVIDIA SNAP's names): virtio-blk exports
 * over vhost-user-blk sockets. An export's target is named by a device
 * string (SN:n<NSID>, NQN:n<NSID> or a GPT partition UUID,
 * include/nvemu/partition.h; SN may also be a bdev_nvme controller's serial,
 * naming the namespace its bdev backs), by the bdev under a namespace, or by nqn +
 * nsid; without one it is created detached and bdev_attach gives it one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/partition.h>

#include "rpc.h"
#include "teardown.h"

static const char *const target_keys[] = { "device", "bdev", "nqn", "nsid" };

/* The namespace whose bdev is name, as a whole. */
static int target_by_bdev(struct nvemud *d, const char *name, struct nvemu_vblk_target *t,
			  struct rpc_err *e)
{
	for (unsigned i = 0; i < d->nr_subsys; i++) {
		struct nvemu_ns *ns;

		for (unsigned n = 0; (ns = nvemu_subsys_ns_at(d->subsys[i], n)); n++) {
			struct nvemu_ns_info ni;

			nvemu_ns_info(ns, &ni);
			if (ni.bdev && !strcmp(ni.bdev->name, name)) {
				*t = (struct nvemu_vblk_target){ .subsys = d->subsys[i],
								 .nsid = ni.nsid };
				return 0;
			}
		}
	}
	if (!nvemud_find_bdev(d, name))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "bdev: no bdev %.64s", name);
	return rpc_err_set(e, RPC_ERR_NOT_FOUND, "bdev: bdev %.64s backs no namespace", name);
}

/*
 * SN:n<NSID> of a controller driven through bdev_nvme (no nvemu subsystem
 * has that serial): the namespace its bdev backs. nerr: why the device
 * string named no nvemu namespace, reported when it names no driven one
 * either.
 */
static int target_by_driven_sn(struct nvemud *d, const char *dev, struct nvemu_vblk_target *t,
			       const struct nvemu_error *nerr, struct rpc_err *e)
{
	struct nvemu_bdev *b = nvemud_nvme_find_sn(d, dev);

	if (!b)
		return rpc_err_nvemu(e, nerr);
	if (target_by_bdev(d, b->name, t, e) == 0)
		return 0;
	return rpc_err_set(e, RPC_ERR_NOT_FOUND,
			   "device: %.64s is bdev %.64s, which backs no namespace: create one "
			   "with nvme_namespace_create",
			   dev, b->name);
}

static uint64_t whole_lbas(struct nvemu_subsys *s, uint32_t nsid)
{
	struct nvemu_ns_info ni;

	nvemu_ns_info(nvemu_subsys_ns(s, nsid), &ni);
	return ni.nblocks;
}

/* The target params name (t->subsys NULL: none given). */
static int resolve_target(struct nvemud *d, json_t *params, struct nvemu_vblk_target *t,
			  struct rpc_err *e)
{
	unsigned given = rpc_has(params, "device") + rpc_has(params, "bdev") +
			 (rpc_has(params, "nqn") || rpc_has(params, "nsid"));
	struct nvemu_error nerr = { 0 };
	struct nvemu_ns_range r;
	const char *nqn;

	memset(t, 0, sizeof(*t));
	if (given > 1)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "device: give one of device, bdev, or nqn and nsid");
	if (rpc_has(params, "bdev"))
		return target_by_bdev(d, rpc_str(params, "bdev"), t, e);
	if (rpc_has(params, "nqn") != rpc_has(params, "nsid"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: needs %s too",
				   rpc_has(params, "nqn") ? "nqn" : "nsid",
				   rpc_has(params, "nqn") ? "nsid" : "nqn");
	if (rpc_has(params, "nqn")) {
		nqn = rpc_str(params, "nqn");
		t->subsys = nvemud_find_subsys(d, nqn);
		if (!t->subsys)
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
		t->nsid = (uint32_t)rpc_uint(params, "nsid", 0);
		if (!nvemu_subsys_ns(t->subsys, t->nsid))
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nsid: no namespace %u in %.223s",
					   t->nsid, nqn);
		return 0;
	}
	if (!rpc_has(params, "device"))
		return 0;
	if (nvemu_ns_range_resolve(d->subsys, d->nr_subsys, rpc_str(params, "device"), &r, &nerr))
		return target_by_driven_sn(d, rpc_str(params, "device"), t, &nerr, e);
	t->subsys = r.subsys;
	t->nsid = r.nsid;
	/* A whole namespace (nr_lbas 0) follows a resize; a partition is a fixed window. */
	if (r.first_lba || r.nr_lbas != whole_lbas(r.subsys, r.nsid)) {
		t->first_lba = r.first_lba;
		t->nr_lbas = r.nr_lbas;
	}
	return 0;
}

static int target_busy(struct nvemud *d, const struct nvemu_vblk_target *t, struct rpc_err *e)
{
	if (t->subsys && (nvemud_subsys_busy(d, t->subsys) ||
			  nvemud_ns_destroying(d, t->subsys, t->nsid)))
		return rpc_err_set(e, RPC_ERR_BUSY, "device: namespace %u of %s is being destroyed",
				   t->nsid, nvemu_subsys_nqn(t->subsys));
	return 0;
}

/* The socket and register_ds params: absolute paths, the socket not served already. */
static int check_paths(struct nvemud *d, json_t *params, struct rpc_err *e)
{
	const char *sock = rpc_str(params, "socket"), *ds = rpc_str(params, "register_ds");
	struct nvemud_vblk *v;
	struct stat st;

	if (sock[0] != '/')
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "socket: must be an absolute path");
	LIST_FOREACH(v, &d->vblks, link)
		if (!strcmp(rpc_str(v->params, "socket"), sock))
			return rpc_err_set(e, RPC_ERR_EXISTS, "socket: %s is served by %s", sock,
					   v->name);
	if (nvemud_vfu_find(d, sock))
		return rpc_err_set(e, RPC_ERR_EXISTS, "socket: %s is a vfio-user controller's",
				   sock);
	if (ds && (ds[0] != '/' || stat(ds, &st) || !S_ISREG(st.st_mode)))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "register_ds: %.200s: must be an existing regular file (absolute path)",
				   ds);
	return 0;
}

static int virtio_blk_controller_create(struct nvemud *d, json_t *params, json_t **result,
					struct rpc_err *e)
{
	const char *name = rpc_str(params, "ctrl");
	struct nvemu_error nerr = { 0 };
	struct nvemu_vblk_params p;
	struct nvemu_vblk *vb;
	struct nvemud_vblk *v;
	char gen[NVEMUD_CTRL_NAME_MAX];
	json_t *saved;

	if (!d->loop)
		return rpc_err_set(e, RPC_ERR_STATE, "virtio-blk exports need the daemon's event loop");
	if (name && nvemud_vblk_find(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "ctrl: %s already exists", name);
	if (check_paths(d, params, e))
		return -1;
	nvemu_vblk_params_init(&p);
	if (resolve_target(d, params, &p.target, e) || target_busy(d, &p.target, e))
		return -1;
	if (!name) {
		unsigned idx = d->next_vblk_idx ? d->next_vblk_idx : 1;

		do
			snprintf(gen, sizeof(gen), "VblkCtrl%u", idx++);
		while (nvemud_vblk_find(d, gen));
		name = gen;
	}
	p.ops = nvemud_vblk_loop_ops();
	p.loop = d->loop;
	p.log = nvemud_vblk_log;
	p.log_arg = d;
	p.socket_path = rpc_str(params, "socket");
	p.readonly = rpc_bool(params, "readonly", false);
	p.num_queues = (uint16_t)rpc_uint(params, "num_queues", 0);
	p.queue_size = (uint16_t)rpc_uint(params, "queue_size", 0);
	p.ds_max = (uint32_t)rpc_uint(params, "ds_max", 0);
	p.register_ds = rpc_str(params, "register_ds");
	p.serial = rpc_has(params, "serial") ? rpc_str(params, "serial") : name;
	if (nvemu_vblk_create(&p, &vb, &nerr))
		return rpc_err_nvemu(e, &nerr);
	saved = json_deep_copy(params);
	if (saved)
		json_object_set_new(saved, "ctrl", json_string(name));
	v = saved ? nvemud_vblk_add(d, name, vb, saved) : NULL;
	json_decref(saved);
	if (!v) {
		nvemu_vblk_destroy(vb, NULL, NULL);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: serving %s", v->name, p.socket_path);
	*result = json_string(v->name);
	return 0;
}

static int lookup(struct nvemud *d, json_t *params, struct nvemud_vblk **v, struct rpc_err *e)
{
	const char *name = rpc_str(params, "ctrl");

	*v = nvemud_vblk_find(d, name);
	if (!*v)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "ctrl: no virtio-blk controller %.64s",
				   name);
	if ((*v)->detaching)
		return rpc_err_set(e, RPC_ERR_BUSY, "ctrl: %s is being detached", name);
	return 0;
}

/* ---- replies that wait for an export's requests to drain */

struct vblk_wait {
	struct nvemud *d;
	struct rpc_pending *reply;
	char name[NVEMUD_CTRL_NAME_MAX]; /* a detach: the export to mark done */
	bool done, deferred;
};

static void wait_done(void *arg)
{
	struct vblk_wait *w = arg;
	struct nvemud_vblk *v = w->name[0] ? nvemud_vblk_find(w->d, w->name) : NULL;

	if (v)
		v->detaching = false;
	if (!w->deferred) {
		w->done = true; /* before the method returned: it answers */
		return;
	}
	rpc_pending_done(w->reply, json_true(), NULL);
	free(w);
}

static int wait_reply(struct nvemud *d, struct vblk_wait *w, json_t **result)
{
	if (w->done) {
		free(w);
		*result = json_true();
		return 0;
	}
	w->deferred = true;
	/* Inside load_config nobody can wait: it answers now and finishes in the background. */
	if (rpc_can_defer(d)) {
		w->reply = rpc_defer(d);
		if (w->reply)
			return RPC_DEFERRED;
	}
	*result = json_true();
	return 0;
}

static int virtio_blk_controller_destroy(struct nvemud *d, json_t *params, json_t **result,
					 struct rpc_err *e)
{
	struct vblk_wait *w;
	struct nvemud_vblk *v;

	if (lookup(d, params, &v, e))
		return -1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	w->d = d;
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: destroyed", v->name);
	nvemud_vblk_del(d, v, wait_done, w);
	return wait_reply(d, w, result);
}

static void forget_target(json_t *saved)
{
	for (size_t i = 0; i < sizeof(target_keys) / sizeof(target_keys[0]); i++)
		json_object_del(saved, target_keys[i]);
}

static int virtio_blk_controller_bdev_attach(struct nvemud *d, json_t *params, json_t **result,
					     struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_vblk_target t;
	struct nvemud_vblk *v;

	if (lookup(d, params, &v, e) || resolve_target(d, params, &t, e) || target_busy(d, &t, e))
		return -1;
	if (!t.subsys)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "device: give one of device, bdev, or nqn and nsid");
	if (nvemu_vblk_attach(v->vb, &t, &nerr))
		return rpc_err_nvemu(e, &nerr);
	forget_target(v->params);
	for (size_t i = 0; i < sizeof(target_keys) / sizeof(target_keys[0]); i++)
		if (json_object_get(params, target_keys[i]))
			json_object_set(v->params, target_keys[i],
					json_object_get(params, target_keys[i]));
	*result = json_true();
	return 0;
}

static int virtio_blk_controller_bdev_detach(struct nvemud *d, json_t *params, json_t **result,
					     struct rpc_err *e)
{
	struct vblk_wait *w;
	struct nvemud_vblk *v;

	if (lookup(d, params, &v, e))
		return -1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	w->d = d;
	snprintf(w->name, sizeof(w->name), "%s", v->name);
	v->detaching = true;
	if (nvemu_vblk_detach(v->vb, wait_done, w)) {
		v->detaching = false;
		free(w);
		return rpc_err_set(e, RPC_ERR_STATE, "ctrl: %s has no bdev attached", v->name);
	}
	forget_target(v->params);
	return wait_reply(d, w, result);
}

static int virtio_blk_controller_suspend(struct nvemud *d, json_t *params, json_t **result,
					 struct rpc_err *e)
{
	struct nvemud_vblk *v;

	if (lookup(d, params, &v, e))
		return -1;
	nvemu_vblk_suspend(v->vb);
	*result = json_true();
	return 0;
}

static int virtio_blk_controller_resume(struct nvemud *d, json_t *params, json_t **result,
					struct rpc_err *e)
{
	struct nvemud_vblk *v;

	if (lookup(d, params, &v, e))
		return -1;
	nvemu_vblk_resume(v->vb);
	*result = json_true();
	return 0;
}

static json_t *stats_json(const struct nvemu_vblk_stats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "connects", (json_int_t)s->connects, "disconnects",
			 (json_int_t)s->disconnects, "protocol_errors",
			 (json_int_t)s->protocol_errors, "reads", (json_int_t)s->reads, "writes",
			 (json_int_t)s->writes, "flushes", (json_int_t)s->flushes, "discards",
			 (json_int_t)s->discards, "write_zeroes", (json_int_t)s->write_zeroes,
			 "get_ids", (json_int_t)s->get_ids, "read_bytes", (json_int_t)s->read_bytes,
			 "write_bytes", (json_int_t)s->write_bytes, "ioerr", (json_int_t)s->ioerr,
			 "unsupported", (json_int_t)s->unsupported, "resubmitted",
			 (json_int_t)s->resubmitted, "accept_errors", (json_int_t)s->accept_errors);
}

static json_t *vblk_json(struct nvemud_vblk *v)
{
	struct nvemu_vblk_info vi;
	json_t *o;

	nvemu_vblk_get_info(v->vb, &vi);
	o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:i, s:i, s:I, s:i, "
		      "s:i, s:i, s:s, s:i, s:o}",
		      "name", v->name, "socket", vi.socket_path, "serial", vi.serial, "attached",
		      vi.attached, "detaching", vi.detaching || v->detaching, "connected",
		      vi.connected, "suspended", vi.suspended, "readonly", vi.readonly,
		      "num_queues", vi.num_queues, "queue_size", vi.queue_size, "active_queues",
		      vi.active_queues, "block_size", (int)vi.block_size, "capacity",
		      (json_int_t)vi.capacity, "ds_max", (int)vi.ds_max, "nr_regions",
		      (int)vi.nr_regions, "cntlid", vi.cntlid, "register_ds", vi.register_ds,
		      "inflight", vi.inflight, "stats", stats_json(&vi.stats));
	if (!o)
		return NULL;
	for (size_t i = 0; i < sizeof(target_keys) / sizeof(target_keys[0]); i++)
		if (json_object_get(v->params, target_keys[i]))
			json_object_set(o, target_keys[i], json_object_get(v->params, target_keys[i]));
	if (vi.attached && vi.target.subsys)
		json_object_set_new(o, "target",
				    json_pack("{s:s, s:I, s:I, s:I}", "nqn",
					      nvemu_subsys_nqn(vi.target.subsys), "nsid",
					      (json_int_t)vi.target.nsid, "first_lba",
					      (json_int_t)vi.target.first_lba, "num_blocks",
					      (json_int_t)vi.target.nr_lbas));
	return o;
}

static int virtio_blk_controller_list(struct nvemud *d, json_t *params, json_t **result,
				      struct rpc_err *e)
{
	const char *name = rpc_str(params, "ctrl");
	struct nvemud_vblk *v;
	json_t *arr;

	if (name && !nvemud_vblk_find(d, name))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "ctrl: no virtio-blk controller %.64s",
				   name);
	arr = json_array();
	LIST_FOREACH(v, &d->vblks, link)
		if (!name || !strcmp(v->name, name))
			json_array_append_new(arr, vblk_json(v));
	*result = arr;
	return 0;
}

#define P_CTRL { "ctrl", RPC_P_STR, true, 1, NVEMUD_CTRL_NAME_MAX - 1 }
#define P_TARGET                                                                                 \
	{ "device", RPC_P_STR, false, 1, 255 }, { "bdev", RPC_P_STR, false, 1, 63 },            \
		{ "nqn", RPC_P_STR, false, 1, NVEMU_NQN_MAX },                                   \
		{ "nsid", RPC_P_UINT, false, 1, 0xfffffffe }

const struct rpc_method rpc_virtio_blk_methods[] = {
	{ "virtio_blk_controller_create", virtio_blk_controller_create,
	  (const struct rpc_param[]){ { "ctrl", RPC_P_STR, false, 1, NVEMUD_CTRL_NAME_MAX - 1 },
				      { "socket", RPC_P_STR, true, 1, 107 },
				      P_TARGET,
				      { "num_queues", RPC_P_UINT, false, 1, NVEMU_VBLK_MAX_QUEUES },
				      { "queue_size", RPC_P_UINT, false, 2,
					NVEMU_VBLK_MAX_QUEUE_SIZE },
				      { "readonly", RPC_P_BOOL, false, 0, 0 },
				      { "ds_max", RPC_P_UINT, false, 1, NVEMU_VBLK_MAX_DS },
				      { "serial", RPC_P_STR, false, 0, NVEMU_VBLK_SERIAL_MAX },
				      { "register_ds", RPC_P_STR, false, 1, 255 },
				      { .name = NULL } },
	  "Serve a virtio-blk device over a vhost-user-blk socket: a namespace (device SN:n<NSID> or NQN:n<NSID>, bdev, or nqn + nsid) or a GPT partition (device = its UUID); none: detached. Returns its name (VblkCtrl<n>)." },
	{ "virtio_blk_controller_destroy", virtio_blk_controller_destroy,
	  (const struct rpc_param[]){ P_CTRL, { .name = NULL } },
	  "Close the socket and the client; the reply waits for the requests in flight." },
	{ "virtio_blk_controller_list", virtio_blk_controller_list,
	  (const struct rpc_param[]){ { "ctrl", RPC_P_STR, false, 1, NVEMUD_CTRL_NAME_MAX - 1 },
				      { .name = NULL } },
	  "List virtio-blk controllers (or one): target, connection, queues, statistics." },
	{ "virtio_blk_controller_bdev_attach", virtio_blk_controller_bdev_attach,
	  (const struct rpc_param[]){ P_CTRL, P_TARGET, { .name = NULL } },
	  "Give a detached virtio-blk controller its namespace or partition." },
	{ "virtio_blk_controller_bdev_detach", virtio_blk_controller_bdev_detach,
	  (const struct rpc_param[]){ P_CTRL, { .name = NULL } },
	  "Detach the target: new requests fail at once; the reply waits for those in flight." },
	{ "virtio_blk_controller_suspend", virtio_blk_controller_suspend,
	  (const struct rpc_param[]){ P_CTRL, { .name = NULL } },
	  "Stop taking requests from the rings (those started complete)." },
	{ "virtio_blk_controller_resume", virtio_blk_controller_resume,
	  (const struct rpc_param[]){ P_CTRL, { .name = NULL } },
	  "Take requests from the rings again." },
	{ .name = NULL },
};
