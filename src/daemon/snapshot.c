// SPDX-License-Identifier: MIT
/*
 * nvme_controller_snapshot_get and create-from-snapshot: a suspended
 * controller's whole state as JSON (registers, features current and saved,
 * logs, firmware slots, queues, pending events, SMART counters, attached
 * namespaces, parameters). Commands held by the suspend stay with the
 * transport/host that submitted them; a suspended controller has none in
 * flight.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/nvemu-internal.h"
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

static void unhexj(json_t *o, const char *key, void *buf, size_t len)
{
	json_t *v = json_object_get(o, key);

	if (json_is_string(v))
		nvemud_unhex(json_string_value(v), buf, len);
}

static uint64_t jget(json_t *o, const char *key, uint64_t def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v)) /* 64-bit values beyond json_int_t */
		return strtoull(json_string_value(v), NULL, 0);
	return def;
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
#define GET(o, field, dst) ((dst) = (__typeof__(dst))jget(o, field, dst))

#define FEAT_SCALARS(X)                                                                    \
	X(arbitration) X(power_mgmt) X(err_recovery) X(volatile_wc) X(num_queues)          \
	X(num_queues_set) X(irq_coalesce) X(write_atomic) X(async_event_cfg) X(kato)       \
	X(host_id_ext) X(host_id_set)

static json_t *u32_array(const void *base, size_t elem, unsigned n)
{
	json_t *a = json_array();

	for (unsigned i = 0; i < n; i++) {
		uint64_t v = elem == 2 ? ((const uint16_t *)base)[i] : ((const uint32_t *)base)[i];

		json_array_append_new(a, u64j(v));
	}
	return a;
}

static void u32_array_get(json_t *o, const char *key, void *base, size_t elem, unsigned n)
{
	json_t *a = json_object_get(o, key);

	for (unsigned i = 0; i < n && i < json_array_size(a); i++) {
		json_t *v = json_array_get(a, i);

		if (!json_is_integer(v))
			continue;
		if (elem == 2)
			((uint16_t *)base)[i] = (uint16_t)json_integer_value(v);
		else
			((uint32_t *)base)[i] = (uint32_t)json_integer_value(v);
	}
}

static json_t *feat_json(const struct nvemu_features *f)
{
	json_t *o = json_object();

#define X(n) SET(o, #n, f->n);
	FEAT_SCALARS(X)
#undef X
	json_object_set_new(o, "temp_over", u32_array(f->temp_over, 2, NVEMU_TEMP_SENSORS));
	json_object_set_new(o, "temp_under", u32_array(f->temp_under, 2, NVEMU_TEMP_SENSORS));
	json_object_set_new(o, "irq_config", u32_array(f->irq_config, 4, NVEMU_IV_MAX));
	json_object_set_new(o, "host_id", hexj(f->host_id, sizeof(f->host_id)));
	return o;
}

static void feat_restore(json_t *o, struct nvemu_features *f)
{
	if (!json_is_object(o))
		return;
#define X(n) GET(o, #n, f->n);
	FEAT_SCALARS(X)
#undef X
	u32_array_get(o, "temp_over", f->temp_over, 2, NVEMU_TEMP_SENSORS);
	u32_array_get(o, "temp_under", f->temp_under, 2, NVEMU_TEMP_SENSORS);
	u32_array_get(o, "irq_config", f->irq_config, 4, NVEMU_IV_MAX);
	unhexj(o, "host_id", f->host_id, sizeof(f->host_id));
}

