/* SPDX-License-Identifier: MIT */
/* The null backend: reads return zeroes, writes are dropped, all inline. */
#include <errno.h>
#include <stdlib.h>

#include "engine/nvemu-internal.h"

static int null_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	(void)bdev;
	if (bio->op == NVEMU_BIO_READ)
		memset(bio->buf, 0, bio->len);
	bio->end_io(bio, 0);
	return 0;
}

static unsigned null_inflight(struct nvemu_bdev *bdev)
{
	(void)bdev;
	return 0;
}

static int null_resize(struct nvemu_bdev *bdev, uint64_t new_size)
{
	bdev->size = new_size;
	return 0;
}

static void null_destroy(struct nvemu_bdev *bdev)
{
	free(bdev);
}

static const struct nvemu_bdev_ops null_ops = {
	.type = "null",
	.submit = null_submit,
	.inflight = null_inflight,
	.resize = null_resize,
	.destroy = null_destroy,
};

int nvemu_bdev_null_create(const char *name, uint64_t size, uint32_t blk_size,
			   struct nvemu_bdev **out, struct nvemu_error *err)
{
	struct nvemu_bdev *bdev = calloc(1, sizeof(*bdev));
	int rc;

	if (!bdev)
		return nvemu_error_set(err, -ENOMEM, "null: out of memory");
	rc = nvemu_bdev_init(bdev, &null_ops, name, size, blk_size, err);
	if (rc) {
		free(bdev);
		return rc;
	}
	*out = bdev;
	return 0;
}
