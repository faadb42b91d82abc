// SPDX-License-Identifier: MIT
/*
 * The control plane's view of the model (include/nvemu/ctrl-state.h):
 * accessors, and the one table of a controller's state that snapshots are
 * saved from and restored through.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nvemu/ctrl-state.h>

#include "nvemu-internal.h"

/* ---- accessors */

void nvemu_subsys_info(const struct nvemu_subsys *subsys, struct nvemu_subsys_info *info)
{
	*info = (struct nvemu_subsys_info){
		.sn = subsys->sn,
		.mn = subsys->mn,
		.fr = subsys->fr,
		.nn = subsys->nn,
		.mnan = subsys->mnan,
		.single_ctrl = subsys->single_ctrl,
		.min_cntlid = subsys->min_cntlid,
		.max_cntlid = subsys->max_cntlid,
		.nr_ctrls = subsys->nr_ctrls,
		.nr_ns = subsys->nr_ns,
		.nr_ports = subsys->nr_ports,
	};
}

struct nvemu_ctrl *nvemu_subsys_ctrl_at(struct nvemu_subsys *subsys, unsigned i)
{
	return i < subsys->nr_ctrls ? subsys->ctrls[i] : NULL;
}

struct nvemu_ns *nvemu_subsys_ns_at(struct nvemu_subsys *subsys, unsigned i)
{
	return i < subsys->nr_ns ? subsys->ns[i] : NULL;
}

int nvemu_subsys_port_at(const struct nvemu_subsys *subsys, unsigned i, uint16_t *port_id,
			 struct nvemu_port_params *p)
{
	if (i >= subsys->nr_ports)
		return -ENOENT;
	if (port_id)
		*port_id = subsys->ports[i].id;
	if (p)
		*p = subsys->ports[i].p;
	return 0;
}

void nvemu_subsys_set_ns_bdev_alloc(struct nvemu_subsys *subsys, nvemu_ns_bdev_alloc_fn alloc,
				    void *arg)
{
	subsys->ns_bdev_alloc = alloc;
	subsys->ns_bdev_arg = arg;
}

const struct nvemu_port_params *nvemu_subsys_port(const struct nvemu_subsys *subsys,
						  uint16_t port_id)
{
	for (unsigned i = 0; i < subsys->nr_ports; i++)
		if (subsys->ports[i].id == port_id)
			return &subsys->ports[i].p;
	return NULL;
}

void nvemu_ns_info(const struct nvemu_ns *ns, struct nvemu_ns_info *info)
{
	*info = (struct nvemu_ns_info){
		.nsid = ns->nsid,
		.nblocks = ns->nblocks,
		.lbaf = ns->lbaf,
		.lba_size = nvemu_ns_lba_size(ns),
		.bdev = ns->bdev,
		.nguid = ns->nguid,
		.eui64 = ns->eui64,
		.uuid = ns->uuid,
		.nr_attached = ns->nr_attached,
	};
}

const struct nvemu_ctrl_params *nvemu_ctrl_params(const struct nvemu_ctrl *ctrl)
{
	return &ctrl->p;
}

unsigned nvemu_ctrl_nr_ns(const struct nvemu_ctrl *ctrl)
{
	return ctrl->nr_ns;
}

uint32_t nvemu_ctrl_nsid_at(const struct nvemu_ctrl *ctrl, unsigned i)
{
	return i < ctrl->nr_ns ? ctrl->ns[i]->nsid : 0;
}

uint32_t nvemu_ctrl_cc(const struct nvemu_ctrl *ctrl)
{
	return ctrl->cc;
}

uint32_t nvemu_ctrl_csts(const struct nvemu_ctrl *ctrl)
{
	return ctrl->csts;
}

const char *nvemu_ctrl_transport(const struct nvemu_ctrl *ctrl)
{
	return ctrl->tops ? ctrl->tops->name : NULL;
}

/* ---- the state table */

#define SZ(type, member) sizeof(((type *)0)->member)

/* An integer of the controller, and a fixed array of them. */
#define CTRL_UINT(grp, nm, member)                                                         \
	{ .group = grp, .name = nm, .scope = NVEMU_STATE_CTRL, .kind = NVEMU_STATE_UINT,    \
	  .offset = offsetof(struct nvemu_ctrl, member), .size = SZ(struct nvemu_ctrl, member) }
