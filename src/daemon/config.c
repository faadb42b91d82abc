// SPDX-License-Identifier: MIT
/*
 * save_config / nvemud -c: the running configuration as the list of RPC
 * calls that rebuild it, so loading goes through the same checks as the
 * methods themselves. RAM and null bdevs are saved by geometry only: their
 * data is not part of the configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nvemu/mctp.h>
#include <nvemu/mi.h>
#include <nvemu/tcp.h>

#include "rpc.h"
#include "teardown.h"

#define CONFIG_VERSION 1

static void call(json_t *calls, const char *method, json_t *params)
{
	json_array_append_new(calls, json_pack("{s:s, s:o}", "method", method, "params", params));
}

static void save_bdevs(struct nvemud *d, json_t *calls, bool secrets)
{
	rpc_bdev_nvme_save(d, calls); /* their bdevs come with the controller */
	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		struct nvemud_bdev *b = &d->bdevs[i];
		struct nvemu_bdev *bd = b->bdev;
		json_int_t nb = (json_int_t)(bd->size / bd->blk_size);

		if (!strcmp(bd->ops->type, "nvme"))
			continue;

		/* A given size is kept: a file that grew must not grow its namespace. */
		if (!strcmp(bd->ops->type, "file")) {
			json_t *p = json_pack("{s:s, s:s, s:i, s:b, s:b}", "name", bd->name,
					      "filename", b->filename ? b->filename : "",
					      "block_size", (int)bd->blk_size, "read_only",
					      bd->read_only, "direct", b->direct);

			if (b->sized && nb)
				json_object_set_new(p, "num_blocks", json_integer(nb));
			call(calls, "bdev_file_create", p);
		}
		else if (!strcmp(bd->ops->type, "rbd"))
			rpc_bdev_rbd_save(d, calls, bd->name, secrets);
		else if (!strcmp(bd->ops->type, "delay"))
			call(calls, "bdev_delay_create", rpc_bdev_delay_params(bd));
		else if (!strcmp(bd->ops->type, "error")) {
			json_t *rules = rpc_bdev_error_rules(bd), *r;
			size_t k;

			call(calls, "bdev_error_create", rpc_bdev_error_params(bd));
			json_array_foreach(rules, k, r)
				call(calls, "bdev_error_inject_error", json_incref(r));
			json_decref(rules);
		}
		else
			call(calls, !strcmp(bd->ops->type, "null") ? "bdev_null_create" :
								       "bdev_malloc_create",
			     json_pack("{s:s, s:I, s:i}", "name", bd->name, "num_blocks", nb,
				       "block_size", (int)bd->blk_size));
	}
}

/*
 * The id port gets back when save_config's calls run: they re-add the saved
 * ports in order to a new subsystem (ids from 0), and a TCP port whose
 * listener is gone (hosts lingering) is not saved.
 */
static uint16_t saved_port_id(struct nvemud *d, struct nvemu_subsys *s, uint16_t port)
{
	uint16_t id = 0, pid;

	for (unsigned i = 0; !nvemu_subsys_port_at(s, i, &pid, NULL) && pid != port; i++) {
		json_t *listener = NULL;

		if ((!nvemud_tcp_owns_port(d, s, pid, &listener) || listener) &&
		    !nvemud_vblk_owns_port(d, s, pid))
			id++;
		json_decref(listener);
	}
	return id;
}

/* nvme_subsystem_add_port params: the listed port without its id (ids are reassigned in order). */
static json_t *port_params(struct nvemu_subsys *s, uint16_t id, const struct nvemu_port_params *pp)
{
	json_t *p = nvemud_port_json(id, pp);

	json_object_del(p, "id");
	json_object_set_new(p, "nqn", json_string(nvemu_subsys_nqn(s)));
	return p;
}

