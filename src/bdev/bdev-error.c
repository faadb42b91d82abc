/* SPDX-License-Identifier: MIT */
/*
 * The error backend, after SPDK's error vbdev: every bio goes to a base
 * bdev unless a rule injects a fault into it. Rules select bios by type,
 * byte range, queue depth and a probability drawn from a seeded generator
 * (tests repeat), and fail them with an exact NVMe status, hold them for
 * ever (a device that stops completing), corrupt one byte of their data,
 * or refuse them as out of memory. Held bios leave through cancel()
 * (controller reset, Abort, teardown) or when the rules are cleared.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "engine/nvemu-internal.h"

struct err_io {
	TAILQ_ENTRY(err_io) link;
	struct error_bdev *eb;
	struct nvemu_bio *bio;	/* the caller's */
	struct nvemu_bio child; /* the same I/O on the base */
	uint8_t *bounce;	/* a write whose data is corrupted */
	uint64_t corrupt_at;	/* read: byte of bio->buf to XOR after the base read it */
	uint8_t corrupt_value;	/* 0: none */
	bool on_base;
};

TAILQ_HEAD(err_list, err_io);

struct error_bdev {
	struct nvemu_bdev bdev;
	struct nvemu_bdev *base;
	struct nvemu_bdev_error_rule rules[NVEMU_BDEV_ERROR_MAX_RULES];
	unsigned nr_rules;
	uint64_t rng;
	struct err_list pending; /* held by a PENDING rule */
	struct err_list on_base; /* passed to the base, not back yet */
	unsigned inflight;
};

static const struct nvemu_bdev_ops error_ops;

static struct error_bdev *to_eb(struct nvemu_bdev *bdev)
{
	return (struct error_bdev *)bdev;
}

/* xorshift64*: small, seedable, good enough to pick 1 bio in N. */
static uint64_t rng_next(struct error_bdev *eb)
{
	uint64_t x = eb->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	eb->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint16_t default_status(enum nvemu_bio_op op)
{
	switch (op) {
	case NVEMU_BIO_READ:
		return NVEMU_SC_MEDIA(NVME_SC_READ_ERROR);
	case NVEMU_BIO_WRITE:
	case NVEMU_BIO_WRITE_ZEROES:
		return NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT);
	default:
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	}
}

static bool rule_matches(struct error_bdev *eb, const struct nvemu_bdev_error_rule *r,
			 const struct nvemu_bio *bio)
{
	if (!(r->io_mask & (1u << bio->op)) || !r->num)
		return false;
	/* Flush has no range: a ranged rule still applies to it if it names flushes. */
	if (bio->op != NVEMU_BIO_FLUSH) {
		uint64_t end = r->len ? r->offset + r->len : UINT64_MAX;

		if (bio->offset >= end || bio->offset + bio->len <= r->offset)
			return false;
	}
	if (r->queue_depth > 1 && eb->inflight + 1 < r->queue_depth)
		return false;
	if (r->probability_ppm && r->probability_ppm < NVEMU_BDEV_ERROR_PPM &&
	    rng_next(eb) % NVEMU_BDEV_ERROR_PPM >= r->probability_ppm)
		return false;
	return true;
}

static struct nvemu_bdev_error_rule *find_rule(struct error_bdev *eb, const struct nvemu_bio *bio)
{
	for (unsigned i = 0; i < eb->nr_rules; i++)
		if (rule_matches(eb, &eb->rules[i], bio))
			return &eb->rules[i];
	return NULL;
}

static void io_free(struct err_io *io)
{
	free(io->bounce);
	free(io);
}