static json_t *queues_json(const struct nvemu_ctrl *ctrl)
{
	json_t *sqs = json_array(), *cqs = json_array();

	for (unsigned q = 0; q <= ctrl->p.num_io_queues; q++) {
		const struct nvemu_sq *sq = &ctrl->sqs[q];
		const struct nvemu_cq *cq = &ctrl->cqs[q];

		if (sq->valid) {
			json_t *o = json_object();

			SET(o, "qid", sq->qid);
			SET(o, "cqid", sq->cqid);
			SET(o, "size", sq->size);
			SET(o, "prio", sq->prio);
			SET(o, "pc", sq->pc);
			SET(o, "addr", sq->addr);
			SET(o, "tail", sq->tail);
			SET(o, "head", sq->head);
			SET(o, "requests", sq->st.requests);
			SET(o, "completions", sq->st.completions);
			SET(o, "reads", sq->st.reads);
			SET(o, "writes", sq->st.writes);
			SET(o, "flushes", sq->st.flushes);
			json_array_append_new(sqs, o);
		}
		if (cq->valid) {
			json_t *o = json_object();

			SET(o, "qid", cq->qid);
			SET(o, "size", cq->size);
			SET(o, "iv", cq->iv);
			SET(o, "ien", cq->ien);
			SET(o, "pc", cq->pc);
			SET(o, "addr", cq->addr);
			SET(o, "head", cq->head);
			SET(o, "tail", cq->tail);
			SET(o, "nr_sqs", cq->nr_sqs);
			SET(o, "completions", cq->completions);
			json_array_append_new(cqs, o);
		}
	}
	return json_pack("{s:o, s:o}", "sqs", sqs, "cqs", cqs);
}

static int queues_restore(json_t *o, struct nvemu_ctrl *ctrl, struct rpc_err *e)
{
	json_t *sqs = json_object_get(o, "sqs"), *cqs = json_object_get(o, "cqs"), *q;
	size_t i;

	/* Check every qid first: a bad snapshot leaves the controller untouched. */
	json_array_foreach(sqs, i, q)
		if (jget(q, "qid", UINT64_MAX) > ctrl->p.num_io_queues ||
		    jget(q, "cqid", UINT64_MAX) > ctrl->p.num_io_queues)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "snapshot: queues.sqs[%zu]: qid/cqid out of range", i);
	json_array_foreach(cqs, i, q)
		if (jget(q, "qid", UINT64_MAX) > ctrl->p.num_io_queues)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "snapshot: queues.cqs[%zu]: qid out of range", i);
	for (unsigned n = 0; n <= ctrl->p.num_io_queues; n++) {
		memset(&ctrl->sqs[n], 0, sizeof(ctrl->sqs[n]));
		memset(&ctrl->cqs[n], 0, sizeof(ctrl->cqs[n]));
	}
	json_array_foreach(cqs, i, q) {
		struct nvemu_cq *cq = &ctrl->cqs[jget(q, "qid", 0)];

		cq->valid = true;
		GET(q, "qid", cq->qid);
		GET(q, "size", cq->size);
		GET(q, "iv", cq->iv);
		GET(q, "ien", cq->ien);
		GET(q, "pc", cq->pc);
		GET(q, "addr", cq->addr);
		GET(q, "head", cq->head);
		GET(q, "tail", cq->tail);
		GET(q, "nr_sqs", cq->nr_sqs);
		GET(q, "completions", cq->completions);
	}
	json_array_foreach(sqs, i, q) {
		struct nvemu_sq *sq = &ctrl->sqs[jget(q, "qid", 0)];

		sq->valid = true;
		GET(q, "qid", sq->qid);
		GET(q, "cqid", sq->cqid);
		GET(q, "size", sq->size);
		GET(q, "prio", sq->prio);
		GET(q, "pc", sq->pc);
		GET(q, "addr", sq->addr);
		GET(q, "tail", sq->tail);
		GET(q, "head", sq->head);
		GET(q, "requests", sq->st.requests);
		GET(q, "completions", sq->st.completions);
		GET(q, "reads", sq->st.reads);
		GET(q, "writes", sq->st.writes);
		GET(q, "flushes", sq->st.flushes);
	}
	return 0;
}