/* allow_any_host / add_host calls for s if it is exposed over TCP. */
static void save_tcp_access(struct nvemud *d, struct nvemu_subsys *s, json_t *calls)
{
	const char *h;

	if (!d->tcp || !nvemu_tcp_has_subsys(d->tcp, s))
		return;
	json_array_append_new(calls, json_pack("{s:s, s:{s:s, s:b}}", "method",
					       "nvmf_subsystem_allow_any_host", "params", "nqn",
					       nvemu_subsys_nqn(s), "allow_any_host",
					       nvemu_tcp_allow_any_host(d->tcp, s)));
	for (unsigned i = 0; (h = nvemu_tcp_get_host(d->tcp, s, i)); i++) {
		const char *key = NULL, *ckey = NULL;

		nvemu_tcp_get_host_auth(d->tcp, s, i, &key, &ckey);
		json_array_append_new(calls, json_pack("{s:s, s:{s:s, s:s, s:s*, s:s*, s:s*}}",
						       "method", "nvmf_subsystem_add_host", "params",
						       "nqn", nvemu_subsys_nqn(s), "host", h,
						       "dhchap_key", key, "dhchap_ctrlr_key", ckey,
						       "psk", nvemu_tcp_get_host_psk(d->tcp, s, i)));
	}
}

/* nvme_mi_endpoint_create calls for every endpoint. */
static void save_mi_endpoints(struct nvemud *d, json_t *calls)
{
	for (unsigned i = 0; d->mi && i < d->mi->nr_eps; i++) {
		struct mi_endpoint *ep = &d->mi->eps[i];
		json_t *p;

		/* A subsystem being destroyed is not saved, nor are its endpoints. */
		if (nvemud_find_subsys(d, nvemu_subsys_nqn(ep->subsys)) != ep->subsys)
			continue;
		p = json_pack("{s:s, s:i, s:I, s:i, s:i}", "nqn", nvemu_subsys_nqn(ep->subsys),
			      "port", saved_port_id(d, ep->subsys, ep->port), "net",
			      (json_int_t)nvemu_mctp_ep_net(ep->mctp), "eid",
			      nvemu_mctp_ep_eid(ep->mctp), "mtu", nvemu_mctp_ep_mtu(ep->mctp));
		if (p && !nvemu_mi_ep_ctrl0_alias(ep->mi))
			json_object_set_new(p, "ctrl_id0_alias", json_false());
		if (p && ep->serial) {
			json_object_set_new(p, "binding", json_string("serial"));
			json_object_set_new(p, "serial",
					    json_string(nvemud_mi_serial_spec(ep->serial)));
			json_object_set_new(p, "baud",
					    json_integer(nvemud_mi_serial_baud(ep->serial)));
		}
		json_array_append_new(calls, json_pack("{s:s, s:o}", "method",
						       "nvme_mi_endpoint_create", "params", p));
	}
}

/* A listener's ANA states other than optimized (the default), per group. */
static void save_listener_ana(struct nvemud *d, struct nvemu_subsys *s, uint16_t id, json_t *calls)
{
	for (uint32_t g = 1; nvemu_subsys_ana_reporting(s) && g <= NVEMU_ANAGRPMAX; g++) {
		enum nvemu_ana_state st;
		json_t *listener = NULL;

		if (nvemu_port_get_ana_state(s, id, g, &st) || st == NVEMU_ANA_OPTIMIZED)
			continue;
		if (!nvemud_tcp_owns_port(d, s, id, &listener) || !listener)
			return;
		json_object_set_new(listener, "ana_state", json_string(nvemu_ana_state_name(st)));
		json_object_set_new(listener, "anagrpid", json_integer(g));
		call(calls, "nvmf_subsystem_listener_set_ana_state", listener);
	}
}

/* The namespace's host list (namespace masking). */
static void save_ns_hosts(struct nvemu_subsys *s, uint32_t nsid, json_t *calls)
{
	const char *h;

	for (unsigned i = 0; (h = nvemu_ns_get_host(s, nsid, i)); i++)
		call(calls, "nvmf_ns_add_host",
		     json_pack("{s:s, s:I, s:s}", "nqn", nvemu_subsys_nqn(s), "nsid",
			       (json_int_t)nsid, "host", h));
}

