/* SPDX-License-Identifier: MIT */
/*
 * Internal definitions shared by the engine, the transports and the
 * control plane (the role nvmet.h plays in the Linux NVMe target).
 * Per-concern state lives in its own header: feature-state.h, fw.h.
 */
#ifndef NVEMU_INTERNAL_H
#define NVEMU_INTERNAL_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>

#include <nvemu/nvemu.h>

#include "feature-state.h"
#include "fw.h"

#define NVEMU_VS	     0x00020000u /* NVMe 2.0 */
#define NVEMU_ERRLOG_ENTRIES 64
#define NVEMU_CHANGED_NS_MAX 1024 /* the log holds 1024 NSIDs */
#define NVEMU_MAX_EVENTS     16
#define NVEMU_MAX_MSIX	     2048

struct nvemu_port {
	uint16_t id;
	struct nvemu_port_params p;
	uint8_t ana_state[NVEMU_ANAGRPMAX]; /* per ANA group; 0 reads as optimized */
};

struct nvemu_ns {
	struct nvemu_subsys *subsys;
	uint32_t nsid;
	uint64_t nblocks;  /* NSZE = NCAP = NUSE */
	uint8_t lbaf;	   /* current format index */
	uint8_t lba_shift; /* log2 of the LBA size */
	struct nvemu_bdev *bdev;
	bool owns_bdev; /* created with the namespace, destroyed with it */
	bool ready;	/* false while a Format NVM runs */
	uint8_t nguid[16];
	uint8_t eui64[8];
	uint8_t uuid[16];
	unsigned nr_attached; /* controllers it is attached to */
	/*
	 * One reference for the subsystem's list, one per command that uses
	 * the namespace. Removal unlinks it at once; the memory and the bdev's
	 * user count go with the last reference.
	 */
	unsigned refs;
	bool removed;		       /* unlinked: on subsys->dead_ns until released */
	LIST_ENTRY(nvemu_ns) dead_link; /* subsys->dead_ns */
	struct nvemu_resv *resv;	 /* reservations and the fused gate (reservations.h) */
	uint32_t anagrpid;	       /* ANA group, 1..NVEMU_ANAGRPMAX */
	bool no_auto_visible;	       /* masked: visible to hosts[] only */
	char **hosts;		       /* host NQNs that see it (ana.c) */
	unsigned nr_hosts;
};

/* The outstanding AERs, or the commands a suspend holds, in arrival order. */
STAILQ_HEAD(nvemu_req_queue, nvemu_req);

struct nvemu_queue_stats {
	uint64_t requests;
	uint64_t completions;
	uint64_t reads;
	uint64_t writes;
	uint64_t flushes;
};

struct nvemu_sq {
	bool valid;
	uint16_t qid;
	uint16_t cqid;
	uint16_t size; /* entries */
	uint8_t prio;
	bool pc;
	uint64_t addr;
	uint32_t tail; /* as written by the host (doorbell) */
	uint32_t head; /* as consumed by the controller */
	struct nvemu_queue_stats st;
};

struct nvemu_cq {
	bool valid;
	uint16_t qid;
	uint16_t size;
	uint16_t iv;
	bool ien;
	bool pc;
	uint64_t addr;
	uint32_t head; /* doorbell */
	uint32_t tail;
	unsigned nr_sqs; /* SQs that post here; delete_cq refuses while > 0 */
	uint64_t completions;
};

struct nvemu_event {
	uint8_t type; /* NVME_AER_* type: 0 error, 1 SMART, 2 notice, ... */
	uint8_t info; /* asynchronous event information */
	uint8_t lid;  /* log page that clears it */
};

/* SMART/Health counters, counted from real I/O. */
struct nvemu_smart_counters {
	uint64_t units_read;	/* 512-byte units read */
	uint64_t units_written; /* 512-byte units written */
	uint64_t host_read_cmds;
	uint64_t host_write_cmds;
	uint64_t media_errors;
	uint64_t busy_ns; /* time with commands outstanding */
};

struct nvemu_ctrl {
	struct nvemu_subsys *subsys;
	uint16_t cntlid;
	struct nvemu_ctrl_params p;
	struct nvemu_ctrl_metrics metrics; /* ctrl-metrics.c */

	/* attached namespaces, sorted by NSID */
	struct nvemu_ns **ns;
	unsigned nr_ns, ns_cap;

	/* registers / properties */
	uint64_t cap;
	uint32_t cc, csts, aqa, intms;
	uint64_t asq, acq;

