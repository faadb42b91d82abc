// SPDX-License-Identifier: MIT
/* nvme_controller_* methods. Controllers are named NVMeCtrl1, NVMeCtrl2, ... as in SNAP. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reactor.h"
#include "rpc.h"
#include "teardown.h"
#include <nvemu/tcp.h>

#define SUSPEND_DEFAULT_TIMEOUT_MS 30000
#define DESTROYING NVEMUD_CTRL_DESTROYING

int rpc_ctrl_lookup(struct nvemud *d, json_t *params, struct nvemud_ctrl **c,
		    struct nvemu_ctrl **ctrl, struct rpc_err *e)
{
	const char *name = rpc_str(params, "ctrl");

	*c = nvemud_find_ctrl(d, name);
	if (!*c)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "ctrl: no controller %.64s", name);
	if ((*c)->busy)
		return rpc_err_set(e, RPC_ERR_BUSY, "ctrl: controller %s is %s", name, (*c)->busy);
	*ctrl = nvemud_ctrl_get(*c);
	if (!*ctrl)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "controller %s vanished", name);
	return 0;
}

/*
 * NVMe/TCP hosts' controllers are not in the registry (each association
 * makes and ends its own), so they are named on the fly from what does not
 * change while they live: "<NQN after its last ':', at most 16
 * characters>-tcp-<cntlid>". list, debug_get, iostat, suspend and resume
 * reach them by that name.
 */
static void tcp_ctrl_name(struct nvemu_subsys *s, uint16_t cntlid, char *buf)
{
	const char *nqn = nvemu_subsys_nqn(s), *sfx = strrchr(nqn, ':');

	snprintf(buf, NVEMUD_CTRL_NAME_MAX, "%.16s-tcp-%u", sfx && sfx[1] ? sfx + 1 : nqn, cntlid);
}

/* The idx-th host controller of s, as a registry entry in *c (not kept). */
static struct nvemu_ctrl *tcp_ctrl_at(struct nvemud *d, struct nvemu_subsys *s, unsigned idx,
				      struct nvemud_ctrl *c)
{
	struct nvemu_tcp_assoc_info ai;

	if (!d->tcp || nvemu_tcp_get_assoc(d->tcp, s, idx, &ai))
		return NULL;
	memset(c, 0, sizeof(*c));
	c->subsys = s;
	c->cntlid = ai.cntlid;
	tcp_ctrl_name(s, ai.cntlid, c->name);
	return nvemu_subsys_ctrl(s, ai.cntlid);
}

static struct nvemu_ctrl *tcp_ctrl_find(struct nvemud *d, const char *name, struct nvemud_ctrl *c)
{
	for (unsigned i = 0; name && i < d->nr_subsys; i++) {
		struct nvemu_ctrl *ctrl;

		for (unsigned k = 0; (ctrl = tcp_ctrl_at(d, d->subsys[i], k, c)); k++)
			if (!strcmp(c->name, name))
				return ctrl;
	}
	return NULL;
}

/* rpc_ctrl_lookup(), and NVMe/TCP hosts' controllers by their names into *tmp. */
static int ctrl_lookup_any(struct nvemud *d, json_t *params, struct nvemud_ctrl **c,
			   struct nvemu_ctrl **ctrl, struct nvemud_ctrl *tmp, struct rpc_err *e)
{
	const char *name = rpc_str(params, "ctrl");

	if (!nvemud_find_ctrl(d, name) && (*ctrl = tcp_ctrl_find(d, name, tmp))) {
		*c = tmp;
		return 0;
	}
	return rpc_ctrl_lookup(d, params, c, ctrl, e);
}

static json_t *ctrl_json(struct nvemud *d, struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl)
{
	json_t *o = nvemud_ctrl_params_json(ctrl);

	json_object_set_new(o, "name", json_string(c->name));
	json_object_set_new(o, "nqn", json_string(nvemu_subsys_nqn(c->subsys)));
	json_object_set_new(o, "suspended", json_boolean(nvemu_ctrl_is_suspended(ctrl)));
	json_object_set_new(o, "namespaces", nvemud_ctrl_nsids_json(ctrl));
	nvemud_fwd_save(c, o);
	if (nvemud_vfu_path(c)) {
		json_object_set_new(o, "socket", json_string(nvemud_vfu_path(c)));
		json_object_set_new(o, "connected", json_boolean(nvemud_vfu_connected(c)));
	}
	rpc_func_ctrl_json(d, c, o);
	return o;
}


static const struct rpc_param create_params[];

static int load_snapshot(const char *file, json_t **snap, struct rpc_err *e)
{
	json_t *v;

	if (nvemud_read_json_file(file, "snapshot", snap, e))
		return -1;
	v = json_object_get(*snap, "nvemu_snapshot");
	if (!json_is_integer(v) || json_integer_value(v) != 1 ||
	    !json_is_object(json_object_get(*snap, "params")) ||
	    !json_is_array(json_object_get(*snap, "namespaces"))) {
		json_decref(*snap);
		*snap = NULL;
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "snapshot: %.150s is not an nvemu controller snapshot", file);
	}
	return 0;
}

/* Parameters a snapshot brings; nvme_controller_create refuses them alongside one. */
static const char *const from_snap[] = {
	"num_queues",	  "mdts",	"fw_slots",	     "write_zeroes", "compare",
	"compare_write",  "deallocate_dsm", "admin_only", "max_queue_entries", "aerl",
	"quirks", NULL,
};

