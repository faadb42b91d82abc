/* SPDX-License-Identifier: MIT */
/*
 * NVM command set I/O commands (NVM Command Set Specification 1.0/2.0,
 * chapter 3). Each command checks its dwords, then drives the namespace's
 * bdev through req->bio; completion runs from the bio's end_io.
 */
#include <errno.h>
#include <stdlib.h>

#include "nvemu-internal.h"
#include "reservations.h"

#define RW_FUA	       (1u << 30) /* CDW12: Force Unit Access */
#define WZ_DEAC	       (1u << 25) /* Write Zeroes CDW12: Deallocate */
#define DSM_AD	       (1u << 2)  /* DSM CDW11: Attribute - Deallocate */
#define DSM_MAX_RANGES 256
#define IO_CHUNK       (1u << 20) /* bounce size for Verify and Copy */

#define SC_LBA_RANGE	   (NVEMU_SC_GENERIC(NVME_SC_LBA_RANGE) | NVEMU_DNR)
#define SC_INVALID_FIELD   (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define SC_WRITE_PROTECTED (NVEMU_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVEMU_DNR)
#define SC_INVALID_NS	   (NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR)
#define SC_SIZE_LIMIT	   (NVEMU_SC_CMD(NVME_SC_CMD_SIZE_LIMIT_EXCEEDED) | NVEMU_DNR)

/*
 * A backend's errno as the NVMe status a drive would return (NVM Command
 * Set and Base specifications, Media and Data Integrity Errors and Generic
 * Command Status). Retryable conditions leave DNR clear.
 */
uint16_t nvemu_bio_errno_to_status(enum nvemu_bio_op op, int err)
{
	if (err > 0)
		err = -err;
	switch (err) {
	case 0:
		return 0;
	case -EIO: /* the medium failed: what a drive reports for an unreadable/unwritable LBA */
		return op == NVEMU_BIO_READ ? NVEMU_SC_MEDIA(NVME_SC_READ_ERROR)
					    : NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT);
	case -EBADMSG: /* data read back but failed its integrity check */
	case -EILSEQ:
		return NVEMU_SC_MEDIA(NVME_SC_GUARD_CHECK) | NVEMU_DNR;
	case -ENODATA: /* nothing was ever written there and the backend will not make it up */
		return NVEMU_SC_MEDIA(NVME_SC_UNWRITTEN_BLOCK) | NVEMU_DNR;
	case -EACCES:
	case -EPERM:
		return NVEMU_SC_MEDIA(NVME_SC_ACCESS_DENIED) | NVEMU_DNR;
	case -ENOSPC:
	case -EDQUOT:
		return NVEMU_SC_GENERIC(NVME_SC_CAP_EXCEEDED) | NVEMU_DNR;
	case -ERANGE:
		return SC_LBA_RANGE;
	case -EROFS:
		return SC_WRITE_PROTECTED;
	case -ECANCELED: /* cancelled in the backend by a reset, Abort or teardown */
		return NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ);
	case -ENXIO: /* the storage behind the namespace went away */
	case -ENODEV:
	case -ENOTCONN:
	case -ESHUTDOWN:
		return NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY);
	case -ETIMEDOUT: /* a remote backend (RBD) did not answer in time: worth a retry */
		return NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY);
	case -ENOLCK: /* another path (gateway) holds the backend's lock: use that one */
		return NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE);
	default: /* -ENOMEM, -EAGAIN and the rest: DNR clear, the host may retry */
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	}
}

/* Media and Data Integrity errors SMART counts: the data was lost or is wrong. */
static bool integrity_error(uint16_t st)
{
	if (nvemu_status_sct(st) != NVME_SCT_MEDIA)
		return false;
	switch (nvemu_status_sc(st)) {
	case NVME_SC_WRITE_FAULT:
	case NVME_SC_READ_ERROR:
	case NVME_SC_GUARD_CHECK:
	case NVME_SC_APPTAG_CHECK:
	case NVME_SC_REFTAG_CHECK:
	case NVME_SC_STORAGE_TAG_CHECK:
		return true;
	default: /* Compare Failure, Access Denied, Unwritten Block: the medium is fine */
		return false;
	}
}

