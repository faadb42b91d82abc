// SPDX-License-Identifier: MIT
/*
 * The nvme backend (SPDK's bdev_nvme): a namespace of a controller the
 * host driver (include/nvemu/driver.h) drives. A bio becomes one or more
 * NVMe commands (split at the controller's largest transfer, 65536 blocks
 * for Write Zeroes/Deallocate), spread over the I/O queue pairs; when every
 * slot is taken it waits, in order, on the controller's list and is resumed
 * by the next completion.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "engine/nvemu-internal.h"
#include <nvemu/driver.h>

struct nvme_io;

struct nvemu_bdev_nvme_ctrlr {
	struct nvemu_drv_ctrl *ctrl;
	TAILQ_HEAD(, nvme_io) waiting;
	unsigned next_qp;
	unsigned nr_bdevs;
	unsigned kicking;
};

struct bdev_nvme {
	struct nvemu_bdev bdev;
	struct nvemu_bdev_nvme_ctrlr *c;
	uint32_t nsid;
	unsigned shift; /* log2 of the block size */
	unsigned inflight;
};

/* One bio on its way: the part not yet submitted and the commands outstanding. */
struct nvme_io {
	struct bdev_nvme *b;
	struct nvemu_bio *bio;
	uint64_t next; /* bytes of the bio submitted so far */
	unsigned pending;
	int err;
	bool waiting;
	TAILQ_ENTRY(nvme_io) link;
};

static void io_kick(struct nvemu_bdev_nvme_ctrlr *c);

static void io_finish(struct nvme_io *io)
{
	struct nvemu_bio *bio = io->bio;
	int err = io->err;

	io->b->inflight--;
	free(io);
	bio->end_io(bio, err);
}

static void cmd_done(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct nvme_io *io = arg;
	struct nvemu_bdev_nvme_ctrlr *c = io->b->c;

	if (err && !io->err)
		io->err = err == -ENOMEM ? -ENOMEM : -EIO;
	io->pending--;
	if (!io->pending && (io->next >= io->bio->len || io->err) && !io->waiting)
		io_finish(io);
	io_kick(c);
}

static enum nvemu_drv_io_op drv_op(enum nvemu_bio_op op)
{
	switch (op) {
	case NVEMU_BIO_READ:
		return NVEMU_DRV_IO_READ;
	case NVEMU_BIO_WRITE:
		return NVEMU_DRV_IO_WRITE;
	case NVEMU_BIO_FLUSH:
		return NVEMU_DRV_IO_FLUSH;
	case NVEMU_BIO_WRITE_ZEROES:
		return NVEMU_DRV_IO_WRITE_ZEROES;
	default:
		return NVEMU_DRV_IO_DEALLOCATE;
	}
}

/* Submit what fits; 0 when all is submitted, -EAGAIN when the queues are full, else -errno. */
static int io_issue(struct nvme_io *io)
{
	struct bdev_nvme *b = io->b;
	struct nvemu_bdev_nvme_ctrlr *c = b->c;
	struct nvemu_bio *bio = io->bio;
	enum nvemu_drv_io_op op = drv_op(bio->op);
	unsigned nq = nvemu_drv_ctrl_nr_qpairs(c->ctrl);
	uint64_t max = (bio->op == NVEMU_BIO_READ || bio->op == NVEMU_BIO_WRITE)
			       ? nvemu_drv_ctrl_max_xfer(c->ctrl)
			       : (65536ull << b->shift);
	bool flush = bio->op == NVEMU_BIO_FLUSH;

	if (!nq)
		return -EIO;
	while (flush ? !io->pending && !io->next : io->next < bio->len) {
		uint64_t n = flush ? 0 : bio->len - io->next;
		struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(c->ctrl, c->next_qp++ % nq);
		void *buf = bio->buf ? (uint8_t *)bio->buf + io->next : NULL;
		int rc;

		if (n > max)
			n = max & ~((1ull << b->shift) - 1);
		rc = nvemu_drv_io(qp, b->nsid, op, (bio->offset + io->next) >> b->shift,
				  (uint32_t)(n >> b->shift), buf, cmd_done, io);
		if (rc)
			return rc;
		io->pending++;
		io->next += flush ? 1 : n;
	}
	return 0;
}

/* Resume waiting bios in order while slots are free. */
static void io_kick(struct nvemu_bdev_nvme_ctrlr *c)
{
	struct nvme_io *io;

	if (c->kicking)
		return;
	c->kicking++;
	while ((io = TAILQ_FIRST(&c->waiting))) {
		int rc = io_issue(io);

		if (rc == -EAGAIN)
			break;
		TAILQ_REMOVE(&c->waiting, io, link);
		io->waiting = false;
		if (rc && !io->err)
			io->err = -EIO;
		if (rc)
			io->next = io->bio->len;
		if (!io->pending)
			io_finish(io);
	}
	c->kicking--;
}

