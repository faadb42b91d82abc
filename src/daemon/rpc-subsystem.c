// SPDX-License-Identifier: MIT
/* nvme_subsystem_* methods and ports. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rpc.h"
#include "teardown.h"

static int find_subsys(struct nvemud *d, json_t *params, struct nvemu_subsys **s,
		       struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");

	*s = nvemud_find_subsys(d, nqn);
	if (!*s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	return 0;
}

static int nvme_subsystem_create(struct nvemud *d, json_t *params, json_t **result,
				 struct rpc_err *e)
{
	struct nvemu_subsys_params p;
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;

	nvemu_subsys_params_init(&p);
	if (nvemu_vendor_from_env(&p.vendor, &nerr))
		return rpc_err_nvemu(e, &nerr);
	p.nqn = rpc_str(params, "nqn");
	p.serial = rpc_str(params, "serial_number");
	p.model = rpc_str(params, "model_number");
	p.firmware_rev = rpc_str(params, "firmware_rev");
	p.nn = (uint32_t)rpc_uint(params, "nn", 0xfffffffe);
	p.mnan = (uint32_t)rpc_uint(params, "mnan", 1024);
	if (!rpc_has(params, "mnan") && p.mnan > p.nn)
		p.mnan = p.nn;
	p.single_ctrl = rpc_bool(params, "single_ctrl", false);
	if (p.mnan > p.nn)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "mnan: at most nn (%u)", p.nn);
	if (nvemu_nqn_validate(p.nqn, &nerr))
		return rpc_err_nvemu(e, &nerr);
	if (nvemud_find_subsys(d, p.nqn))
		return rpc_err_set(e, RPC_ERR_EXISTS, "nqn: subsystem %s already exists", p.nqn);
	if (nvemud_nqn_destroying(d, p.nqn))
		return rpc_err_set(e, RPC_ERR_BUSY, "nqn: subsystem %s is still being destroyed",
				   p.nqn);
	if (nvemu_subsys_create(&p, &s, &nerr))
		return rpc_err_nvemu(e, &nerr);
	/* No controller yet: this cannot fail. */
	nvemu_subsys_set_ana_reporting(s, rpc_bool(params, "ana_reporting", false), NULL);
	if (rpc_has(params, "state_file") &&
	    nvemu_subsys_set_state_file(s, rpc_str(params, "state_file"), &nerr)) {
		nvemu_subsys_destroy(s);
		return rpc_err_nvemu(e, &nerr);
	}
	if (nvemud_add_subsys(d, s)) {
		nvemu_subsys_destroy(s);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	nvemud_subsys_setup(d, s);
	*result = json_string(nvemu_subsys_nqn(s));
	return 0;
}

static int nvme_subsystem_destroy(struct nvemud *d, json_t *params, json_t **result,
				  struct rpc_err *e)
{
	struct nvemu_subsys_info si;
	struct nvemu_subsys *s;

	if (find_subsys(d, params, &s, e))
		return -1;
	nvemu_subsys_info(s, &si);
	if ((si.nr_ctrls || si.nr_ns) && !rpc_bool(params, "force", false))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "subsystem %s still has %u controller(s) and %u namespace(s): destroy them first or use force",
				   nvemu_subsys_nqn(s), si.nr_ctrls, si.nr_ns);
	if (nvemud_subsys_busy(d, s))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "subsystem %s: a controller or namespace of it is being destroyed or suspended; retry when that has finished",
				   nvemu_subsys_nqn(s));
	return nvemud_teardown_subsys(d, s, e);
}