uint16_t nvemu_bio_status(struct nvemu_ctrl *ctrl, const struct nvemu_bio *bio, int err)
{
	uint16_t st;

	if (!err)
		return 0;
	/* A backend that knows the exact status (the error backend) said so. */
	st = bio->status ? bio->status : nvemu_bio_errno_to_status(bio->op, err);
	if (integrity_error(st))
		ctrl->smart.media_errors++;
	return st;
}

static uint16_t io_status(struct nvemu_ctrl *ctrl, const struct nvemu_bio *bio, int err)
{
	return nvemu_bio_status(ctrl, bio, err);
}

static void count_read(struct nvemu_ctrl *ctrl, uint64_t bytes)
{
	ctrl->smart.units_read += bytes >> 9;
	ctrl->smart.host_read_cmds++;
}

static void count_write(struct nvemu_ctrl *ctrl, uint64_t bytes)
{
	ctrl->smart.units_written += bytes >> 9;
	ctrl->smart.host_write_cmds++;
}

static uint64_t cmd_slba(const struct nvemu_sqe *cmd)
{
	return (uint64_t)le32toh(cmd->cdw11) << 32 | le32toh(cmd->cdw10);
}

/* NLB in CDW12 15:0 is 0's based. */
static uint32_t cmd_nlb(const struct nvemu_sqe *cmd)
{
	return (le32toh(cmd->cdw12) & 0xffff) + 1;
}

static uint16_t check_range(const struct nvemu_ns *ns, uint64_t slba, uint64_t nlb)
{
	if (slba > ns->nblocks || nlb > ns->nblocks - slba)
		return SC_LBA_RANGE;
	return 0;
}

static uint16_t check_mdts(const struct nvemu_ctrl *ctrl, uint64_t bytes)
{
	uint64_t max = nvemu_ctrl_max_xfer_bytes(ctrl);

	if (max && bytes > max)
		return SC_INVALID_FIELD;
	return 0;
}

/* FUA, or every write while the host has disabled the volatile write cache. */
static bool write_through(const struct nvemu_req *req)
{
	return nvemu_ctrl_write_through(req->ctrl, le32toh(req->cmd.cdw12) & RW_FUA);
}

/* Start req->bio; a bio that could not start completes the request. */
static void io_submit(struct nvemu_req *req, struct nvemu_bdev *bdev,
		      void (*end_io)(struct nvemu_bio *, int))
{
	int rc;

	req->bio.end_io = end_io;
	req->bio.private = req;
	rc = nvemu_bdev_submit(bdev, &req->bio);
	if (rc)
		nvemu_req_complete(req, io_status(req->ctrl, &req->bio, rc));
}

static void bio_setup(struct nvemu_req *req, enum nvemu_bio_op op, uint64_t offset, uint64_t len,
		      void *buf, bool fua)
{
	memset(&req->bio, 0, sizeof(req->bio));
	req->bio.op = op;
	req->bio.offset = offset;
	req->bio.len = len;
	req->bio.buf = buf;
	req->bio.fua = fua;
}

/* ---- sequences of bios (DSM, Copy, Verify, Flush of all namespaces) */

struct io_seq;
/* Fill the next bio; false when the sequence is over. */
typedef bool (*seq_next_fn)(struct io_seq *s, struct nvemu_bio *bio, struct nvemu_bdev **bdev);

struct io_seq {
	struct nvemu_req *req;
	seq_next_fn next;
	void (*success)(struct io_seq *s); /* accounting once every bio succeeded */
	bool in_submit, inline_done;
	int err;
	unsigned idx, nr; /* range / namespace cursor */
	uint64_t pos;	  /* bytes done in the current range */
	uint64_t total;	  /* bytes in the command */
	uint64_t dst;	  /* Copy: next destination byte */
	uint32_t cur;	  /* Copy: bytes in the bounce buffer */
	bool write_phase;
	uint8_t *bounce;
	struct nvemu_ns *held; /* Flush of all namespaces: the one being flushed */
	union {
		struct nvme_dsm_range dsm[DSM_MAX_RANGES];
		struct nvme_copy_range copy[NVEMU_COPY_MSRC + 1];
	} r;
};