	/* the transport currently bound */
	const struct nvemu_transport_ops *tops;
	void *tpriv;

	/* queues: index = qid, 0..p.num_io_queues */
	struct nvemu_sq *sqs;
	struct nvemu_cq *cqs;

	struct nvemu_features feat;	  /* current */
	struct nvemu_features feat_saved; /* the saved set (SV=1) */
	struct nvemu_fw_state fw;

	/* Asynchronous events */
	struct nvemu_req_queue aers; /* outstanding AERs */
	unsigned nr_aer;
	struct nvemu_event events[NVEMU_MAX_EVENTS]; /* queued, not reported yet */
	unsigned nr_events;
	uint32_t aen_masked;  /* bit per type: reported, awaiting its log page */
	uint8_t temp_warning; /* NVME_SMART_CRIT_TEMPERATURE when a threshold is crossed */

	/* Error Information log ring */
	struct nvme_error_log_page errlog[NVEMU_ERRLOG_ENTRIES];
	uint64_t err_count;

	/* Changed Namespace List log */
	uint32_t changed_ns[NVEMU_CHANGED_NS_MAX];
	unsigned nr_changed_ns;
	bool changed_ns_overflow;

	struct nvemu_smart_counters smart;

	/* suspend / in flight */
	bool suspended;
	bool suspend_admin_only;
	struct nvemu_req_queue held;
	unsigned inflight;
	LIST_HEAD(, nvemu_req) inflight_reqs; /* for Abort, SQ deletion, a suspend timeout */
	void (*idle_fn)(void *arg);	 /* nvemu_ctrl_when_idle() */
	void *idle_arg;
	unsigned internal_ops; /* engine work without a request (shutdown flushes) */
	/* Destroyed with commands in flight: freed by the last completion. */
	bool dying;
	LIST_ENTRY(nvemu_ctrl) dying_link; /* subsys->dying_ctrls */

	uint64_t last_keep_alive_ns;
	char hostnqn[NVEMU_NQN_MAX + 1];
	uint8_t hostid[16];
	struct nvemu_resv_ctrl *resv; /* reservation notifications, fused halves (reservations.h) */
};

/* A subsystem's sanitize state (admin-sanitize.c). */
struct nvemu_sanitize {
	bool running;
	bool resume; /* one was running at the last power off: restarts with a controller */
	bool failed; /* failure mode: commands fail with Sanitize Failed */
	uint8_t passes;
	uint16_t sprog, sstat;
	uint32_t scdw10, ovrpat;
	struct san_job *job;
};

/* subsys-state.c: the subsystem's state_file (sanitize state through restarts). */
int nvemu_subsys_state_parse(struct nvemu_sanitize *san, const char *text, size_t len);
/* The file's text into buf; its length, or -ENOSPC. */
int nvemu_subsys_state_format(const struct nvemu_sanitize *san, char *buf, size_t size);
int nvemu_subsys_state_save(struct nvemu_subsys *s);
/* Restarts a sanitize the state file says was running (admin-sanitize.c). */
void nvemu_sanitize_resume(struct nvemu_subsys *s);

struct nvemu_subsys {
	char nqn[NVEMU_NQN_MAX + 1];
	char sn[NVEMU_SN_MAX + 1];
	char mn[NVEMU_MN_MAX + 1];
	char fr[NVEMU_FR_MAX + 1];
	uint32_t nn, mnan;
	bool single_ctrl;
	struct nvemu_vendor vendor;

	struct nvemu_port *ports;
	unsigned nr_ports;
	uint16_t next_port_id;

	struct nvemu_ctrl **ctrls; /* sorted by cntlid */
	unsigned nr_ctrls;

	struct nvemu_ns **ns; /* sorted by NSID */
	unsigned nr_ns, ns_cap;

	struct nvemu_health health;
	struct nvemu_sanitize san;
	char *state_file; /* NULL: state does not outlive nvemud */
	uint64_t tnvmcap; /* capacity Namespace Management may hand out, bytes */
	uint64_t power_cycles;
	uint64_t poh_base_ns; /* monotonic time the subsystem powered on */

	/* Backing store for namespaces created by Namespace Management. */
	int (*ns_bdev_alloc)(struct nvemu_subsys *subsys, uint64_t bytes, uint32_t lba_size,
			     struct nvemu_bdev **out, void *arg);
	void *ns_bdev_arg;

	/*
	 * Objects that outlive their removal because commands still use them;
	 * nvemu_subsys_destroy() frees the subsystem once both lists are empty.
	 */
	LIST_HEAD(, nvemu_ns) dead_ns;
	LIST_HEAD(, nvemu_ctrl) dying_ctrls;
	bool dying;

