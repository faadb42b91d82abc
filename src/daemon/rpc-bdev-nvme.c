// SPDX-License-Identifier: MIT
/*
 * bdev_nvme_* methods (SPDK's names and parameters): drive an NVMe
 * controller with the host driver (include/nvemu/driver.h) and make one
 * bdev per namespace, <name>n<NSID>. The driver runs on the daemon's loop
 * (its sockets or interrupt fds, a 100 ms tick for timeouts, Keep Alive
 * and reconnects). Namespaces the target adds later become bdevs; a
 * removed namespace's bdev goes away once nothing uses it (until then its
 * I/O fails).
 *
 * Attaching blocks the loop for at most ATTACH_TIMEOUT_MS per step (socket
 * connect, ICResp, Connect, each admin command of the bring-up): the
 * methods answer with the controller's namespaces, which needs it up. A
 * reconnect after a loss is bounded the same way, once per
 * reconnect_delay_sec; a refused connection returns at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nvemu/driver.h>

#include "event-loop.h"
#include "rpc.h"

#define CTRLR_NAME_MAX	  32
#define ATTACH_TIMEOUT_MS 3000
#define TICK_MS		  100
#define POLL_MS		  1

struct nvme_ctrlr {
	LIST_ENTRY(nvme_ctrlr) link;
	char name[CTRLR_NAME_MAX + 1];
	struct nvemud *d;
	struct nvemu_drv_ctrl *ctrl;
	struct nvemu_bdev_nvme_ctrlr *bc;
	json_t *params; /* as attached: save_config repeats them */
	struct loop_src *tick;
	struct loop_src *poller; /* nointr: completions are polled every POLL_MS */
};

struct nvemud_nvme {
	LIST_HEAD(, nvme_ctrlr) ctrlrs;
};

/* ---- the driver on the daemon's loop */

struct drv_watch {
	struct loop_src *src;
	nvemu_drv_fd_cb cb;
	void *arg;
};

static void drv_watch_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct drv_watch *w = arg;

	w->cb(fd, revents, w->arg); /* may free w (del_fd) */
}

static void *drv_add_fd(void *loop, int fd, uint32_t events, nvemu_drv_fd_cb cb, void *arg)
{
	struct drv_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->src = loop_add_fd(loop, fd, events, drv_watch_cb, w);
	if (!w->src) {
		free(w);
		return NULL;
	}
	return w;
}

static int drv_mod_fd(void *loop, void *handle, uint32_t events)
{
	return loop_mod_fd(((struct drv_watch *)handle)->src, events);
}

static void drv_del_fd(void *loop, void *handle)
{
	struct drv_watch *w = handle;

	loop_del(w->src);
	free(w);
}

static const struct nvemu_drv_loop_ops drv_loop_ops = {
	.add_fd = drv_add_fd,
	.mod_fd = drv_mod_fd,
	.del_fd = drv_del_fd,
};

static void ctrlr_tick(struct loop_src *src, void *arg)
{
	nvemu_drv_ctrl_tick(((struct nvme_ctrlr *)arg)->ctrl);
}

/* Queues without interrupts (nointr) have no fd for the loop: reap them here. */
static void ctrlr_poll(struct loop_src *src, void *arg)
{
	struct nvemu_drv_ctrl *ctrl = ((struct nvme_ctrlr *)arg)->ctrl;

	for (unsigned i = 0; i < nvemu_drv_ctrl_nr_qpairs(ctrl); i++)
		nvemu_drv_qpair_process(nvemu_drv_ctrl_qpair(ctrl, i), 0);
	nvemu_drv_ctrl_process_admin(ctrl);
}

static void drv_log_cb(void *arg, int level, const char *msg)
{
	struct nvme_ctrlr *c = arg;

	nvemud_log(c->d, level, "bdev_nvme %s: %s", c->name, msg);
}

/* ---- registry */

static struct nvme_ctrlr *find_ctrlr(struct nvemud *d, const char *name)
{
	struct nvme_ctrlr *c;

	if (!d->nvme)
		return NULL;
	LIST_FOREACH(c, &d->nvme->ctrlrs, link)
	if (!strcmp(c->name, name))
		return c;
	return NULL;
}

static void bdev_name(const struct nvme_ctrlr *c, uint32_t nsid, char *out, size_t len)
{
	snprintf(out, len, "%sn%u", c->name, nsid);
}