static void seq_run(struct io_seq *s);

static void seq_finish(struct io_seq *s, int err)
{
	struct nvemu_req *req = s->req;
	uint16_t st = err ? io_status(req->ctrl, &req->bio, err) : 0;

	if (!st && s->success)
		s->success(s);
	nvemu_req_complete(req, st); /* frees s (cmd_priv) */
}

static void seq_end_io(struct nvemu_bio *bio, int err)
{
	struct io_seq *s = bio->private;

	if (s->in_submit) {
		/* Completed inline: seq_run's loop goes on, without recursion. */
		s->inline_done = true;
		s->err = err;
		return;
	}
	if (err)
		seq_finish(s, err);
	else
		seq_run(s);
}

static void seq_run(struct io_seq *s)
{
	struct nvemu_req *req = s->req;

	for (;;) {
		struct nvemu_bdev *bdev = req->ns ? req->ns->bdev : NULL;
		int rc;

		memset(&req->bio, 0, sizeof(req->bio));
		if (!s->next(s, &req->bio, &bdev)) {
			seq_finish(s, 0);
			return;
		}
		req->bio.end_io = seq_end_io;
		req->bio.private = s;
		s->in_submit = true;
		s->inline_done = false;
		rc = nvemu_bdev_submit(bdev, &req->bio);
		s->in_submit = false;
		if (rc) {
			seq_finish(s, rc);
			return;
		}
		if (!s->inline_done)
			return; /* seq_end_io continues */
		if (s->err) {
			seq_finish(s, s->err);
			return;
		}
	}
}

/* A sequence context with bounce bytes after it; freed with the request. */
static struct io_seq *seq_alloc(struct nvemu_req *req, seq_next_fn next, size_t bounce)
{
	struct io_seq *s = calloc(1, sizeof(*s) + bounce);

	if (!s)
		return NULL;
	s->req = req;
	s->next = next;
	s->bounce = bounce ? (uint8_t *)(s + 1) : NULL;
	req->cmd_priv = s;
	return s;
}

#define SC_NOMEM NVEMU_SC_GENERIC(NVME_SC_INTERNAL)

/* ---- Read / Write */

/* Common checks; on success off and len are the byte range. */
static uint16_t rw_prep(struct nvemu_req *req, bool write, uint64_t *off, uint64_t *len)
{
	struct nvemu_ns *ns = req->ns;
	uint64_t slba = cmd_slba(&req->cmd);
	uint32_t nlb = cmd_nlb(&req->cmd);
	uint16_t st;

	*len = (uint64_t)nlb << ns->lba_shift;
	st = check_mdts(req->ctrl, *len);
	if (!st)
		st = check_range(ns, slba, nlb);
	if (!st)
		st = nvemu_req_check_len(req, (uint32_t)*len);
	if (!st && write && ns->bdev->read_only)
		st = SC_WRITE_PROTECTED;
	*off = slba << ns->lba_shift;
	return st;
}

static void rw_end_io(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *req = bio->private;
	uint16_t st = io_status(req->ctrl, bio, err);

	if (!st) {
		req->xfer_len = (uint32_t)bio->len;
		if (bio->op == NVEMU_BIO_READ)
			count_read(req->ctrl, bio->len);
		else
			count_write(req->ctrl, bio->len);
	}
	nvemu_req_complete(req, st);
}

void nvemu_execute_read(struct nvemu_req *req)
{
	uint64_t off, len;
	uint16_t st = rw_prep(req, false, &off, &len);

	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	bio_setup(req, NVEMU_BIO_READ, off, len, req->buf, false);
	io_submit(req, req->ns->bdev, rw_end_io);
}

void nvemu_execute_write(struct nvemu_req *req)
{
	uint64_t off, len;
	uint16_t st = rw_prep(req, true, &off, &len);

	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	bio_setup(req, NVEMU_BIO_WRITE, off, len, req->buf, write_through(req));
	io_submit(req, req->ns->bdev, rw_end_io);
}

/* ---- Compare */

