/* SPDX-License-Identifier: MIT */
/*
 * vhost-user-blk server internals, private to this directory (and its unit
 * test and fuzzers). vhost-user.c: socket, messages, negotiation;
 * guest-mem.c: the memory table; vring.c: split rings and descriptor
 * chains; virtio-blk.c: requests, config space, the engine; export.c: the
 * public API, the export's controller.
 */
#ifndef NVEMU_VBLK_INTERNAL_H
#define NVEMU_VBLK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <nvemu/request.h>
#include <nvemu/vhost-blk.h>

#include "util/accept-backoff.h"

/* ---- the vhost-user protocol (not in the system headers) */

enum vhost_user_req {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
	VHOST_USER_RESET_DEVICE = 34,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
};

#define VHOST_USER_VERSION	0x1u
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_REPLY	0x4u
#define VHOST_USER_NEED_REPLY	0x8u

#define VHOST_USER_F_PROTOCOL_FEATURES 30

#define VHOST_USER_PROTOCOL_F_MQ		  0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK		  3
#define VHOST_USER_PROTOCOL_F_CONFIG		  9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD	  12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE	  13
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15

#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD	  (1u << 8)

#define VHOST_USER_HDR_SIZE	    12u
#define VHOST_USER_PAYLOAD_MAX	    4096u
#define VHOST_USER_MAX_FDS	    8u /* file descriptors one message may carry */
#define VHOST_USER_MEM_BASELINE	    8u /* regions a SET_MEM_TABLE may hold */
#define VHOST_USER_CONFIG_SPACE_MAX 256u

struct vhost_user_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

struct vhost_user_mem {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_region regions[VHOST_USER_MEM_BASELINE];
};

struct vhost_user_mem_one {
	uint64_t padding;
	struct vhost_user_region region;
};

struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VHOST_USER_CONFIG_SPACE_MAX];
};

struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

/* On the wire the payload follows the 12-byte header; here it is aligned. */
struct vhost_user_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	uint32_t unused;
	union {
		uint64_t u64;
		struct vhost_user_vring_state state;
		struct vhost_user_vring_addr addr;
		struct vhost_user_mem mem;
		struct vhost_user_mem_one mem_one;
		struct vhost_user_config config;
		struct vhost_user_inflight inflight;
		uint8_t raw[VHOST_USER_PAYLOAD_MAX];
	} p;
};

/* A message from wire bytes (header and payload); -EINVAL when sizes disagree. */
int vblk_msg_parse(const uint8_t *buf, size_t len, struct vhost_user_msg *msg);

/* The inflight shared memory layout of a split ring (QEMU's libvhost-user). */
struct vblk_inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct vblk_inflight_queue {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vblk_inflight_desc desc[];
};

/* ---- guest memory (guest-mem.c) */

/* One mmap of a client's fd, shared by the tables that hold the region. */
struct vblk_map {
	unsigned refs;
	void *addr;
	size_t len;
};

struct vblk_region {
	uint64_t gpa, size, uva;
	uint8_t *host; /* the region's first byte in this process */
	struct vblk_map *map;
};

/*
 * A memory table. Requests in flight hold a reference: the backend may
 * still be writing into guest memory after the client replaced the table
 * or disconnected, so nothing is unmapped before the last one completes.
 */
struct vblk_mem {
	unsigned refs;
	unsigned nr;
	struct vblk_region r[NVEMU_VBLK_MAX_DS];
};

struct vblk_mem *vblk_mem_new(void);
/* A new table with the same regions (ADD/REM_MEM_REG change a copy). */
struct vblk_mem *vblk_mem_clone(const struct vblk_mem *m);
void vblk_mem_get(struct vblk_mem *m);
void vblk_mem_put(struct vblk_mem *m);
/*
 * Map a region's fd (always consumed); checks overlap, the trusted file
 * and the size. Returns 0 or -errno with why filled.
 */
int vblk_mem_add(struct vblk_mem *m, unsigned max, const struct vhost_user_region *r, int fd,
		 const char *trusted, char *why, size_t why_len);
/* Drop the region at gpa (its mapping goes with the last table holding it). */
int vblk_mem_remove(struct vblk_mem *m, uint64_t gpa, uint64_t size);
/* Guest physical [gpa, gpa+len) inside one region: its address here, else NULL. */
void *vblk_gpa(const struct vblk_mem *m, uint64_t gpa, uint64_t len);
/* The same for the VMM's own virtual addresses (vring addresses). */
void *vblk_uva(const struct vblk_mem *m, uint64_t uva, uint64_t len);

