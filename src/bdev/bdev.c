/* SPDX-License-Identifier: MIT */
/*
 * Backend-independent part of the bdev layer: argument checks shared by
 * every backend, so that backends only see bios that fit.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/nvemu-internal.h"

#define BDEV_BLK_MIN 512u
#define BDEV_BLK_MAX 65536u

int nvemu_bdev_init(struct nvemu_bdev *bdev, const struct nvemu_bdev_ops *ops, const char *name,
		    uint64_t size, uint32_t blk_size, struct nvemu_error *err)
{
	size_t len;

	if (!name)
		return nvemu_error_set(err, -EINVAL, "bdev name: required");
	len = strlen(name);
	if (len < 1 || len > sizeof(bdev->name) - 1)
		return nvemu_error_set(err, -EINVAL, "bdev name: 1 to %zu characters, got %zu",
				       sizeof(bdev->name) - 1, len);
	for (size_t i = 0; i < len; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == '/')
			return nvemu_error_set(err, -EINVAL,
					       "bdev name: printable ASCII without spaces or '/'");
	if (!blk_size)
		blk_size = BDEV_BLK_MIN;
	if (blk_size < BDEV_BLK_MIN || blk_size > BDEV_BLK_MAX || (blk_size & (blk_size - 1)))
		return nvemu_error_set(err, -EINVAL,
				       "bdev %s: block size %u is not a power of two in 512..65536",
				       name, blk_size);
	if (size % blk_size)
		return nvemu_error_set(err, -EINVAL,
				       "bdev %s: size %llu is not a multiple of the block size %u",
				       name, (unsigned long long)size, blk_size);
	memset(bdev, 0, sizeof(*bdev));
	bdev->ops = ops;
	memcpy(bdev->name, name, len + 1);
	bdev->size = size;
	bdev->blk_size = blk_size;
	return 0;
}

int nvemu_bdev_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	uint64_t end;

	if (!bdev || !bio || !bio->end_io)
		return -EINVAL;
	bio->bdev = bdev;
	switch (bio->op) {
	case NVEMU_BIO_FLUSH:
		return bdev->ops->submit(bdev, bio);
	case NVEMU_BIO_READ:
	case NVEMU_BIO_WRITE:
		if (bio->len && !bio->buf)
			return -EINVAL;
		break;
	case NVEMU_BIO_WRITE_ZEROES:
	case NVEMU_BIO_DEALLOCATE:
		break;
	default:
		return -EINVAL;
	}
	if (__builtin_add_overflow(bio->offset, bio->len, &end) || end > bdev->size)
		return -ERANGE;
	if (bio->op != NVEMU_BIO_READ && bdev->read_only)
		return -EROFS;
	/* Namespaces never issue I/O smaller than the backend's block. */
	if ((bio->offset | bio->len) & (bdev->blk_size - 1))
		return -EINVAL;
	if (!bio->len) {
		bio->end_io(bio, 0);
		return 0;
	}
	return bdev->ops->submit(bdev, bio);
}

int nvemu_bdev_poll(struct nvemu_bdev *bdev)
{
	if (!bdev || !bdev->ops->poll)
		return 0;
	return bdev->ops->poll(bdev);
}

int nvemu_bdev_flush_submit(struct nvemu_bdev *bdev)
{
	if (!bdev || !bdev->ops->flush_submit)
		return 0;
	return bdev->ops->flush_submit(bdev);
}

int nvemu_bdev_set_batching(struct nvemu_bdev *bdev, bool on)
{
	if (!bdev)
		return -EINVAL;
	if (!bdev->ops->flush_submit)
		return -EOPNOTSUPP;
	bdev->batch_submit = on;
	if (!on) {
		int rc = bdev->ops->flush_submit(bdev);

		return rc < 0 ? rc : 0;
	}
	return 0;
}

int nvemu_bdev_get_fd(struct nvemu_bdev *bdev)
{
	if (!bdev || !bdev->ops->get_fd)
		return -1;
	return bdev->ops->get_fd(bdev);
}

unsigned nvemu_bdev_inflight(struct nvemu_bdev *bdev)
{
	if (!bdev || !bdev->ops->inflight)
		return 0;
	return bdev->ops->inflight(bdev);
}

int nvemu_bdev_resize(struct nvemu_bdev *bdev, uint64_t new_size)
{
	if (!bdev)
		return -EINVAL;
	if (new_size % bdev->blk_size)
		return -EINVAL;
	if (new_size == bdev->size)
		return 0;
	if (!bdev->ops->resize)
		return -EOPNOTSUPP;
	return bdev->ops->resize(bdev, new_size);
}

int nvemu_bdev_destroy(struct nvemu_bdev *bdev, struct nvemu_error *err)
{
	unsigned n;

	if (!bdev)
		return 0;
	if (bdev->users)
		return nvemu_error_set(err, -EBUSY, "bdev %s: in use by %u namespace%s", bdev->name,
				       bdev->users, bdev->users == 1 ? "" : "s");
	n = nvemu_bdev_inflight(bdev);
	if (n)
		return nvemu_error_set(err, -EBUSY, "bdev %s: %u I/O%s still in flight", bdev->name,
				       n, n == 1 ? "" : "s");
	bdev->ops->destroy(bdev);
	return 0;
}