static void compare_end_io(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *req = bio->private;
	uint16_t st = io_status(req->ctrl, bio, err);

	if (!st) {
		count_read(req->ctrl, bio->len);
		req->xfer_len = (uint32_t)bio->len;
		if (memcmp(bio->buf, req->buf, bio->len))
			st = NVEMU_SC_MEDIA(NVME_SC_COMPARE_FAILED) | NVEMU_DNR;
	}
	nvemu_req_complete(req, st); /* frees the bounce buffer */
}

void nvemu_execute_compare(struct nvemu_req *req)
{
	uint64_t off, len;
	uint16_t st = rw_prep(req, false, &off, &len);

	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	req->cmd_priv = malloc(len);
	if (!req->cmd_priv) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	bio_setup(req, NVEMU_BIO_READ, off, len, req->cmd_priv, false);
	io_submit(req, req->ns->bdev, compare_end_io);
}

/* ---- Flush */

static void flush_end_io(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *req = bio->private;

	nvemu_req_complete(req, io_status(req->ctrl, bio, err));
}

static void flush_all_release(struct nvemu_req *req)
{
	struct io_seq *s = req->cmd_priv;

	if (s->held)
		nvemu_ns_put(s->held);
	s->held = NULL;
}

/* NSID FFFFFFFFh: every attached namespace, one after another. */
static bool flush_all_next(struct io_seq *s, struct nvemu_bio *bio, struct nvemu_bdev **bdev)
{
	struct nvemu_ctrl *ctrl = s->req->ctrl;

	flush_all_release(s->req);
	/* Re-read the list each step: it may change while a flush runs. */
	while (s->idx < ctrl->nr_ns) {
		struct nvemu_ns *ns = ctrl->ns[s->idx++];

		if (!ns->ready || !ns->bdev)
			continue;
		/* The namespace may be deleted while its flush runs. */
		s->held = nvemu_ns_get(ns);
		bio->op = NVEMU_BIO_FLUSH;
		*bdev = ns->bdev;
		return true;
	}
	return false;
}

void nvemu_execute_flush(struct nvemu_req *req)
{
	uint32_t nsid = le32toh(req->cmd.nsid);
	struct nvemu_ns *ns;

	if (nsid == NVEMU_NSID_ALL) {
		struct io_seq *s = seq_alloc(req, flush_all_next, 0);

		if (!s) {
			nvemu_req_complete(req, SC_NOMEM);
			return;
		}
		req->cmd_priv_release = flush_all_release;
		seq_run(s);
		return;
	}
	/* Flush is dispatched without a namespace lookup (NSID FFFFFFFFh is valid). */
	ns = nsid ? nvemu_ctrl_find_ns(req->ctrl, nsid) : NULL;
	if (!ns) {
		nvemu_req_complete(req, SC_INVALID_NS);
		return;
	}
	if (!ns->ready) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY));
		return;
	}
	/* Flush has no namespace lookup in dispatch, so reservations are checked here. */
	if (nvemu_resv_check(req->ctrl, ns, nvme_cmd_flush)) {
		nvemu_req_complete(req, nvemu_resv_check(req->ctrl, ns, nvme_cmd_flush));
		return;
	}
	req->ns = nvemu_ns_get(ns);
	bio_setup(req, NVEMU_BIO_FLUSH, 0, 0, NULL, false);
	io_submit(req, ns->bdev, flush_end_io);
}

/* ---- Write Zeroes */

static void simple_end_io(struct nvemu_bio *bio, int err)
{
	struct nvemu_req *req = bio->private;

	nvemu_req_complete(req, io_status(req->ctrl, bio, err));
}

void nvemu_execute_write_zeroes(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	uint32_t cdw12 = le32toh(req->cmd.cdw12);
	uint64_t slba = cmd_slba(&req->cmd);
	uint32_t nlb = cmd_nlb(&req->cmd);
	uint16_t st = check_range(ns, slba, nlb);

	if (!st && ns->bdev->read_only)
		st = SC_WRITE_PROTECTED;
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	/* Deallocated blocks read back as zeroes on every backend, so DEAC may free them. */
	bio_setup(req, (cdw12 & WZ_DEAC) ? NVEMU_BIO_DEALLOCATE : NVEMU_BIO_WRITE_ZEROES,
		  slba << ns->lba_shift, (uint64_t)nlb << ns->lba_shift, NULL, write_through(req));
	io_submit(req, ns->bdev, simple_end_io);
}