static json_t *subsys_json(struct nvemud *d, struct nvemu_subsys *s)
{
	json_t *ports = json_array(), *ctrls = json_array(), *nsids = json_array();
	struct nvemu_port_params pp;
	struct nvemu_subsys_info si;
	struct nvemu_ctrl *ctrl;
	struct nvemu_ns *ns;
	uint16_t id;

	for (unsigned i = 0; !nvemu_subsys_port_at(s, i, &id, &pp); i++)
		json_array_append_new(ports, nvemud_port_json(id, &pp));
	for (unsigned i = 0; (ctrl = nvemu_subsys_ctrl_at(s, i)); i++) {
		uint16_t cntlid = nvemu_ctrl_cntlid(ctrl);
		const char *name = nvemud_ctrl_name(d, s, cntlid);

		json_array_append_new(ctrls,
				      json_pack("{s:s?, s:i}", "name", name, "cntlid", cntlid));
	}
	for (unsigned i = 0; (ns = nvemu_subsys_ns_at(s, i)); i++) {
		struct nvemu_ns_info ni;

		nvemu_ns_info(ns, &ni);
		json_array_append_new(nsids, json_integer(ni.nsid));
	}
	nvemu_subsys_info(s, &si);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:o, s:o, s:o, s:b, s:s?}", "nqn",
			 nvemu_subsys_nqn(s), "serial_number", si.sn, "model_number", si.mn,
			 "firmware_rev", si.fr, "nn", (json_int_t)si.nn, "mnan",
			 (json_int_t)si.mnan, "single_ctrl", si.single_ctrl, "ports", ports,
			 "controllers", ctrls, "namespaces", nsids, "ana_reporting",
			 nvemu_subsys_ana_reporting(s), "state_file", nvemu_subsys_state_file(s));
}

static int nvme_subsystem_list(struct nvemud *d, json_t *params, json_t **result,
			       struct rpc_err *e)
{
	struct nvemu_subsys *only = NULL;
	json_t *arr;

	if (rpc_has(params, "nqn") && find_subsys(d, params, &only, e))
		return -1;
	arr = json_array();
	for (unsigned i = 0; i < d->nr_subsys; i++)
		if (!only || only == d->subsys[i])
			json_array_append_new(arr, subsys_json(d, d->subsys[i]));
	*result = arr;
	return 0;
}

static int nvme_subsystem_add_port(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	const char *type = rpc_str(params, "type");
	static const char *const pcie_only[] = { "port_number", "max_link_speed",
						 "max_link_width", NULL };
	static const char *const tw_only[] = { "address", "max_freq", "mctp_send_enabled",
					       NULL };
	static const char *const tcp_only[] = { "traddr", "trsvcid", "adrfam", NULL };
	const char *const *allowed, *const *all[] = { pcie_only, tw_only, tcp_only };
	struct nvemu_port_params p;
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;
	uint16_t id;

	if (find_subsys(d, params, &s, e))
		return -1;
	if (!strcmp(type, "pcie")) {
		nvemu_port_params_init(&p, NVEMU_PORT_PCIE);
		allowed = pcie_only;
	} else if (!strcmp(type, "two_wire")) {
		nvemu_port_params_init(&p, NVEMU_PORT_TWO_WIRE);
		allowed = tw_only;
	} else if (!strcmp(type, "tcp")) {
		nvemu_port_params_init(&p, NVEMU_PORT_TCP);
		allowed = tcp_only;
	} else {
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "type: must be \"pcie\", \"two_wire\" or \"tcp\"");
	}
	for (unsigned t = 0; t < 3; t++) {
		if (all[t] == allowed)
			continue;
		for (const char *const *k = all[t]; *k; k++)
			if (rpc_has(params, *k))
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
						   "%s: not a parameter of %s ports", *k, type);
	}
	switch (p.type) {
	case NVEMU_PORT_PCIE:
		p.pcie.port_number = (uint8_t)rpc_uint(params, "port_number", p.pcie.port_number);
		p.pcie.max_link_speed =
			(uint8_t)rpc_uint(params, "max_link_speed", p.pcie.max_link_speed);
		p.pcie.max_link_width =
			(uint8_t)rpc_uint(params, "max_link_width", p.pcie.max_link_width);
		break;
	case NVEMU_PORT_TWO_WIRE:
		p.two_wire.address = (uint8_t)rpc_uint(params, "address", p.two_wire.address);
		p.two_wire.max_freq = (uint8_t)rpc_uint(params, "max_freq", p.two_wire.max_freq);
		p.two_wire.mctp_send_enabled =
			rpc_bool(params, "mctp_send_enabled", p.two_wire.mctp_send_enabled);
		break;
	case NVEMU_PORT_TCP:
		if (rpc_has(params, "traddr"))
			snprintf(p.tcp.traddr, sizeof(p.tcp.traddr), "%s",
				 rpc_str(params, "traddr"));
		if (rpc_has(params, "trsvcid"))
			snprintf(p.tcp.trsvcid, sizeof(p.tcp.trsvcid), "%s",
				 rpc_str(params, "trsvcid"));
		if (rpc_has(params, "adrfam")) {
			const char *af = rpc_str(params, "adrfam");

			if (strcmp(af, "ipv4") && strcmp(af, "ipv6"))
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
						   "adrfam: must be \"ipv4\" or \"ipv6\"");
			p.tcp.adrfam = !strcmp(af, "ipv6") ? 2 : 1;
		}
		break;
	}
	if (nvemu_subsys_add_port(s, &p, &id, &nerr))
		return rpc_err_nvemu(e, &nerr);
	*result = json_integer(id);
	return 0;
}

