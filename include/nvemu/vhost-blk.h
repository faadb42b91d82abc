/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk exports over vhost-user-blk: a VMM (QEMU -device
 * vhost-user-blk-pci, cloud-hypervisor, crosvm) connects to a unix socket
 * and gets one namespace of a subsystem, or a window of its LBAs (a GPT
 * partition), as a virtio block device.
 *
 * An export is a host of the namespace: it owns an engine controller (on a
 * PCIe port of its own in the subsystem) bound to the "vhost-blk"
 * transport, and every virtio request becomes an NVMe command submitted
 * through nvemu_ctrl_submit() (Read, Write, Flush, Dataset Management
 * Deallocate, Write Zeroes), so SMART data units and queue statistics count
 * it and a namespace detach reaches the guest as VIRTIO_BLK_S_IOERR, never
 * as stale data. Data moves between guest memory and the backend directly
 * when a request's buffers are contiguous in the mapped guest memory.
 *
 * Split and packed virtqueues, indirect descriptors, event index,
 * multiqueue (one ring per I/O queue of the controller), inflight shared
 * memory (split rings). See docs/virtio-blk.md.
 *
 * The export runs on its caller's event loop (struct nvemu_vblk_loop_ops)
 * and never blocks it. One client at a time; a client that disconnects
 * may reconnect and, through the inflight shared memory, resubmit what was
 * in flight. Every client may be hostile: a malformed message, a memory
 * table beyond ds_max or outside the trusted memory file, a descriptor
 * outside the registered regions, a descriptor loop or a chain longer than
 * the queue disconnects it with one log line; a write to a read-only export
 * fails with VIRTIO_BLK_S_IOERR. Other exports are never affected. An
 * accept() out of fds or memory rests the listener for 100 ms (a timerfd
 * on the same loop) rather than spinning.
 * Not thread-safe: one thread drives it.
 */
#ifndef NVEMU_VHOST_BLK_H
#define NVEMU_VHOST_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <nvemu/error.h>
#include <nvemu/model.h>

struct nvemu_vblk;

typedef void (*nvemu_vblk_fd_cb)(int fd, uint32_t revents, void *arg);

/* The same shape as struct nvemu_tcp_loop_ops, so one set of adapters serves both. */
struct nvemu_vblk_loop_ops {
	/* Watch fd for events (EPOLLIN/EPOLLOUT); returns a handle, NULL on error. */
	void *(*add_fd)(void *loop, int fd, uint32_t events, nvemu_vblk_fd_cb cb, void *arg);
	int (*mod_fd)(void *loop, void *handle, uint32_t events);
	/* Must be safe from inside the handle's own callback. */
	void (*del_fd)(void *loop, void *handle);
};

enum {
	NVEMU_VBLK_LOG_ERR = 0,
	NVEMU_VBLK_LOG_WARN = 1,
	NVEMU_VBLK_LOG_INFO = 2,
	NVEMU_VBLK_LOG_DEBUG = 3,
};

/* What an export serves: a namespace, or nr_lbas of its LBAs from first_lba. */
struct nvemu_vblk_target {
	struct nvemu_subsys *subsys;
	uint32_t nsid;
	uint64_t first_lba; /* in the namespace's LBAs */
	uint64_t nr_lbas;   /* 0: the whole namespace (first_lba must be 0) */
};

#define NVEMU_VBLK_SERIAL_MAX	  20 /* VIRTIO_BLK_ID_BYTES */
#define NVEMU_VBLK_MAX_QUEUES	  64
#define NVEMU_VBLK_MAX_QUEUE_SIZE 1024
#define NVEMU_VBLK_MAX_DS	  32 /* memory regions a client may register */

struct nvemu_vblk_params {
	const struct nvemu_vblk_loop_ops *ops; /* required */
	void *loop;
	/* NULL: messages go to stderr (warnings and errors only). */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;