/* The registered bdev of nsid, or NULL. */
static struct nvemud_bdev *ns_bdev(struct nvme_ctrlr *c, uint32_t nsid)
{
	struct nvemu_drv_ctrl *ctrl;
	uint32_t n;

	for (unsigned i = 0; i < c->d->nr_bdevs; i++)
		if (!nvemu_bdev_nvme_get(c->d->bdevs[i].bdev, &ctrl, &n) && ctrl == c->ctrl &&
		    n == nsid)
			return &c->d->bdevs[i];
	return NULL;
}

static int add_ns_bdev(struct nvme_ctrlr *c, uint32_t nsid, struct nvemu_error *err)
{
	struct nvemu_bdev *b;
	char name[64];
	int rc;

	bdev_name(c, nsid, name, sizeof(name));
	if (nvemud_find_bdev(c->d, name))
		return nvemu_error_set(err, -EEXIST, "name: bdev %s already exists", name);
	rc = nvemu_bdev_nvme_create(name, c->bc, nsid, &b, err);
	if (rc)
		return rc;
	if (nvemud_add_bdev(c->d, b, NULL)) {
		nvemu_bdev_destroy(b, NULL);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static void del_ns_bdev(struct nvme_ctrlr *c, struct nvemud_bdev *b)
{
	struct nvemu_bdev *bdev = b->bdev;

	nvemud_del_bdev(c->d, b);
	nvemu_bdev_destroy(bdev, NULL);
}

static void drv_event(void *arg, struct nvemu_drv_ctrl *ctrl, enum nvemu_drv_event ev,
		      uint32_t nsid)
{
	struct nvme_ctrlr *c = arg;
	struct nvemu_error err = {0};
	struct nvemud_bdev *b;

	if (!c->bc)
		return; /* still attaching */
	switch (ev) {
	case NVEMU_DRV_EV_NS_ADDED:
		if (add_ns_bdev(c, nsid, &err))
			nvemud_log(c->d, NVEMUD_LOG_WARN, "bdev_nvme %s: namespace %u: %s", c->name,
				   nsid, err.msg);
		break;
	case NVEMU_DRV_EV_NS_REMOVED:
		b = ns_bdev(c, nsid);
		if (b && !b->bdev->users && !nvemu_bdev_inflight(b->bdev))
			del_ns_bdev(c, b);
		else if (b)
			nvemud_log(c->d, NVEMUD_LOG_WARN,
				   "bdev_nvme %s: namespace %u went away; bdev %s stays while used "
				   "(its I/O fails)",
				   c->name, nsid, b->bdev->name);
		break;
	case NVEMU_DRV_EV_NS_CHANGED:
		nvemud_log(c->d, NVEMUD_LOG_WARN,
			   "bdev_nvme %s: namespace %u changed size or format; detach and attach "
			   "again to use the new geometry",
			   c->name, nsid);
		break;
	default:
		break;
	}
}

static void ctrlr_free(struct nvme_ctrlr *c)
{
	struct nvemud_bdev *b;

	for (uint32_t nsid = 0; c->bc && (nsid = nvemu_drv_ns_next(c->ctrl, nsid));)
		if ((b = ns_bdev(c, nsid)))
			del_ns_bdev(c, b);
	/* bdevs of namespaces that went away while in use */
	for (unsigned i = c->d->nr_bdevs; i-- > 0;) {
		struct nvemu_drv_ctrl *ctrl;

		if (!nvemu_bdev_nvme_get(c->d->bdevs[i].bdev, &ctrl, NULL) && ctrl == c->ctrl)
			del_ns_bdev(c, &c->d->bdevs[i]);
	}
	loop_del(c->tick);
	loop_del(c->poller);
	nvemu_bdev_nvme_ctrlr_destroy(c->bc);
	nvemu_drv_ctrl_destroy(c->ctrl);
	json_decref(c->params);
	free(c);
}

void nvemud_nvme_free(struct nvemud *d)
{
	struct nvme_ctrlr *c;

	if (!d->nvme)
		return;
	while ((c = LIST_FIRST(&d->nvme->ctrlrs))) {
		LIST_REMOVE(c, link);
		ctrlr_free(c);
	}
	free(d->nvme);
	d->nvme = NULL;
}

/* ---- methods */

static int params_to_trid(json_t *params, struct nvemu_drv_trid *trid, struct rpc_err *e)
{
	const char *adrfam = rpc_str(params, "adrfam");

	memset(trid, 0, sizeof(*trid));
	if (nvemu_drv_trtype_parse(rpc_str(params, "trtype"), &trid->trtype))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "trtype: must be pcie, vfio-user or tcp");
	if (!nvemu_drv_trtype_supported(trid->trtype))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "trtype: the %s host transport is not in this build",
				   nvemu_drv_trtype_name(trid->trtype));
	if (adrfam && !strcasecmp(adrfam, "ipv4"))
		trid->adrfam = NVMF_ADDR_FAMILY_IP4;
	else if (adrfam && !strcasecmp(adrfam, "ipv6"))
		trid->adrfam = NVMF_ADDR_FAMILY_IP6;
	else if (adrfam)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "adrfam: must be ipv4 or ipv6");
	snprintf(trid->traddr, sizeof(trid->traddr), "%s", rpc_str(params, "traddr"));
	if (rpc_has(params, "trsvcid"))
		snprintf(trid->trsvcid, sizeof(trid->trsvcid), "%s", rpc_str(params, "trsvcid"));
	if (rpc_has(params, "subnqn"))
		snprintf(trid->subnqn, sizeof(trid->subnqn), "%s", rpc_str(params, "subnqn"));
	if (trid->trtype == NVEMU_DRV_TRTYPE_TCP) {
		if (!trid->subnqn[0])
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "subnqn: required for tcp");
		if (!trid->trsvcid[0])
			snprintf(trid->trsvcid, sizeof(trid->trsvcid), "4420");
	}
	return 0;
}