json_t *nvemud_ctrl_snapshot(struct nvemud *d, struct nvemu_ctrl *ctrl)
{
	json_t *snap = json_object(), *o, *a;

	json_object_set_new(snap, "nvemu_snapshot", json_integer(SNAPSHOT_VERSION));
	json_object_set_new(snap, "nqn", json_string(ctrl->subsys->nqn));
	json_object_set_new(snap, "params", rpc_ctrl_params_json(ctrl));
	a = json_array();
	for (unsigned i = 0; i < ctrl->nr_ns; i++)
		json_array_append_new(a, json_integer(ctrl->ns[i]->nsid));
	json_object_set_new(snap, "namespaces", a);

	o = json_object();
	SET(o, "cap", ctrl->cap);
	SET(o, "cc", ctrl->cc);
	SET(o, "csts", ctrl->csts);
	SET(o, "aqa", ctrl->aqa);
	SET(o, "asq", ctrl->asq);
	SET(o, "acq", ctrl->acq);
	SET(o, "intms", ctrl->intms);
	json_object_set_new(snap, "registers", o);

	json_object_set_new(snap, "features",
			    json_pack("{s:o, s:o}", "current", feat_json(&ctrl->feat), "saved",
				      feat_json(&ctrl->feat_saved)));

	a = json_array();
	for (unsigned i = 0; i < NVEMU_ERRLOG_ENTRIES; i++)
		if (!nvemud_all_zero(&ctrl->errlog[i], sizeof(ctrl->errlog[i])))
			json_array_append_new(a, json_pack("{s:i, s:o}", "index", i, "entry",
							   hexj(&ctrl->errlog[i],
								sizeof(ctrl->errlog[i]))));
	o = json_object();
	SET(o, "count", ctrl->err_count);
	json_object_set_new(o, "entries", a);
	json_object_set_new(snap, "error_log", o);

	a = json_array();
	for (unsigned i = 0; i < ctrl->nr_changed_ns && i < NVEMU_CHANGED_NS_MAX; i++)
		json_array_append_new(a, u64j(ctrl->changed_ns[i]));
	json_object_set_new(snap, "changed_ns", json_pack("{s:o, s:b}", "list", a, "overflow",
							  ctrl->changed_ns_overflow));

	a = json_array();
	for (unsigned i = 0; i < NVEMU_FW_SLOTS_MAX; i++)
		json_array_append_new(a, hexj(ctrl->fw.slot_rev[i], sizeof(ctrl->fw.slot_rev[i])));
	o = json_pack("{s:o, s:i, s:i}", "slots", a, "active_slot", ctrl->fw.active_slot,
		      "next_slot", ctrl->fw.next_slot);
	if (ctrl->fw.image && ctrl->fw.image_len)
		json_object_set_new(o, "image", hexj(ctrl->fw.image, ctrl->fw.image_len));
	json_object_set_new(snap, "firmware", o);

	json_object_set_new(snap, "queues", queues_json(ctrl));

	a = json_array();
	for (unsigned i = 0; i < ctrl->nr_events && i < NVEMU_MAX_EVENTS; i++)
		json_array_append_new(a, json_pack("{s:i, s:i, s:i}", "type",
						   ctrl->events[i].type, "info",
						   ctrl->events[i].info, "lid", ctrl->events[i].lid));
	json_object_set_new(snap, "events", json_pack("{s:o, s:I, s:i, s:i}", "pending", a,
						      "aen_masked", (json_int_t)ctrl->aen_masked,
						      "temp_warning", ctrl->temp_warning,
						      "outstanding_aers", ctrl->nr_aer));

	o = json_object();
	SET(o, "units_read", ctrl->smart.units_read);
	SET(o, "units_written", ctrl->smart.units_written);
	SET(o, "host_read_cmds", ctrl->smart.host_read_cmds);
	SET(o, "host_write_cmds", ctrl->smart.host_write_cmds);
	SET(o, "media_errors", ctrl->smart.media_errors);
	SET(o, "busy_ns", ctrl->smart.busy_ns);
	json_object_set_new(snap, "smart", o);

	json_object_set_new(snap, "host",
			    json_pack("{s:s, s:o}", "hostnqn", ctrl->hostnqn, "hostid",
				      hexj(ctrl->hostid, sizeof(ctrl->hostid))));
	json_object_set_new(snap, "suspended", json_boolean(ctrl->suspended));
	json_object_set_new(snap, "suspend_admin_only", json_boolean(ctrl->suspend_admin_only));
	return snap;
}

int nvemud_ctrl_restore(struct nvemud *d, struct nvemu_ctrl *ctrl, json_t *snap,
			struct rpc_err *e)
{
	json_t *o, *a, *v;
	size_t i;

	if (queues_restore(json_object_get(snap, "queues"), ctrl, e))
		return -1;

	o = json_object_get(snap, "registers");
	GET(o, "cc", ctrl->cc);
	GET(o, "csts", ctrl->csts);
	GET(o, "aqa", ctrl->aqa);
	GET(o, "asq", ctrl->asq);
	GET(o, "acq", ctrl->acq);
	GET(o, "intms", ctrl->intms);