/* The snapshot's params pass the same checks as ours; the namespaces it had exist in s. */
static int check_snapshot(struct nvemu_subsys *s, json_t *snap, struct rpc_err *e)
{
	json_t *cp = json_object_get(snap, "params"), *nsids = json_object_get(snap, "namespaces");
	struct rpc_param spec[16];
	unsigned n = 0;

	for (const struct rpc_param *sp = create_params; sp->name; sp++) {
		for (const char *const *k = from_snap; *k; k++)
			if (!strcmp(*k, sp->name))
				spec[n++] = *sp;
	}
	spec[n++] = (struct rpc_param){ "ctrl", RPC_P_UINT, false, 1, 0xffef };
	spec[n++] = (struct rpc_param){ "port", RPC_P_UINT, false, 0, 65535 };
	spec[n] = (struct rpc_param){ .name = NULL };
	if (rpc_check_params(cp, spec, e)) {
		char msg[sizeof(e->msg)];

		snprintf(msg, sizeof(msg), "%s", e->msg);
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "snapshot: %s", msg);
	}
	for (size_t i = 0; i < json_array_size(nsids); i++) {
		json_t *v = json_array_get(nsids, i);

		if (!json_is_integer(v) || !nvemu_subsys_ns(s, (uint32_t)json_integer_value(v)))
			return rpc_err_set(e, RPC_ERR_NOT_FOUND,
					   "snapshot: namespace %lld it was attached to does not exist in %s",
					   (long long)json_integer_value(v), nvemu_subsys_nqn(s));
	}
	return 0;
}

/* The snapshot file of params, checked; *snap stays NULL on failure. */
static int create_snapshot(struct nvemu_subsys *s, json_t *params, json_t **snap,
			   struct rpc_err *e)
{
	for (const char *const *k = from_snap; *k; k++)
		if (rpc_has(params, *k))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "%s: not allowed with snapshot (taken from it)", *k);
	if (load_snapshot(rpc_str(params, "snapshot"), snap, e))
		return -1;
	if (check_snapshot(s, *snap, e)) {
		json_decref(*snap);
		*snap = NULL;
		return -1;
	}
	return 0;
}

/* I/O queues of a controller; one served over vfio-user may have more. */
#define CTRL_MAX_QUEUES	    31
#define CTRL_MAX_QUEUES_VFU 128

/* Controller parameters from cp (params, or the snapshot's); explicit ctrl/port win. */
static void create_ctrl_params(struct nvemu_subsys *s, json_t *params, json_t *cp, bool snap,
			       struct nvemu_ctrl_params *p)
{
	nvemu_ctrl_params_init(p);
	p->num_io_queues = (uint16_t)rpc_uint(cp, "num_queues", 1);
	p->mdts = (uint8_t)rpc_uint(cp, "mdts", 7);
	p->fw_slots = (uint8_t)rpc_uint(cp, "fw_slots", 4);
	p->max_queue_entries = (uint16_t)rpc_uint(cp, "max_queue_entries", p->max_queue_entries);
	p->aerl = (uint8_t)rpc_uint(cp, "aerl", p->aerl);
	p->write_zeroes = rpc_bool(cp, "write_zeroes", true);
	p->compare = rpc_bool(cp, "compare", true);
	p->compare_write = rpc_bool(cp, "compare_write", true);
	p->dsm = rpc_bool(cp, "deallocate_dsm", true);
	p->admin_only = rpc_bool(cp, "admin_only", false);
	p->quirks = (uint32_t)rpc_uint(cp, "quirks", 0);
	p->cntlid = (uint16_t)rpc_uint(params, "ctrl", rpc_uint(cp, "ctrl", 0));
	/* The snapshot's cntlid is only a wish: taken, the next free one. */
	if (snap && !rpc_has(params, "ctrl") && nvemu_subsys_ctrl(s, p->cntlid))
		p->cntlid = 0;
}

/*
 * The port: the one given, or the snapshot's if s still has it, else the
 * first PCIe port, else a new PCIe port (*added).
 */
static int create_port(struct nvemu_subsys *s, json_t *params, json_t *cp, bool snap,
		       uint16_t *port_id, bool *added, struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_port_params pp;

	*added = false;
	if (rpc_has(params, "port") || (snap && rpc_has(cp, "port"))) {
		uint16_t port = (uint16_t)rpc_uint(params, "port", rpc_uint(cp, "port", 0));

		*port_id = port;
		if (nvemu_subsys_port(s, port))
			return 0;
		if (rpc_has(params, "port"))
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "port: no port %u in %s", port,
					   nvemu_subsys_nqn(s));
	}
	for (unsigned i = 0; !nvemu_subsys_port_at(s, i, port_id, &pp); i++)
		if (pp.type == NVEMU_PORT_PCIE)
			return 0;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	if (nvemu_subsys_add_port(s, &pp, port_id, &nerr))
		return rpc_err_nvemu(e, &nerr);
	*added = true;
	return 0;
}

/* The snapshot's namespaces attached and its state restored into the new controller. */
static int create_restore(struct nvemud *d, struct nvemu_ctrl *ctrl, json_t *snap,
			  struct rpc_err *e)
{
	json_t *nsids = json_object_get(snap, "namespaces");
	struct nvemu_error nerr = { 0 };

	for (size_t i = 0; i < json_array_size(nsids); i++) {
		uint32_t nsid = (uint32_t)json_integer_value(json_array_get(nsids, i));

		if (nvemu_ctrl_attach_ns(ctrl, nsid, &nerr))
			return rpc_err_nvemu(e, &nerr);
	}
	return snap ? nvemud_ctrl_restore(d, ctrl, snap, e) : 0;
}

