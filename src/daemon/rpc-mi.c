// SPDX-License-Identifier: MIT
/* nvme_mi_endpoint_* methods: the NVMe-MI endpoints of mi-endpoints.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nvemu/mctp.h>
#include <nvemu/mi.h>

#include "event-loop.h"
#include "rpc.h"

#define EID_MIN 8
#define EID_MAX 254

static int mi_find_subsys(struct nvemud *d, json_t *params, struct nvemu_subsys **s,
			  struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");

	*s = nvemud_find_subsys(d, nqn);
	if (!*s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	return 0;
}

static int nvme_mi_endpoint_create(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;
	struct nvemud_mi_ep_opts o = {
		.net = (unsigned)rpc_uint(params, "net", 1),
		.eid = (uint8_t)rpc_uint(params, "eid", 9),
		.mtu = (unsigned)rpc_uint(params, "mtu", NVEMU_MCTP_BTU),
		.baud = (unsigned)rpc_uint(params, "baud", 115200),
		.no_ctrl0_alias = !rpc_bool(params, "ctrl_id0_alias", true),
	};
	const char *binding = rpc_has(params, "binding") ? rpc_str(params, "binding") : "mctp";
	uint16_t port;
	json_t *res;

	if (mi_find_subsys(d, params, &s, e))
		return -1;
	if (rpc_has(params, "port")) {
		port = (uint16_t)rpc_uint(params, "port", 0);
		if (!nvemu_subsys_port(s, port))
			return rpc_err_set(e, RPC_ERR_NOT_FOUND, "port: %s has no port %u",
					   nvemu_subsys_nqn(s), port);
	} else {
		struct nvemu_port_params pp;
		unsigned i;

		for (i = 0; !nvemu_subsys_port_at(s, i, &port, &pp); i++)
			if (pp.type == NVEMU_PORT_TWO_WIRE)
				break;
		if (nvemu_subsys_port_at(s, i, NULL, NULL))
			return rpc_err_set(e, RPC_ERR_NOT_FOUND,
					   "port: %s has no two-wire port: add one or give port",
					   nvemu_subsys_nqn(s));
	}
	if (nvemud_tcp_owns_port(d, s, port, NULL))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "port: %u is a TCP listener's; MI needs a two-wire or PCIe port",
				   port);
	if (!strcmp(binding, "serial")) {
		if (!rpc_has(params, "serial"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "serial: required with binding serial (pty, "
					   "unix:/PATH or tcp:ADDRESS:PORT)");
		o.serial = rpc_str(params, "serial");
		/* The serial binding carries the baseline unit only (DSP0253, Linux). */
		if (o.mtu != NVEMU_MCTP_BTU)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "mtu: a serial line carries %u-byte units", NVEMU_MCTP_BTU);
	} else if (strcmp(binding, "mctp")) {
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "binding: mctp (the AF_MCTP router) or serial, got %.32s", binding);
	} else if (rpc_has(params, "serial") || rpc_has(params, "baud")) {
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "serial: only with binding serial");
	}
	if (nvemud_mi_add_ep(d, s, port, &o, &nerr))
		return rpc_err_nvemu(e, &nerr);
	res = json_pack("{s:I, s:i}", "net", (json_int_t)o.net, "eid", o.eid);
	if (o.serial) {
		struct mi_endpoint *ep = &d->mi->eps[d->mi->nr_eps - 1];

		json_object_set_new(res, "serial_path",
				    json_string(nvemud_mi_serial_name(ep->serial)));
		nvemud_log(d, NVEMUD_LOG_INFO, "NVMe-MI network %u EID %u on serial line %s", o.net,
			   o.eid, nvemud_mi_serial_name(ep->serial));
	}
	*result = res;
	return 0;
}

/* By (net, eid), or by nqn (and port when the subsystem has several endpoints). */
static int lookup(struct nvemud *d, json_t *params, unsigned *idx, struct rpc_err *e)
{
	struct nvemud_mi *m = d->mi;
	unsigned nr = m ? m->nr_eps : 0, found = 0;
	struct nvemu_subsys *s = NULL;

	if (rpc_has(params, "eid")) {
		unsigned net = (unsigned)rpc_uint(params, "net", 1);
		uint8_t eid = (uint8_t)rpc_uint(params, "eid", 0);

		if (rpc_has(params, "nqn") || rpc_has(params, "port"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "eid: give either net/eid or nqn/port");
		for (unsigned i = 0; i < nr; i++) {
			if (nvemu_mctp_ep_net(m->eps[i].mctp) == net &&
			    nvemu_mctp_ep_eid(m->eps[i].mctp) == eid) {
				*idx = i;
				return 0;
			}
		}
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "eid: no endpoint at network %u EID %u",
				   net, eid);
	}
	if (!rpc_has(params, "nqn"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "nqn: required (or eid)");
	if (rpc_has(params, "net"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "net: only with eid");
	if (mi_find_subsys(d, params, &s, e))
		return -1;
	for (unsigned i = 0; i < nr; i++) {
		if (m->eps[i].subsys != s ||
		    (rpc_has(params, "port") && m->eps[i].port != rpc_uint(params, "port", 0)))
			continue;
		*idx = i;
		found++;
	}
	if (!found)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: %.200s has no such MI endpoint",
				   nvemu_subsys_nqn(s));
	if (found > 1)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "port: %.200s has %u MI endpoints: name the port", nvemu_subsys_nqn(s), found);
	return 0;
}

static int nvme_mi_endpoint_destroy(struct nvemud *d, json_t *params, json_t **result,
				    struct rpc_err *e)
{
	unsigned i = 0;

