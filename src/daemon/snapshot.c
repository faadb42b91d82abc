// SPDX-License-Identifier: MIT
/*
 * Model objects as JSON: a port as listed and saved, a controller's
 * parameters and attached namespaces, and a controller's whole state for
 * nvme_controller_snapshot_get and create-from-snapshot (registers,
 * features current and saved, logs, firmware slots, queues, pending events,
 * SMART counters, attached namespaces, parameters). The fields are the
 * engine's state table (include/nvemu/ctrl-state.h): saving and restoring
 * walk it, and only the engine writes them. Commands held by the suspend
 * stay with the transport/host that submitted them; a suspended controller
 * has none in flight.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/ctrl-state.h>

#include "rpc.h"

#define SNAPSHOT_VERSION 1

static json_t *hexj(const void *buf, size_t len)
{
	char *s = malloc(2 * len + 1);
	json_t *j;

	if (!s)
		return json_null();
	nvemud_hex(buf, len, s);
	j = json_string(s);
	free(s);
	return j;
}

/* v as an integer: a number, a boolean or a decimal/hex string; def otherwise. */
static uint64_t jval(json_t *v, uint64_t def)
{
	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v)) /* 64-bit values beyond json_int_t */
		return strtoull(json_string_value(v), NULL, 0);
	return def;
}

static uint64_t jget(json_t *o, const char *key, uint64_t def)
{
	return jval(json_object_get(o, key), def);
}

static json_t *u64j(uint64_t v)
{
	char s[24];

	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	return json_string(s);
}

#define SET(o, field, val) json_object_set_new(o, field, u64j(val))

/* A port as nvme_subsystem_list shows it; save_config reuses it as add_port params. */
json_t *nvemud_port_json(uint16_t id, const struct nvemu_port_params *p)
{
	switch (p->type) {
	case NVEMU_PORT_PCIE:
		return json_pack("{s:i, s:s, s:i, s:i, s:i}", "id", id, "type", "pcie",
				 "port_number", p->pcie.port_number, "max_link_speed",
				 p->pcie.max_link_speed, "max_link_width", p->pcie.max_link_width);
	case NVEMU_PORT_TWO_WIRE:
		return json_pack("{s:i, s:s, s:i, s:i, s:b}", "id", id, "type", "two_wire",
				 "address", p->two_wire.address, "max_freq", p->two_wire.max_freq,
				 "mctp_send_enabled", p->two_wire.mctp_send_enabled);
	case NVEMU_PORT_TCP:
		return json_pack("{s:i, s:s, s:s, s:s, s:s}", "id", id, "type", "tcp",
				 "traddr", p->tcp.traddr, "trsvcid", p->tcp.trsvcid, "adrfam",
				 p->tcp.adrfam == 2 ? "ipv6" : "ipv4");
	}
	return json_pack("{s:i, s:s}", "id", id, "type", "unknown");
}

json_t *nvemud_ctrl_params_json(const struct nvemu_ctrl *ctrl)
{
	const struct nvemu_ctrl_params *p = nvemu_ctrl_params(ctrl);
	json_t *j;

	j = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:b, s:b, s:b}", "ctrl",
			 nvemu_ctrl_cntlid(ctrl), "port", p->port_id, "num_queues",
			 p->num_io_queues, "mdts", p->mdts, "fw_slots", p->fw_slots,
			 "max_queue_entries", p->max_queue_entries, "aerl", p->aerl,
			 "write_zeroes", p->write_zeroes, "compare", p->compare, "compare_write",
			 p->compare_write, "deallocate_dsm", p->dsm, "admin_only", p->admin_only);
	/* Only when set: lists and configs without quirks stay as they were. */
	if (j && p->quirks)
		json_object_set_new(j, "quirks", json_integer(p->quirks));
	return j;
}

json_t *nvemud_ctrl_nsids_json(const struct nvemu_ctrl *ctrl)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < nvemu_ctrl_nr_ns(ctrl); i++)
		json_array_append_new(a, json_integer(nvemu_ctrl_nsid_at(ctrl, i)));
	return a;
}