	o = json_object_get(snap, "features");
	feat_restore(json_object_get(o, "current"), &ctrl->feat);
	feat_restore(json_object_get(o, "saved"), &ctrl->feat_saved);

	o = json_object_get(snap, "error_log");
	GET(o, "count", ctrl->err_count);
	memset(ctrl->errlog, 0, sizeof(ctrl->errlog));
	json_array_foreach(json_object_get(o, "entries"), i, v) {
		uint64_t idx = jget(v, "index", UINT64_MAX);

		if (idx < NVEMU_ERRLOG_ENTRIES)
			unhexj(v, "entry", &ctrl->errlog[idx], sizeof(ctrl->errlog[idx]));
	}

	o = json_object_get(snap, "changed_ns");
	ctrl->nr_changed_ns = 0;
	json_array_foreach(json_object_get(o, "list"), i, v)
		if (json_is_integer(v) && ctrl->nr_changed_ns < NVEMU_CHANGED_NS_MAX)
			ctrl->changed_ns[ctrl->nr_changed_ns++] = (uint32_t)json_integer_value(v);
	GET(o, "overflow", ctrl->changed_ns_overflow);

	o = json_object_get(snap, "firmware");
	a = json_object_get(o, "slots");
	for (i = 0; i < NVEMU_FW_SLOTS_MAX && i < json_array_size(a); i++)
		if (json_is_string(json_array_get(a, i)))
			nvemud_unhex(json_string_value(json_array_get(a, i)), ctrl->fw.slot_rev[i],
				     sizeof(ctrl->fw.slot_rev[i]));
	GET(o, "active_slot", ctrl->fw.active_slot);
	GET(o, "next_slot", ctrl->fw.next_slot);
	v = json_object_get(o, "image");
	if (json_is_string(v) && json_string_length(v) && !(json_string_length(v) & 1)) {
		size_t len = json_string_length(v) / 2;
		uint8_t *img = malloc(len);

		if (img && !nvemud_unhex(json_string_value(v), img, len)) {
			free(ctrl->fw.image);
			ctrl->fw.image = img;
			ctrl->fw.image_len = len;
		} else {
			free(img);
		}
	}

	o = json_object_get(snap, "events");
	ctrl->nr_events = 0;
	json_array_foreach(json_object_get(o, "pending"), i, v) {
		struct nvemu_event *ev;

		if (ctrl->nr_events >= NVEMU_MAX_EVENTS)
			break;
		ev = &ctrl->events[ctrl->nr_events++];
		ev->type = (uint8_t)jget(v, "type", 0);
		ev->info = (uint8_t)jget(v, "info", 0);
		ev->lid = (uint8_t)jget(v, "lid", 0);
	}
	GET(o, "aen_masked", ctrl->aen_masked);
	GET(o, "temp_warning", ctrl->temp_warning);

	o = json_object_get(snap, "smart");
	GET(o, "units_read", ctrl->smart.units_read);
	GET(o, "units_written", ctrl->smart.units_written);
	GET(o, "host_read_cmds", ctrl->smart.host_read_cmds);
	GET(o, "host_write_cmds", ctrl->smart.host_write_cmds);
	GET(o, "media_errors", ctrl->smart.media_errors);
	GET(o, "busy_ns", ctrl->smart.busy_ns);

	o = json_object_get(snap, "host");
	v = json_object_get(o, "hostnqn");
	if (json_is_string(v))
		snprintf(ctrl->hostnqn, sizeof(ctrl->hostnqn), "%s", json_string_value(v));
	unhexj(o, "hostid", ctrl->hostid, sizeof(ctrl->hostid));
	ctrl->last_keep_alive_ns = nvemu_now_ns();
	return 0;
}

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

const struct rpc_method rpc_snapshot_methods[] = {
	{ "nvme_controller_snapshot_get", nvme_controller_snapshot_get,
	  (const struct rpc_param[]){ { "ctrl", RPC_P_STR, true, 1, NVEMUD_CTRL_NAME_MAX - 1 },
				      { "filename", RPC_P_STR, true, 1, 4095 },
				      { .name = NULL } },
	  "Write a suspended controller's whole state to a file (for create --snapshot)." },
	{ .name = NULL },
};
