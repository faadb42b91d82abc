/* SPDX-License-Identifier: MIT */
/*
 * A controller's state for a control plane: what the objects of the model
 * hold, read through accessors, and a controller's whole state (registers,
 * features, logs, firmware slots, queues, pending events, SMART counters)
 * described by one table, so that saving it (a snapshot) and restoring it
 * into a new controller walk the same fields and only the engine writes
 * them.
 */
#ifndef NVEMU_CTRL_STATE_H
#define NVEMU_CTRL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nvemu/model.h>

/* ---- what the objects hold */

struct nvemu_subsys_info {
	const char *sn, *mn, *fr;
	uint32_t nn, mnan;
	bool single_ctrl;
	unsigned nr_ctrls, nr_ns, nr_ports;
	uint16_t min_cntlid, max_cntlid;
};

void nvemu_subsys_info(const struct nvemu_subsys *subsys, struct nvemu_subsys_info *info);
/* The i-th controller (by cntlid) and namespace (by NSID); NULL past the end. */
struct nvemu_ctrl *nvemu_subsys_ctrl_at(struct nvemu_subsys *subsys, unsigned i);
struct nvemu_ns *nvemu_subsys_ns_at(struct nvemu_subsys *subsys, unsigned i);
/* The i-th port (creation order): its id and parameters; -ENOENT past the end. */
int nvemu_subsys_port_at(const struct nvemu_subsys *subsys, unsigned i, uint16_t *port_id,
			 struct nvemu_port_params *p);
/*
 * Where Namespace Management gets the backing store of the namespaces it
 * creates (bytes, LBA size): alloc fills *out or returns -errno. NULL: RAM
 * bdevs the namespaces own.
 */
typedef int (*nvemu_ns_bdev_alloc_fn)(struct nvemu_subsys *subsys, uint64_t bytes,
				      uint32_t lba_size, struct nvemu_bdev **out, void *arg);
void nvemu_subsys_set_ns_bdev_alloc(struct nvemu_subsys *subsys, nvemu_ns_bdev_alloc_fn alloc,
				    void *arg);
/* The parameters of port_id, or NULL. */
const struct nvemu_port_params *nvemu_subsys_port(const struct nvemu_subsys *subsys,
						  uint16_t port_id);

struct nvemu_ns_info {
	uint32_t nsid;
	uint64_t nblocks;
	uint8_t lbaf;
	uint32_t lba_size;
	struct nvemu_bdev *bdev;
	const uint8_t *nguid; /* 16 bytes */
	const uint8_t *eui64; /* 8 bytes */
	const uint8_t *uuid;  /* 16 bytes */
	unsigned nr_attached; /* controllers it is attached to */
};

void nvemu_ns_info(const struct nvemu_ns *ns, struct nvemu_ns_info *info);

const struct nvemu_ctrl_params *nvemu_ctrl_params(const struct nvemu_ctrl *ctrl);
/* The attached namespaces, by NSID: how many, and the i-th one's NSID. */
unsigned nvemu_ctrl_nr_ns(const struct nvemu_ctrl *ctrl);
uint32_t nvemu_ctrl_nsid_at(const struct nvemu_ctrl *ctrl, unsigned i);
uint32_t nvemu_ctrl_cc(const struct nvemu_ctrl *ctrl);
uint32_t nvemu_ctrl_csts(const struct nvemu_ctrl *ctrl);
/* The name of the transport bound to it (struct nvemu_transport_ops), NULL if none. */
const char *nvemu_ctrl_transport(const struct nvemu_ctrl *ctrl);

/* ---- the state table */

enum nvemu_state_scope {
	NVEMU_STATE_CTRL, /* one per controller */
	NVEMU_STATE_SQ,	  /* one per valid submission queue */
	NVEMU_STATE_CQ,	  /* one per valid completion queue */
};