#define CTRL_ARRAY(grp, nm, member, n)                                                     \
	{ .group = grp, .name = nm, .scope = NVEMU_STATE_CTRL, .kind = NVEMU_STATE_UINT,    \
	  .count = n, .offset = offsetof(struct nvemu_ctrl, member),                        \
	  .size = SZ(struct nvemu_ctrl, member[0]), .stride = SZ(struct nvemu_ctrl, member[0]) }
#define CTRL_FLAG(grp, nm, member)                                                         \
	{ .group = grp, .name = nm, .scope = NVEMU_STATE_CTRL, .kind = NVEMU_STATE_UINT,    \
	  .flag = true, .offset = offsetof(struct nvemu_ctrl, member), .size = sizeof(bool) }

#define FEAT(grp, set)                                                                     \
	CTRL_UINT(grp, "arbitration", set.arbitration),                                  \
	CTRL_UINT(grp, "power_mgmt", set.power_mgmt),                                    \
	CTRL_UINT(grp, "err_recovery", set.err_recovery),                                \
	CTRL_UINT(grp, "volatile_wc", set.volatile_wc),                                  \
	CTRL_UINT(grp, "num_queues", set.num_queues),                                    \
	CTRL_FLAG(grp, "num_queues_set", set.num_queues_set),                               \
	CTRL_UINT(grp, "irq_coalesce", set.irq_coalesce),                                \
	CTRL_UINT(grp, "write_atomic", set.write_atomic),                                \
	CTRL_UINT(grp, "async_event_cfg", set.async_event_cfg),                          \
	CTRL_UINT(grp, "kato", set.kato),                                                \
	CTRL_FLAG(grp, "host_id_ext", set.host_id_ext),                                     \
	CTRL_FLAG(grp, "host_id_set", set.host_id_set),                                     \
	CTRL_ARRAY(grp, "temp_over", set.temp_over, NVEMU_TEMP_SENSORS),                     \
	CTRL_ARRAY(grp, "temp_under", set.temp_under, NVEMU_TEMP_SENSORS),                   \
	CTRL_ARRAY(grp, "irq_config", set.irq_config, NVEMU_IV_MAX),                         \
	{ .group = grp, .name = "host_id", .kind = NVEMU_STATE_BYTES,                       \
	  .offset = offsetof(struct nvemu_ctrl, set.host_id),                               \
	  .size = SZ(struct nvemu_ctrl, set.host_id) }

#define Q_UINT(scope_, type, nm, member)                                                   \
	{ .group = "", .name = nm, .scope = scope_, .kind = NVEMU_STATE_UINT,               \
	  .offset = offsetof(type, member), .size = SZ(type, member) }
#define Q_FLAG(scope_, type, nm, member)                                                   \
	{ .group = "", .name = nm, .scope = scope_, .kind = NVEMU_STATE_UINT, .flag = true, \
	  .offset = offsetof(type, member), .size = sizeof(bool) }
#define SQ_UINT(nm, member) Q_UINT(NVEMU_STATE_SQ, struct nvemu_sq, nm, member)
#define CQ_UINT(nm, member) Q_UINT(NVEMU_STATE_CQ, struct nvemu_cq, nm, member)

static const char *const event_members[] = { "type", "info", "lid" };