static void save_ports(struct nvemud *d, struct nvemu_subsys *s, json_t *calls)
{
	struct nvemu_port_params pp;
	uint16_t id;

	/* In port order, so that port IDs come back the same. */
	for (unsigned i = 0; !nvemu_subsys_port_at(s, i, &id, &pp); i++) {
		json_t *p, *listener;

		/* A virtio-blk export's port comes back with the export. */
		if (nvemud_vblk_owns_port(d, s, id))
			continue;
		if (nvemud_tcp_owns_port(d, s, id, &listener)) {
			if (listener) {
				call(calls, "nvmf_subsystem_add_listener", listener);
				save_listener_ana(d, s, id, calls);
			}
			continue;
		}
		p = port_params(s, id, &pp);
		if (p)
			call(calls, "nvme_subsystem_add_port", p);
	}
}

static void save_namespaces(struct nvemud *d, struct nvemu_subsys *s, json_t *calls)
{
	struct nvemu_ns *ns;

	for (unsigned i = 0; (ns = nvemu_subsys_ns_at(s, i)); i++) {
		char uuid[37], nguid[33], eui64[17];
		struct nvemu_ns_info ni;

		nvemu_ns_info(ns, &ni);
		if (nvemud_ns_destroying(d, s, ni.nsid))
			continue;
		/* A host's Namespace Management namespaces have named bdevs too (daemon.c). */
		if (!ni.bdev || !nvemud_find_bdev(d, ni.bdev->name)) {
			nvemud_log(d, NVEMUD_LOG_WARN,
				   "save_config: %s namespace %u has no named bdev; not saved",
				   nvemu_subsys_nqn(s), ni.nsid);
			continue;
		}
		nvemud_uuid_unparse(ni.uuid, uuid);
		nvemud_hex(ni.nguid, 16, nguid);
		nvemud_hex(ni.eui64, 8, eui64);
		call(calls, "nvme_namespace_create",
		     json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:b, s:s*}", "nqn",
			       nvemu_subsys_nqn(s), "bdev_name", ni.bdev->name, "nsid",
			       (json_int_t)ni.nsid, "uuid", uuid, "nguid", nguid, "eui64", eui64,
			       "anagrpid", (json_int_t)nvemu_ns_anagrpid(s, ni.nsid),
			       "no_auto_visible", !nvemu_ns_auto_visible(s, ni.nsid), "ptpl_file",
			       nvemu_ns_get_ptpl_file(s, ni.nsid)));
		save_ns_hosts(s, ni.nsid, calls);
	}
}

static void save_subsys(struct nvemud *d, struct nvemu_subsys *s, json_t *calls)
{
	struct nvemu_subsys_info si;
	struct nvemu_health h;

	nvemu_subsys_info(s, &si);
	call(calls, "nvme_subsystem_create",
	     json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:i, s:i, s:s*}", "nqn",
		       nvemu_subsys_nqn(s), "serial_number", si.sn, "model_number", si.mn,
		       "firmware_rev", si.fr, "nn", (json_int_t)si.nn, "mnan", (json_int_t)si.mnan,
		       "single_ctrl", si.single_ctrl, "ana_reporting",
		       nvemu_subsys_ana_reporting(s), "min_cntlid", (int)si.min_cntlid,
		       "max_cntlid", (int)si.max_cntlid, "state_file", nvemu_subsys_state_file(s)));
	/* Access first, so a restored listener never serves a host it should refuse. */
	save_tcp_access(d, s, calls);
	save_ports(d, s, calls);
	nvemu_subsys_get_health(s, &h);
	call(calls, "nvme_subsystem_set_health",
	     json_pack("{s:s, s:i, s:i, s:i, s:i, s:i}", "nqn", nvemu_subsys_nqn(s), "temperature",
		       h.temperature_k, "available_spare", h.avail_spare,
		       "available_spare_threshold", h.spare_thresh, "percentage_used",
		       h.percent_used, "critical_warning", h.critical_warning));
	save_namespaces(d, s, calls);
}