static void base_done(struct nvemu_bio *child, int err)
{
	struct err_io *io = child->private;
	struct error_bdev *eb = io->eb;
	struct nvemu_bio *bio = io->bio;

	TAILQ_REMOVE(&eb->on_base, io, link);
	if (!err && io->corrupt_value && bio->op == NVEMU_BIO_READ && io->corrupt_at < bio->len)
		((uint8_t *)bio->buf)[io->corrupt_at] ^= io->corrupt_value;
	bio->status = child->status; /* a stacked error bdev's exact status */
	bio->fail_offset = child->fail_offset;
	eb->inflight--;
	io_free(io);
	bio->end_io(bio, err);
}

/* Hand io to the base; 0, or the base's refusal (io is then freed). */
static int to_base(struct error_bdev *eb, struct err_io *io)
{
	struct nvemu_bio *bio = io->bio;
	int rc;

	io->child = (struct nvemu_bio){
		.op = bio->op,
		.offset = bio->offset,
		.len = bio->len,
		.buf = io->bounce ? io->bounce : bio->buf,
		.fua = bio->fua,
		.end_io = base_done,
		.private = io,
	};
	TAILQ_INSERT_TAIL(&eb->on_base, io, link);
	rc = nvemu_bdev_submit(eb->base, &io->child);
	if (rc) {
		TAILQ_REMOVE(&eb->on_base, io, link);
		io_free(io);
	}
	return rc;
}

static int error_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct error_bdev *eb = to_eb(bdev);
	struct nvemu_bdev_error_rule *r = find_rule(eb, bio);
	struct err_io *io;
	int rc;

	if (r && r->type == NVEMU_BDEV_ERROR_NOMEM) {
		r->num -= r->num != NVEMU_BDEV_ERROR_FOREVER;
		r->injected++;
		return -ENOMEM;
	}
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->eb = eb;
	io->bio = bio;
	if (r && r->type == NVEMU_BDEV_ERROR_CORRUPT_DATA && bio->buf && r->corrupt_offset < bio->len) {
		if (bio->op == NVEMU_BIO_WRITE) {
			/* Never write into the host's buffer: corrupt a copy. */
			io->bounce = malloc(bio->len);
			if (!io->bounce) {
				free(io);
				return -ENOMEM;
			}
			memcpy(io->bounce, bio->buf, bio->len);
			io->bounce[r->corrupt_offset] ^= r->corrupt_value;
		} else {
			io->corrupt_at = r->corrupt_offset;
			io->corrupt_value = r->corrupt_value;
		}
	} else if (r && r->type == NVEMU_BDEV_ERROR_CORRUPT_DATA) {
		r = NULL; /* nothing to corrupt in this bio: the injection is not used up */
	}
	if (r) {
		r->num -= r->num != NVEMU_BDEV_ERROR_FOREVER;
		r->injected++;
	}
	eb->inflight++;
	if (r && r->type == NVEMU_BDEV_ERROR_FAILURE) {
		uint16_t st = r->status ? r->status : default_status(bio->op);

		eb->inflight--;
		free(io);
		bio->status = st;
		/* The first LBA of the range that failed, as a drive reports it. */
		bio->fail_offset = bio->offset > r->offset ? bio->offset : r->offset;
		bio->end_io(bio, -EIO);
		return 0;
	}
	if (r && r->type == NVEMU_BDEV_ERROR_PENDING) {
		TAILQ_INSERT_TAIL(&eb->pending, io, link);
		return 0;
	}
	rc = to_base(eb, io);
	if (rc)
		eb->inflight--;
	return rc;
}

static int error_poll(struct nvemu_bdev *bdev)
{
	return nvemu_bdev_poll(to_eb(bdev)->base);
}

/*
 * The base's fd: an event loop that registers the base already watches it
 * (adding it again fails harmlessly); an in-process caller polls it through us.
 */
static int error_get_fd(struct nvemu_bdev *bdev)
{
	return nvemu_bdev_get_fd(to_eb(bdev)->base);
}

static unsigned error_inflight(struct nvemu_bdev *bdev)
{
	return to_eb(bdev)->inflight;
}