	if (lookup(d, params, &i, e))
		return -1;
	nvemud_mi_del_ep(d, i);
	return 0;
}

static json_t *ep_json(struct mi_endpoint *ep)
{
	const struct nvemu_mctp_ep_stats *st = nvemu_mctp_ep_stats(ep->mctp);
	char uuid[37];
	json_t *j;

	nvemud_uuid_unparse(nvemu_mctp_ep_uuid(ep->mctp), uuid);
	j = json_pack("{s:s, s:i, s:I, s:i, s:i, s:s, s:{s:I, s:I, s:I, s:I}}", "nqn",
			 nvemu_subsys_nqn(ep->subsys), "port", ep->port, "net",
			 (json_int_t)nvemu_mctp_ep_net(ep->mctp), "eid",
			 nvemu_mctp_ep_eid(ep->mctp), "mtu", nvemu_mctp_ep_mtu(ep->mctp), "uuid",
			 uuid, "stats", "rx_messages", (json_int_t)st->rx_messages, "tx_messages",
			 (json_int_t)st->tx_messages, "rx_packets", (json_int_t)st->rx_packets,
			 "tx_packets", (json_int_t)st->tx_packets);
	if (!j)
		return json_null();
	json_object_set_new(j, "binding", json_string(ep->serial ? "serial" : "mctp"));
	json_object_set_new(j, "ctrl_id0_alias", json_boolean(nvemu_mi_ep_ctrl0_alias(ep->mi)));
	{
		uint64_t sent, resent;

		/* Asynchronous Event Messages sent, and sent again for want of an ack. */
		nvemu_mi_ep_aem_stats(ep->mi, &sent, &resent);
		json_object_set_new(j, "aem", json_pack("{s:I, s:I}", "sent", (json_int_t)sent,
							"retransmitted", (json_int_t)resent));
	}
	if (ep->serial) {
		json_object_set_new(j, "serial", json_string(nvemud_mi_serial_spec(ep->serial)));
		json_object_set_new(j, "serial_path",
				    json_string(nvemud_mi_serial_name(ep->serial)));
		json_object_set_new(j, "baud", json_integer(nvemud_mi_serial_baud(ep->serial)));
		json_object_set_new(j, "connected",
				    json_boolean(nvemud_mi_serial_connected(ep->serial)));
	}
	return j;
}

static int nvme_mi_endpoint_list(struct nvemud *d, json_t *params, json_t **result,
				 struct rpc_err *e)
{
	struct nvemu_subsys *only = NULL;
	json_t *arr;

	if (rpc_has(params, "nqn") && mi_find_subsys(d, params, &only, e))
		return -1;
	arr = json_array();
	for (unsigned i = 0; d->mi && i < d->mi->nr_eps; i++) {
		struct nvemu_subsys *s = d->mi->eps[i].subsys;

		/* Endpoints of a subsystem being destroyed are gone for RPCs already. */
		if ((!only || s == only) && nvemud_find_subsys(d, nvemu_subsys_nqn(s)) == s)
			json_array_append_new(arr, ep_json(&d->mi->eps[i]));
	}
	*result = arr;
	return 0;
}

#define P_NQN_OPT { "nqn", RPC_P_STR, false, 1, NVEMU_NQN_MAX }

const struct rpc_method rpc_mi_methods[] = {
	{ "nvme_mi_endpoint_create", nvme_mi_endpoint_create,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
				      { "port", RPC_P_UINT, false, 0, 65535 },
				      { "net", RPC_P_UINT, false, 1, 0xffffffff },
				      { "eid", RPC_P_UINT, false, EID_MIN, EID_MAX },
				      { "mtu", RPC_P_UINT, false, NVEMU_MI_MTU_MIN,
					NVEMU_MI_MTU_MAX },
				      { "binding", RPC_P_STR, false, 1, 16 },
				      { "serial", RPC_P_STR, false, 1, NVEMUD_MI_SERIAL_SPEC_MAX - 1 },
				      { "baud", RPC_P_UINT, false, 300, 4000000 },
				      { "ctrl_id0_alias", RPC_P_BOOL, false, 0, 1 },
				      { .name = NULL } },
	  "Create an NVMe-MI endpoint on a subsystem's port (default: its first two-wire "
	  "port) at MCTP network net (default 1), EID eid (8..254, default 9), reached "
	  "through the AF_MCTP router (binding mctp, the default) or over a DSP0253 serial "
	  "line (binding serial; serial: pty, unix:/PATH or tcp:ADDRESS:PORT; baud kept "
	  "for the record, default 115200). ctrl_id0_alias (default true): controller ID 0 "
	  "names the lowest-numbered controller when there is no controller 0, as nvme-cli's "
	  "mctp:<net>,<eid> expects; false: ID 0 is Invalid Parameter like any absent ID." },
	{ "nvme_mi_endpoint_destroy", nvme_mi_endpoint_destroy,
	  (const struct rpc_param[]){ P_NQN_OPT,
				      { "port", RPC_P_UINT, false, 0, 65535 },
				      { "net", RPC_P_UINT, false, 1, 0xffffffff },
				      { "eid", RPC_P_UINT, false, 0, 255 },
				      { .name = NULL } },
	  "Destroy an NVMe-MI endpoint, named by net (default 1) and eid, or by nqn (and port)." },
	{ "nvme_mi_endpoint_list", nvme_mi_endpoint_list,
	  (const struct rpc_param[]){ P_NQN_OPT, { .name = NULL } },
	  "List NVMe-MI endpoints with their current EID (a bus owner may have changed it) and MTU." },
	{ .name = NULL },
};
