// SPDX-License-Identifier: MIT
/* bdev_* methods: named backends that namespaces refer to, as in SPDK and SNAP. */
#include <errno.h>
#include <string.h>

#include "rpc.h"

#define BDEV_NAME_MAX 63

static int check_name(struct nvemud *d, const char *name, struct rpc_err *e)
{
	if (nvemud_find_bdev(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: bdev %s already exists", name);
	return 0;
}

static int check_geometry(json_t *params, uint64_t *size, uint32_t *bs, struct rpc_err *e)
{
	uint64_t nb = rpc_uint(params, "num_blocks", 0);

	*bs = (uint32_t)rpc_uint(params, "block_size", 512);
	if (*bs & (*bs - 1))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "block_size: must be a power of two in 512..65536");
	if (nb > UINT64_MAX / *bs)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "num_blocks: size in bytes overflows 64 bits");
	*size = nb * *bs;
	return 0;
}

static json_t *bdev_json(struct nvemud_bdev *b)
{
	struct nvemu_bdev *bd = b->bdev;
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:i}", "name", bd->name, "type",
			      bd->ops->type, "num_blocks", (json_int_t)(bd->size / bd->blk_size),
			      "block_size", (json_int_t)bd->blk_size, "read_only", bd->read_only,
			      "users", (int)bd->users);

	if (b->filename) {
		json_object_set_new(o, "filename", json_string(b->filename));
		json_object_set_new(o, "direct", json_boolean(b->direct));
	}
	return o;
}

static int register_new(struct nvemud *d, struct nvemu_bdev *b, const char *filename,
			json_t **result, struct rpc_err *e)
{
	if (nvemud_add_bdev(d, b, filename)) {
		nvemu_bdev_destroy(b, NULL);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	*result = json_string(b->name);
	return 0;
}

static int mem_create(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e,
		      bool ram)
{
	const char *name = rpc_str(params, "name");
	struct nvemu_error nerr = { 0 };
	struct nvemu_bdev *b;
	uint64_t size = 0;
	uint32_t bs = 512;
	int ret;

	if (check_name(d, name, e) || check_geometry(params, &size, &bs, e))
		return -1;
	if (ram)
		ret = nvemu_bdev_ram_create(name, size, bs, &b, &nerr);
	else
		ret = nvemu_bdev_null_create(name, size, bs, &b, &nerr);
	if (ret)
		return rpc_err_nvemu(e, &nerr);
	return register_new(d, b, NULL, result, e);
}

static int bdev_null_create(struct nvemud *d, json_t *params, json_t **result,
			    struct rpc_err *e)
{
	return mem_create(d, params, result, e, false);
}

static int bdev_malloc_create(struct nvemud *d, json_t *params, json_t **result,
			      struct rpc_err *e)
{
	return mem_create(d, params, result, e, true);
}

static int bdev_file_create(struct nvemud *d, json_t *params, json_t **result,
			    struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemu_bdev_file_opts o = { 0 };
	struct nvemu_error nerr = { 0 };
	struct nvemu_bdev *b;

	if (check_name(d, name, e))
		return -1;
	o.path = rpc_str(params, "filename");
	o.blk_size = (uint32_t)rpc_uint(params, "block_size", 512);
	if (o.blk_size & (o.blk_size - 1))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "block_size: must be a power of two in 512..65536");
	o.read_only = rpc_bool(params, "read_only", false);
	o.direct = rpc_bool(params, "direct", false);
	if (rpc_has(params, "num_blocks")) {
		uint64_t nb = rpc_uint(params, "num_blocks", 0);

		if (nb > UINT64_MAX / o.blk_size)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "num_blocks: size in bytes overflows 64 bits");
		o.size = nb * o.blk_size;
	}
	if (nvemu_bdev_file_create(name, &o, &b, &nerr)) {
		if (d->lenient_config && (nerr.code == -ENOENT || nerr.code == -EACCES ||
					  nerr.code == -EPERM || nerr.code == -ENOTDIR)) {
			/* Start-up: leave it and what depends on it out, start the rest. */
			nvemud_log(d, NVEMUD_LOG_ERR,
				   "bdev %s skipped: file %s: %s; its namespaces and attachments are skipped too",
				   name, o.path, nerr.msg);
			json_array_append_new(d->skipped, json_pack("{s:s, s:s, s:s}", "bdev",
								     name, "filename", o.path,
								     "error", nerr.msg));
			return 0;
		}
		return rpc_err_nvemu(e, &nerr);
	}
	if (register_new(d, b, o.path, result, e))
		return -1;
	d->bdevs[d->nr_bdevs - 1].direct = o.direct;
	d->bdevs[d->nr_bdevs - 1].sized = o.size != 0;
	return 0;
}