static int error_cancel(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct error_bdev *eb = to_eb(bdev);
	struct err_io *io;

	TAILQ_FOREACH(io, &eb->pending, link) {
		if (io->bio != bio)
			continue;
		TAILQ_REMOVE(&eb->pending, io, link);
		eb->inflight--;
		io_free(io);
		bio->end_io(bio, -ECANCELED);
		return 0;
	}
	TAILQ_FOREACH(io, &eb->on_base, link)
		if (io->bio == bio)
			return nvemu_bdev_cancel(eb->base, &io->child);
	return -ENOENT;
}

static void error_destroy(struct nvemu_bdev *bdev)
{
	struct error_bdev *eb = to_eb(bdev);

	/* nvemu_bdev_destroy() only lets an idle bdev go: nothing is held. */
	eb->base->users--;
	free(eb);
}

static const struct nvemu_bdev_ops error_ops = {
	.type = "error",
	.submit = error_submit,
	.poll = error_poll,
	.get_fd = error_get_fd,
	.inflight = error_inflight,
	.destroy = error_destroy,
	.cancel = error_cancel,
};

int nvemu_bdev_error_create(const char *name, struct nvemu_bdev *base, struct nvemu_bdev **out,
			    struct nvemu_error *err)
{
	struct error_bdev *eb;
	int rc;

	if (!base)
		return nvemu_error_set(err, -EINVAL, "error: base_name: required");
	eb = calloc(1, sizeof(*eb));
	if (!eb)
		return nvemu_error_set(err, -ENOMEM, "error: out of memory");
	rc = nvemu_bdev_init(&eb->bdev, &error_ops, name, base->size, base->blk_size, err);
	if (rc) {
		free(eb);
		return rc;
	}
	eb->bdev.read_only = base->read_only;
	eb->bdev.priv = eb;
	eb->base = base;
	eb->rng = 0x9e3779b97f4a7c15ull;
	TAILQ_INIT(&eb->pending);
	TAILQ_INIT(&eb->on_base);
	base->users++;
	*out = &eb->bdev;
	return 0;
}

static struct error_bdev *get_eb(struct nvemu_bdev *bdev)
{
	return bdev && bdev->ops == &error_ops ? to_eb(bdev) : NULL;
}

#define IO_MASK_ALL                                                                  \
	((1u << NVEMU_BIO_READ) | (1u << NVEMU_BIO_WRITE) | (1u << NVEMU_BIO_FLUSH) | \
	 (1u << NVEMU_BIO_WRITE_ZEROES) | (1u << NVEMU_BIO_DEALLOCATE))

static int check_rule(const struct error_bdev *eb, const struct nvemu_bdev_error_rule *r,
		      struct nvemu_error *err)
{
	if (!r->io_mask || (r->io_mask & ~IO_MASK_ALL))
		return nvemu_error_set(err, -EINVAL, "io_type: no I/O type selected");
	if (r->type > NVEMU_BDEV_ERROR_NOMEM)
		return nvemu_error_set(err, -EINVAL, "error_type: unknown");
	if (r->offset > eb->bdev.size || r->len > eb->bdev.size - r->offset)
		return nvemu_error_set(err, -ERANGE,
				       "offset_blocks: range beyond the end of bdev %s (%llu bytes)",
				       eb->bdev.name, (unsigned long long)eb->bdev.size);
	if (r->probability_ppm > NVEMU_BDEV_ERROR_PPM)
		return nvemu_error_set(err, -EINVAL, "probability: at most 100 percent");
	if (r->type == NVEMU_BDEV_ERROR_CORRUPT_DATA && !r->corrupt_value)
		return nvemu_error_set(err, -EINVAL, "corrupt_value: 1 to 255 for corrupt_data");
	if (r->type == NVEMU_BDEV_ERROR_FAILURE && r->status &&
	    !(r->status & (NVME_SC_MASK | (NVME_SCT_MASK << NVME_SCT_SHIFT))))
		return nvemu_error_set(err, -EINVAL, "status: 0 is success, not a failure");
	return 0;
}