/* Name it and, with a socket path, serve it over vfio-user; nothing is left on failure. */
static int create_register(struct nvemud *d, json_t *params, struct nvemu_subsys *s,
			   uint16_t cntlid, const char *path, struct nvemud_ctrl **out,
			   struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemu_error nerr = { 0 };
	struct nvemud_ctrl *c = nvemud_add_ctrl(d, name, s, cntlid);

	if (!c)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	if (path && nvemud_vfu_start(d, c, path, &nerr)) {
		rpc_err_set(e, nerr.code == -ENOMEM ? RPC_ERR_INTERNAL :
			    nerr.code == -EINVAL || nerr.code == -ENAMETOOLONG ?
			    RPC_ERR_INVALID_PARAMS : RPC_ERR_EXISTS, "%s", nerr.msg);
		nvemud_del_ctrl(d, c);
		if (!name)
			d->next_ctrl_idx--;
		return -1;
	}
	*out = c;
	return 0;
}

static int nvme_controller_create(struct nvemud *d, json_t *params, json_t **result,
				  struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn"), *name = rpc_str(params, "name");
	struct nvemu_subsys *s = nvemud_find_subsys(d, nqn);
	struct nvemu_error nerr = { 0 };
	struct nvemu_ctrl_params p;
	struct nvemu_subsys_info si;
	struct nvemud_ctrl *c = NULL;
	struct nvemud_func *fn = NULL; /* the PCIe function it is opened on (pf_id, ...) */
	json_t *snap = NULL;
	bool port_added;
	uint16_t cntlid;
	int ret = -1;

	if (!s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	if (nvemud_fwd_check(d, params, e))
		return -1;
	if (name && nvemud_find_ctrl(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: controller %s already exists%s", name,
				   nvemud_find_ctrl(d, name)->busy ? " (being destroyed)" : "");
	nvemu_subsys_info(s, &si);
	if (si.single_ctrl && si.nr_ctrls)
		return rpc_err_set(e, RPC_ERR_LIMIT,
				   "subsystem %s is restricted to a single controller",
				   nvemu_subsys_nqn(s));
	if (rpc_func_select(d, params, &fn, e) || rpc_func_check_create(d, params, fn, s, e))
		return -1;
	if (rpc_has(params, "snapshot") && create_snapshot(s, params, &snap, e))
		return -1;
	create_ctrl_params(s, params, snap ? json_object_get(snap, "params") : params, snap, &p);
	/* Past 31 queues only where doorbells scale: vfio-user (mapped, polled). */
	if (p.num_io_queues > CTRL_MAX_QUEUES && !rpc_has(params, "socket") && !fn) {
		rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
			    "num_queues: %u needs a vfio-user controller (socket); at most %u otherwise",
			    p.num_io_queues, CTRL_MAX_QUEUES);
		goto out;
	}
	if (p.cntlid && nvemu_subsys_ctrl(s, p.cntlid)) {
		rpc_err_set(e, RPC_ERR_EXISTS, "ctrl: controller id %u already exists in %s",
			    p.cntlid, nvemu_subsys_nqn(s));
		goto out;
	}
	if (create_port(s, params, snap ? json_object_get(snap, "params") : params, snap,
			&p.port_id, &port_added, e))
		goto out;
	if (nvemu_subsys_add_ctrl_ex(s, &p, &cntlid, &nerr)) {
		rpc_err_nvemu(e, &nerr);
		goto undo_port;
	}
	if (create_restore(d, nvemu_subsys_ctrl(s, cntlid), snap, e))
		goto undo;
	if (rpc_bool(params, "suspended", snap != NULL))
		nvemu_ctrl_suspend(nvemu_subsys_ctrl(s, cntlid), false);
	if (rpc_func_open(d, params, fn, s, cntlid, e) ||
	    create_register(d, params, s, cntlid, fn ? fn->socket : rpc_str(params, "socket"), &c,
			    e)) {
		nvemu_subsys_virt_remove(s, cntlid);
		goto undo;
	}
	if (nvemud_fwd_setup(d, c, nvemu_subsys_ctrl(s, cntlid), params, e)) {
		nvemud_vfu_stop(d, c);
		nvemud_del_ctrl(d, c);
		nvemu_subsys_virt_remove(s, cntlid);
		goto undo;
	}
	rpc_func_opened(d, params, fn, c);
	*result = json_string(c->name);
	ret = 0;
	goto out;
undo:
	nvemu_subsys_remove_ctrl(s, cntlid, NULL);
undo_port:
	if (port_added)
		nvemu_subsys_remove_port(s, p.port_id, NULL);
out:
	json_decref(snap);
	return ret;
}

/* Enabled and not shut down: a driver that removed the device shut it down first. */
static bool driver_up(const struct nvemu_ctrl *ctrl)
{
	return (nvemu_ctrl_cc(ctrl) & 1) &&
	       ((nvemu_ctrl_csts(ctrl) >> NVME_CSTS_SHST_SHIFT) & NVME_CSTS_SHST_MASK) !=
		       NVME_CSTS_SHST_CMPLT;
}

static int nvme_controller_destroy(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	struct nvemud_ctrl *c;
	struct nvemu_ctrl *ctrl;
	bool force = rpc_bool(params, "force", false);

	if (rpc_ctrl_lookup(d, params, &c, &ctrl, e))
		return -1;
	if (c->vfu && nvemud_vfu_connected(c) && driver_up(ctrl) && !force)
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "controller %s is enabled by a guest on %s: shut the guest down first or use force",
				   c->name, nvemud_vfu_path(c));
	/* Served over vfio-user: stopping the server unbinds it and resets the controller. */
	if (!c->vfu && nvemu_ctrl_transport(ctrl))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "controller %s is bound to the %s transport: disconnect the host first",
				   c->name, nvemu_ctrl_transport(ctrl));
	if (!c->vfu && driver_up(ctrl) && !force)
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "controller %s is enabled by a host (CC.EN=1): shut it down first or use force",
				   c->name);
	if (!c->vfu && nvemu_ctrl_inflight(ctrl) && !force)
		return rpc_err_set(e, RPC_ERR_BUSY, "controller %s has %u commands in flight",
				   c->name, nvemu_ctrl_inflight(ctrl));
	if (rpc_func_destroy(d, params, c, e))
		return -1;
	return nvemud_teardown_ctrl(d, c, e);
}