enum nvemu_state_kind {
	NVEMU_STATE_UINT,	/* an integer; count > 0: a fixed array of them */
	NVEMU_STATE_BOOL,	/* a flag */
	NVEMU_STATE_BYTES,	/* size bytes; count > 0: a fixed array of them */
	NVEMU_STATE_SPARSE,	/* count entries of size bytes, most of them all-zero */
	NVEMU_STATE_STRING,	/* a NUL-terminated string of at most size - 1 characters */
	NVEMU_STATE_BLOB,	/* bytes of variable length, possibly none */
	NVEMU_STATE_UINT_LIST,	/* up to count elements of nr_members integers each */
};

struct nvemu_state_field {
	const char *group; /* where it is kept: "registers", "features.current", "" */
	const char *name;
	enum nvemu_state_scope scope;
	enum nvemu_state_kind kind;
	unsigned count;		    /* see the kinds */
	size_t size;		    /* bytes of one element or list member */
	const char *const *members; /* UINT_LIST: names of an element's integers, or NULL */
	unsigned nr_members;	    /* UINT_LIST: integers per element */
	bool save_only;		    /* reported, never restored (derived or transient) */
	/* Where the engine keeps it (ctrl-state.c); meaningless to anyone else. */
	bool flag;	   /* a UINT kept as a bool */
	size_t offset;	   /* in the controller or the queue */
	size_t stride;	   /* between array or list elements */
	size_t len_offset; /* a list's element count, a blob's length */
};

/* Every field, ending with one whose name is NULL. */
const struct nvemu_state_field *nvemu_ctrl_state_fields(void);
/* The field of the scope named group and name, or NULL. */
const struct nvemu_state_field *nvemu_ctrl_state_field(enum nvemu_state_scope scope,
						       const char *group, const char *name);

/* Whether queue qid of the scope (NVEMU_STATE_SQ / _CQ) exists; qid <= num_io_queues. */
bool nvemu_ctrl_state_queue_valid(const struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
				  unsigned qid);

/*
 * Reading. qid names the queue of SQ/CQ fields (ignored for CTRL ones);
 * idx the element of arrays, and of lists element * nr_members + member.
 */
uint64_t nvemu_ctrl_state_get(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			      unsigned qid, unsigned idx);
/* Elements a list holds, the length of a blob; count for the other kinds. */
size_t nvemu_ctrl_state_len(const struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f);
/* BYTES, SPARSE, STRING and BLOB: the element's bytes and their number. */
const void *nvemu_ctrl_state_bytes(const struct nvemu_ctrl *ctrl,
				   const struct nvemu_state_field *f, unsigned qid, unsigned idx,
				   size_t *len);

/*
 * Restoring, into a controller just created (suspended, no host bound):
 * nvemu_ctrl_state_restore_begin() first (every queue deleted), then the
 * queues and fields, then nvemu_ctrl_state_restore_end().
 */
void nvemu_ctrl_state_restore_begin(struct nvemu_ctrl *ctrl);
/* Mark queue qid of the scope as created (fields zero until set); -EINVAL if out of range. */
int nvemu_ctrl_state_queue_create(struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
				  unsigned qid);
void nvemu_ctrl_state_set(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			  unsigned qid, unsigned idx, uint64_t v);
/*
 * Copies len bytes: exactly the element's size for BYTES and SPARSE, less
 * than it for a STRING (which is terminated), any length for a BLOB; -errno.
 */
int nvemu_ctrl_state_set_bytes(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			       unsigned qid, unsigned idx, const void *buf, size_t len);
/* Empties a list or zeroes a sparse array. */
void nvemu_ctrl_state_clear(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f);
/* Appends an element of nr_members integers to a list; -ENOSPC when it is full. */
int nvemu_ctrl_state_append(struct nvemu_ctrl *ctrl, const struct nvemu_state_field *f,
			    const uint64_t *members);
/* The host is as alive as at the snapshot: the keep-alive timer starts now. */
void nvemu_ctrl_state_restore_end(struct nvemu_ctrl *ctrl);

#endif