	bool ana_reporting;
	uint64_t ana_chgcnt;			  /* ANA log Change Count */
	uint64_t ana_grp_chgcnt[NVEMU_ANAGRPMAX]; /* per group */
};

/* ---- model helpers (subsys.c) */

struct nvemu_ns *nvemu_ctrl_find_ns(const struct nvemu_ctrl *ctrl, uint32_t nsid);
/* A command or sub-I/O that uses ns holds a reference until it ends. */
static inline struct nvemu_ns *nvemu_ns_get(struct nvemu_ns *ns)
{
	ns->refs++;
	return ns;
}
/* Drops a reference; the last one of a removed namespace frees it. */
void nvemu_ns_put(struct nvemu_ns *ns);
/* A dying controller whose last command completed: free it (core.c calls it). */
void nvemu_ctrl_release(struct nvemu_ctrl *ctrl);
/* Namespace Management create: size in blocks of lbaf; returns status. */
uint16_t nvemu_subsys_ns_create_status(struct nvemu_subsys *subsys, uint64_t nsze, uint8_t lbaf,
				       uint32_t *nsid);
/* Queue a Namespace Attribute Changed notice for nsid on ctrl. */
void nvemu_ctrl_ns_changed(struct nvemu_ctrl *ctrl, uint32_t nsid);
uint64_t nvemu_now_ns(void);
static inline uint32_t nvemu_ns_lba_size(const struct nvemu_ns *ns)
{
	return 1u << ns->lba_shift;
}
/* Copy a string into a space-padded, non-terminated spec field. */
void nvemu_strpad(char *dst, size_t dst_len, const char *src);
/* A 128-bit little-endian log field (SMART counters, capacities) from a 64-bit count. */
static inline void put_le128(uint8_t dst[16], uint64_t v)
{
	uint64_t lo = htole64(v);

	memcpy(dst, &lo, 8);
	memset(dst + 8, 0, 8);
}
/*
 * Largest data transfer of one command in bytes, from MDTS (in units of
 * CAP.MPSMIN, 4 KiB); 0: no limit. The engine checks I/O commands against
 * it; transports refuse larger transfers before they allocate buffers.
 */
static inline uint64_t nvemu_ctrl_max_xfer_bytes(const struct nvemu_ctrl *ctrl)
{
	return ctrl->p.mdts ? 4096ull << ctrl->p.mdts : 0;
}

/* ---- engine (core.c) */

void nvemu_req_complete(struct nvemu_req *req, uint16_t status);
/* Status for a host buffer smaller than len (Data SGL Length Invalid), else 0. */
uint16_t nvemu_req_check_len(struct nvemu_req *req, uint32_t len);
/* Copy len bytes to / from the host buffer at offset; checks the length. */
uint16_t nvemu_req_to_host(struct nvemu_req *req, const void *src, uint32_t len);
uint16_t nvemu_req_from_host(struct nvemu_req *req, void *dst, uint32_t len);

/* Queue an asynchronous event; completes an outstanding AER if it can. */
void nvemu_ctrl_add_event(struct nvemu_ctrl *ctrl, uint8_t type, uint8_t info, uint8_t lid);
/* A log page was read without RAE: unmask and drop events it clears. */
void nvemu_ctrl_log_read(struct nvemu_ctrl *ctrl, uint8_t lid, bool rae);
void nvemu_ctrl_record_error(struct nvemu_ctrl *ctrl, struct nvemu_req *req, uint16_t status);
bool nvemu_ctrl_enabled(const struct nvemu_ctrl *ctrl);
/* Complete every outstanding AER (Command Aborted due to SQ Deletion). */
void nvemu_ctrl_abort_aers(struct nvemu_ctrl *ctrl);
/* Complete every command held by a suspend with status, without running it. */
void nvemu_ctrl_fail_held(struct nvemu_ctrl *ctrl, uint16_t status);
/* Writes must be durable before completion: FUA, or the volatile write cache is off. */
static inline bool nvemu_ctrl_write_through(const struct nvemu_ctrl *ctrl, bool fua)
{
	return fua || !(ctrl->feat.volatile_wc & 1);
}

/*
 * ---- for transports: the controller state they may change. Every
 * transport is part of libnvemu, so these stay internal; what a transport
 * outside the library needs is in <nvemu/request.h>.
 */