static int nvme_controller_suspend(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	unsigned timeout = (unsigned)rpc_uint(params, "timeout_ms", SUSPEND_DEFAULT_TIMEOUT_MS);
	struct nvemud_ctrl *c, tmp;
	struct nvemu_ctrl *ctrl;

	if (ctrl_lookup_any(d, params, &c, &ctrl, &tmp, e))
		return -1;
	if (rpc_bool(params, "live_update_notifier", false)) {
		if (c == &tmp)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "live_update_notifier: %s is an NVMe/TCP host's controller (hosts reconnect; nothing to hand over)",
					   c->name);
		if (rpc_bool(params, "admin_only", false))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "live_update_notifier: a live update suspends every queue, not admin_only");
		/* Nothing more is fetched from the guest: what waits stays in its queues. */
		nvemud_vfu_pause(c, true);
		c->live_update = true;
		nvemud_log(d, NVEMUD_LOG_INFO,
			   "live update: %s suspended for handover (nvemud_live_update)", c->name);
	}
	return nvemud_suspend_ctrl(d, c, rpc_bool(params, "admin_only", false), timeout, e);
}

static int nvme_controller_resume(struct nvemud *d, json_t *params, json_t **result,
				  struct rpc_err *e)
{
	struct nvemud_ctrl *c, tmp;
	struct nvemu_ctrl *ctrl;

	if (ctrl_lookup_any(d, params, &c, &ctrl, &tmp, e))
		return -1;
	if (!nvemu_ctrl_is_suspended(ctrl))
		return rpc_err_set(e, RPC_ERR_STATE, "controller %s is not suspended", c->name);
	if (rpc_bool(params, "live_update", false) && !c->live_update)
		return rpc_err_set(e, RPC_ERR_STATE,
				   "live_update: controller %s was neither taken over nor suspended for a live update",
				   c->name);
	nvemu_ctrl_resume(ctrl);
	/* Held AERs park again first, then fetching goes on from where the guest's queues are. */
	c->live_update = false;
	nvemud_vfu_pause(c, false);
	return 0;
}

static int nvme_controller_list(struct nvemud *d, json_t *params, json_t **result,
				struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn"), *name = rpc_str(params, "ctrl");
	struct nvemu_subsys *only = NULL;
	struct nvemud_ctrl tmp;
	json_t *arr;

	if (nqn) {
		only = nvemud_find_subsys(d, nqn);
		if (!only)
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	}
	if (name && (!nvemud_find_ctrl(d, name) || nvemud_find_ctrl(d, name)->busy == DESTROYING) &&
	    !tcp_ctrl_find(d, name, &tmp))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "ctrl: no controller %.64s", name);
	arr = json_array();
	for (unsigned i = 0; i < d->nr_ctrls; i++) {
		struct nvemud_ctrl *c = &d->ctrls[i];
		struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);

		if ((only && c->subsys != only) || (name && strcmp(name, c->name)) || !ctrl ||
		    c->busy == DESTROYING)
			continue;
		json_array_append_new(arr, ctrl_json(d, c, ctrl));
	}
	/* Then the NVMe/TCP hosts' controllers, subsystem by subsystem. */
	for (unsigned i = 0; i < d->nr_subsys; i++) {
		struct nvemu_ctrl *ctrl;

		for (unsigned k = 0; (ctrl = tcp_ctrl_at(d, d->subsys[i], k, &tmp)); k++) {
			struct nvemu_tcp_assoc_info ai;
			json_t *o;

			if ((only && d->subsys[i] != only) || (name && strcmp(name, tmp.name)))
				continue;
			o = ctrl_json(d, &tmp, ctrl);
			json_object_set_new(o, "transport", json_string("tcp"));
			if (!nvemu_tcp_get_assoc(d->tcp, d->subsys[i], k, &ai))
				json_object_set_new(o, "hostnqn", json_string(ai.hostnqn));
			json_array_append_new(arr, o);
		}
	}
	*result = arr;
	return 0;
}

static int modify_queues(struct nvemud *d, json_t *params, struct rpc_err *e);

/* quirks change in place (the engine reads them per event/command); num_queues re-creates it. */
static int nvme_controller_modify(struct nvemud *d, json_t *params, json_t **result,
				  struct rpc_err *e)
{
	uint32_t quirks = (uint32_t)rpc_uint(params, "quirks", 0);
	struct nvemu_error nerr = { 0 };
	struct nvemu_ctrl *ctrl;
	struct nvemud_ctrl *c;