static const struct nvemu_state_field state_fields[] = {
	{ .group = "registers", .name = "cap", .kind = NVEMU_STATE_UINT, .save_only = true,
	  .offset = offsetof(struct nvemu_ctrl, cap), .size = SZ(struct nvemu_ctrl, cap) },
	CTRL_UINT("registers", "cc", cc),
	CTRL_UINT("registers", "csts", csts),
	CTRL_UINT("registers", "aqa", aqa),
	CTRL_UINT("registers", "asq", asq),
	CTRL_UINT("registers", "acq", acq),
	CTRL_UINT("registers", "intms", intms),

	FEAT("features.current", feat),
	FEAT("features.saved", feat_saved),

	CTRL_UINT("error_log", "count", err_count),
	{ .group = "error_log", .name = "entries", .kind = NVEMU_STATE_SPARSE,
	  .count = NVEMU_ERRLOG_ENTRIES, .offset = offsetof(struct nvemu_ctrl, errlog),
	  .size = SZ(struct nvemu_ctrl, errlog[0]), .stride = SZ(struct nvemu_ctrl, errlog[0]) },

	{ .group = "changed_ns", .name = "list", .kind = NVEMU_STATE_UINT_LIST,
	  .count = NVEMU_CHANGED_NS_MAX, .nr_members = 1,
	  .offset = offsetof(struct nvemu_ctrl, changed_ns),
	  .size = SZ(struct nvemu_ctrl, changed_ns[0]),
	  .stride = SZ(struct nvemu_ctrl, changed_ns[0]),
	  .len_offset = offsetof(struct nvemu_ctrl, nr_changed_ns) },
	{ .group = "changed_ns", .name = "overflow", .kind = NVEMU_STATE_BOOL,
	  .offset = offsetof(struct nvemu_ctrl, changed_ns_overflow), .size = sizeof(bool) },

	{ .group = "firmware", .name = "slots", .kind = NVEMU_STATE_BYTES,
	  .count = NVEMU_FW_SLOTS_MAX, .offset = offsetof(struct nvemu_ctrl, fw.slot_rev),
	  .size = SZ(struct nvemu_ctrl, fw.slot_rev[0]),
	  .stride = SZ(struct nvemu_ctrl, fw.slot_rev[0]) },
	CTRL_UINT("firmware", "active_slot", fw.active_slot),
	CTRL_UINT("firmware", "next_slot", fw.next_slot),
	{ .group = "firmware", .name = "image", .kind = NVEMU_STATE_BLOB,
	  .offset = offsetof(struct nvemu_ctrl, fw.image),
	  .len_offset = offsetof(struct nvemu_ctrl, fw.image_len) },

	{ .group = "events", .name = "pending", .kind = NVEMU_STATE_UINT_LIST,
	  .count = NVEMU_MAX_EVENTS, .members = event_members, .nr_members = 3,
	  .offset = offsetof(struct nvemu_ctrl, events), .size = 1,
	  .stride = sizeof(struct nvemu_event),
	  .len_offset = offsetof(struct nvemu_ctrl, nr_events) },
	CTRL_UINT("events", "aen_masked", aen_masked),
	CTRL_UINT("events", "temp_warning", temp_warning),
	{ .group = "events", .name = "outstanding_aers", .kind = NVEMU_STATE_UINT,
	  .save_only = true, .offset = offsetof(struct nvemu_ctrl, nr_aer),
	  .size = SZ(struct nvemu_ctrl, nr_aer) },

	CTRL_UINT("smart", "units_read", smart.units_read),
	CTRL_UINT("smart", "units_written", smart.units_written),
	CTRL_UINT("smart", "host_read_cmds", smart.host_read_cmds),
	CTRL_UINT("smart", "host_write_cmds", smart.host_write_cmds),
	CTRL_UINT("smart", "media_errors", smart.media_errors),
	CTRL_UINT("smart", "busy_ns", smart.busy_ns),

	{ .group = "host", .name = "hostnqn", .kind = NVEMU_STATE_STRING,
	  .offset = offsetof(struct nvemu_ctrl, hostnqn), .size = SZ(struct nvemu_ctrl, hostnqn) },
	{ .group = "host", .name = "hostid", .kind = NVEMU_STATE_BYTES,
	  .offset = offsetof(struct nvemu_ctrl, hostid), .size = SZ(struct nvemu_ctrl, hostid) },

	{ .group = "", .name = "suspended", .kind = NVEMU_STATE_BOOL, .save_only = true,
	  .offset = offsetof(struct nvemu_ctrl, suspended), .size = sizeof(bool) },
	{ .group = "", .name = "suspend_admin_only", .kind = NVEMU_STATE_BOOL, .save_only = true,
	  .offset = offsetof(struct nvemu_ctrl, suspend_admin_only), .size = sizeof(bool) },

	SQ_UINT("qid", qid),
	SQ_UINT("cqid", cqid),
	SQ_UINT("size", size),
	SQ_UINT("prio", prio),
	Q_FLAG(NVEMU_STATE_SQ, struct nvemu_sq, "pc", pc),
	SQ_UINT("addr", addr),
	SQ_UINT("tail", tail),
	SQ_UINT("head", head),
	SQ_UINT("requests", st.requests),
	SQ_UINT("completions", st.completions),
	SQ_UINT("reads", st.reads),
	SQ_UINT("writes", st.writes),
	SQ_UINT("flushes", st.flushes),

	CQ_UINT("qid", qid),
	CQ_UINT("size", size),
	CQ_UINT("iv", iv),
	Q_FLAG(NVEMU_STATE_CQ, struct nvemu_cq, "ien", ien),
	Q_FLAG(NVEMU_STATE_CQ, struct nvemu_cq, "pc", pc),
	CQ_UINT("addr", addr),
	CQ_UINT("head", head),
	CQ_UINT("tail", tail),
	CQ_UINT("nr_sqs", nr_sqs),
	CQ_UINT("completions", completions),

	{ .name = NULL },
};