static void params_to_opts(struct nvme_ctrlr *c, json_t *params, struct nvemu_drv_opts *o)
{
	uint64_t loss = rpc_uint(params, "ctrlr_loss_timeout_sec", 60);

	nvemu_drv_opts_init(o);
	if (rpc_has(params, "hostnqn"))
		snprintf(o->hostnqn, sizeof(o->hostnqn), "%s", rpc_str(params, "hostnqn"));
	o->hdgst = rpc_bool(params, "hdgst", false);
	o->ddgst = rpc_bool(params, "ddgst", false);
	o->nosgl = rpc_bool(params, "nosgl", false);
	o->nomsi = rpc_bool(params, "nomsi", false);
	o->nomsix = rpc_bool(params, "nomsix", false);
	o->nointr = rpc_bool(params, "nointr", false);
	o->num_io_queues = (uint16_t)rpc_uint(params, "num_io_queues", 2);
	o->io_queue_size = (uint16_t)rpc_uint(params, "io_queue_size", 128);
	o->reconnect_delay_ms = (uint32_t)rpc_uint(params, "reconnect_delay_sec", 1) * 1000;
	/* 0: failed at the first reconnect that does not succeed. */
	o->ctrl_loss_timeout_ms = loss ? (uint32_t)loss * 1000 : 1;
	o->connect_timeout_ms = ATTACH_TIMEOUT_MS;
	o->admin_timeout_ms = ATTACH_TIMEOUT_MS;
	o->log = drv_log_cb;
	o->log_arg = c;
	o->event = drv_event;
	o->event_arg = c;
	if (c->d->loop) {
		o->loop_ops = &drv_loop_ops;
		o->loop = c->d->loop;
	}
}

static json_t *ctrlr_bdev_names(struct nvme_ctrlr *c)
{
	json_t *arr = json_array();
	struct nvemud_bdev *b;

	for (uint32_t nsid = 0; (nsid = nvemu_drv_ns_next(c->ctrl, nsid));)
		if ((b = ns_bdev(c, nsid)))
			json_array_append_new(arr, json_string(b->bdev->name));
	return arr;
}

