/* SPDX-License-Identifier: MIT */
/*
 * The RAM backend, sparse: data lives in 64 KiB chunks allocated on first
 * write, found through a two-level table whose leaves are allocated lazily
 * too. Only the top level (8 bytes per 32 MiB) exists up front, so a
 * thousand 1 GiB namespaces cost a few hundred KiB until written.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/nvemu-internal.h"

#define CHUNK_SHIFT  16
#define CHUNK_SIZE   (1ull << CHUNK_SHIFT)
#define CHUNK_MASK   (CHUNK_SIZE - 1)
#define LEAF_SHIFT   9
#define LEAF_ENTRIES (1u << LEAF_SHIFT)

struct ram_leaf {
	unsigned nr; /* chunks allocated in this leaf */
	uint8_t *chunk[LEAF_ENTRIES];
};

struct ram_bdev {
	struct nvemu_bdev bdev;
	struct ram_leaf **top;
	uint64_t nr_top;
	uint64_t resident; /* bytes of chunk data held */
};

static const struct nvemu_bdev_ops ram_ops;

static struct ram_bdev *to_ram(struct nvemu_bdev *bdev)
{
	return (struct ram_bdev *)bdev;
}

static uint64_t top_entries(uint64_t size)
{
	uint64_t chunks = (size >> CHUNK_SHIFT) + !!(size & CHUNK_MASK);

	return (chunks + LEAF_ENTRIES - 1) >> LEAF_SHIFT;
}

static uint8_t *chunk_get(struct ram_bdev *r, uint64_t ci, bool alloc)
{
	uint64_t ti = ci >> LEAF_SHIFT;
	unsigned li = ci & (LEAF_ENTRIES - 1);
	struct ram_leaf *leaf = r->top[ti];

	if (!leaf) {
		if (!alloc)
			return NULL;
		leaf = calloc(1, sizeof(*leaf));
		if (!leaf)
			return NULL;
		r->top[ti] = leaf;
	}
	if (!leaf->chunk[li] && alloc) {
		leaf->chunk[li] = calloc(1, CHUNK_SIZE);
		if (!leaf->chunk[li])
			return NULL;
		leaf->nr++;
		r->resident += CHUNK_SIZE;
	}
	return leaf->chunk[li];
}

static void chunk_free(struct ram_bdev *r, uint64_t ci)
{
	uint64_t ti = ci >> LEAF_SHIFT;
	unsigned li = ci & (LEAF_ENTRIES - 1);
	struct ram_leaf *leaf = r->top[ti];

	if (!leaf || !leaf->chunk[li])
		return;
	free(leaf->chunk[li]);
	leaf->chunk[li] = NULL;
	r->resident -= CHUNK_SIZE;
	if (--leaf->nr == 0) {
		free(leaf);
		r->top[ti] = NULL;
	}
}

/* Zero [off, off+len): whole chunks are freed, partial ones cleared. */
static void ram_zero(struct ram_bdev *r, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t ci = off >> CHUNK_SHIFT, co = off & CHUNK_MASK;
		uint64_t n = CHUNK_SIZE - co < len ? CHUNK_SIZE - co : len;

		if (n == CHUNK_SIZE) {
			chunk_free(r, ci);
		} else {
			uint8_t *c = chunk_get(r, ci, false);

			if (c)
				memset(c + co, 0, n);
		}
		off += n;
		len -= n;
	}
}

static int ram_rw(struct ram_bdev *r, struct nvemu_bio *bio)
{
	uint64_t off = bio->offset, len = bio->len;
	uint8_t *buf = bio->buf;

	while (len) {
		uint64_t ci = off >> CHUNK_SHIFT, co = off & CHUNK_MASK;
		uint64_t n = CHUNK_SIZE - co < len ? CHUNK_SIZE - co : len;
		uint8_t *c = chunk_get(r, ci, bio->op == NVEMU_BIO_WRITE);

		if (bio->op == NVEMU_BIO_READ) {
			if (c)
				memcpy(buf, c + co, n);
			else
				memset(buf, 0, n);
		} else {
			/* Out of memory is this backend's way of running out of capacity. */
			if (!c)
				return -ENOSPC;
			memcpy(c + co, buf, n);
		}
		off += n;
		len -= n;
		buf += n;
	}
	return 0;
}