static void save_ctrls(struct nvemud *d, json_t *calls)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++) {
		struct nvemud_ctrl *c = &d->ctrls[i];
		struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
		json_t *p;

		if (!ctrl || c->busy == NVEMUD_CTRL_DESTROYING)
			continue;
		p = nvemud_ctrl_params_json(ctrl);
		/* Port ids are handed out anew on reload: the id its port gets back then. */
		json_object_set_new(p, "port",
				    json_integer(saved_port_id(d, c->subsys,
								   nvemu_ctrl_params(ctrl)->port_id)));
		json_object_set_new(p, "nqn", json_string(nvemu_subsys_nqn(c->subsys)));
		json_object_set_new(p, "name", json_string(c->name));
		/* Attach while suspended, as SNAP recommends; resume after. */
		json_object_set_new(p, "suspended", json_true());
		if (nvemud_vfu_path(c))
			json_object_set_new(p, "socket", json_string(nvemud_vfu_path(c)));
		rpc_func_save(d, c, p);
		nvemud_fwd_save(c, p);
		call(calls, "nvme_controller_create", p);
		for (unsigned n = 0; n < nvemu_ctrl_nr_ns(ctrl); n++)
			call(calls, "nvme_controller_attach_ns",
			     json_pack("{s:s, s:I}", "ctrl", c->name, "nsid",
				       (json_int_t)nvemu_ctrl_nsid_at(ctrl, n)));
		if (!nvemu_ctrl_is_suspended(ctrl))
			call(calls, "nvme_controller_resume", json_pack("{s:s}", "ctrl", c->name));
	}
}

/* virtio-blk exports last: their targets exist by then. */
static void save_vblks(struct nvemud *d, json_t *calls)
{
	struct nvemud_vblk *v;

	LIST_FOREACH(v, &d->vblks, link) {
		struct nvemu_vblk_info vi;

		call(calls, "virtio_blk_controller_create", json_deep_copy(v->params));
		nvemu_vblk_get_info(v->vb, &vi);
		if (vi.suspended)
			call(calls, "virtio_blk_controller_suspend",
			     json_pack("{s:s}", "ctrl", v->name));
	}
}

json_t *nvemud_save_config(struct nvemud *d)
{
	return nvemud_save_config_ex(d, false);
}

json_t *nvemud_save_config_ex(struct nvemud *d, bool secrets)
{
	json_t *calls = json_array();

	/* The PCIe functions first: controllers are opened on them. */
	call(calls, "emulation_functions_configure", rpc_funcs_save(d));
	nvemud_keyring_save(d, calls); /* hosts refer to keys by name */
	{
		json_t *nc = nvemud_nvmf_config_json(d);

		if (nc)
			json_array_append_new(calls, json_pack("{s:s, s:o}", "method",
							       "nvmf_set_config", "params", nc));
	}
	save_bdevs(d, calls, secrets);
	for (unsigned i = 0; i < d->nr_subsys; i++)
		save_subsys(d, d->subsys[i], calls);
	save_ctrls(d, calls);
	save_mi_endpoints(d, calls);
	save_vblks(d, calls);
	return json_pack("{s:i, s:s, s:o}", "nvemu_config", CONFIG_VERSION, "note",
			 "RAM and null bdevs are saved by size only; their data is not saved",
			 "calls", calls);
}

