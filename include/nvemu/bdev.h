/* SPDX-License-Identifier: MIT */
/*
 * Block device backends ("bdevs", named as in SPDK and SNAP). A namespace
 * stores its data in one. Backends are byte-addressed so that a Format NVM
 * that changes the LBA size does not touch the backend.
 */
#ifndef NVEMU_BDEV_H
#define NVEMU_BDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <nvemu/error.h>

struct nvemu_bdev;

enum nvemu_bio_op {
	NVEMU_BIO_READ,
	NVEMU_BIO_WRITE,
	NVEMU_BIO_FLUSH,
	NVEMU_BIO_WRITE_ZEROES,
	NVEMU_BIO_DEALLOCATE, /* deallocated bytes read back as zeroes */
};

struct nvemu_bio {
	struct nvemu_bdev *bdev;
	enum nvemu_bio_op op;
	uint64_t offset; /* bytes */
	uint64_t len;	 /* bytes; 0 for FLUSH */
	void *buf;	 /* READ/WRITE only */
	bool fua;	 /* WRITE: durable before completion */
	/* Called exactly once, possibly from inside submit(); err is 0 or -errno. */
	void (*end_io)(struct nvemu_bio *bio, int err);
	void *private;
	/*
	 * Set by a backend that knows the exact NVMe status of a failure (the
	 * error backend) before end_io with a negative err; 0 lets the engine
	 * map err (nvemu_bio_errno_to_status()). Cleared by nvemu_bdev_submit().
	 */
	uint16_t status;
	/* With status: the first byte that failed, for the Error Information log's LBA. */
	uint64_t fail_offset;
};

struct nvemu_bdev_ops {
	const char *type; /* "null", "ram", "file" */
	/*
	 * Start the I/O. Returns 0 when end_io has been or will be called, or a
	 * negative errno (and end_io is not called) when it could not start.
	 */
	int (*submit)(struct nvemu_bdev *bdev, struct nvemu_bio *bio);
	/* Reap completed asynchronous I/O and start what is queued; returns how many completed. */
	int (*poll)(struct nvemu_bdev *bdev);
	/* An fd that turns readable when poll() has work, or -1 if never. */
	int (*get_fd)(struct nvemu_bdev *bdev);
	/* Number of submitted bios whose end_io has not run yet. */
	unsigned (*inflight)(struct nvemu_bdev *bdev);
	int (*resize)(struct nvemu_bdev *bdev, uint64_t new_size);
	void (*destroy)(struct nvemu_bdev *bdev);
	/*
	 * Start what submit() queued while batch_submit is on: one system call
	 * for everything an event-loop iteration produced. Returns how many
	 * operations it started, or -errno when they stay queued for the next
	 * call. NULL: the backend starts every bio inside submit().
	 */
	int (*flush_submit)(struct nvemu_bdev *bdev);
	/*
	 * Optional: if the backend holds bio (submitted, end_io not run) and can
	 * give it up, call end_io(bio, -ECANCELED) and return 0; else -ENOENT.
	 * Lets controller reset, Abort and teardown end I/O a backend would
	 * otherwise hold for ever (the error backend's "pending").
	 */
	int (*cancel)(struct nvemu_bdev *bdev, struct nvemu_bio *bio);
};

struct nvemu_bdev {
	const struct nvemu_bdev_ops *ops;
	char name[64];
	uint64_t size;	   /* bytes */
	uint32_t blk_size; /* smallest I/O unit; namespaces use LBAs >= this */
	bool read_only;
	unsigned users; /* namespaces using it; a used bdev can't be deleted */
	void *priv;
	/* Set by nvemu_bdev_set_batching(): submit() may queue until flush_submit. */
	bool batch_submit;
};

struct nvemu_bdev_file_opts {
	const char *path;
	uint32_t blk_size; /* 0: 512 */
	bool read_only;
	bool direct;	/* O_DIRECT */
	uint64_t size;	/* 0: the file's size; else a regular file is grown */
	unsigned depth; /* io_uring entries; 0: 128 */
};

int nvemu_bdev_null_create(const char *name, uint64_t size, uint32_t blk_size,
			   struct nvemu_bdev **out, struct nvemu_error *err);
/* A RAM bdev is sparse, but its chunk directory is not: capacity is capped. */
#define NVEMU_BDEV_RAM_MAX_BYTES (1ull << 46) /* 64 TiB */
int nvemu_bdev_ram_create(const char *name, uint64_t size, uint32_t blk_size,
			  struct nvemu_bdev **out, struct nvemu_error *err);
int nvemu_bdev_file_create(const char *name, const struct nvemu_bdev_file_opts *opts,
			   struct nvemu_bdev **out, struct nvemu_error *err);