static int ram_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct ram_bdev *r = to_ram(bdev);
	int err = 0;

	switch (bio->op) {
	case NVEMU_BIO_READ:
	case NVEMU_BIO_WRITE:
		err = ram_rw(r, bio);
		break;
	case NVEMU_BIO_WRITE_ZEROES:
	case NVEMU_BIO_DEALLOCATE:
		ram_zero(r, bio->offset, bio->len);
		break;
	case NVEMU_BIO_FLUSH:
		break;
	}
	bio->end_io(bio, err);
	return 0;
}

static unsigned ram_inflight(struct nvemu_bdev *bdev)
{
	(void)bdev;
	return 0;
}

static int ram_resize(struct nvemu_bdev *bdev, uint64_t new_size)
{
	struct ram_bdev *r = to_ram(bdev);
	uint64_t nr_top = top_entries(new_size);
	struct ram_leaf **top;

	if (new_size > NVEMU_BDEV_RAM_MAX_BYTES)
		return -EFBIG;
	if (nr_top > r->nr_top) {
		top = realloc(r->top, nr_top * sizeof(*top));
		if (!top)
			return -ENOMEM;
		memset(top + r->nr_top, 0, (nr_top - r->nr_top) * sizeof(*top));
		r->top = top;
		r->nr_top = nr_top;
	} else if (new_size < bdev->size) {
		uint64_t first = (new_size >> CHUNK_SHIFT) + !!(new_size & CHUNK_MASK);
		uint64_t last = (bdev->size >> CHUNK_SHIFT) + !!(bdev->size & CHUNK_MASK);

		/* Clear the tail of the last chunk so that growing again reads zeroes. */
		if (new_size & CHUNK_MASK)
			ram_zero(r, new_size, CHUNK_SIZE - (new_size & CHUNK_MASK));
		for (uint64_t ti = first >> LEAF_SHIFT; ti < r->nr_top; ti++)
			for (uint64_t ci = ti << LEAF_SHIFT; ci < last && r->top[ti]; ci++)
				if (ci >= first)
					chunk_free(r, ci);
		if (nr_top < r->nr_top) {
			/* Every leaf past nr_top is empty now; a failed shrink keeps the old array.
			 */
			if (!nr_top) {
				free(r->top);
				r->top = NULL;
				r->nr_top = 0;
			} else if ((top = realloc(r->top, nr_top * sizeof(*top)))) {
				r->top = top;
				r->nr_top = nr_top;
			}
		}
	}
	bdev->size = new_size;
	return 0;
}

static void ram_destroy(struct nvemu_bdev *bdev)
{
	struct ram_bdev *r = to_ram(bdev);

	for (uint64_t ti = 0; ti < r->nr_top; ti++) {
		struct ram_leaf *leaf = r->top[ti];

		if (!leaf)
			continue;
		for (unsigned i = 0; i < LEAF_ENTRIES; i++)
			free(leaf->chunk[i]);
		free(leaf);
	}
	free(r->top);
	free(r);
}

static const struct nvemu_bdev_ops ram_ops = {
	.type = "ram",
	.submit = ram_submit,
	.inflight = ram_inflight,
	.resize = ram_resize,
	.destroy = ram_destroy,
};

int nvemu_bdev_ram_create(const char *name, uint64_t size, uint32_t blk_size,
			  struct nvemu_bdev **out, struct nvemu_error *err)
{
	struct ram_bdev *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return nvemu_error_set(err, -ENOMEM, "ram: out of memory");
	/* The chunk directory grows with the capacity: bound it (16 MiB at the cap). */
	if (size > NVEMU_BDEV_RAM_MAX_BYTES) {
		free(r);
		return nvemu_error_set(err, -EINVAL, "ram %s: at most %llu TiB, asked %llu bytes",
				       name, NVEMU_BDEV_RAM_MAX_BYTES >> 40, (unsigned long long)size);
	}
	rc = nvemu_bdev_init(&r->bdev, &ram_ops, name, size, blk_size, err);
	if (rc) {
		free(r);
		return rc;
	}
	r->nr_top = top_entries(size);
	if (r->nr_top) {
		r->top = calloc(r->nr_top, sizeof(*r->top));
		if (!r->top) {
			free(r);
			return nvemu_error_set(
				err, -ENOMEM, "ram %s: out of memory for a %llu-byte table", name,
				(unsigned long long)(top_entries(size) * sizeof(void *)));
		}
	}
	r->bdev.priv = r;
	*out = &r->bdev;
	return 0;
}

uint64_t nvemu_bdev_ram_resident(struct nvemu_bdev *bdev)
{
	if (!bdev || bdev->ops != &ram_ops)
		return 0;
	return to_ram(bdev)->resident;
}