/* Start-up with a skipped bdev: is this call about something left out with it? */
static bool skip_dependent(struct nvemud *d, const char *method, json_t *params)
{
	const char *bdev = json_string_value(json_object_get(params, "bdev_name"));
	const char *nqn = json_string_value(json_object_get(params, "nqn"));
	const char *ctrl = json_string_value(json_object_get(params, "ctrl"));
	json_int_t nsid = json_integer_value(json_object_get(params, "nsid"));
	size_t i;
	json_t *v;

	if (!d->skipped || !json_array_size(d->skipped))
		return false;
	if (!strcmp(method, "nvme_namespace_create") && bdev) {
		json_array_foreach(d->skipped, i, v) {
			const char *b = json_string_value(json_object_get(v, "bdev"));

			if (b && !strcmp(b, bdev)) {
				nvemud_log(d, NVEMUD_LOG_ERR,
					   "namespace %lld of %s skipped: its bdev %s was skipped",
					   (long long)nsid, nqn ? nqn : "?", bdev);
				json_array_append_new(d->skipped,
						      json_pack("{s:s?, s:I, s:s}", "nqn", nqn,
								"nsid", nsid, "bdev_name", bdev));
				return true;
			}
		}
	}
	if (!strcmp(method, "nvme_controller_attach_ns") && ctrl && nvemud_find_ctrl(d, ctrl)) {
		const char *cnqn = nvemu_subsys_nqn(nvemud_find_ctrl(d, ctrl)->subsys);

		json_array_foreach(d->skipped, i, v) {
			const char *n = json_string_value(json_object_get(v, "nqn"));

			if (n && !strcmp(n, cnqn) &&
			    json_integer_value(json_object_get(v, "nsid")) == nsid &&
			    !json_object_get(v, "ctrl")) {
				nvemud_log(d, NVEMUD_LOG_ERR,
					   "attachment of namespace %lld to %s skipped: the namespace was skipped",
					   (long long)nsid, ctrl);
				json_array_append_new(d->skipped,
						      json_pack("{s:s, s:s, s:I}", "ctrl", ctrl,
								"nqn", cnqn, "nsid", nsid));
				return true;
			}
		}
	}
	return false;
}

int nvemud_load_config(struct nvemud *d, json_t *cfg, struct rpc_err *e)
{
	json_t *v = json_object_get(cfg, "nvemu_config"), *calls, *c;
	size_t i;
	int ret = 0;

	if (!json_is_integer(v) || json_integer_value(v) != CONFIG_VERSION)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "nvemu_config: must be %d (not an nvemud configuration?)",
				   CONFIG_VERSION);
	calls = json_object_get(cfg, "calls");
	if (!json_is_array(calls))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "calls: must be an array");
	d->config_depth++;
	json_array_foreach(calls, i, c) {
		const char *method = json_string_value(json_object_get(c, "method"));
		json_t *params = json_object_get(c, "params");

		if (!method) {
			ret = rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					  "calls[%zu].method: must be a string", i);
			break;
		}
		if (!strcmp(method, "save_config"))
			continue;
		if (d->lenient_config && skip_dependent(d, method, params))
			continue;
		if (nvemud_rpc_invoke(d, method, json_incref(params), NULL, e)) {
			char msg[sizeof(e->msg)];

			snprintf(msg, sizeof(msg), "%s", e->msg);
			ret = rpc_err_set(e, e->code, "calls[%zu] %.60s: %s", i, method, msg);
			break;
		}
	}
	d->config_depth--;
	return ret;
}

int nvemud_load_config_file(struct nvemud *d, const char *path, struct rpc_err *e)
{
	json_t *cfg;
	int ret;

	if (nvemud_read_json_file(path, "filename", &cfg, e))
		return -1;
	ret = nvemud_load_config(d, cfg, e);
	json_decref(cfg);
	return ret;
}

static int save_config(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *file = rpc_str(params, "filename");
	json_t *cfg = nvemud_save_config_ex(d, rpc_bool(params, "secrets", false));
	int ret = 0;

	if (file) {
		ret = nvemud_write_json(d, file, cfg, e);
		json_decref(cfg);
		return ret;
	}
	*result = cfg;
	return 0;
}

static int load_config(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	/* A file that loads itself (or a chain that loops) would recurse without end. */
	if (d->config_depth)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "load_config: not allowed inside a configuration being loaded");
	return nvemud_load_config_file(d, rpc_str(params, "filename"), e);
}

const struct rpc_method rpc_config_methods[] = {
	{ "save_config", save_config,
	  (const struct rpc_param[]){ { "filename", RPC_P_STR, false, 1, 4095 },
				      { "secrets", RPC_P_BOOL, false, 0, 1 },
				      { .name = NULL } },
	  "The running configuration (written to filename if given), for nvemud -c; "
	  "secrets: include RBD cephx keys given in config_param." },
	{ "load_config", load_config,
	  (const struct rpc_param[]){ { "filename", RPC_P_STR, true, 1, 4095 }, { .name = NULL } },
	  "Apply a configuration saved by save_config on top of the running one." },
	{ .name = NULL },
};