	if (quirks & ~NVEMU_QUIRKS_VALID)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "quirks: bits 0x%x are not defined (bits 0, 1, 3, 4)",
				   quirks & ~NVEMU_QUIRKS_VALID);
	if (modify_queues(d, params, e))
		return -1;
	if (!rpc_has(params, "quirks"))
		return 0;
	if (rpc_has(params, "ctrl")) {
		if (rpc_ctrl_lookup(d, params, &c, &ctrl, e))
			return -1;
	} else {
		/* Named by its PCIe function, as modify_queues() found it. */
		const char *name;
		json_t *sel;
		int ret;

		if (rpc_func_ctrl_name(d, params, &name, e))
			return -1;
		sel = json_pack("{s:s}", "ctrl", name);
		ret = rpc_ctrl_lookup(d, sel, &c, &ctrl, e);
		json_decref(sel);
		if (ret)
			return -1;
	}
	if (nvemu_ctrl_set_quirks(ctrl, quirks, &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static int modify_queues(struct nvemud *d, json_t *params, struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_ctrl_params p, old;
	struct nvemud_ctrl *c;
	struct nvemu_ctrl *ctrl;
	uint32_t *nsids;
	int ret = 0;
	unsigned nr_ns;
	bool suspended;
	uint16_t cntlid, pcid = 0, vfn = 0;
	char vfu_path[108] = "";
	json_t *sel = params;

	/* Without ctrl, the function's (SNAP: the emulated function is the handle). */
	if (!rpc_has(params, "ctrl")) {
		const char *name;

		if (rpc_func_ctrl_name(d, params, &name, e))
			return -1;
		sel = json_pack("{s:s}", "ctrl", name);
	}
	ret = rpc_ctrl_lookup(d, sel, &c, &ctrl, e);
	if (sel != params)
		json_decref(sel);
	if (ret)
		return -1;
	if ((rpc_has(params, "num_msix") || rpc_has(params, "num_queues")) &&
	    ((nvemu_ctrl_cc(ctrl) & 1) || (!c->vfu && nvemu_ctrl_transport(ctrl)) ||
	     nvemu_ctrl_inflight(ctrl) || nvemud_vfu_connected(c)))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "controller %s is in use by a host%s: modify it only while idle",
				   c->name, nvemud_vfu_connected(c) ? " (a guest is connected)" : "");
	if (rpc_func_modify_msix(d, params, c, e))
		return -1;
	if (rpc_has(params, "admin_cmd_fwd_socket") || rpc_has(params, "admin_identify_cmd_fwd") ||
	    rpc_has(params, "admin_set_features_cmd_fwd") ||
	    rpc_has(params, "admin_cmd_fwd_timeout_ms")) {
		/* Checked first: a refused call leaves the forwarding as it was. */
		if (nvemud_fwd_check(d, params, e))
			return -1;
		/* Commands waiting on the old forwarder are answered by nvemu. */
		nvemud_fwd_free(c);
		if (nvemud_fwd_setup(d, c, ctrl, params, e))
			return -1;
	}
	if (!rpc_has(params, "num_queues"))
		return 0;
	p = *nvemu_ctrl_params(ctrl);
	p.num_io_queues = (uint16_t)rpc_uint(params, "num_queues", 1);
	if (p.num_io_queues > CTRL_MAX_QUEUES && !c->vfu)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "num_queues: %u needs a vfio-user controller; at most %u otherwise",
				   p.num_io_queues, CTRL_MAX_QUEUES);
	if (p.num_io_queues == nvemu_ctrl_params(ctrl)->num_io_queues)
		return 0;
	/* Re-create it: queue arrays and identify data follow the parameters. */
	nr_ns = nvemu_ctrl_nr_ns(ctrl);
	nsids = calloc(nr_ns + 1, sizeof(*nsids));
	if (!nsids)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	for (unsigned i = 0; i < nr_ns; i++)
		nsids[i] = nvemu_ctrl_nsid_at(ctrl, i);
	suspended = nvemu_ctrl_is_suspended(ctrl);
	p.cntlid = nvemu_ctrl_cntlid(ctrl);
	old = *nvemu_ctrl_params(ctrl);
	old.cntlid = nvemu_ctrl_cntlid(ctrl);
	/* Served over vfio-user with no guest: serve the new controller on the same socket. */
	if (c->vfu) {
		snprintf(vfu_path, sizeof(vfu_path), "%s", nvemud_vfu_path(c));
		nvemud_vfu_stop(d, c);
	}
	nvemu_ctrl_virt_secondary_of(ctrl, &pcid, &vfn);
	if (nvemu_subsys_remove_ctrl(c->subsys, c->cntlid, &nerr)) {
		free(nsids);
		rpc_err_nvemu(e, &nerr);
		goto restart;
	}
	if (nvemu_subsys_add_ctrl_ex(c->subsys, &p, &cntlid, &nerr)) {
		/* Put the old one back, so a failing call changes nothing. */
		rpc_err_nvemu(e, &nerr);
		if (nvemu_subsys_add_ctrl_ex(c->subsys, &old, &cntlid, NULL)) {
			nvemud_del_ctrl(d, c);
			free(nsids);
			return -1;
		}
		ret = -1;
	}
	ctrl = nvemu_subsys_ctrl(c->subsys, cntlid);
	nvemud_fwd_bind(c, ctrl);
	for (unsigned i = 0; i < nr_ns; i++)
		nvemu_ctrl_attach_ns(ctrl, nsids[i], NULL);
	if (suspended)
		nvemu_ctrl_suspend(ctrl, false);
	if (vfn)
		nvemu_ctrl_set_secondary(ctrl, pcid, vfn, NULL);
	free(nsids);
restart:
	if (vfu_path[0] && nvemud_vfu_start(d, c, vfu_path, &nerr)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "%s: vfio-user on %s after modify: %s", c->name,
			   vfu_path, nerr.msg);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "socket: %s: %s", vfu_path, nerr.msg);
	}
	return ret ? -1 : 0;
}