int nvemud_bdev_delete(struct nvemud *d, struct nvemud_bdev *b, struct rpc_err *e)
{
	struct nvemu_bdev *bdev = b->bdev;
	struct nvemu_error nerr = { 0 };

	if (bdev->users)
		return rpc_err_set(e, RPC_ERR_BUSY, "bdev %s is used by %u namespace(s)",
				   bdev->name, bdev->users);
	if (nvemu_bdev_inflight(bdev))
		return rpc_err_set(e, RPC_ERR_BUSY, "bdev %s has I/O in flight", bdev->name);
	/* Off the list first: destroying a Namespace Management bdev also unlists it. */
	nvemud_del_bdev(d, b);
	if (nvemu_bdev_destroy(bdev, &nerr)) {
		nvemud_add_bdev(d, bdev, NULL);
		return rpc_err_nvemu(e, &nerr);
	}
	return 0;
}

static int bdev_delete(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemud_bdev *b = nvemud_find_bdev(d, name);

	if (!b)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no bdev %s", name);
	return nvemud_bdev_delete(d, b, e);
}

static int bdev_list(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	json_t *arr = json_array();

	if (name && !nvemud_find_bdev(d, name)) {
		json_decref(arr);
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no bdev %s", name);
	}
	for (unsigned i = 0; i < d->nr_bdevs; i++)
		if (!name || !strcmp(name, d->bdevs[i].bdev->name))
			json_array_append_new(arr, bdev_json(&d->bdevs[i]));
	*result = arr;
	return 0;
}

#define P_NAME { "name", RPC_P_STR, true, 1, BDEV_NAME_MAX }
#define P_NB { "num_blocks", RPC_P_UINT, true, 1, INT64_MAX }
#define P_BS { "block_size", RPC_P_UINT, false, 512, 65536 }

const struct rpc_method rpc_bdev_methods[] = {
	{ "bdev_null_create", bdev_null_create,
	  (const struct rpc_param[]){ P_NAME, P_NB, P_BS, { .name = NULL } },
	  "Create a null bdev (reads return zeroes, writes are dropped)." },
	{ "bdev_malloc_create", bdev_malloc_create,
	  (const struct rpc_param[]){ P_NAME, P_NB, P_BS, { .name = NULL } },
	  "Create a RAM bdev (sparse; its data is not saved by save_config)." },
	{ "bdev_file_create", bdev_file_create,
	  (const struct rpc_param[]){ P_NAME,
				      { "filename", RPC_P_STR, true, 1, 4095 },
				      P_BS,
				      { "num_blocks", RPC_P_UINT, false, 1, INT64_MAX },
				      { "read_only", RPC_P_BOOL, false, 0, 1 },
				      { "direct", RPC_P_BOOL, false, 0, 1 },
				      { .name = NULL } },
	  "Create a bdev on a file or block device (io_uring)." },
	{ "bdev_delete", bdev_delete, (const struct rpc_param[]){ P_NAME, { .name = NULL } },
	  "Delete a bdev no namespace uses." },
	{ "bdev_list", bdev_list,
	  (const struct rpc_param[]){ { "name", RPC_P_STR, false, 1, BDEV_NAME_MAX }, { .name = NULL } },
	  "List bdevs." },
	{ .name = NULL },
};
