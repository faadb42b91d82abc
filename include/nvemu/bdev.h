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
/* Bytes of memory the RAM backend holds (0 for other types). */
uint64_t nvemu_bdev_ram_resident(struct nvemu_bdev *bdev);

/*
 * The delay backend: a bdev over a base bdev whose completions are held
 * until a fixed latency after submission has passed (SPDK's delay vbdev).
 * It holds the base (users) until destroyed; poll() also polls the base.
 */
#define NVEMU_BDEV_DELAY_MAX_US 10000000ull /* 10 s */

struct nvemu_bdev_delay_opts {
	uint64_t read_latency_us;
	uint64_t write_latency_us; /* writes, flushes, write zeroes, deallocate */
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

#endif