static int nvme_subsystem_remove_port(struct nvemud *d, json_t *params, json_t **result,
				      struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;

	if (find_subsys(d, params, &s, e))
		return -1;
	if (nvemud_tcp_owns_port(d, s, (uint16_t)rpc_uint(params, "port", 0), NULL))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "port: %u belongs to a TCP listener: use nvmf_subsystem_remove_listener",
				   (unsigned)rpc_uint(params, "port", 0));
	if (nvemud_mi_owns_port(d, s, (uint16_t)rpc_uint(params, "port", 0)))
		return rpc_err_set(e, RPC_ERR_BUSY,
				   "port: %u has an NVMe-MI endpoint: use nvme_mi_endpoint_destroy",
				   (unsigned)rpc_uint(params, "port", 0));
	if (nvemu_subsys_remove_port(s, (uint16_t)rpc_uint(params, "port", 0), &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

#define P_NQN { "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX }

const struct rpc_method rpc_subsystem_methods[] = {
	{ "nvme_subsystem_create", nvme_subsystem_create,
	  (const struct rpc_param[]){ P_NQN,
				      { "serial_number", RPC_P_STR, false, 1, NVEMU_SN_MAX },
				      { "model_number", RPC_P_STR, false, 1, NVEMU_MN_MAX },
				      { "firmware_rev", RPC_P_STR, false, 1, NVEMU_FR_MAX },
				      { "nn", RPC_P_UINT, false, 1, 0xfffffffe },
				      { "mnan", RPC_P_UINT, false, 1, 0xfffffffe },
				      { "single_ctrl", RPC_P_BOOL, false, 0, 1 },
				      { "ana_reporting", RPC_P_BOOL, false, 0, 1 },
				      { "state_file", RPC_P_STR, false, 1, 4000 },
				      { .name = NULL } },
	  "Create an NVMe subsystem; state_file keeps its sanitize state through restarts." },
	{ "nvme_subsystem_destroy", nvme_subsystem_destroy,
	  (const struct rpc_param[]){ P_NQN, { "force", RPC_P_BOOL, false, 0, 1 }, { .name = NULL } },
	  "Destroy a subsystem; force also destroys its controllers and namespaces (the reply waits for their commands in flight)." },
	{ "nvme_subsystem_list", nvme_subsystem_list,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, false, 1, NVEMU_NQN_MAX }, { .name = NULL } },
	  "List subsystems." },
	{ "nvme_subsystem_add_port", nvme_subsystem_add_port,
	  (const struct rpc_param[]){ P_NQN,
				      { "type", RPC_P_STR, true, 1, 16 },
				      { "port_number", RPC_P_UINT, false, 0, 255 },
				      { "max_link_speed", RPC_P_UINT, false, 1, 6 },
				      { "max_link_width", RPC_P_UINT, false, 1, 32 },
				      { "address", RPC_P_UINT, false, 0, 127 },
				      { "max_freq", RPC_P_UINT, false, 1, 3 },
				      { "mctp_send_enabled", RPC_P_BOOL, false, 0, 1 },
				      { "traddr", RPC_P_STR, false, 1, 63 },
				      { "trsvcid", RPC_P_STR, false, 1, 31 },
				      { "adrfam", RPC_P_STR, false, 1, 8 },
				      { .name = NULL } },
	  "Add a port (pcie, two_wire, tcp) to a subsystem; returns its id." },
	{ "nvme_subsystem_remove_port", nvme_subsystem_remove_port,
	  (const struct rpc_param[]){ P_NQN, { "port", RPC_P_UINT, true, 0, 65535 }, { .name = NULL } },
	  "Remove a port no controller uses." },
	{ .name = NULL },
};