uint64_t nvemud_queue_stat(const struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
			   unsigned qid, const char *name)
{
	const struct nvemu_state_field *f = nvemu_ctrl_state_field(scope, "", name);

	return f ? nvemu_ctrl_state_get(ctrl, f, qid, 0) : 0;
}

/* The object for group "a.b" under root; made on the way if create, else NULL if missing. */
static json_t *group_obj(json_t *root, const char *group, bool create)
{
	char name[64];
	const char *dot;

	while (*group && root) {
		json_t *o;

		dot = strchr(group, '.');
		snprintf(name, sizeof(name), "%.*s", dot ? (int)(dot - group) : (int)strlen(group),
			 group);
		o = json_object_get(root, name);
		if (!o && create) {
			o = json_object();
			json_object_set_new(root, name, o);
		}
		root = o;
		group = dot ? dot + 1 : "";
	}
	return root;
}

static json_t *bytes_json(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			  unsigned qid, unsigned idx)
{
	size_t len;
	const void *p = nvemu_ctrl_state_bytes(ctrl, f, qid, idx, &len);

	return hexj(p, len);
}

static json_t *list_json(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f)
{
	json_t *a = json_array();
	size_t n = nvemu_ctrl_state_len(ctrl, f);

	for (unsigned i = 0; i < n; i++) {
		json_t *o;

		if (!f->members) {
			json_array_append_new(a, u64j(nvemu_ctrl_state_get(ctrl, f, 0, i)));
			continue;
		}
		o = json_object();
		for (unsigned m = 0; m < f->nr_members; m++)
			SET(o, f->members[m],
			    nvemu_ctrl_state_get(ctrl, f, 0, i * f->nr_members + m));
		json_array_append_new(a, o);
	}
	return a;
}

/* The value of f, NULL when there is nothing to save (no image being downloaded). */
static json_t *field_json(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			  unsigned qid)
{
	json_t *a;
	size_t len;
	const void *p;

	switch (f->kind) {
	case NVEMU_STATE_UINT:
	case NVEMU_STATE_BYTES:
		if (!f->count)
			return f->kind == NVEMU_STATE_UINT ? u64j(nvemu_ctrl_state_get(ctrl, f, qid, 0))
							   : bytes_json(ctrl, f, qid, 0);
		a = json_array();
		for (unsigned i = 0; i < f->count; i++)
			json_array_append_new(a, f->kind == NVEMU_STATE_UINT ?
							 u64j(nvemu_ctrl_state_get(ctrl, f, qid, i)) :
							 bytes_json(ctrl, f, qid, i));
		return a;
	case NVEMU_STATE_BOOL:
		return json_boolean(nvemu_ctrl_state_get(ctrl, f, qid, 0));
	case NVEMU_STATE_SPARSE:
		a = json_array();
		for (unsigned i = 0; i < f->count; i++) {
			p = nvemu_ctrl_state_bytes(ctrl, f, qid, i, &len);
			if (!nvemud_all_zero(p, len))
				json_array_append_new(a, json_pack("{s:i, s:o}", "index", i, "entry",
								   hexj(p, len)));
		}
		return a;
	case NVEMU_STATE_STRING:
		p = nvemu_ctrl_state_bytes(ctrl, f, qid, 0, &len);
		return json_stringn(p, len);
	case NVEMU_STATE_BLOB:
		p = nvemu_ctrl_state_bytes(ctrl, f, qid, 0, &len);
		return p && len ? hexj(p, len) : NULL;
	case NVEMU_STATE_UINT_LIST:
		return list_json(ctrl, f);
	}
	return NULL;
}

static json_t *queue_json(const struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
			  unsigned qid)
{
	json_t *o = json_object();

	for (const struct nvemu_state_field *f = nvemu_ctrl_state_fields(); f->name; f++)
		if (f->scope == scope)
			json_object_set_new(o, f->name, field_json(ctrl, f, qid));
	return o;
}