const struct nvemu_state_field *nvemu_ctrl_state_fields(void)
{
	return state_fields;
}

const struct nvemu_state_field *nvemu_ctrl_state_field(enum nvemu_state_scope scope,
						       const char *group, const char *name)
{
	for (const struct nvemu_state_field *f = state_fields; f->name; f++)
		if (f->scope == scope && !strcmp(f->group, group) && !strcmp(f->name, name))
			return f;
	return NULL;
}

bool nvemu_ctrl_state_queue_valid(const struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
				  unsigned qid)
{
	if (qid > ctrl->p.num_io_queues)
		return false;
	return scope == NVEMU_STATE_SQ ? ctrl->sqs[qid].valid :
	       scope == NVEMU_STATE_CQ ? ctrl->cqs[qid].valid : false;
}

/* Where element idx of f lives; NULL for a queue that does not exist. */
static void *field_ptr(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
		       unsigned qid, unsigned idx)
{
	const char *base;

	switch (f->scope) {
	case NVEMU_STATE_SQ:
		if (qid > ctrl->p.num_io_queues)
			return NULL;
		base = (const char *)&ctrl->sqs[qid];
		break;
	case NVEMU_STATE_CQ:
		if (qid > ctrl->p.num_io_queues)
			return NULL;
		base = (const char *)&ctrl->cqs[qid];
		break;
	default:
		base = (const char *)ctrl;
		break;
	}
	if (f->kind == NVEMU_STATE_UINT_LIST)
		return (char *)base + f->offset + (idx / f->nr_members) * f->stride +
		       (idx % f->nr_members) * f->size;
	return (char *)base + f->offset + idx * f->stride;
}

static uint64_t load_uint(const void *p, size_t size)
{
	switch (size) {
	case 1:
		return *(const uint8_t *)p;
	case 2:
		return *(const uint16_t *)p;
	case 4:
		return *(const uint32_t *)p;
	default:
		return *(const uint64_t *)p;
	}
}

static void store_uint(void *p, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		*(uint8_t *)p = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)p = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)p = (uint32_t)v;
		break;
	default:
		*(uint64_t *)p = v;
		break;
	}
}

uint64_t nvemu_ctrl_state_get(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			      unsigned qid, unsigned idx)
{
	const void *p = field_ptr(ctrl, f, qid, idx);

	if (!p)
		return 0;
	if (f->kind == NVEMU_STATE_BOOL || f->flag)
		return *(const bool *)p;
	return load_uint(p, f->size);
}

size_t nvemu_ctrl_state_len(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f)
{
	const char *base = (const char *)ctrl;
	unsigned n;

	switch (f->kind) {
	case NVEMU_STATE_UINT_LIST:
		n = *(const unsigned *)(base + f->len_offset);
		return n < f->count ? n : f->count;
	case NVEMU_STATE_BLOB:
		return *(const uint8_t *const *)(base + f->offset) ?
			       *(const size_t *)(base + f->len_offset) :
			       0;
	default:
		return f->count;
	}
}

