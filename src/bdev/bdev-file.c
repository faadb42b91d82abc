/* SPDX-License-Identifier: MIT */
/*
 * The file backend: a regular file or a block device driven through
 * io_uring. Each bio becomes a small state machine (data, then an optional
 * fdatasync) whose steps are SQEs; bios that find the ring full wait in a
 * software queue until completions free slots. Completions are reaped by
 * poll(), which the owner calls when the eventfd from get_fd() is readable.
 *
 * With batch_submit on, SQEs collect in the ring and flush_submit() starts
 * them with one io_uring_enter at the end of the owner's loop iteration;
 * otherwise submit() enters the kernel at once. poll() starts whatever is
 * queued when it is done reaping, so a caller that only polls never waits
 * on an SQE nobody submitted. The fd is registered with the ring, so the
 * kernel does not look it up for every I/O. Under O_DIRECT a buffer goes to
 * the kernel as it is when it meets the file's DIO alignment (STATX_DIOALIGN,
 * or the device's logical block size); only a misaligned one is copied,
 * through a pooled aligned bounce buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "engine/nvemu-internal.h"

#define FILE_DEPTH_DEFAULT 128
#define FILE_DEPTH_MAX	   4096
#define DIO_ALIGN_FALLBACK 4096	      /* memory alignment when the file system does not say */
#define ZERO_BUF_MAX	   (1u << 20) /* zero-write fallback chunk */
#define BOUNCE_MIN_SHIFT   12	      /* bounce size classes: 4 KiB ... */
#define BOUNCE_CLASSES	   10	      /* ... 2 MiB; larger ones are not pooled */
#define BOUNCE_CACHE_BYTES (8u << 20) /* idle bounce memory a bdev keeps */

enum file_step {
	STEP_RW,	 /* read or write the data */
	STEP_FALLOC,	 /* punch a hole / zero a range */
	STEP_ZERO_WRITE, /* write zeroes when fallocate can't */
	STEP_SYNC,	 /* fdatasync */
};

struct file_io {
	STAILQ_ENTRY(file_io) link; /* file_bdev.waiting, or .free_ios */
	struct nvemu_bio *bio;
	enum file_step step;
	void *bounce;	  /* aligned copy for O_DIRECT */
	int bounce_class; /* -1: not pooled */
	uint64_t done;	  /* bytes of the data step completed */
	bool sync_after;
};

struct file_bdev {
	struct nvemu_bdev bdev;
	char *path;
	int fd, efd;
	bool direct, blkdev;
	bool fixed;		      /* fd registered: SQEs name index 0 */
	bool no_punch, no_zero_range; /* learned: fallocate mode unsupported */
	uint32_t dio_mem_align, dio_off_align;
	uint64_t dev_size; /* block device capacity */
	struct io_uring ring;
	bool ring_ok;
	unsigned depth, in_ring, inflight;
	STAILQ_HEAD(, file_io) waiting; /* for a ring slot */
	/* Idle state kept for the next bios: no allocation per I/O once warm. */
	STAILQ_HEAD(, file_io) free_ios;
	unsigned nr_free_ios;
	void *bounce_free[BOUNCE_CLASSES]; /* each free buffer holds the next pointer */
	uint64_t bounce_cached;
	void *zero_buf; /* ZERO_BUF_MAX zeroes, shared by zero-write fallbacks */
	struct nvemu_bdev_file_stats st;
	/* Destroyed from a completion inside poll(): poll() frees it on its way out. */
	bool in_poll, destroyed;
};

static struct file_bdev *to_file(struct nvemu_bdev *bdev)
{
	return (struct file_bdev *)bdev;
}

/* ---- pooled state */

static struct file_io *io_get(struct file_bdev *f)
{
	struct file_io *io = STAILQ_FIRST(&f->free_ios);

	if (!io)
		return calloc(1, sizeof(*io));
	STAILQ_REMOVE_HEAD(&f->free_ios, link);
	f->nr_free_ios--;
	memset(io, 0, sizeof(*io));
	return io;
}

static void io_put(struct file_bdev *f, struct file_io *io)
{
	/* Keep as many as the ring holds; more were a burst of queued bios. */
	if (f->nr_free_ios >= f->depth) {
		free(io);
		return;
	}
	STAILQ_INSERT_HEAD(&f->free_ios, io, link);
	f->nr_free_ios++;
}