/* ---- split rings and descriptor chains (vring.c) */

#define VBLK_MAX_SEGS NVEMU_VBLK_MAX_QUEUE_SIZE
/* Bounce buffers an export holds before its rings wait for completions. */
#define VBLK_BOUNCE_MAX (32u << 20)

struct vblk_seg {
	uint8_t *addr;
	uint32_t len;
	bool write; /* device-writable */
};

/* One descriptor chain, translated. */
struct vblk_chain {
	uint16_t head;	   /* split: the head index; packed: the buffer id */
	uint16_t ndesc;	   /* packed: ring slots the chain took */
	unsigned nr;	   /* segments */
	unsigned nr_out;   /* device-readable segments (all before the writable ones) */
	uint64_t in_bytes; /* device-writable bytes */
	struct vblk_seg seg[VBLK_MAX_SEGS];
};

struct vblk_vring {
	uint16_t num;
	bool event_idx;
	bool packed; /* VIRTIO_F_RING_PACKED */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	/* packed: the descriptor ring and the two event suppression structures */
	struct vring_packed_desc *pdesc;
	struct vring_packed_desc_event *driver_ev, *device_ev;
	bool avail_wrap, used_wrap;
	uint16_t last_avail;
	uint16_t used_idx;  /* split: our copy of used->idx; packed: the next used slot */
	uint16_t signalled; /* used idx at the last call */
	bool signalled_valid;
	struct vblk_inflight_queue *inflight; /* NULL without inflight shared memory */
	uint64_t counter;		      /* inflight submission order */
};

enum vblk_pop {
	VBLK_POP_EMPTY = 0,
	VBLK_POP_OK = 1,
	VBLK_POP_ERR = -1, /* broken ring: why says how */
};

/* Translate and check the ring addresses against the memory table. */
int vblk_vring_map(struct vblk_vring *vr, const struct vblk_mem *m, uint64_t desc_uva,
		   uint64_t avail_uva, uint64_t used_uva, char *why, size_t why_len);
/* Entries the driver made available and we have not taken, or -1 if impossible. */
int vblk_vring_pending(const struct vblk_vring *vr);
/* Take the next chain (ch->head), walking and checking every descriptor. */
enum vblk_pop vblk_vring_pop(struct vblk_vring *vr, const struct vblk_mem *m, struct vblk_chain *ch,
			     char *why, size_t why_len);
/* Walk the chain at head (resubmission from inflight memory). */
enum vblk_pop vblk_vring_walk(struct vblk_vring *vr, const struct vblk_mem *m, uint16_t head,
			      struct vblk_chain *ch, char *why, size_t why_len);
/* Put head (ndesc slots, packed) on the used ring with len bytes written. */
void vblk_vring_push(struct vblk_vring *vr, uint16_t head, uint16_t ndesc, uint32_t len);
/* The ring position GET_VRING_BASE reports and SET_VRING_BASE sets. */
uint32_t vblk_vring_get_base(const struct vblk_vring *vr);
void vblk_vring_set_base(struct vblk_vring *vr, uint32_t base);
/*
 * Whether the driver wants a call for what was pushed since the last one
 * (event index, or the NO_INTERRUPT flag). Asked once per batch.
 */
bool vblk_vring_notify_needed(struct vblk_vring *vr);
/* With event index: publish where we are and say whether more arrived meanwhile. */
bool vblk_vring_enable_notify(struct vblk_vring *vr);
/* Inflight memory: check it at ring start; returns the heads to resubmit in order. */
int vblk_vring_inflight_start(struct vblk_vring *vr, uint16_t *heads, unsigned max);

/* ---- the export (export.c, vhost-user.c, virtio-blk.c) */

struct vblk_req;

struct vblk_queue {
	struct nvemu_vblk *vb;
	uint16_t idx;
	struct vblk_vring vr;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	bool enabled; /* SET_VRING_ENABLE, or started by a kick fd without protocol features */
	bool started; /* kick fd set, rings mapped */
	int kick_fd, call_fd, err_fd;
	void *kick_handle;
	unsigned inflight;  /* requests of this ring in the engine */
	bool base_pending;  /* GET_VRING_BASE waits for inflight to reach 0 */
	bool kicked;	    /* work may be pending (set while suspended or processing) */
	bool full;	    /* stopped taking requests: inflight reached the ring size */
	bool processing;    /* inside vblk_queue_process (completions may nest) */
	uint16_t *resubmit; /* inflight heads to resubmit before the ring */
	unsigned nr_resubmit, resubmit_pos;
};