/* What the file backend did, for benchmarks and tests. */
struct nvemu_bdev_file_stats {
	uint64_t submit_calls;	   /* io_uring_enter calls made to submit */
	uint64_t sqes;		   /* operations they submitted */
	uint64_t bounces;	   /* O_DIRECT transfers copied through an aligned buffer */
	uint32_t dio_mem_align;	   /* O_DIRECT: buffer address alignment; 0 buffered */
	uint32_t dio_offset_align; /* O_DIRECT: file offset and length alignment */
	bool fixed_file;	   /* the fd is registered with the ring */
};
/* -EINVAL if bdev is not a file bdev. */
int nvemu_bdev_file_get_stats(struct nvemu_bdev *bdev, struct nvemu_bdev_file_stats *st);
/* Refuses (-EBUSY) while a namespace uses it. */
int nvemu_bdev_destroy(struct nvemu_bdev *bdev, struct nvemu_error *err);

int nvemu_bdev_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio);
int nvemu_bdev_poll(struct nvemu_bdev *bdev);
int nvemu_bdev_get_fd(struct nvemu_bdev *bdev);
unsigned nvemu_bdev_inflight(struct nvemu_bdev *bdev);
int nvemu_bdev_resize(struct nvemu_bdev *bdev, uint64_t new_size);
/*
 * Batched submission, for an owner with an event loop: with it on, submit()
 * may only queue a bio, and the owner must call nvemu_bdev_flush_submit()
 * before it sleeps (the end of every loop iteration). nvemu_bdev_poll() also
 * starts what is queued, so code that waits by polling needs nothing more.
 * Turning it off starts whatever is queued. -EOPNOTSUPP when the backend has
 * no flush_submit (it starts every bio at once anyway).
 */
int nvemu_bdev_set_batching(struct nvemu_bdev *bdev, bool on);
/* Start what is queued; how many operations started, or -errno (still queued). */
int nvemu_bdev_flush_submit(struct nvemu_bdev *bdev);
/* 0 if bio was held by bdev (or a bdev under it) and end_io ran with -ECANCELED. */
int nvemu_bdev_cancel(struct nvemu_bdev *bdev, struct nvemu_bio *bio);
/* Bytes of memory the RAM backend holds (0 for other types). */
uint64_t nvemu_bdev_ram_resident(struct nvemu_bdev *bdev);

/*
 * The delay backend: a bdev over a base bdev whose completions are held
 * until a fixed latency after submission has passed (SPDK's delay vbdev).
 * It holds the base (users) until destroyed; poll() also polls the base.
 */
#define NVEMU_BDEV_DELAY_MAX_US 10000000ull /* 10 s */

struct nvemu_bdev_delay_opts {
	uint64_t read_latency_us;  /* the average (SPDK's avg_read_latency) */
	uint64_t write_latency_us; /* writes, flushes, write zeroes, deallocate */
	/* The tail: 1 in 100 I/Os takes this long instead (SPDK's p99_*); 0: no tail. */
	uint64_t p99_read_latency_us;
	uint64_t p99_write_latency_us;
};

int nvemu_bdev_delay_create(const char *name, struct nvemu_bdev *base,
			    const struct nvemu_bdev_delay_opts *opts, struct nvemu_bdev **out,
			    struct nvemu_error *err);
/* A delay bdev's base and latencies; -EINVAL if bdev is not a delay bdev. */
int nvemu_bdev_delay_get(struct nvemu_bdev *bdev, struct nvemu_bdev **base,
			 struct nvemu_bdev_delay_opts *opts);
/* New latencies for the I/O submitted from now on (held I/O keeps its due time). */
int nvemu_bdev_delay_set_latency(struct nvemu_bdev *bdev, const struct nvemu_bdev_delay_opts *opts,
				 struct nvemu_error *err);
/* Bios a delay bdev has completed since it was created (0 for other bdevs). */
uint64_t nvemu_bdev_delay_completed(struct nvemu_bdev *bdev);

/*
 * The error backend (SPDK's error vbdev, named "EE_<base>" by the daemon):
 * passes bios to a base bdev and injects faults by rules, changed at run
 * time. The first rule that matches a bio (I/O type, byte range overlap,
 * queue depth, then its probability) and has injections left acts on it.
 */
enum nvemu_bdev_error_type {
	NVEMU_BDEV_ERROR_FAILURE,      /* end with an NVMe status */
	NVEMU_BDEV_ERROR_PENDING,      /* never end: held until cleared or cancelled */
	NVEMU_BDEV_ERROR_CORRUPT_DATA, /* succeed with one byte XORed (read data, written data) */
	NVEMU_BDEV_ERROR_NOMEM,	       /* refuse to start: -ENOMEM from submit */
};

#define NVEMU_BDEV_ERROR_MAX_RULES 16
#define NVEMU_BDEV_ERROR_FOREVER   UINT32_MAX /* num: no limit */
#define NVEMU_BDEV_ERROR_PPM	   1000000u   /* probability: always */