static json_t *queues_json(const struct nvemu_ctrl *ctrl)
{
	json_t *sqs = json_array(), *cqs = json_array();

	for (unsigned q = 0; q <= nvemu_ctrl_params(ctrl)->num_io_queues; q++) {
		if (nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_SQ, q))
			json_array_append_new(sqs, queue_json(ctrl, NVEMU_STATE_SQ, q));
		if (nvemu_ctrl_state_queue_valid(ctrl, NVEMU_STATE_CQ, q))
			json_array_append_new(cqs, queue_json(ctrl, NVEMU_STATE_CQ, q));
	}
	return json_pack("{s:o, s:o}", "sqs", sqs, "cqs", cqs);
}

json_t *nvemud_ctrl_snapshot(struct nvemud *d, struct nvemu_ctrl *ctrl)
{
	json_t *snap = json_object();

	json_object_set_new(snap, "nvemu_snapshot", json_integer(SNAPSHOT_VERSION));
	json_object_set_new(snap, "nqn", json_string(nvemu_subsys_nqn(nvemu_ctrl_subsys(ctrl))));
	json_object_set_new(snap, "params", nvemud_ctrl_params_json(ctrl));
	json_object_set_new(snap, "namespaces", nvemud_ctrl_nsids_json(ctrl));
	for (const struct nvemu_state_field *f = nvemu_ctrl_state_fields(); f->name; f++) {
		json_t *v;

		if (f->scope != NVEMU_STATE_CTRL)
			continue;
		v = field_json(ctrl, f, 0);
		if (v)
			json_object_set_new(group_obj(snap, f->group, true), f->name, v);
	}
	json_object_set_new(snap, "queues", queues_json(ctrl));
	return snap;
}

/*
 * Decode hex over the current bytes and store what came out: a malformed
 * string changes what it decoded up to the bad digit, as it always has.
 */
static void bytes_restore(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			  unsigned qid, unsigned idx, json_t *v)
{
	uint8_t buf[4096];
	size_t len;
	const void *cur = nvemu_ctrl_state_bytes(ctrl, f, qid, idx, &len);

	if (!json_is_string(v) || !cur || len > sizeof(buf))
		return;
	memcpy(buf, cur, len);
	nvemud_unhex(json_string_value(v), buf, len);
	nvemu_ctrl_state_set_bytes(ctrl, f, qid, idx, buf, len);
}

static void blob_restore(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f, json_t *v)
{
	size_t len = json_string_length(v) / 2;
	uint8_t *buf;

	if (!json_is_string(v) || !json_string_length(v) || (json_string_length(v) & 1))
		return;
	buf = malloc(len);
	if (buf && !nvemud_unhex(json_string_value(v), buf, len))
		nvemu_ctrl_state_set_bytes(ctrl, f, 0, 0, buf, len);
	free(buf);
}

static void list_restore(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f, json_t *a)
{
	uint64_t m[8] = { 0 };
	json_t *v;
	size_t i;

	nvemu_ctrl_state_clear(ctrl, f);
	json_array_foreach(a, i, v) {
		if (f->members) {
			for (unsigned k = 0; k < f->nr_members && k < 8; k++)
				m[k] = jget(v, f->members[k], 0);
		} else if (json_is_integer(v)) {
			m[0] = (uint64_t)json_integer_value(v);
		} else {
			continue;
		}
		if (nvemu_ctrl_state_append(ctrl, f, m))
			break;
	}
}

static void sparse_restore(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f, json_t *a)
{
	json_t *v;
	size_t i;

	nvemu_ctrl_state_clear(ctrl, f);
	json_array_foreach(a, i, v) {
		uint64_t idx = jget(v, "index", UINT64_MAX);

		if (idx < f->count)
			bytes_restore(ctrl, f, 0, (unsigned)idx, json_object_get(v, "entry"));
	}
}