struct vblk_conn {
	int fd;
	void *handle;
	bool reading; /* the socket is watched for input */
	uint8_t rx[VHOST_USER_HDR_SIZE + VHOST_USER_PAYLOAD_MAX];
	size_t rx_len;
	int rx_fds[VHOST_USER_MAX_FDS];
	unsigned nr_rx_fds;
	uint64_t features, protocol_features;
	bool features_set;
	struct vblk_mem *mem;
	void *inflight_map;
	size_t inflight_len;
	uint16_t inflight_nq, inflight_qsize; /* its layout: rings and entries per ring */
	struct vblk_queue q[NVEMU_VBLK_MAX_QUEUES];
	unsigned nr_q; /* rings the client touched (GET_QUEUE_NUM bounds it) */
};

struct vblk_req {
	struct nvemu_req nreq;
	struct nvemu_vblk *vb;
	struct vblk_queue *q; /* NULL once orphaned (client gone) */
	struct vblk_mem *mem; /* referenced until completion */
	LIST_ENTRY(vblk_req) link;
	uint16_t head;
	uint16_t ndesc;
	uint8_t type;
	uint8_t *status;       /* the status byte in guest memory */
	uint32_t written;      /* used length */
	void *bounce;	       /* data not contiguous in guest memory */
	struct vblk_seg *segs; /* where a bounced read goes */
	unsigned nr_segs;
	uint32_t data_len;
	struct nvme_dsm_range dsm;
};

struct nvemu_vblk {
	struct nvemu_vblk_params p;
	char path[108];
	char serial[NVEMU_VBLK_SERIAL_MAX + 1];
	char register_ds[256];
	int listen_fd;
	void *listen_handle;
	int timer_fd; /* the accept back-off */
	void *timer_handle;
	struct nvemu_accept_backoff backoff;
	struct vblk_conn *conn;

	struct nvemu_vblk_target t;
	struct nvemu_ctrl *ctrl;
	uint16_t port_id;
	uint32_t lba_size;
	bool attached, detaching;
	void (*detach_done)(void *arg);
	void *detach_arg;
	bool destroying;
	void (*destroy_done)(void *arg);
	void *destroy_arg;
	void (*chained_detach_done)(void *arg); /* a detach running when destroy came */
	void *chained_detach_arg;

	bool suspended;
	unsigned inflight;     /* all requests in the engine, orphans included */
	unsigned orphans;      /* of those, requests of a client that is gone */
	uint64_t bounce_bytes; /* bounce buffers of requests in flight */
	LIST_HEAD(, vblk_req) reqs;
	struct vblk_chain chain; /* scratch for the walker */
	struct nvemu_vblk_stats st;
};

void vblk_log(struct nvemu_vblk *vb, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* vhost-user.c */
struct vblk_conn *vblk_conn_new(struct nvemu_vblk *vb, int fd);
void vblk_conn_close(struct nvemu_vblk *vb);
/* Drop the client after a protocol violation, with one log line. */
void vblk_conn_fail(struct nvemu_vblk *vb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Handle one complete message; fds (an array of VHOST_USER_MAX_FDS, the
 * first nr_fds valid) are consumed. <0: the client was or must be dropped.
 */
int vblk_handle_msg(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds, unsigned nr_fds);
/* A ring's last request completed: answer a waiting GET_VRING_BASE. */
void vblk_queue_idle(struct nvemu_vblk *vb, struct vblk_queue *q);
/* Signal the ring's call fd. */
void vblk_queue_call(struct vblk_queue *q);

/* virtio-blk.c */
/* Take and start requests from the ring until it is empty or full. */
void vblk_queue_process(struct vblk_queue *q);
/* Orphan a ring's requests: they complete into nowhere (client gone or ring reset). */
void vblk_orphan_queue(struct nvemu_vblk *vb, struct vblk_queue *q);
/* The config space as the client reads it. */
void vblk_config(const struct nvemu_vblk *vb, struct virtio_blk_config *c);
uint64_t vblk_features(const struct nvemu_vblk *vb);
uint64_t vblk_capacity(const struct nvemu_vblk *vb);

/* export.c */
/* Poll the listener again (the client left), unless accept() is resting. */
void vblk_listen(struct nvemu_vblk *vb);
/* Process every started ring (resume, orphans gone). */
void vblk_kick_all(struct nvemu_vblk *vb);
/* Last request done: finish a detach or destroy waiting for it. */
void vblk_check_idle(struct nvemu_vblk *vb);

extern const struct nvemu_transport_ops vblk_transport_ops;

#endif