/* ---- Dataset Management */

static bool dsm_next(struct io_seq *s, struct nvemu_bio *bio, struct nvemu_bdev **bdev)
{
	struct nvemu_ns *ns = s->req->ns;

	while (s->idx < s->nr) {
		const struct nvme_dsm_range *r = &s->r.dsm[s->idx++];
		uint32_t nlb = le32toh(r->nlb);

		if (!nlb)
			continue;
		bio->op = NVEMU_BIO_DEALLOCATE;
		bio->offset = le64toh(r->slba) << ns->lba_shift;
		bio->len = (uint64_t)nlb << ns->lba_shift;
		bio->fua = nvemu_ctrl_write_through(s->req->ctrl, false);
		return true;
	}
	return false;
}

void nvemu_execute_dsm(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	unsigned nr = (le32toh(req->cmd.cdw10) & 0xff) + 1;
	bool ad = le32toh(req->cmd.cdw11) & DSM_AD;
	struct io_seq *s;
	uint16_t st;

	s = seq_alloc(req, dsm_next, 0);
	if (!s) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	st = nvemu_req_from_host(req, s->r.dsm, nr * sizeof(s->r.dsm[0]));
	for (unsigned i = 0; !st && i < nr; i++)
		st = check_range(ns, le64toh(s->r.dsm[i].slba), le32toh(s->r.dsm[i].nlb));
	if (!st && ad && ns->bdev->read_only)
		st = SC_WRITE_PROTECTED;
	if (st || !ad) {
		/* Integral Dataset for Read/Write are hints: nothing to do. */
		nvemu_req_complete(req, st);
		return;
	}
	s->nr = nr;
	seq_run(s);
}

/* ---- Verify */

static bool verify_next(struct io_seq *s, struct nvemu_bio *bio, struct nvemu_bdev **bdev)
{
	uint64_t n;

	if (s->pos >= s->total)
		return false;
	n = s->total - s->pos < IO_CHUNK ? s->total - s->pos : IO_CHUNK;
	bio->op = NVEMU_BIO_READ;
	bio->offset = s->dst + s->pos;
	bio->len = n;
	bio->buf = s->bounce;
	s->pos += n;
	return true;
}

static void verify_success(struct io_seq *s)
{
	count_read(s->req->ctrl, s->total);
}

void nvemu_execute_verify(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	uint64_t slba = cmd_slba(&req->cmd);
	uint32_t nlb = cmd_nlb(&req->cmd);
	uint64_t total = (uint64_t)nlb << ns->lba_shift;
	uint16_t st = check_range(ns, slba, nlb);
	struct io_seq *s;

	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	/* No data moves, so MDTS does not apply; read in chunks to find media errors. */
	s = seq_alloc(req, verify_next, total < IO_CHUNK ? total : IO_CHUNK);
	if (!s) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	s->total = total;
	s->dst = slba << ns->lba_shift;
	s->success = verify_success;
	seq_run(s);
}

/* ---- Copy */

static bool copy_next(struct io_seq *s, struct nvemu_bio *bio, struct nvemu_bdev **bdev)
{
	struct nvemu_ns *ns = s->req->ns;
	const struct nvme_copy_range *r;
	uint64_t rlen;

	if (s->idx >= s->nr)
		return false;
	r = &s->r.copy[s->idx];
	rlen = ((uint64_t)le16toh(r->nlb) + 1) << ns->lba_shift;
	if (!s->write_phase) {
		s->cur = (uint32_t)(rlen - s->pos < IO_CHUNK ? rlen - s->pos : IO_CHUNK);
		bio->op = NVEMU_BIO_READ;
		bio->offset = (le64toh(r->slba) << ns->lba_shift) + s->pos;
	} else {
		bio->op = NVEMU_BIO_WRITE;
		bio->offset = s->dst;
		bio->fua = write_through(s->req);
		s->dst += s->cur;
		s->pos += s->cur;
		if (s->pos == rlen) {
			s->idx++;
			s->pos = 0;
		}
	}
	bio->len = s->cur;
	bio->buf = s->bounce;
	s->write_phase = !s->write_phase;
	return true;
}