	const char *socket_path;	 /* required; mode 0600, a live socket is never replaced */
	struct nvemu_vblk_target target; /* subsys NULL: created detached */
	bool readonly;			 /* VIRTIO_BLK_F_RO; writes, discards fail */
	uint16_t num_queues;		 /* 0: 1; at most NVEMU_VBLK_MAX_QUEUES */
	uint16_t queue_size;		 /* largest ring accepted, power of 2; 0: 256 */
	uint32_t ds_max;		 /* memory regions; 0: 8; at most NVEMU_VBLK_MAX_DS */
	/*
	 * Trusted memory: when set, only memory regions whose fd is this file
	 * (same st_dev and st_ino, checked at each SET_MEM_TABLE) are accepted.
	 */
	const char *register_ds;
	/* GET_ID answer (at most 20 bytes, not NUL-terminated on the wire); NULL: "". */
	const char *serial;
};

void nvemu_vblk_params_init(struct nvemu_vblk_params *p);

/*
 * Listen on p->socket_path and, when p->target.subsys is set, attach the
 * target (see nvemu_vblk_attach). Errors name the parameter.
 */
int nvemu_vblk_create(const struct nvemu_vblk_params *p, struct nvemu_vblk **out,
		      struct nvemu_error *err);
/*
 * Close the socket and the client at once (the path is unlinked), then
 * detach: requests in flight complete first (their guest memory stays
 * mapped until then), and the export is freed after the last one. done(arg)
 * runs then, possibly before this returns; done may be NULL. vb must not
 * be used after this call.
 */
void nvemu_vblk_destroy(struct nvemu_vblk *vb, void (*done)(void *arg), void *arg);

/*
 * Stop taking requests from the rings (the client keeps running; kicks
 * are remembered) / take them again. Requests already started complete.
 */
void nvemu_vblk_suspend(struct nvemu_vblk *vb);
void nvemu_vblk_resume(struct nvemu_vblk *vb);

/*
 * Attach a target to a detached export: checks the window against the
 * namespace, adds a PCIe port and a controller to t->subsys and attaches
 * the namespace to it. -EBUSY while attached or detaching.
 */
int nvemu_vblk_attach(struct nvemu_vblk *vb, const struct nvemu_vblk_target *t,
		      struct nvemu_error *err);
/*
 * Detach the target: new requests fail with VIRTIO_BLK_S_IOERR at once;
 * requests in flight complete; then the export's controller and port are
 * removed from the subsystem and done(arg) runs (possibly before this
 * returns). Only after done may the namespace or subsystem be destroyed.
 * -ENOENT when not attached, -EBUSY when a detach is already running.
 */
int nvemu_vblk_detach(struct nvemu_vblk *vb, void (*done)(void *arg), void *arg);

/* The export's controller (NULL when detached): to tell it from other hosts' ones. */
struct nvemu_ctrl *nvemu_vblk_ctrl(const struct nvemu_vblk *vb);

struct nvemu_vblk_stats {
	uint64_t connects, disconnects;
	uint64_t protocol_errors; /* clients dropped for a bad message, ring or memory table */
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t read_bytes, write_bytes;
	uint64_t ioerr;		/* requests answered VIRTIO_BLK_S_IOERR */
	uint64_t unsupported;	/* requests answered VIRTIO_BLK_S_UNSUPP */
	uint64_t resubmitted;	/* inflight requests resubmitted after a reconnect */
	uint64_t accept_errors; /* accepts that failed for want of fds or memory */
};

struct nvemu_vblk_info {
	char socket_path[108];
	char serial[NVEMU_VBLK_SERIAL_MAX + 1];
	struct nvemu_vblk_target target; /* subsys NULL when detached */
	bool attached;
	bool detaching;
	bool connected;
	bool suspended;
	bool readonly;
	uint16_t cntlid;	/* the export's controller, 0 when detached */
	uint32_t block_size;	/* the namespace's LBA size, 0 when detached */
	uint64_t capacity;	/* 512-byte sectors the client sees */
	uint16_t num_queues;	/* offered */
	uint16_t queue_size;	/* largest ring accepted */
	uint16_t active_queues; /* rings the client started */
	uint32_t ds_max;
	uint32_t nr_regions;   /* memory regions the client registered */
	char register_ds[256]; /* "" when any memory is accepted */
	unsigned inflight;     /* requests started and not completed */
	struct nvemu_vblk_stats stats;
};

void nvemu_vblk_get_info(const struct nvemu_vblk *vb, struct nvemu_vblk_info *out);

#endif