/* Held bios no rule holds any more go on to the base (in arrival order). */
static void release_pending(struct error_bdev *eb)
{
	struct err_list keep = TAILQ_HEAD_INITIALIZER(keep);
	struct err_io *io;

	TAILQ_INIT(&keep);
	while ((io = TAILQ_FIRST(&eb->pending))) {
		struct nvemu_bio *bio = io->bio;
		bool held = false;
		int rc;

		TAILQ_REMOVE(&eb->pending, io, link);
		for (unsigned i = 0; i < eb->nr_rules; i++)
			if (eb->rules[i].type == NVEMU_BDEV_ERROR_PENDING &&
			    (eb->rules[i].io_mask & (1u << bio->op)))
				held = true;
		if (held) {
			TAILQ_INSERT_TAIL(&keep, io, link);
			continue;
		}
		rc = to_base(eb, io);
		if (rc) {
			eb->inflight--;
			bio->end_io(bio, rc);
		}
	}
	TAILQ_CONCAT(&eb->pending, &keep, link);
}

int nvemu_bdev_error_inject(struct nvemu_bdev *bdev, const struct nvemu_bdev_error_rule *rule,
			    struct nvemu_error *err)
{
	struct error_bdev *eb = get_eb(bdev);
	int rc;

	if (!eb)
		return nvemu_error_set(err, -EINVAL, "name: not an error bdev");
	if (!rule)
		return nvemu_error_set(err, -EINVAL, "rule: required");
	rc = check_rule(eb, rule, err);
	if (rc)
		return rc;
	if (!rule->num) {
		/* SPDK: num 0 disables the injection on these I/O types. */
		for (unsigned i = 0; i < eb->nr_rules;) {
			eb->rules[i].io_mask &= ~rule->io_mask;
			if (!eb->rules[i].io_mask) {
				memmove(&eb->rules[i], &eb->rules[i + 1],
					(eb->nr_rules - i - 1) * sizeof(eb->rules[0]));
				eb->nr_rules--;
				continue;
			}
			i++;
		}
		release_pending(eb);
		return 0;
	}
	if (eb->nr_rules == NVEMU_BDEV_ERROR_MAX_RULES)
		return nvemu_error_set(err, -ENOSPC, "name: bdev %s already has %u rules",
				       bdev->name, NVEMU_BDEV_ERROR_MAX_RULES);
	eb->rules[eb->nr_rules] = *rule;
	eb->rules[eb->nr_rules].injected = 0;
	eb->nr_rules++;
	return 0;
}

int nvemu_bdev_error_clear(struct nvemu_bdev *bdev)
{
	struct error_bdev *eb = get_eb(bdev);

	if (!eb)
		return -EINVAL;
	eb->nr_rules = 0;
	release_pending(eb);
	return 0;
}

int nvemu_bdev_error_set_seed(struct nvemu_bdev *bdev, uint64_t seed)
{
	struct error_bdev *eb = get_eb(bdev);

	if (!eb)
		return -EINVAL;
	/* xorshift must never hold 0. */
	eb->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	return 0;
}

int nvemu_bdev_error_get(struct nvemu_bdev *bdev, struct nvemu_bdev **base,
			 struct nvemu_bdev_error_rule *rules, unsigned *nr, unsigned *pending)
{
	struct error_bdev *eb = get_eb(bdev);

	if (!eb)
		return -EINVAL;
	if (base)
		*base = eb->base;
	if (nr) {
		unsigned n = eb->nr_rules < *nr ? eb->nr_rules : *nr;

		if (rules)
			memcpy(rules, eb->rules, n * sizeof(*rules));
		*nr = eb->nr_rules;
	}
	if (pending) {
		struct err_io *io;

		*pending = 0;
		TAILQ_FOREACH(io, &eb->pending, link)
			(*pending)++;
	}
	return 0;
}