static int nvme_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct bdev_nvme *b = (struct bdev_nvme *)bdev;
	struct nvme_io *io = calloc(1, sizeof(*io));
	int rc;

	if (!io)
		return -ENOMEM;
	io->b = b;
	io->bio = bio;
	b->inflight++;
	/* Behind bios already waiting: keep the order. */
	rc = TAILQ_EMPTY(&b->c->waiting) ? io_issue(io) : -EAGAIN;
	if (rc == -EAGAIN) {
		io->waiting = true;
		TAILQ_INSERT_TAIL(&b->c->waiting, io, link);
		return 0;
	}
	if (rc) {
		io->err = -EIO;
		io->next = bio->len;
	}
	if (!io->pending)
		io_finish(io);
	return 0;
}

/*
 * Without an event loop: reap I/O completions here. Admin completions and
 * the timers stay with the driver's own fds and nvemu_drv_ctrl_tick(): a
 * rescan may delete bdevs, which must not happen inside a bdev's poll.
 */
static int nvme_poll(struct nvemu_bdev *bdev)
{
	struct bdev_nvme *b = (struct bdev_nvme *)bdev;
	struct nvemu_drv_ctrl *ctrl = b->c->ctrl;
	int n = 0, rc;

	for (unsigned i = 0; i < nvemu_drv_ctrl_nr_qpairs(ctrl); i++) {
		rc = nvemu_drv_qpair_process(nvemu_drv_ctrl_qpair(ctrl, i), 0);
		if (rc > 0)
			n += rc;
	}
	return n;
}

static int nvme_get_fd(struct nvemu_bdev *bdev)
{
	return -1; /* the driver puts its own descriptors on the loop */
}

static unsigned nvme_inflight(struct nvemu_bdev *bdev)
{
	return ((struct bdev_nvme *)bdev)->inflight;
}

static int nvme_resize(struct nvemu_bdev *bdev, uint64_t new_size)
{
	return -ENOTSUP; /* the capacity is the controller's */
}

static void nvme_destroy(struct nvemu_bdev *bdev)
{
	struct bdev_nvme *b = (struct bdev_nvme *)bdev;

	b->c->nr_bdevs--;
	free(b);
}

static const struct nvemu_bdev_ops nvme_ops = {
	.type = "nvme",
	.submit = nvme_submit,
	.poll = nvme_poll,
	.get_fd = nvme_get_fd,
	.inflight = nvme_inflight,
	.resize = nvme_resize,
	.destroy = nvme_destroy,
};

int nvemu_bdev_nvme_ctrlr_create(struct nvemu_drv_ctrl *ctrl, struct nvemu_bdev_nvme_ctrlr **out)
{
	struct nvemu_bdev_nvme_ctrlr *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->ctrl = ctrl;
	TAILQ_INIT(&c->waiting);
	*out = c;
	return 0;
}

int nvemu_bdev_nvme_ctrlr_destroy(struct nvemu_bdev_nvme_ctrlr *c)
{
	if (!c)
		return 0;
	if (c->nr_bdevs)
		return -EBUSY;
	free(c);
	return 0;
}

int nvemu_bdev_nvme_create(const char *name, struct nvemu_bdev_nvme_ctrlr *c, uint32_t nsid,
			   struct nvemu_bdev **out, struct nvemu_error *err)
{
	struct nvemu_drv_ns_info ni;
	struct bdev_nvme *b;
	int rc;

	if (nvemu_drv_ns_get(c->ctrl, nsid, &ni))
		return nvemu_error_set(err, -ENOENT, "nsid: the controller has no namespace %u",
				       nsid);
	if (ni.nsze > UINT64_MAX / ni.blk_size)
		return nvemu_error_set(err, -EINVAL, "namespace %u: capacity overflows", nsid);
	b = calloc(1, sizeof(*b));
	if (!b)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	rc = nvemu_bdev_init(&b->bdev, &nvme_ops, name, ni.nsze * ni.blk_size, ni.blk_size, err);
	if (rc) {
		free(b);
		return rc;
	}
	b->bdev.read_only = ni.read_only;
	b->c = c;
	b->nsid = nsid;
	b->shift = (unsigned)__builtin_ctz(ni.blk_size);
	c->nr_bdevs++;
	*out = &b->bdev;
	return 0;
}

int nvemu_bdev_nvme_get(struct nvemu_bdev *bdev, struct nvemu_drv_ctrl **ctrl, uint32_t *nsid)
{
	struct bdev_nvme *b = (struct bdev_nvme *)bdev;

	if (!bdev || bdev->ops != &nvme_ops)
		return -EINVAL;
	if (ctrl)
		*ctrl = b->c->ctrl;
	if (nsid)
		*nsid = b->nsid;
	return 0;
}