static void copy_success(struct io_seq *s)
{
	count_write(s->req->ctrl, s->total);
}

void nvemu_execute_copy(struct nvemu_req *req)
{
	struct nvemu_ns *ns = req->ns;
	uint32_t cdw12 = le32toh(req->cmd.cdw12);
	uint64_t sdlba = cmd_slba(&req->cmd);
	unsigned nr = (cdw12 & 0xff) + 1;
	uint64_t blocks = 0, max_range = 0;
	struct io_seq *s;
	uint16_t st = 0;

	/* Only Source Range Entries Format 0 (no extended LBA tags) is supported. */
	if ((cdw12 >> 8) & 0xf) {
		nvemu_req_complete(req, SC_INVALID_FIELD);
		return;
	}
	s = seq_alloc(req, copy_next, 0);
	if (!s) {
		nvemu_req_complete(req, SC_NOMEM);
		return;
	}
	if (nr > NVEMU_COPY_MSRC + 1) {
		/* Still require the buffer the command describes (NR is 8 bits). */
		st = nvemu_req_check_len(req, nr * sizeof(struct nvme_copy_range));
		nvemu_req_complete(req, st ? st : SC_SIZE_LIMIT);
		return;
	}
	st = nvemu_req_from_host(req, s->r.copy, nr * sizeof(s->r.copy[0]));
	for (unsigned i = 0; !st && i < nr; i++) {
		uint64_t n = (uint64_t)le16toh(s->r.copy[i].nlb) + 1;

		if (n > NVEMU_COPY_MSSRL)
			st = SC_SIZE_LIMIT;
		blocks += n;
		if (n > max_range)
			max_range = n;
	}
	if (!st && blocks > NVEMU_COPY_MCL)
		st = SC_SIZE_LIMIT;
	for (unsigned i = 0; !st && i < nr; i++)
		st = check_range(ns, le64toh(s->r.copy[i].slba),
				 (uint64_t)le16toh(s->r.copy[i].nlb) + 1);
	if (!st)
		st = check_range(ns, sdlba, blocks);
	if (!st && ns->bdev->read_only)
		st = SC_WRITE_PROTECTED;
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	/* The bounce buffer holds one chunk of one range at a time. */
	max_range <<= ns->lba_shift;
	s = realloc(s, sizeof(*s) + (max_range < IO_CHUNK ? max_range : IO_CHUNK));
	if (!s) {
		nvemu_req_complete(req, SC_NOMEM); /* the old block is still cmd_priv */
		return;
	}
	req->cmd_priv = s;
	s->bounce = (uint8_t *)(s + 1);
	s->nr = nr;
	s->dst = sdlba << ns->lba_shift;
	s->total = blocks << ns->lba_shift;
	s->success = copy_success;
	seq_run(s);
}

/* ---- transfer sizes for transports */

int64_t nvemu_io_expected_len(struct nvemu_ctrl *ctrl, const struct nvemu_sqe *cmd)
{
	const struct nvemu_ns *ns;

	switch (cmd->opc) {
	case nvme_cmd_read:
	case nvme_cmd_write:
	case nvme_cmd_compare:
		ns = nvemu_ctrl_find_ns(ctrl, le32toh(cmd->nsid));
		if (!ns)
			return -1;
		return (int64_t)cmd_nlb(cmd) << ns->lba_shift;
	case nvme_cmd_dsm:
		return ((int64_t)(le32toh(cmd->cdw10) & 0xff) + 1) * sizeof(struct nvme_dsm_range);
	case nvme_cmd_copy:
		return ((int64_t)(le32toh(cmd->cdw12) & 0xff) + 1) * sizeof(struct nvme_copy_range);
	case nvme_cmd_resv_register:
	case nvme_cmd_resv_acquire:
		return 16; /* CRKEY + NRKEY / PRKEY */
	case nvme_cmd_resv_release:
		return 8; /* CRKEY */
	case nvme_cmd_resv_report:
		return ((int64_t)le32toh(cmd->cdw10) + 1) * 4; /* NUMD, 0's based */
	default:
		return 0;
	}
}