static int attach_detach(struct nvemud *d, json_t *params, json_t **result,
			 struct rpc_err *e, bool attach)
{
	uint32_t nsid = (uint32_t)rpc_uint(params, "nsid", 0);
	struct nvemu_error nerr = { 0 };
	struct nvemud_ctrl *c;
	struct nvemu_ctrl *ctrl;
	int ret;

	if (rpc_ctrl_lookup(d, params, &c, &ctrl, e))
		return -1;
	if (!nvemu_subsys_ns(c->subsys, nsid))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nsid: no namespace %u in %s", nsid,
				   nvemu_subsys_nqn(c->subsys));
	if (nvemud_ns_destroying(d, c->subsys, nsid))
		return rpc_err_set(e, RPC_ERR_BUSY, "nsid: namespace %u of %s is being destroyed",
				   nsid, nvemu_subsys_nqn(c->subsys));
	if (attach && nvemu_ctrl_ns_attached(ctrl, nsid))
		return rpc_err_set(e, RPC_ERR_EXISTS,
				   "namespace %u is already attached to controller %s", nsid,
				   c->name);
	if (!attach && !nvemu_ctrl_ns_attached(ctrl, nsid))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND,
				   "namespace %u is not attached to controller %s", nsid, c->name);
	if (attach)
		ret = nvemu_ctrl_attach_ns(ctrl, nsid, &nerr);
	else
		ret = nvemu_ctrl_detach_ns(ctrl, nsid, &nerr);
	if (ret)
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static int nvme_controller_attach_ns(struct nvemud *d, json_t *params, json_t **result,
				     struct rpc_err *e)
{
	return attach_detach(d, params, result, e, true);
}

static int nvme_controller_detach_ns(struct nvemud *d, json_t *params, json_t **result,
				     struct rpc_err *e)
{
	return attach_detach(d, params, result, e, false);
}

static json_t *sq_debug_json(const struct nvemu_ctrl *ctrl, unsigned q)
{
	enum nvemu_state_scope sq = NVEMU_STATE_SQ;

	return json_pack("{s:i, s:i, s:i, s:s, s:I, s:I, s:I}", "qid", q, "depth",
			 (int)nvemud_queue_stat(ctrl, sq, q, "size"), "cqid",
			 (int)nvemud_queue_stat(ctrl, sq, q, "cqid"), "state", "active",
			 "driver_sq_tail", (json_int_t)nvemud_queue_stat(ctrl, sq, q, "tail"),
			 "device_sq_head", (json_int_t)nvemud_queue_stat(ctrl, sq, q, "head"),
			 "requests", (json_int_t)nvemud_queue_stat(ctrl, sq, q, "requests"));
}

static json_t *cq_debug_json(const struct nvemu_ctrl *ctrl, unsigned q)
{
	enum nvemu_state_scope cq = NVEMU_STATE_CQ;

	return json_pack("{s:i, s:i, s:s, s:I, s:I, s:I}", "qid", q, "depth",
			 (int)nvemud_queue_stat(ctrl, cq, q, "size"), "state", "active",
			 "driver_cq_head", (json_int_t)nvemud_queue_stat(ctrl, cq, q, "head"),
			 "device_cq_tail", (json_int_t)nvemud_queue_stat(ctrl, cq, q, "tail"),
			 "completions", (json_int_t)nvemud_queue_stat(ctrl, cq, q, "completions"));
}

static int nvme_controller_debug_get(struct nvemud *d, json_t *params, json_t **result,
				     struct rpc_err *e)
{
	struct nvemud_ctrl *c, tmp;
	struct nvemu_ctrl *ctrl;
	json_t *sqs = json_array(), *cqs = json_array(), *pcie = NULL;

	if (ctrl_lookup_any(d, params, &c, &ctrl, &tmp, e)) {
		json_decref(sqs);
		json_decref(cqs);
		return -1;
	}
	if (c->vfu)
		pcie = nvemud_vfu_debug(c, ctrl, sqs, cqs);
	for (unsigned q = 0; !pcie && q <= nvemu_ctrl_params(ctrl)->num_io_queues; q++) {
		if (nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_SQ, q))
			json_array_append_new(sqs, sq_debug_json(ctrl, q));
		if (nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_CQ, q))
			json_array_append_new(cqs, cq_debug_json(ctrl, q));
	}
	*result = json_pack("{s:s, s:I, s:I, s:b, s:i, s:o, s:o}", "ctrl", c->name, "CC",
			    (json_int_t)nvemu_ctrl_cc(ctrl), "CSTS", (json_int_t)nvemu_ctrl_csts(ctrl),
			    "suspended", nvemu_ctrl_is_suspended(ctrl), "inflight",
			    (int)nvemu_ctrl_inflight(ctrl), "sqs", sqs, "cqs", cqs);
	if (pcie)
		json_object_set_new(*result, "pcie", pcie);
	if (c->fwd)
		json_object_set_new(*result, "admin_cmd_fwd", nvemud_fwd_stats_json(c));
	return 0;
}

static int nvme_controller_iostat(struct nvemud *d, json_t *params, json_t **result,
				  struct rpc_err *e)
{
	uint64_t r = 0, w = 0, f = 0;
	struct nvemud_ctrl *c, tmp;
	struct nvemu_ctrl *ctrl;
	json_t *qs;