const void *nvemu_ctrl_state_bytes(const struct nvemu_ctrl *ctrl,
				   const struct nvemu_state_field *f, unsigned qid, unsigned idx,
				   size_t *len)
{
	const void *p = field_ptr(ctrl, f, qid, idx);

	switch (f->kind) {
	case NVEMU_STATE_BLOB:
		*len = nvemu_ctrl_state_len(ctrl, f);
		return *(const uint8_t *const *)p;
	case NVEMU_STATE_STRING:
		*len = p ? strnlen(p, f->size) : 0;
		return p;
	default:
		*len = p ? f->size : 0;
		return p;
	}
}

void nvemu_ctrl_state_restore_begin(struct nvemu_ctrl *ctrl)
{
	for (unsigned q = 0; q <= ctrl->p.num_io_queues; q++) {
		memset(&ctrl->sqs[q], 0, sizeof(ctrl->sqs[q]));
		memset(&ctrl->cqs[q], 0, sizeof(ctrl->cqs[q]));
	}
}

int nvemu_ctrl_state_queue_create(struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
				  unsigned qid)
{
	if (qid > ctrl->p.num_io_queues)
		return -EINVAL;
	if (scope == NVEMU_STATE_SQ)
		ctrl->sqs[qid].valid = true;
	else if (scope == NVEMU_STATE_CQ)
		ctrl->cqs[qid].valid = true;
	else
		return -EINVAL;
	return 0;
}

void nvemu_ctrl_state_set(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			  unsigned qid, unsigned idx, uint64_t v)
{
	void *p = field_ptr(ctrl, f, qid, idx);

	if (!p || f->save_only)
		return;
	if (f->kind == NVEMU_STATE_BOOL || f->flag)
		*(bool *)p = v != 0;
	else if (f->kind == NVEMU_STATE_UINT || f->kind == NVEMU_STATE_UINT_LIST)
		store_uint(p, f->size, v);
}

int nvemu_ctrl_state_set_bytes(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			       unsigned qid, unsigned idx, const void *buf, size_t len)
{
	void *p = field_ptr(ctrl, f, qid, idx);
	uint8_t *copy;

	if (!p || f->save_only)
		return -EINVAL;
	switch (f->kind) {
	case NVEMU_STATE_BYTES:
	case NVEMU_STATE_SPARSE:
		if (len != f->size)
			return -EINVAL;
		memcpy(p, buf, len);
		return 0;
	case NVEMU_STATE_STRING:
		if (len >= f->size)
			return -ENAMETOOLONG;
		memcpy(p, buf, len);
		((char *)p)[len] = '\0';
		return 0;
	case NVEMU_STATE_BLOB:
		copy = malloc(len ? len : 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, buf, len);
		free(*(uint8_t **)p);
		*(uint8_t **)p = copy;
		*(size_t *)((char *)ctrl + f->len_offset) = len;
		return 0;
	default:
		return -EINVAL;
	}
}

void nvemu_ctrl_state_clear(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f)
{
	if (f->save_only || f->scope != NVEMU_STATE_CTRL)
		return;
	if (f->kind == NVEMU_STATE_UINT_LIST)
		*(unsigned *)((char *)ctrl + f->len_offset) = 0;
	else if (f->kind == NVEMU_STATE_SPARSE)
		memset((char *)ctrl + f->offset, 0, f->count * f->stride);
}

int nvemu_ctrl_state_append(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			    const uint64_t *members)
{
	unsigned *len;

	if (f->kind != NVEMU_STATE_UINT_LIST || f->save_only || f->scope != NVEMU_STATE_CTRL)
		return -EINVAL;
	len = (unsigned *)((char *)ctrl + f->len_offset);
	if (*len >= f->count)
		return -ENOSPC;
	for (unsigned m = 0; m < f->nr_members; m++)
		store_uint(field_ptr(ctrl, f, 0, *len * f->nr_members + m), f->size, members[m]);
	(*len)++;
	return 0;
}

void nvemu_ctrl_state_restore_end(struct nvemu_ctrl *ctrl)
{
	ctrl->last_keep_alive_ns = nvemu_now_ns();
}