static size_t bounce_align(const struct file_bdev *f)
{
	return f->dio_mem_align > 4096 ? f->dio_mem_align : 4096;
}

static int bounce_get(struct file_bdev *f, struct file_io *io, uint64_t len)
{
	int c = 0;

	while (c < BOUNCE_CLASSES && (1ull << (BOUNCE_MIN_SHIFT + c)) < len)
		c++;
	if (c == BOUNCE_CLASSES) {
		io->bounce_class = -1;
		return posix_memalign(&io->bounce, bounce_align(f), len) ? -ENOMEM : 0;
	}
	io->bounce_class = c;
	if (f->bounce_free[c]) {
		io->bounce = f->bounce_free[c];
		memcpy(&f->bounce_free[c], io->bounce, sizeof(void *));
		f->bounce_cached -= 1ull << (BOUNCE_MIN_SHIFT + c);
		return 0;
	}
	return posix_memalign(&io->bounce, bounce_align(f), 1ull << (BOUNCE_MIN_SHIFT + c))
		       ? -ENOMEM
		       : 0;
}

static void bounce_put(struct file_bdev *f, struct file_io *io)
{
	int c = io->bounce_class;

	if (!io->bounce)
		return;
	if (c < 0 || f->bounce_cached + (1ull << (BOUNCE_MIN_SHIFT + c)) > BOUNCE_CACHE_BYTES) {
		free(io->bounce);
	} else {
		memcpy(io->bounce, &f->bounce_free[c], sizeof(void *));
		f->bounce_free[c] = io->bounce;
		f->bounce_cached += 1ull << (BOUNCE_MIN_SHIFT + c);
	}
	io->bounce = NULL;
}

static void bounce_drop(struct file_bdev *f)
{
	for (int c = 0; c < BOUNCE_CLASSES; c++) {
		while (f->bounce_free[c]) {
			void *p = f->bounce_free[c];

			memcpy(&f->bounce_free[c], p, sizeof(void *));
			free(p);
		}
	}
	f->bounce_cached = 0;
}

/*
 * O_DIRECT wants the buffer address aligned to dio_mem_align and the file
 * offset and length to dio_off_align. A copy fixes only the address; the
 * block size checked at create time keeps offsets and lengths aligned.
 */
enum dio_path { DIO_AS_IS, DIO_BOUNCE, DIO_UNALIGNED };

static enum dio_path dio_path(const struct file_bdev *f, const struct nvemu_bio *bio)
{
	if (!f->direct)
		return DIO_AS_IS;
	if ((bio->offset | bio->len) & (f->dio_off_align - 1))
		return DIO_UNALIGNED;
	if ((uintptr_t)bio->buf & (f->dio_mem_align - 1))
		return DIO_BOUNCE;
	return DIO_AS_IS;
}

/* ---- the ring */

/* One io_uring_enter for every SQE queued so far; they stay queued on failure. */
static int ring_submit(struct file_bdev *f)
{
	int rc;

	if (!io_uring_sq_ready(&f->ring))
		return 0;
	rc = io_uring_submit(&f->ring);
	f->st.submit_calls++;
	if (rc > 0)
		f->st.sqes += (unsigned)rc;
	return rc;
}

static void *io_buf(struct file_io *io)
{
	return io->bounce ? io->bounce : io->bio->buf;
}