	if (ctrl_lookup_any(d, params, &c, &ctrl, &tmp, e))
		return -1;
	qs = json_array();
	for (unsigned q = 1; q <= nvemu_ctrl_params(ctrl)->num_io_queues; q++) {
		uint64_t reads = nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, q, "reads");
		uint64_t writes = nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, q, "writes");
		uint64_t flushes = nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, q, "flushes");

		if (!nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_SQ, q) &&
		    !nvemud_queue_stat(ctrl, NVEMU_STATE_SQ, q, "requests"))
			continue;
		/* core_id: the reactor serving the queue (NVMe/TCP I/O queues; others: 0). */
		json_array_append_new(qs, json_pack("{s:i, s:i, s:I, s:I, s:I}", "queue_id", q,
						    "core_id",
						    (int)nvemud_tcp_queue_reactor(d, ctrl, (uint16_t)q),
						    "read_io_count", (json_int_t)reads,
						    "write_io_count", (json_int_t)writes,
						    "flush_io_count", (json_int_t)flushes));
		r += reads;
		w += writes;
		f += flushes;
	}
	*result = json_pack("{s:s, s:o, s:I, s:I, s:I}", "ctrl_id", c->name, "queues", qs,
			    "read_io_count", (json_int_t)r, "write_io_count", (json_int_t)w,
			    "flush_io_count", (json_int_t)f);
	/* Completions and their summed latency (nvemu's addition): averages over any interval. */
	{
		struct nvemu_ctrl_metrics m;
		json_t *lat = json_object();

		nvemu_ctrl_get_metrics(ctrl, &m);
		for (unsigned k = 0; k < NVEMU_CLASS_NR; k++)
			json_object_set_new(lat, nvemu_cmd_class_name(k),
					    json_pack("{s:I, s:I}", "completed",
						      (json_int_t)m.cls[k].cmds, "latency_ns_total",
						      (json_int_t)m.cls[k].lat_sum_ns));
		json_object_set_new(*result, "latency", lat);
	}
	return 0;
}

#define P_CTRL { "ctrl", RPC_P_STR, true, 1, NVEMUD_CTRL_NAME_MAX - 1 }

