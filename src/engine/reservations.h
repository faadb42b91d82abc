/* SPDX-License-Identifier: MIT */
/*
 * Reservations (NVMe Base 2.0, 8.19) and the fused Compare and Write gate.
 * State lives with the namespace (struct nvemu_resv), keyed by host
 * identifier, so every controller of one host shares its registration;
 * notifications and masks live with the controller (struct nvemu_resv_ctrl).
 */
#ifndef NVEMU_RESERVATIONS_H
#define NVEMU_RESERVATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "nvemu-internal.h"

#define NVEMU_RESV_MAX_REGS   64 /* registrants per namespace */
#define NVEMU_RESV_MAX_NOTIFY 64 /* queued notification log pages per controller */
#define NVEMU_RESV_MAX_MASKS  32 /* namespaces with their own notification mask */

/* A host as reservations see it. */
struct nvemu_resv_host {
	uint8_t id[16];
	bool ext;      /* a 128-bit identifier (always on fabrics) */
	uint16_t anon; /* no Host Identifier set: this controller alone (its CNTLID) */
};

struct nvemu_resv_reg {
	struct nvemu_resv_host host;
	uint64_t rkey;
};

struct nvemu_resv {
	struct nvemu_resv_reg regs[NVEMU_RESV_MAX_REGS];
	unsigned nr_regs;
	uint32_t gen;
	uint8_t rtype;		       /* 0: no reservation */
	struct nvemu_resv_host holder; /* types 1-4; types 5-6: every registrant holds it */
	bool ptpl;		       /* Persist Through Power Loss state */
	char *ptpl_file;	       /* NULL: PTPL is not offered on this namespace */

	/* Fused Compare and Write: other I/O to the namespace waits while a pair runs. */
	bool fused_busy;
	struct nvemu_req *fused_pair[2]; /* the pair waiting for in-flight I/O to drain */
	struct nvemu_req_queue waiting;
};

struct nvemu_resv_notice {
	uint64_t lpc;
	uint32_t nsid;
	uint8_t type;
};

struct nvemu_resv_ctrl {
	struct nvemu_resv_notice log[NVEMU_RESV_MAX_NOTIFY];
	unsigned head, nr;
	uint64_t lpc; /* Log Page Count of the last notice queued */
	struct {
		uint32_t nsid;
		uint8_t mask;
	} masks[NVEMU_RESV_MAX_MASKS];
	unsigned nr_masks;
	/* Fused: the first command of a pair, per SQ, until its second arrives. */
	struct nvemu_req **fused_first; /* num_io_queues + 1 entries */
};

/* reservations.c */
void nvemu_execute_resv_register(struct nvemu_req *req);
void nvemu_execute_resv_report(struct nvemu_req *req);
void nvemu_execute_resv_acquire(struct nvemu_req *req);
void nvemu_execute_resv_release(struct nvemu_req *req);
/* The namespace's state, created on first use; NULL when out of memory. */
struct nvemu_resv *nvemu_resv_get(struct nvemu_ns *ns);
struct nvemu_resv_ctrl *nvemu_resv_ctrl_get(struct nvemu_ctrl *ctrl);
void nvemu_resv_ns_free(struct nvemu_ns *ns);
void nvemu_resv_ctrl_free(struct nvemu_ctrl *ctrl);
/* Reservation Conflict status when ctrl's host may not run opc on ns now, else 0. */
uint16_t nvemu_resv_check(struct nvemu_ctrl *ctrl, struct nvemu_ns *ns, uint8_t opc);
/*
 * The admin commands of the write command group (Format NVM, Sanitize,
 * Namespace Attachment, Namespace Management delete): Reservation Conflict
 * if this host could not write a namespace the command changes.
 */
uint16_t nvemu_resv_check_admin(struct nvemu_ctrl *ctrl, const struct nvemu_req *req);
/* True when ctrl's host is registered on some namespace (Set Features Host Identifier). */
bool nvemu_resv_ctrl_registered(struct nvemu_ctrl *ctrl);
/* RESCAP of a namespace. */
uint8_t nvemu_resv_rescap(struct nvemu_ns *ns);
/* Reservation Notification log (80h): the oldest page, consumed. */
void nvemu_resv_log(struct nvemu_ctrl *ctrl, void *buf, size_t *size);
/* Features 82h and 83h (namespace-specific). get: the Get Features form. */
void nvemu_resv_feature(struct nvemu_req *req, bool get);

/* resv-ptpl.c */
int nvemu_resv_ptpl_save(struct nvemu_ns *ns);
/* Parse a saved state (text) into r; -EINVAL on malformed input. */
int nvemu_resv_ptpl_parse(struct nvemu_resv *r, const char *text, size_t len);

/* io-fused.c */
/* A command with FUSE set: keeps or runs the pair; completes what it refuses. */
void nvemu_fused_submit(struct nvemu_ctrl *ctrl, struct nvemu_req *req);
/* A non-fused command on sqid: a first half waiting there is missing its second. */
void nvemu_fused_check_missing(struct nvemu_ctrl *ctrl, uint16_t sqid);
/* I/O to ns waits while a pair runs: true when req was queued (it runs later). */
bool nvemu_fused_hold(struct nvemu_req *req);
/* A namespace reference was dropped: a pair waiting for in-flight I/O may start. */
void nvemu_fused_ns_put(struct nvemu_ns *ns);
/* Controller going away or reset: fail the first halves it keeps. */
void nvemu_fused_ctrl_reset(struct nvemu_ctrl *ctrl);
/* Delete I/O SQ: its waiting fused first half completes as aborted. */
void nvemu_fused_sq_deleted(struct nvemu_ctrl *ctrl, uint16_t sqid);

/* core.c: run a command that was held back (fused gate) through dispatch. */
void nvemu_ctrl_redispatch(struct nvemu_req *req);

#endif