static void sqe_fd(struct file_bdev *f, struct io_uring_sqe *sqe)
{
	if (f->fixed) {
		sqe->fd = 0;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

/* Put the current step of io into the ring, or queue it if the ring is full. */
static void io_push(struct file_bdev *f, struct file_io *io, bool front)
{
	struct nvemu_bio *bio = io->bio;
	struct io_uring_sqe *sqe = NULL;
	uint64_t n;
	int mode;

	if (f->in_ring < f->depth)
		sqe = io_uring_get_sqe(&f->ring);
	if (!sqe) {
		if (front)
			STAILQ_INSERT_HEAD(&f->waiting, io, link);
		else
			STAILQ_INSERT_TAIL(&f->waiting, io, link);
		return;
	}
	switch (io->step) {
	case STEP_RW:
		n = bio->len - io->done;
		if (bio->op == NVEMU_BIO_READ) {
			io_uring_prep_read(sqe, f->fd, (uint8_t *)io_buf(io) + io->done, n,
					   bio->offset + io->done);
		} else {
			io_uring_prep_write(sqe, f->fd, (uint8_t *)io_buf(io) + io->done, n,
					    bio->offset + io->done);
			if (bio->fua)
				sqe->rw_flags = RWF_DSYNC;
		}
		break;
	case STEP_FALLOC:
		mode = FALLOC_FL_KEEP_SIZE |
		       (bio->op == NVEMU_BIO_DEALLOCATE ? FALLOC_FL_PUNCH_HOLE
							: FALLOC_FL_ZERO_RANGE);
		io_uring_prep_fallocate(sqe, f->fd, mode, bio->offset, bio->len);
		break;
	case STEP_ZERO_WRITE:
		n = bio->len - io->done;
		if (n > ZERO_BUF_MAX)
			n = ZERO_BUF_MAX;
		io_uring_prep_write(sqe, f->fd, f->zero_buf, n, bio->offset + io->done);
		break;
	case STEP_SYNC:
		io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	sqe_fd(f, sqe);
	io_uring_sqe_set_data(sqe, io);
	f->in_ring++;
	/* Batched, or inside poll(): whoever queued it enters the kernel once for all. */
	if (!f->bdev.batch_submit && !f->in_poll)
		ring_submit(f);
}

static void io_finish(struct file_bdev *f, struct file_io *io, int err)
{
	struct nvemu_bio *bio = io->bio;

	f->inflight--;
	bounce_put(f, io);
	io_put(f, io);
	bio->end_io(bio, err);
}

static int zero_fallback(struct file_bdev *f, struct file_io *io)
{
	if (!f->zero_buf) {
		if (posix_memalign(&f->zero_buf, bounce_align(f), ZERO_BUF_MAX))
			return -ENOMEM;
		memset(f->zero_buf, 0, ZERO_BUF_MAX);
	}
	io->done = 0;
	io->step = STEP_ZERO_WRITE;
	return 0;
}

/* Advance io after a CQE; returns true when its bio completed. */
static bool io_cqe(struct file_bdev *f, struct file_io *io, int res)
{
	struct nvemu_bio *bio = io->bio;
	int err;

	f->in_ring--;
	if (res == -EINTR || res == -EAGAIN) {
		io_push(f, io, true);
		return false;
	}
	switch (io->step) {
	case STEP_RW:
	case STEP_ZERO_WRITE:
		if (res < 0)
			break;
		if (res == 0) {
			if (bio->op != NVEMU_BIO_READ) {
				res = -EIO; /* a write that makes no progress */
				break;
			}
			/* Past the end of a file someone truncated: holes read as zeroes. */
			memset((uint8_t *)io_buf(io) + io->done, 0, bio->len - io->done);
			res = (int)(bio->len - io->done);
		}
		io->done += (unsigned)res;
		if (io->done < bio->len) {
			io_push(f, io, true); /* short transfer: resubmit the rest */
			return false;
		}
		if (bio->op == NVEMU_BIO_READ && io->bounce)
			memcpy(bio->buf, io->bounce, bio->len);
		res = 0;
		break;
	case STEP_FALLOC:
		if (res == -EOPNOTSUPP || res == -EINVAL) {
			if (bio->op == NVEMU_BIO_DEALLOCATE)
				f->no_punch = true;
			else
				f->no_zero_range = true;
			err = zero_fallback(f, io);
			if (err) {
				res = err;
				break;
			}
			io_push(f, io, true);
			return false;
		}
		break;
	case STEP_SYNC:
		io->sync_after = false;
		break;
	}
	if (res >= 0 && io->sync_after) {
		io->sync_after = false;
		io->step = STEP_SYNC;
		io_push(f, io, true);
		return false;
	}
	io_finish(f, io, res < 0 ? res : 0);
	return true;
}

static void drain_queue(struct file_bdev *f)
{
	while (!STAILQ_EMPTY(&f->waiting) && f->in_ring < f->depth) {
		struct file_io *io = STAILQ_FIRST(&f->waiting);

		STAILQ_REMOVE_HEAD(&f->waiting, link);
		io_push(f, io, true);
		if (STAILQ_FIRST(&f->waiting) == io)
			break; /* no SQE after all */
	}
}

static int file_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct file_bdev *f = to_file(bdev);
	struct file_io *io = io_get(f);
	int err;

	if (!io)
		return -ENOMEM;
	io->bio = bio;
	switch (bio->op) {
	case NVEMU_BIO_READ:
	case NVEMU_BIO_WRITE:
		io->step = STEP_RW;
		switch (dio_path(f, bio)) {
		case DIO_AS_IS:
			break;
		case DIO_UNALIGNED:
			io_put(f, io);
			return -EINVAL;
		case DIO_BOUNCE:
			if (bounce_get(f, io, bio->len)) {
				io_put(f, io);
				return -ENOMEM;
			}
			f->st.bounces++;
			if (bio->op == NVEMU_BIO_WRITE)
				memcpy(io->bounce, bio->buf, bio->len);
			break;
		}
		break;
	case NVEMU_BIO_WRITE_ZEROES:
	case NVEMU_BIO_DEALLOCATE:
		io->step = STEP_FALLOC;
		io->sync_after = bio->fua;
		if ((bio->op == NVEMU_BIO_DEALLOCATE && f->no_punch) ||
		    (bio->op == NVEMU_BIO_WRITE_ZEROES && f->no_zero_range)) {
			err = zero_fallback(f, io);
			if (err) {
				io_put(f, io);
				return err;
			}
		}
		break;
	case NVEMU_BIO_FLUSH:
		io->step = STEP_SYNC;
		break;
	}
	f->inflight++;
	/* Keep submission order: nothing overtakes what is already queued. */
	if (!STAILQ_EMPTY(&f->waiting))
		STAILQ_INSERT_TAIL(&f->waiting, io, link);
	else
		io_push(f, io, false);
	return 0;
}

static int file_flush_submit(struct nvemu_bdev *bdev)
{
	return ring_submit(to_file(bdev));
}

static void file_free(struct file_bdev *f);

static int file_poll(struct nvemu_bdev *bdev)
{
	struct file_bdev *f = to_file(bdev);
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	uint64_t v;
	int n = 0;

	/* Clear the eventfd first so a completion that lands meanwhile re-arms it. */
	if (read(f->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	f->in_poll = true;
	/*
	 * The ring never holds more than depth operations and the CQ ring has
	 * twice that, so it cannot overflow while these CQEs wait for the advance.
	 */
	io_uring_for_each_cqe(&f->ring, head, cqe) {
		struct file_io *io = io_uring_cqe_get_data(cqe);

		seen++;
		if (io_cqe(f, io, cqe->res))
			n++;
		if (f->destroyed)
			break;
		drain_queue(f);
	}
	io_uring_cq_advance(&f->ring, seen);
	f->in_poll = false;
	if (f->destroyed) {
		/* nvemu_bdev_destroy() only lets an idle bdev go: nothing is left to reap. */
		file_free(f);
		return n;
	}
	drain_queue(f);
	/*
	 * Follow-up steps, and what was queued before: whoever waits on poll()
	 * (the loop, or a caller spinning on this bdev alone) gets it started.
	 */
	ring_submit(f);
	return n;
}

static int file_get_fd(struct nvemu_bdev *bdev)
{
	return to_file(bdev)->efd;
}

static unsigned file_inflight(struct nvemu_bdev *bdev)
{
	return to_file(bdev)->inflight;
}

static int file_resize(struct nvemu_bdev *bdev, uint64_t new_size)
{
	struct file_bdev *f = to_file(bdev);

	if (f->blkdev) {
		if (new_size > f->dev_size)
			return -ENOSPC;
	} else {
		if (bdev->read_only)
			return -EROFS;
		/* Shrinking truncates, so that growing back reads zeroes. */
		if (ftruncate(f->fd, (off_t)new_size))
			return -errno;
	}
	bdev->size = new_size;
	return 0;
}

static void file_free(struct file_bdev *f)
{
	struct file_io *io;

	while ((io = STAILQ_FIRST(&f->free_ios))) {
		STAILQ_REMOVE_HEAD(&f->free_ios, link);
		free(io);
	}
	bounce_drop(f);
	free(f->zero_buf);
	if (f->efd >= 0) {
		io_uring_unregister_eventfd(&f->ring);
		close(f->efd);
	}
	if (f->ring_ok)
		io_uring_queue_exit(&f->ring);
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
}

static void file_destroy(struct nvemu_bdev *bdev)
{
	struct file_bdev *f = to_file(bdev);

	/* The last namespace reference can drop inside a completion poll() runs. */
	if (f->in_poll) {
		f->destroyed = true;
		return;
	}
	file_free(f);
}

static const struct nvemu_bdev_ops file_ops = {
	.type = "file",
	.submit = file_submit,
	.poll = file_poll,
	.get_fd = file_get_fd,
	.inflight = file_inflight,
	.resize = file_resize,
	.destroy = file_destroy,
	.flush_submit = file_flush_submit,
};

int nvemu_bdev_file_get_stats(struct nvemu_bdev *bdev, struct nvemu_bdev_file_stats *st)
{
	struct file_bdev *f;

	if (!bdev || bdev->ops != &file_ops || !st)
		return -EINVAL;
	f = to_file(bdev);
	*st = f->st;
	st->dio_mem_align = f->direct ? f->dio_mem_align : 0;
	st->dio_offset_align = f->direct ? f->dio_off_align : 0;
	st->fixed_file = f->fixed;
	return 0;
}

static int file_err(struct nvemu_error *err, int code, const char *path, const char *what)
{
	if (what)
		return nvemu_error_set(err, code, "file: %s: %s: %s", path, what, strerror(-code));
	return nvemu_error_set(err, code, "file: %s: %s", path, strerror(-code));
}

/* Work out the size and open-time checks; returns 0 or a set error. */
static int file_size(struct file_bdev *f, const struct nvemu_bdev_file_opts *opts,
		     uint32_t blk_size, uint64_t *size, struct nvemu_error *err)
{
	const char *path = opts->path;
	struct stat st;
	uint64_t cur;

	if (fstat(f->fd, &st))
		return file_err(err, -errno, path, "stat");
	if (S_ISBLK(st.st_mode)) {
		int lbs = 0;

		f->blkdev = true;
		if (ioctl(f->fd, BLKGETSIZE64, &cur))
			return file_err(err, -errno, path, "BLKGETSIZE64");
		if (!ioctl(f->fd, BLKSSZGET, &lbs) && lbs > 0 && blk_size < (uint32_t)lbs)
			return nvemu_error_set(err, -EINVAL,
					       "file: %s: block size %u is below the device's %d",
					       path, blk_size, lbs);
		f->dev_size = cur;
		if (opts->size > cur)
			return nvemu_error_set(
				err, -ENOSPC, "file: %s: size %llu exceeds the device's %llu bytes",
				path, (unsigned long long)opts->size, (unsigned long long)cur);
	} else if (S_ISREG(st.st_mode)) {
		cur = (uint64_t)st.st_size;
		if (opts->size > cur) {
			if (opts->read_only)
				return nvemu_error_set(
					err, -EROFS,
					"file: %s: is %llu bytes; can't grow it to %llu read-only",
					path, (unsigned long long)cur,
					(unsigned long long)opts->size);
			if (ftruncate(f->fd, (off_t)opts->size))
				return file_err(err, -errno, path, "grow");
		}
	} else {
		return nvemu_error_set(err, -EINVAL,
				       "file: %s: not a regular file or a block device", path);
	}
	/* A trailing partial block is not addressable. */
	*size = opts->size ? opts->size : cur & ~(uint64_t)(blk_size - 1);
	return 0;
}

/*
 * What O_DIRECT needs here: STATX_DIOALIGN where the kernel and the file
 * system report it, else a block device's logical block size, else a page
 * for memory and the bdev's block for offsets (what worked before).
 */
static int dio_align(struct file_bdev *f, const char *path, uint32_t blk_size,
		     struct nvemu_error *err)
{
	struct statx stx;
	int lbs = 0;

	f->dio_mem_align = DIO_ALIGN_FALLBACK;
	f->dio_off_align = blk_size;
	if (!statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_mem_align && stx.stx_dio_offset_align) {
		f->dio_mem_align = stx.stx_dio_mem_align;
		f->dio_off_align = stx.stx_dio_offset_align;
	} else if (f->blkdev && !ioctl(f->fd, BLKSSZGET, &lbs) && lbs > 0) {
		f->dio_mem_align = (uint32_t)lbs;
		f->dio_off_align = (uint32_t)lbs;
	}
	if ((f->dio_mem_align & (f->dio_mem_align - 1)) ||
	    (f->dio_off_align & (f->dio_off_align - 1)))
		return nvemu_error_set(err, -EINVAL,
				       "file: %s: O_DIRECT alignment %u/%u is not a power of two",
				       path, f->dio_mem_align, f->dio_off_align);
	if (f->dio_off_align > blk_size)
		return nvemu_error_set(err, -EINVAL,
				       "file: %s: block size %u is below the O_DIRECT alignment %u",
				       path, blk_size, f->dio_off_align);
	return 0;
}

int nvemu_bdev_file_create(const char *name, const struct nvemu_bdev_file_opts *opts,
			   struct nvemu_bdev **out, struct nvemu_error *err)
{
	struct file_bdev *f;
	uint32_t blk_size;
	uint64_t size = 0;
	int flags, rc;

	if (!opts || !opts->path || !opts->path[0])
		return nvemu_error_set(err, -EINVAL, "file: path: required");
	blk_size = opts->blk_size ? opts->blk_size : 512;
	if (opts->depth > FILE_DEPTH_MAX)
		return nvemu_error_set(err, -EINVAL, "file: %s: depth %u is above %u", opts->path,
				       opts->depth, FILE_DEPTH_MAX);
	f = calloc(1, sizeof(*f));
	if (!f)
		return nvemu_error_set(err, -ENOMEM, "file: %s: out of memory", opts->path);
	STAILQ_INIT(&f->waiting);
	STAILQ_INIT(&f->free_ios);
	f->fd = f->efd = -1;
	f->path = strdup(opts->path);
	if (!f->path) {
		rc = nvemu_error_set(err, -ENOMEM, "file: %s: out of memory", opts->path);
		goto fail;
	}
	/* Check the name before touching the file. */
	rc = nvemu_bdev_init(&f->bdev, &file_ops, name, 0, blk_size, err);
	if (rc)
		goto fail;

	/*
	 * O_NONBLOCK: opening a FIFO (or a device that waits for carrier) must
	 * not stall the caller's event loop before file_size() refuses it.
	 */
	flags = (opts->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK |
		(opts->direct ? O_DIRECT : 0);
	f->fd = open(opts->path, flags);
	if (f->fd < 0) {
		rc = file_err(err, -errno, opts->path,
			      opts->direct && errno == EINVAL ? "O_DIRECT" : NULL);
		goto fail;
	}
	rc = file_size(f, opts, blk_size, &size, err);
	if (rc)
		goto fail;
	/* A regular file or a block device now: its I/O blocks as usual. */
	flags = fcntl(f->fd, F_GETFL);
	if (flags < 0 || fcntl(f->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		rc = file_err(err, -errno, opts->path, "fcntl");
		goto fail;
	}
	if (opts->direct) {
		rc = dio_align(f, opts->path, blk_size, err);
		if (rc)
			goto fail;
	}
	rc = nvemu_bdev_init(&f->bdev, &file_ops, name, size, blk_size, err);
	if (rc)
		goto fail;
	f->bdev.read_only = opts->read_only;
	f->bdev.priv = f;
	f->direct = opts->direct;
	f->depth = opts->depth ? opts->depth : FILE_DEPTH_DEFAULT;

	/* SUBMIT_ALL (5.18): one bad SQE does not hold back the rest of a batch. */
	rc = io_uring_queue_init(f->depth, &f->ring, IORING_SETUP_SUBMIT_ALL);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(f->depth, &f->ring, 0);
	if (rc) {
		rc = file_err(err, rc, opts->path, "io_uring");
		goto fail;
	}
	f->ring_ok = true;
	/* A registered file saves a lookup per I/O; without it, plain fds work the same. */
	f->fixed = !io_uring_register_files(&f->ring, &f->fd, 1);
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		rc = file_err(err, -errno, opts->path, "eventfd");
		goto fail;
	}
	rc = io_uring_register_eventfd(&f->ring, f->efd);
	if (rc) {
		close(f->efd);
		f->efd = -1;
		rc = file_err(err, rc, opts->path, "io_uring eventfd");
		goto fail;
	}
	*out = &f->bdev;
	return 0;
fail:
	file_free(f);
	return rc;
}