static const struct rpc_param create_params[] = {
	{ "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
	{ "name", RPC_P_STR, false, 1, NVEMUD_CTRL_NAME_MAX - 1 },
	{ "ctrl", RPC_P_UINT, false, 1, 0xffef },
	{ "port", RPC_P_UINT, false, 0, 65535 },
	{ "num_queues", RPC_P_UINT, false, 1, CTRL_MAX_QUEUES_VFU },
	{ "mdts", RPC_P_UINT, false, 1, 7 },
	{ "fw_slots", RPC_P_UINT, false, 1, 7 },
	{ "max_queue_entries", RPC_P_UINT, false, 2, 4096 },
	{ "aerl", RPC_P_UINT, false, 0, 15 },
	{ "write_zeroes", RPC_P_BOOL, false, 0, 1 },
	{ "compare", RPC_P_BOOL, false, 0, 1 },
	{ "compare_write", RPC_P_BOOL, false, 0, 1 },
	{ "deallocate_dsm", RPC_P_BOOL, false, 0, 1 },
	{ "suspended", RPC_P_BOOL, false, 0, 1 },
	{ "snapshot", RPC_P_STR, false, 1, 4095 },
	{ "admin_only", RPC_P_BOOL, false, 0, 1 },
	{ "socket", RPC_P_STR, false, 1, 107 },
	/* the PCIe function (rpc-emulation.c) and SNAP's MSI-X / core settings */
	{ "vuid", RPC_P_STR, false, 1, 39 },
	{ "pf_id", RPC_P_UINT, false, 0, NVEMUD_MAX_PFS - 1 },
	{ "vf_id", RPC_P_UINT, false, 0, NVEMU_VIRT_MAX_VFS - 1 },
	{ "pci_bdf", RPC_P_STR, false, 1, 15 },
	{ "vhca_id", RPC_P_UINT, false, 0, 0xffff },
	{ "dynamic_msix", RPC_P_BOOL, false, 0, 1 },
	{ "vf_num_msix", RPC_P_UINT, false, 0, 0xffff },
	{ "queue_core_alloc_policy", RPC_P_STR, false, 1, 16 },
	{ "admin_identify_cmd_fwd", RPC_P_STR, false, 1, 1280 },
	{ "admin_set_features_cmd_fwd", RPC_P_STR, false, 1, 1280 },
	{ "admin_cmd_fwd_socket", RPC_P_STR, false, 1, 107 },
	{ "admin_cmd_fwd_timeout_ms", RPC_P_UINT, false, 1, NVEMUD_FWD_TIMEOUT_MAX_MS },
	{ "quirks", RPC_P_UINT, false, 0, NVEMU_QUIRKS_VALID },
	{ .name = NULL },
};

static int nvme_controller_snapshot_get(struct nvemud *d, json_t *params, json_t **result,
					struct rpc_err *e)
{
	struct nvemud_ctrl *c;
	struct nvemu_ctrl *ctrl;
	json_t *snap;
	int ret;

	if (rpc_ctrl_lookup(d, params, &c, &ctrl, e))
		return -1;
	if (!nvemu_ctrl_is_suspended(ctrl))
		return rpc_err_set(e, RPC_ERR_STATE,
				   "controller %s is not suspended: suspend it first", c->name);
	if (nvemu_ctrl_inflight(ctrl))
		return rpc_err_set(e, RPC_ERR_BUSY, "controller %s still has %u commands in flight",
				   c->name, nvemu_ctrl_inflight(ctrl));
	snap = nvemud_ctrl_snapshot(d, ctrl);
	json_object_set_new(snap, "name", json_string(c->name));
	ret = nvemud_write_json(d, rpc_str(params, "filename"), snap, e);
	json_decref(snap);
	return ret;
}

const struct rpc_method rpc_controller_methods[] = {
	{ "nvme_controller_create", nvme_controller_create, create_params,
	  "Create a controller (optionally suspended, or from a snapshot; on a PCIe function by pf_id/vf_id/vuid/pci_bdf/vhca_id, or served to a VM over vfio-user on socket; Identify CNS / Set Features FID values forwarded to an application on admin_cmd_fwd_socket); returns its name. quirks: SNAP's bitmask (0 Namespace Attribute Changed even if disabled, 1 also without a Changed Namespace List read, 3 OACS Namespace Management, 4 no SGLs on PCIe)." },
	{ "nvme_controller_destroy", nvme_controller_destroy,
	  (const struct rpc_param[]){ P_CTRL, { "force", RPC_P_BOOL, false, 0, 1 },
				      { "release_msix", RPC_P_BOOL, false, 0, 1 }, { .name = NULL } },
	  "Destroy a controller; force even while a host has it enabled or commands are in flight (the reply waits for them; aborted past 1 s); release_msix: a VF's MSI-X back to the PF's pool." },
	{ "nvme_controller_suspend", nvme_controller_suspend,
	  (const struct rpc_param[]){ P_CTRL,
				      { "timeout_ms", RPC_P_UINT, false, 0, 3600000 },
				      { "admin_only", RPC_P_BOOL, false, 0, 1 },
				      { "live_update_notifier", RPC_P_BOOL, false, 0, 1 },
				      { .name = NULL } },
	  "Hold new commands (live_update_notifier: stop fetching them, for nvemud_live_update); reply once in-flight ones are done (past timeout_ms they are aborted, and their completion still awaited)." },
	{ "nvme_controller_resume", nvme_controller_resume,
	  (const struct rpc_param[]){ P_CTRL, { "live_update", RPC_P_BOOL, false, 0, 1 },
				      { .name = NULL } },
	  "Resume a suspended controller (live_update: one taken over from the previous nvemud)." },
	{ "nvme_controller_list", nvme_controller_list,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, false, 1, NVEMU_NQN_MAX },
				      { "ctrl", RPC_P_STR, false, 1, NVEMUD_CTRL_NAME_MAX - 1 },
				      { .name = NULL } },
	  "List controllers." },
	{ "nvme_controller_modify", nvme_controller_modify,
	  (const struct rpc_param[]){ { "ctrl", RPC_P_STR, false, 1, NVEMUD_CTRL_NAME_MAX - 1 },
				      { "num_queues", RPC_P_UINT, false, 1, CTRL_MAX_QUEUES_VFU },
				      { "num_msix", RPC_P_UINT, false, 0, 0xffff },
				      { "vuid", RPC_P_STR, false, 1, 39 },
				      { "pf_id", RPC_P_UINT, false, 0, NVEMUD_MAX_PFS - 1 },
				      { "vf_id", RPC_P_UINT, false, 0, NVEMU_VIRT_MAX_VFS - 1 },
				      { "pci_bdf", RPC_P_STR, false, 1, 15 },
				      { "vhca_id", RPC_P_UINT, false, 0, 0xffff },
				      { "admin_identify_cmd_fwd", RPC_P_STR, false, 1, 1280 },
				      { "admin_set_features_cmd_fwd", RPC_P_STR, false, 1, 1280 },
				      { "admin_cmd_fwd_socket", RPC_P_STR, false, 1, 107 },
				      { "admin_cmd_fwd_timeout_ms", RPC_P_UINT, false, 1,
					NVEMUD_FWD_TIMEOUT_MAX_MS },
				      { "quirks", RPC_P_UINT, false, 0, 0xffffffff },
				      { .name = NULL } },
	  "Change a controller's parameters: num_queues (and a VF's num_msix) while no host uses it; admin command forwarding (replaced as a whole) and quirks (SNAP's bits: 0 Namespace Attribute Changed even if disabled, 1 without a Changed Namespace List read, 3 OACS Namespace Management, 4 no SGLs on PCIe) at any time; without ctrl, the controller on the function vuid/pf_id/vf_id/pci_bdf/vhca_id names." },
	{ "nvme_controller_attach_ns", nvme_controller_attach_ns,
	  (const struct rpc_param[]){ P_CTRL, { "nsid", RPC_P_UINT, true, 1, 0xfffffffe },
				      { .name = NULL } },
	  "Attach a namespace to a controller." },
	{ "nvme_controller_detach_ns", nvme_controller_detach_ns,
	  (const struct rpc_param[]){ P_CTRL, { "nsid", RPC_P_UINT, true, 1, 0xfffffffe },
				      { .name = NULL } },
	  "Detach a namespace from a controller." },
	{ "nvme_controller_debug_get", nvme_controller_debug_get,
	  (const struct rpc_param[]){ P_CTRL, { .name = NULL } },
	  "Registers and queue state of a controller." },
	{ "nvme_controller_iostat", nvme_controller_iostat,
	  (const struct rpc_param[]){ P_CTRL, { .name = NULL } },
	  "Per-queue and total read/write/flush counts." },
	{ "nvme_controller_snapshot_get", nvme_controller_snapshot_get,
	  (const struct rpc_param[]){ { "ctrl", RPC_P_STR, true, 1, NVEMUD_CTRL_NAME_MAX - 1 },
				      { "filename", RPC_P_STR, true, 1, 4095 },
				      { .name = NULL } },
	  "Write a suspended controller's whole state to a file (for create --snapshot)." },
	{ .name = NULL },
};