struct nvemu_bdev_error_rule {
	uint32_t io_mask; /* bits 1u << enum nvemu_bio_op */
	enum nvemu_bdev_error_type type;
	uint32_t num;	      /* injections left; 0 in inject(): remove rules on these types */
	uint32_t queue_depth; /* act only with at least this many bios in flight (0, 1: always) */
	uint64_t offset, len; /* bytes the I/O must overlap; len 0: to the end */
	uint32_t probability_ppm; /* chance per matching bio in 1/1000000; 0: always */
	/* FAILURE: 0 means Unrecovered Read Error for reads, Write Fault for writes, else Internal Error. */
	uint16_t status;
	uint64_t corrupt_offset; /* CORRUPT_DATA: byte in the I/O to XOR */
	uint8_t corrupt_value;	 /* 1..255 */
	uint64_t injected;	 /* out: how many bios it acted on */
};

int nvemu_bdev_error_create(const char *name, struct nvemu_bdev *base, struct nvemu_bdev **out,
			    struct nvemu_error *err);
/* Add a rule (or, with num 0, remove the rules on any of rule->io_mask's types). */
int nvemu_bdev_error_inject(struct nvemu_bdev *bdev, const struct nvemu_bdev_error_rule *rule,
			    struct nvemu_error *err);
/* Remove every rule; held (pending) bios go on to the base. */
int nvemu_bdev_error_clear(struct nvemu_bdev *bdev);
/* The seed of the generator probabilities and injected data use (default: fixed). */
int nvemu_bdev_error_set_seed(struct nvemu_bdev *bdev, uint64_t seed);
/*
 * Base, rules (up to *nr on entry; *nr set to the count) and bios held
 * pending; -EINVAL if bdev is not an error bdev. Any out pointer may be NULL.
 */
int nvemu_bdev_error_get(struct nvemu_bdev *bdev, struct nvemu_bdev **base,
			 struct nvemu_bdev_error_rule *rules, unsigned *nr, unsigned *pending);

/*
 * The RBD backend: a Ceph RBD image through librbd's asynchronous API
 * (docs/rbd.md). Creation connects to the cluster and opens the image, so
 * it blocks for up to the mount timeout: call it off the event loop.
 * Completions arrive on librbd's threads and are delivered by poll() on
 * the caller's thread. Builds without librbd return -ENOTSUP.
 */
struct nvemu_bdev_rbd_opts {
	const char *pool_name;	  /* required */
	const char *rbd_name;	  /* required */
	const char *user_id;	  /* cephx user without "client."; NULL: "admin" */
	const char *cluster_name; /* Ceph cluster name; NULL: "ceph" */
	const char *config_file;  /* a ceph.conf; NULL: Ceph's default search */
	const char *key_file;	  /* a keyring; NULL: the configuration's */
	const char *const *config; /* key, value, key, value, ..., NULL: rados_conf_set */
	uint32_t blk_size;	   /* 0: 512 */
	/*
	 * Take RBD's exclusive lock by hand and keep it: writes are accepted
	 * only while this client holds it (others fail with -ENOLCK); a
	 * standby retries every second and gets it once the holder is gone.
	 */
	bool exclusive;
};

/* Events handed to the callback from poll(). */
#define NVEMU_BDEV_RBD_RESIZED 0x1 /* the image's size changed; bdev->size follows */
#define NVEMU_BDEV_RBD_LOCK    0x2 /* exclusive mode: the lock was taken or lost */
typedef void (*nvemu_bdev_rbd_event_fn)(struct nvemu_bdev *bdev, unsigned events, void *arg);

struct nvemu_bdev_rbd_info {
	uint64_t image_size; /* bytes, as last read from the cluster */
	bool exclusive;
	bool lock_owner;
	int lock_err; /* the last failed lock attempt (-errno), 0 */
	unsigned inflight;
	uint64_t completed, errors;
};

int nvemu_bdev_rbd_create(const char *name, const struct nvemu_bdev_rbd_opts *opts,
			  struct nvemu_bdev **out, struct nvemu_error *err);
/* -EINVAL if bdev is not an RBD bdev. */
int nvemu_bdev_rbd_set_event_cb(struct nvemu_bdev *bdev, nvemu_bdev_rbd_event_fn fn, void *arg);
int nvemu_bdev_rbd_get_info(struct nvemu_bdev *bdev, struct nvemu_bdev_rbd_info *info);
/*
 * Destroying an RBD bdev closes the image on a thread of its own (closing
 * talks to the cluster). Wait for all of them, e.g. before exit:
 * 0, or -ETIMEDOUT if some are still closing after timeout_ms.
 */
int nvemu_bdev_rbd_wait_closed(unsigned timeout_ms);

#endif