/* Restore f from v, the value saved for it (NULL if absent: most kinds keep theirs). */
static void field_restore(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			  unsigned qid, json_t *v)
{
	switch (f->kind) {
	case NVEMU_STATE_UINT:
	case NVEMU_STATE_BOOL:
		if (!f->count) {
			nvemu_ctrl_state_set(ctrl, f, qid, 0,
					     jval(v, nvemu_ctrl_state_get(ctrl, f, qid, 0)));
			break;
		}
		for (unsigned i = 0; i < f->count && i < json_array_size(v); i++)
			if (json_is_integer(json_array_get(v, i)))
				nvemu_ctrl_state_set(ctrl, f, qid, i,
						     (uint64_t)json_integer_value(json_array_get(v, i)));
		break;
	case NVEMU_STATE_BYTES:
		if (!f->count) {
			bytes_restore(ctrl, f, qid, 0, v);
			break;
		}
		for (unsigned i = 0; i < f->count && i < json_array_size(v); i++)
			bytes_restore(ctrl, f, qid, i, json_array_get(v, i));
		break;
	case NVEMU_STATE_SPARSE:
		sparse_restore(ctrl, f, v);
		break;
	case NVEMU_STATE_STRING:
		if (json_is_string(v))
			nvemu_ctrl_state_set_bytes(ctrl, f, qid, 0, json_string_value(v),
						   strnlen(json_string_value(v), f->size - 1));
		break;
	case NVEMU_STATE_BLOB:
		blob_restore(ctrl, f, v);
		break;
	case NVEMU_STATE_UINT_LIST:
		list_restore(ctrl, f, v);
		break;
	}
}

static int queues_restore(json_t *o, struct nvemu_ctrl *ctrl, struct rpc_err *e)
{
	static const struct {
		const char *key;
		enum nvemu_state_scope scope;
	} kinds[] = { { "cqs", NVEMU_STATE_CQ }, { "sqs", NVEMU_STATE_SQ } };
	unsigned nq = nvemu_ctrl_params(ctrl)->num_io_queues;
	json_t *sqs = json_object_get(o, "sqs"), *cqs = json_object_get(o, "cqs"), *q;
	size_t i;

	/* Check every qid first: a bad snapshot leaves the controller untouched. */
	json_array_foreach(sqs, i, q)
		if (jget(q, "qid", UINT64_MAX) > nq || jget(q, "cqid", UINT64_MAX) > nq)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "snapshot: queues.sqs[%zu]: qid/cqid out of range", i);
	json_array_foreach(cqs, i, q)
		if (jget(q, "qid", UINT64_MAX) > nq)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "snapshot: queues.cqs[%zu]: qid out of range", i);
	nvemu_ctrl_state_restore_begin(ctrl);
	for (unsigned k = 0; k < 2; k++) {
		json_array_foreach(json_object_get(o, kinds[k].key), i, q) {
			unsigned qid = (unsigned)jget(q, "qid", 0);

			nvemu_ctrl_state_queue_create(ctrl, kinds[k].scope, qid);
			for (const struct nvemu_state_field *f = nvemu_ctrl_state_fields(); f->name;
			     f++)
				if (f->scope == kinds[k].scope)
					field_restore(ctrl, f, qid, json_object_get(q, f->name));
		}
	}
	return 0;
}

int nvemud_ctrl_restore(struct nvemud *d, struct nvemu_ctrl *ctrl, json_t *snap,
			struct rpc_err *e)
{
	if (queues_restore(json_object_get(snap, "queues"), ctrl, e))
		return -1;
	for (const struct nvemu_state_field *f = nvemu_ctrl_state_fields(); f->name; f++) {
		json_t *o;

		if (f->scope != NVEMU_STATE_CTRL || f->save_only)
			continue;
		o = group_obj(snap, f->group, false);
		field_restore(ctrl, f, 0, json_object_get(o, f->name));
	}
	nvemu_ctrl_state_restore_end(ctrl);
	return 0;
}