static int attach(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemu_error nerr = {0};
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts o;
	struct nvme_ctrlr *c;

	if (find_ctrlr(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: controller %s already attached", name);
	if (params_to_trid(params, &trid, e))
		return -1;
	if (!d->nvme) {
		d->nvme = calloc(1, sizeof(*d->nvme));
		if (!d->nvme)
			return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
		LIST_INIT(&d->nvme->ctrlrs);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->d = d;
	c->params = json_deep_copy(params);
	params_to_opts(c, params, &o);
	if (nvemu_drv_ctrl_connect(&trid, &o, &c->ctrl, &nerr)) {
		json_decref(c->params);
		free(c);
		return rpc_err_set(e, nerr.code == -EINVAL ? RPC_ERR_INVALID_PARAMS : RPC_ERR_IO,
				   "%s", nerr.msg);
	}
	if (nvemu_bdev_nvme_ctrlr_create(c->ctrl, &c->bc) ||
	    (d->loop && !(c->tick = loop_add_timer(d->loop, TICK_MS, true, ctrlr_tick, c))) ||
	    (d->loop && o.nointr &&
	     !(c->poller = loop_add_timer(d->loop, POLL_MS, true, ctrlr_poll, c)))) {
		ctrlr_free(c);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	for (uint32_t nsid = 0; (nsid = nvemu_drv_ns_next(c->ctrl, nsid));) {
		if (add_ns_bdev(c, nsid, &nerr)) {
			ctrlr_free(c);
			return rpc_err_nvemu(e, &nerr);
		}
	}
	LIST_INSERT_HEAD(&d->nvme->ctrlrs, c, link);
	nvemud_log(d, NVEMUD_LOG_INFO, "bdev_nvme %s: attached %s %s (serial %s)", c->name,
		   nvemu_drv_trtype_name(trid.trtype), trid.traddr, nvemu_drv_ctrl_serial(c->ctrl));
	*result = ctrlr_bdev_names(c);
	return 0;
}

static int detach(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvme_ctrlr *c = find_ctrlr(d, name);

	if (!c)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no controller %s", name);
	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		struct nvemu_bdev *b = d->bdevs[i].bdev;
		struct nvemu_drv_ctrl *ctrl;

		if (nvemu_bdev_nvme_get(b, &ctrl, NULL) || ctrl != c->ctrl)
			continue;
		if (b->users)
			return rpc_err_set(e, RPC_ERR_BUSY, "bdev %s is used by %u namespace(s)",
					   b->name, b->users);
		if (nvemu_bdev_inflight(b))
			return rpc_err_set(e, RPC_ERR_BUSY, "bdev %s has I/O in flight", b->name);
	}
	LIST_REMOVE(c, link);
	ctrlr_free(c);
	return 0;
}

static json_t *ctrlr_json(struct nvme_ctrlr *c)
{
	const struct nvemu_drv_trid *t = nvemu_drv_ctrl_trid(c->ctrl);
	const struct nvme_id_ctrl *id = nvemu_drv_ctrl_id(c->ctrl);
	json_t *nss = json_array();
	struct nvemu_drv_ns_info ni;
	struct nvemud_bdev *b;
	char mn[41];
	int n;

	memcpy(mn, id->mn, sizeof(id->mn));
	for (n = sizeof(id->mn); n > 0 && (mn[n - 1] == ' ' || !mn[n - 1]); n--)
		;
	mn[n] = 0;
	for (uint32_t nsid = 0; (nsid = nvemu_drv_ns_next(c->ctrl, nsid));) {
		nvemu_drv_ns_get(c->ctrl, nsid, &ni);
		b = ns_bdev(c, nsid);
		json_array_append_new(
			nss, json_pack("{s:I, s:s?, s:I, s:I}", "nsid", (json_int_t)nsid,
				       "bdev_name", b ? b->bdev->name : NULL, "num_blocks",
				       (json_int_t)ni.nsze, "block_size", (json_int_t)ni.blk_size));
	}
	return json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:i, s:s, s:s%, s:I, s:i, s:o}",
			 "name", c->name, "trid", "trtype", nvemu_drv_trtype_name(t->trtype),
			 "adrfam", t->adrfam == NVMF_ADDR_FAMILY_IP6 ? "ipv6" : "ipv4", "traddr",
			 t->traddr, "trsvcid", t->trsvcid, "subnqn", t->subnqn, "state",
			 nvemu_drv_state_name(nvemu_drv_ctrl_state(c->ctrl)), "cntlid",
			 (int)nvemu_drv_ctrl_cntlid(c->ctrl), "serial_number",
			 nvemu_drv_ctrl_serial(c->ctrl), "model_number", mn, (size_t)n, "resets",
			 (json_int_t)nvemu_drv_ctrl_resets(c->ctrl), "num_io_queues",
			 (int)nvemu_drv_ctrl_nr_qpairs(c->ctrl), "namespaces", nss);
}

static int get_controllers(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	json_t *arr = json_array();
	struct nvme_ctrlr *c;

	if (name && !find_ctrlr(d, name)) {
		json_decref(arr);
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no controller %s", name);
	}
	if (d->nvme)
		LIST_FOREACH(c, &d->nvme->ctrlrs, link)
	if (!name || !strcmp(name, c->name))
		json_array_append_new(arr, ctrlr_json(c));
	*result = arr;
	return 0;
}

void rpc_bdev_nvme_save(struct nvemud *d, json_t *calls)
{
	struct nvme_ctrlr *c;
	json_t *rev = json_array();
	size_t i;
	json_t *v;

	if (!d->nvme) {
		json_decref(rev);
		return;
	}
	/* The list is newest first: save in attach order. */
	LIST_FOREACH(c, &d->nvme->ctrlrs, link)
	json_array_insert_new(rev, 0,
			      json_pack("{s:s, s:O}", "method", "bdev_nvme_attach_controller",
					"params", c->params));
	json_array_foreach(rev, i, v) json_array_append(calls, v);
	json_decref(rev);
}

struct nvemu_bdev *nvemud_nvme_find_sn(struct nvemud *d, const char *name)
{
	struct nvemu_drv_ctrl *ctrls[64], *ctrl;
	struct nvme_ctrlr *c;
	unsigned n = 0;
	uint32_t nsid;

	if (!d->nvme)
		return NULL;
	LIST_FOREACH(c, &d->nvme->ctrlrs, link)
	if (n < sizeof(ctrls) / sizeof(ctrls[0]))
		ctrls[n++] = c->ctrl;
	if (nvemu_drv_find_sn_ns(ctrls, n, name, &ctrl, &nsid))
		return NULL;
	LIST_FOREACH(c, &d->nvme->ctrlrs, link)
	{
		struct nvemud_bdev *b;

		if (c->ctrl == ctrl && (b = ns_bdev(c, nsid)))
			return b->bdev;
	}
	return NULL;
}

#define P_BOOL(n)                                                                                  \
	{                                                                                          \
		n, RPC_P_BOOL, false, 0, 1                                                         \
	}

const struct rpc_method rpc_bdev_nvme_methods[] = {
	{"bdev_nvme_attach_controller", attach,
	 (const struct rpc_param[]){{"name", RPC_P_STR, true, 1, CTRLR_NAME_MAX},
				    {"trtype", RPC_P_STR, true, 1, 16},
				    {"traddr", RPC_P_STR, true, 1, NVEMU_DRV_TRADDR_MAX - 1},
				    {"trsvcid", RPC_P_STR, false, 1, 31},
				    {"adrfam", RPC_P_STR, false, 1, 8},
				    {"subnqn", RPC_P_STR, false, 1, NVEMU_DRV_NQN_MAX - 1},
				    {"hostnqn", RPC_P_STR, false, 1, NVEMU_DRV_NQN_MAX - 1},
				    P_BOOL("hdgst"),
				    P_BOOL("ddgst"),
				    P_BOOL("nosgl"),
				    P_BOOL("nomsi"),
				    P_BOOL("nomsix"),
				    P_BOOL("nointr"),
				    {"num_io_queues", RPC_P_UINT, false, 1, 64},
				    {"io_queue_size", RPC_P_UINT, false, 2, 1024},
				    {"reconnect_delay_sec", RPC_P_UINT, false, 1, 3600},
				    {"ctrlr_loss_timeout_sec", RPC_P_UINT, false, 0, 86400},
				    {0}},
	 "Drive an NVMe controller (trtype tcp: traddr, trsvcid, subnqn; pcie: traddr is the "
	 "PCI address; vfio-user: the socket; nosgl, nomsi, nomsix, nointr: PCIe data and "
	 "interrupt "
	 "modes, nointr polls every 1 ms) and make a bdev <name>n<NSID> per namespace. "
	 "Returns the bdev names. A lost controller is reconnected every reconnect_delay_sec "
	 "(1) until ctrlr_loss_timeout_sec (60) has passed, then it is failed."},
	{"bdev_nvme_detach_controller", detach,
	 (const struct rpc_param[]){{"name", RPC_P_STR, true, 1, CTRLR_NAME_MAX}, {0}},
	 "Disconnect a controller and delete its bdevs (refused while a namespace uses one)."},
	{"bdev_nvme_get_controllers", get_controllers,
	 (const struct rpc_param[]){{"name", RPC_P_STR, false, 1, CTRLR_NAME_MAX}, {0}},
	 "Attached controllers: transport ID, state (enabled, resetting, failed), serial number, "
	 "resets, namespaces and their bdevs."},
	{0},
};