/* AQA (0's based queue sizes), taken at the next CC.EN 0->1. */
void nvemu_ctrl_set_aqa(struct nvemu_ctrl *ctrl, uint32_t aqa);
/* ASQ and ACQ, the admin queues in host memory (memory-based transports). */
void nvemu_ctrl_set_admin_queue_addr(struct nvemu_ctrl *ctrl, uint64_t asq, uint64_t acq);
/* Interrupt Mask (written through INTMS/INTMC). */
void nvemu_ctrl_set_intms(struct nvemu_ctrl *ctrl, uint32_t intms);
/* A fatal controller condition (CSTS.CFS), e.g. a failed DMA of a queue entry. */
void nvemu_ctrl_fatal(struct nvemu_ctrl *ctrl);
/*
 * CC and CSTS.CFS back to 0 after a reset the transport already ran
 * (PCIe Function Level Reset, NVM Subsystem Reset): no CC write side effects.
 */
void nvemu_ctrl_reset_regs(struct nvemu_ctrl *ctrl);
/*
 * Fabrics: Connect creates a queue pair (the SQ and CQ share the qid) and
 * returns the SQ, which the transport keeps as its queue. The admin pair
 * exists from Connect on; CC.EN 0->1 enables it instead of creating it.
 */
struct nvemu_sq *nvemu_ctrl_connect_queue(struct nvemu_ctrl *ctrl, uint16_t qid,
					  uint16_t entries);
/* Fabrics: the queue pair's connection is gone. */
void nvemu_ctrl_disconnect_queue(struct nvemu_ctrl *ctrl, uint16_t qid);
/* Fabrics: the host NQN and Host Identifier Connect gave (hostnqn: a valid NQN). */
void nvemu_ctrl_set_host(struct nvemu_ctrl *ctrl, const char *hostnqn, const uint8_t hostid[16]);
/* The host proved it is alive: the Keep Alive Timeout period restarts. */
void nvemu_ctrl_keep_alive(struct nvemu_ctrl *ctrl);
/* KATO as a fabrics Connect sets it (ms, 0: none); the period restarts. */
void nvemu_ctrl_set_kato(struct nvemu_ctrl *ctrl, uint32_t kato_ms);
/*
 * The keep-alive check a transport's timer runs: once KATO passed without
 * a sign of the host, calls the transport's kato_expired() and returns true.
 */
bool nvemu_ctrl_check_keep_alive(struct nvemu_ctrl *ctrl, uint64_t now_ns);

typedef void (*nvemu_execute_fn)(struct nvemu_req *req);

struct nvemu_cmd_desc {
	const char *name;
	nvemu_execute_fn execute;
	uint32_t effects; /* Commands Supported and Effects entry (CSUPP set by the log) */
	bool needs_ns;	  /* I/O: the NSID must name an attached namespace */
	bool (*supported)(const struct nvemu_ctrl *ctrl); /* NULL: always */
};

/* NULL when the opcode is not implemented or disabled on ctrl. */
const struct nvemu_cmd_desc *nvemu_admin_cmd(const struct nvemu_ctrl *ctrl, uint8_t opc);
const struct nvemu_cmd_desc *nvemu_io_cmd(const struct nvemu_ctrl *ctrl, uint8_t opc);

/* ---- command handlers, one file per group; names follow the spec */

/* admin-queue.c */
void nvemu_execute_create_sq(struct nvemu_req *req);
void nvemu_execute_delete_sq(struct nvemu_req *req);
void nvemu_execute_create_cq(struct nvemu_req *req);
void nvemu_execute_delete_cq(struct nvemu_req *req);
void nvemu_execute_abort(struct nvemu_req *req);
void nvemu_execute_keep_alive(struct nvemu_req *req);
/* admin-dbbuf.c */
void nvemu_execute_doorbell_buffer_config(struct nvemu_req *req);
/* admin-identify.c */
void nvemu_execute_identify(struct nvemu_req *req);
/* The Identify Controller / Namespace data, shared with NVMe-MI. */
void nvemu_fill_id_ctrl(struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id);
void nvemu_fill_id_ns(struct nvemu_ns *ns, struct nvme_id_ns *id);
/* admin-log.c */
void nvemu_execute_get_log_page(struct nvemu_req *req);
/* admin-features.c */
void nvemu_execute_get_features(struct nvemu_req *req);
void nvemu_execute_set_features(struct nvemu_req *req);
void nvemu_features_init(struct nvemu_ctrl *ctrl);
/* Re-evaluate temperature thresholds against the subsystem health. */
void nvemu_ctrl_check_health(struct nvemu_ctrl *ctrl);
/* core.c */
void nvemu_execute_async_event(struct nvemu_req *req);
/* admin-ns.c */
void nvemu_execute_ns_mgmt(struct nvemu_req *req);
void nvemu_execute_ns_attach(struct nvemu_req *req);
void nvemu_execute_format_nvm(struct nvemu_req *req);
/* ana.c: ANA and namespace masking hooks */
/* Path Related status for I/O to ns through ctrl's port, 0 if the path is usable. */
uint16_t nvemu_ana_io_status(const struct nvemu_ctrl *ctrl, const struct nvemu_ns *ns);
void nvemu_ana_fill_id_ctrl(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id);
void nvemu_ana_fill_id_ns(const struct nvemu_ns *ns, struct nvme_id_ns *id);
/* Largest ANA log ctrl can return, bytes. */
size_t nvemu_ana_log_max(const struct nvemu_ctrl *ctrl);
/* The ANA log page (0Ch) into buf (nvemu_ana_log_max() bytes, zeroed); rgo: groups only. */
uint16_t nvemu_ana_log(const struct nvemu_ctrl *ctrl, bool rgo, void *buf, size_t *size);
/* Check p's ANA/masking fields; fill ns's from them. */
int nvemu_ana_ns_check(const struct nvemu_subsys *s, const struct nvemu_ns_params *p,
		       struct nvemu_error *err);
void nvemu_ana_ns_init(struct nvemu_ns *ns, const struct nvemu_ns_params *p);
void nvemu_ana_ns_free(struct nvemu_ns *ns);
bool nvemu_ns_visible_to(const struct nvemu_ns *ns, const char *hostnqn);
/* The host NQN is known now: detach the namespaces it may not see. */
void nvemu_ana_ctrl_mask(struct nvemu_ctrl *ctrl);

/* Feature Identifiers Supported and Effects log entry of fid (0: not supported). */
uint32_t nvemu_feature_effects(const struct nvemu_ctrl *ctrl, uint8_t fid);

/* ctrl-metrics.c: count a command as it completes with status. */
void nvemu_ctrl_metrics_account(struct nvemu_ctrl *ctrl, const struct nvemu_req *req,
				uint16_t status);

/* admin-sanitize.c */
void nvemu_execute_sanitize(struct nvemu_req *req);
/* The status a command gets while a sanitize runs or failed; 0: it may run. */
uint16_t nvemu_sanitize_check(const struct nvemu_ctrl *ctrl, const struct nvemu_req *req);
/* Sanitize Status log (81h) into buf (zeroed, >= 512 bytes). */
void nvemu_log_sanitize(const struct nvemu_subsys *s, void *buf, size_t *size);
/* admin-fw.c */
void nvemu_execute_fw_download(struct nvemu_req *req);
void nvemu_execute_fw_commit(struct nvemu_req *req);
void nvemu_fw_init(struct nvemu_ctrl *ctrl, const char *fr);
void nvemu_fw_free(struct nvemu_ctrl *ctrl);
/* Controller Level Reset: activate the image committed for the next reset. */
void nvemu_fw_reset(struct nvemu_ctrl *ctrl);

/* io-cmd.c */
void nvemu_execute_read(struct nvemu_req *req);
void nvemu_execute_write(struct nvemu_req *req);
void nvemu_execute_flush(struct nvemu_req *req);
void nvemu_execute_write_zeroes(struct nvemu_req *req);
void nvemu_execute_compare(struct nvemu_req *req);
void nvemu_execute_dsm(struct nvemu_req *req);
void nvemu_execute_verify(struct nvemu_req *req);
void nvemu_execute_copy(struct nvemu_req *req);
/* Copy limits, reported by Identify Namespace (MSRC is 0's based). */
#define NVEMU_COPY_MSRC	 127
#define NVEMU_COPY_MSSRL 65535
#define NVEMU_COPY_MCL	 65535
/* Data length of an I/O command, -1 if malformed. */
int64_t nvemu_io_expected_len(struct nvemu_ctrl *ctrl, const struct nvemu_sqe *cmd);
/* Map a backend errno to an NVMe status for the operation. */
uint16_t nvemu_bio_errno_to_status(enum nvemu_bio_op op, int err);

/* bdev.c: validate the name and block size, fill the common fields (blk_size 0: 512). */
int nvemu_bdev_init(struct nvemu_bdev *bdev, const struct nvemu_bdev_ops *ops, const char *name,
		    uint64_t size, uint32_t blk_size, struct nvemu_error *err);

#endif
