// SPDX-License-Identifier: MIT
/*
 * bdev_error_* methods: SPDK's error bdev ("EE_<base>") with its
 * bdev_error_inject_error parameters, plus nvemu's: an LBA range, a
 * probability with a seed, and the NVMe status a failure completes with.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rpc.h"

#define BDEV_NAME_MAX 63

static const struct {
	const char *name;
	uint32_t mask;
} io_types[] = {
	{"read", 1u << NVEMU_BIO_READ},
	{"write", 1u << NVEMU_BIO_WRITE},
	{"unmap", 1u << NVEMU_BIO_DEALLOCATE},
	{"flush", 1u << NVEMU_BIO_FLUSH},
	{"write_zeroes", 1u << NVEMU_BIO_WRITE_ZEROES},
	{"all", (1u << NVEMU_BIO_READ) | (1u << NVEMU_BIO_WRITE) | (1u << NVEMU_BIO_DEALLOCATE) |
			(1u << NVEMU_BIO_FLUSH) | (1u << NVEMU_BIO_WRITE_ZEROES)},
};

static const char *const error_types[] = {
	[NVEMU_BDEV_ERROR_FAILURE] = "failure",
	[NVEMU_BDEV_ERROR_PENDING] = "pending",
	[NVEMU_BDEV_ERROR_CORRUPT_DATA] = "corrupt_data",
	[NVEMU_BDEV_ERROR_NOMEM] = "nomem",
};

/* Statuses by name (NVMe Base 2.0 Figures 101 and 104); any other by sct/sc. */
static const struct {
	const char *name;
	uint16_t status;
} statuses[] = {
	{"write_fault", NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT)},
	{"unrecovered_read_error", NVEMU_SC_MEDIA(NVME_SC_READ_ERROR)},
	{"guard_check_error", NVEMU_SC_MEDIA(NVME_SC_GUARD_CHECK) | NVEMU_DNR},
	{"application_tag_check_error", NVEMU_SC_MEDIA(NVME_SC_APPTAG_CHECK) | NVEMU_DNR},
	{"reference_tag_check_error", NVEMU_SC_MEDIA(NVME_SC_REFTAG_CHECK) | NVEMU_DNR},
	{"compare_failure", NVEMU_SC_MEDIA(NVME_SC_COMPARE_FAILED) | NVEMU_DNR},
	{"access_denied", NVEMU_SC_MEDIA(NVME_SC_ACCESS_DENIED) | NVEMU_DNR},
	{"unwritten_block", NVEMU_SC_MEDIA(NVME_SC_UNWRITTEN_BLOCK) | NVEMU_DNR},
	{"internal_error", NVEMU_SC_GENERIC(NVME_SC_INTERNAL)},
	{"data_transfer_error", NVEMU_SC_GENERIC(NVME_SC_DATA_XFER_ERROR)},
	{"aborted_power_loss", NVEMU_SC_GENERIC(NVME_SC_POWER_LOSS)},
	{"namespace_not_ready", NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY)},
	{"capacity_exceeded", NVEMU_SC_GENERIC(NVME_SC_CAP_EXCEEDED) | NVEMU_DNR},
};

static struct nvemu_bdev *find_error(struct nvemud *d, const char *name, struct rpc_err *e)
{
	struct nvemud_bdev *b = nvemud_find_bdev(d, name);

	if (!b || nvemu_bdev_error_get(b->bdev, NULL, NULL, NULL, NULL)) {
		rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no error bdev %s", name ? name : "");
		return NULL;
	}
	return b->bdev;
}

int rpc_bdev_error_create_on(struct nvemud *d, const char *name, struct nvemud_bdev *base,
			     struct rpc_err *e)
{
	struct nvemu_error nerr = {0};
	struct nvemu_bdev *b;

	if (nvemud_find_bdev(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: bdev %s already exists", name);
	/* A namespace writes it directly: a second path to it is refused (SPDK's claim). */
	if (rpc_bdev_used_by_ns(d, base->bdev))
		return rpc_err_set(e, RPC_ERR_EXISTS,
				   "base_name: bdev %s is already used by a namespace", base->bdev->name);
	if (nvemu_bdev_error_create(name, base->bdev, &b, &nerr))
		return rpc_err_nvemu(e, &nerr);
	if (nvemud_add_bdev(d, b, NULL)) {
		nvemu_bdev_destroy(b, NULL);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

static int bdev_error_create(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *base_name = rpc_str(params, "base_name");
	const char *name = rpc_str(params, "name");
	struct nvemud_bdev *base = nvemud_find_bdev(d, base_name);
	char def[BDEV_NAME_MAX + 8];

	if (!name) {
		snprintf(def, sizeof(def), "EE_%s", base_name);
		name = def;
	}
	if (!base) {
		if (rpc_bdev_base_skipped(d, name, base_name))
			return 0;
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "base_name: no bdev %s", base_name);
	}
	if (rpc_bdev_error_create_on(d, name, base, e))
		return -1;
	*result = json_string(name);
	return 0;
}

static int bdev_error_delete(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");

	if (!find_error(d, name, e))
		return -1;
	return nvemud_bdev_delete(d, nvemud_find_bdev(d, name), e);
}

/* The status a failure completes with: by name, or by sct/sc (+ dnr). */
static int parse_status(json_t *params, uint16_t *st, struct rpc_err *e)
{
	const char *s = rpc_str(params, "status");

	*st = 0;
	if (s) {
		for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
			if (!strcmp(s, statuses[i].name)) {
				*st = statuses[i].status;
				return 0;
			}
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "status: unknown status %s (write_fault, unrecovered_read_error, "
				   "guard_check_error, access_denied, internal_error, ... or sct/sc)",
				   s);
	}
	if (rpc_has(params, "sc") || rpc_has(params, "sct")) {
		if (!rpc_has(params, "sc"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "sc: required with sct");
		*st = NVEMU_STATUS(rpc_uint(params, "sct", 0), rpc_uint(params, "sc", 0));
		if (!(*st & 0x7ff))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "sc: sct 0 sc 0 is success, not an error");
		if (rpc_bool(params, "dnr", false))
			*st |= NVEMU_DNR;
	}
	return 0;
}

static int bdev_error_inject_error(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	struct nvemu_bdev *bdev = find_error(d, rpc_str(params, "name"), e);
	const char *io = rpc_str(params, "io_type");
	const char *et = rpc_str(params, "error_type");
	struct nvemu_bdev_error_rule r = {0};
	struct nvemu_error nerr = {0};
	uint64_t off, nb;
	bool found = false;

	if (!bdev) {
		if (d->lenient_config && rpc_bdev_skipped(d, rpc_str(params, "name")))
			return 0;
		return -1;
	}
	if (!strcmp(io, "clear")) {
		nvemu_bdev_error_clear(bdev);
		return 0;
	}
	for (size_t i = 0; i < sizeof(io_types) / sizeof(io_types[0]); i++)
		if (!strcmp(io, io_types[i].name)) {
			r.io_mask = io_types[i].mask;
			found = true;
		}
	if (!found)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "io_type: one of clear, read, write, unmap, flush, write_zeroes, "
				   "all; got %s",
				   io);
	if (!et)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "error_type: required");
	found = false;
	for (size_t i = 0; i < sizeof(error_types) / sizeof(error_types[0]); i++)
		if (!strcmp(et, error_types[i])) {
			r.type = (enum nvemu_bdev_error_type)i;
			found = true;
		}
	if (!found)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "error_type: one of failure, pending, corrupt_data, nomem; got %s",
				   et);
	r.num = (uint32_t)rpc_uint(params, "num", 1);
	r.queue_depth = (uint32_t)rpc_uint(params, "queue_depth", 0);
	r.corrupt_offset = rpc_uint(params, "corrupt_offset", 0);
	r.corrupt_value = (uint8_t)rpc_uint(params, "corrupt_value", 0);
	if (r.type == NVEMU_BDEV_ERROR_CORRUPT_DATA && !r.corrupt_value)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "corrupt_value: required (1-255) with error_type corrupt_data");
	off = rpc_uint(params, "offset_blocks", 0);
	nb = rpc_uint(params, "num_blocks", 0);
	if (off > bdev->size / bdev->blk_size || nb > bdev->size / bdev->blk_size - off)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "offset_blocks: blocks %llu+%llu are beyond the %llu of bdev %s",
				   (unsigned long long)off, (unsigned long long)nb,
				   (unsigned long long)(bdev->size / bdev->blk_size), bdev->name);
	r.offset = off * bdev->blk_size;
	r.len = nb * bdev->blk_size;
	if (rpc_has(params, "offset_blocks") && !nb)
		r.len = bdev->size - r.offset;
	r.probability_ppm = (uint32_t)rpc_uint(params, "probability", 100) * 10000u;
	if (parse_status(params, &r.status, e))
		return -1;
	if (r.status && r.type != NVEMU_BDEV_ERROR_FAILURE)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "status: only with error_type failure");
	if (rpc_has(params, "seed"))
		nvemu_bdev_error_set_seed(bdev, rpc_uint(params, "seed", 0));
	if (nvemu_bdev_error_inject(bdev, &r, &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static json_t *io_mask_json(uint32_t mask)
{
	json_t *a = json_array();

	for (size_t i = 0; i + 1 < sizeof(io_types) / sizeof(io_types[0]); i++)
		if (mask & io_types[i].mask)
			json_array_append_new(a, json_string(io_types[i].name));
	return a;
}

/* A rule as the bdev_error_inject_error params that re-create it (one per I/O type). */
static json_t *rule_params(struct nvemu_bdev *bdev, const struct nvemu_bdev_error_rule *r,
			   const char *io_type)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:I}", "name", bdev->name, "io_type", io_type,
			      "error_type", error_types[r->type], "num", (json_int_t)r->num);

	if (r->queue_depth)
		json_object_set_new(p, "queue_depth", json_integer(r->queue_depth));
	if (r->type == NVEMU_BDEV_ERROR_CORRUPT_DATA) {
		json_object_set_new(p, "corrupt_offset", json_integer((json_int_t)r->corrupt_offset));
		json_object_set_new(p, "corrupt_value", json_integer(r->corrupt_value));
	}
	if (r->offset || r->len) {
		json_object_set_new(p, "offset_blocks",
				    json_integer((json_int_t)(r->offset / bdev->blk_size)));
		json_object_set_new(p, "num_blocks",
				    json_integer((json_int_t)(r->len / bdev->blk_size)));
	}
	if (r->probability_ppm && r->probability_ppm < NVEMU_BDEV_ERROR_PPM)
		json_object_set_new(p, "probability", json_integer(r->probability_ppm / 10000));
	if (r->status) {
		json_object_set_new(p, "sct", json_integer(nvemu_status_sct(r->status)));
		json_object_set_new(p, "sc", json_integer(nvemu_status_sc(r->status)));
		json_object_set_new(p, "dnr", json_boolean(r->status & NVEMU_DNR));
	}
	return p;
}

static int bdev_error_list(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	json_t *arr;

	if (name && !find_error(d, name, e))
		return -1;
	arr = json_array();
	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		struct nvemu_bdev *bdev = d->bdevs[i].bdev;
		struct nvemu_bdev_error_rule rules[NVEMU_BDEV_ERROR_MAX_RULES];
		unsigned nr = NVEMU_BDEV_ERROR_MAX_RULES, pending;
		struct nvemu_bdev *base;
		json_t *o, *ra;

		if (nvemu_bdev_error_get(bdev, &base, rules, &nr, &pending) ||
		    (name && strcmp(name, bdev->name)))
			continue;
		ra = json_array();
		for (unsigned k = 0; k < nr; k++) {
			json_t *r = rule_params(bdev, &rules[k], "all");

			json_object_del(r, "name");
			json_object_set_new(r, "io_type", io_mask_json(rules[k].io_mask));
			json_object_set_new(r, "injected", json_integer((json_int_t)rules[k].injected));
			json_array_append_new(ra, r);
		}
		o = json_pack("{s:s, s:s, s:o, s:i, s:i}", "name", bdev->name, "base_name",
			      base->name, "rules", ra, "pending", (int)pending, "inflight",
			      (int)nvemu_bdev_inflight(bdev));
		json_array_append_new(arr, o);
	}
	*result = arr;
	return 0;
}

json_t *rpc_bdev_error_params(struct nvemu_bdev *bdev)
{
	struct nvemu_bdev *base;

	if (nvemu_bdev_error_get(bdev, &base, NULL, NULL, NULL))
		return NULL;
	return json_pack("{s:s, s:s}", "name", bdev->name, "base_name", base->name);
}

json_t *rpc_bdev_error_rules(struct nvemu_bdev *bdev)
{
	struct nvemu_bdev_error_rule rules[NVEMU_BDEV_ERROR_MAX_RULES];
	unsigned nr = NVEMU_BDEV_ERROR_MAX_RULES;
	json_t *a = json_array();

	if (nvemu_bdev_error_get(bdev, NULL, rules, &nr, NULL))
		return a;
	for (unsigned k = 0; k < nr; k++) {
		if (!rules[k].num)
			continue; /* used up: it would remove the others */
		size_t all = sizeof(io_types) / sizeof(io_types[0]) - 1;

		if (rules[k].io_mask == io_types[all].mask) {
			json_array_append_new(a, rule_params(bdev, &rules[k], "all"));
			continue;
		}
		/* Another mix of types is saved per type, in the order it matches. */
		for (size_t i = 0; i < all; i++)
			if (rules[k].io_mask & io_types[i].mask)
				json_array_append_new(a,
						      rule_params(bdev, &rules[k], io_types[i].name));
	}
	return a;
}

#define P_BDEV(n, req) { n, RPC_P_STR, req, 1, BDEV_NAME_MAX }

const struct rpc_method rpc_bdev_error_methods[] = {
	{"bdev_error_create", bdev_error_create,
	 (const struct rpc_param[]){P_BDEV("base_name", true), P_BDEV("name", false), {0}},
	 "Create an error-injection bdev over base_name, named EE_<base_name> unless name is "
	 "given; it passes I/O through until bdev_error_inject_error adds a rule."},
	{"bdev_error_delete", bdev_error_delete,
	 (const struct rpc_param[]){P_BDEV("name", true), {0}},
	 "Delete an error bdev no namespace uses (its base bdev stays)."},
	{"bdev_error_inject_error", bdev_error_inject_error,
	 (const struct rpc_param[]){P_BDEV("name", true),
				    {"io_type", RPC_P_STR, true, 1, 16},
				    {"error_type", RPC_P_STR, false, 1, 16},
				    {"num", RPC_P_UINT, false, 0, UINT32_MAX},
				    {"queue_depth", RPC_P_UINT, false, 0, UINT32_MAX},
				    {"corrupt_offset", RPC_P_UINT, false, 0, UINT32_MAX},
				    {"corrupt_value", RPC_P_UINT, false, 1, 255},
				    {"offset_blocks", RPC_P_UINT, false, 0, UINT64_MAX >> 1},
				    {"num_blocks", RPC_P_UINT, false, 0, UINT64_MAX >> 1},
				    {"probability", RPC_P_UINT, false, 1, 100},
				    {"seed", RPC_P_UINT, false, 0, UINT64_MAX >> 1},
				    {"status", RPC_P_STR, false, 1, 40},
				    {"sct", RPC_P_UINT, false, 0, 7},
				    {"sc", RPC_P_UINT, false, 0, 255},
				    {"dnr", RPC_P_BOOL, false, 0, 0},
				    {0}},
	 "Add a fault rule to an error bdev (SPDK's parameters): io_type clear|read|write|unmap|"
	 "flush|write_zeroes|all, error_type failure|pending|corrupt_data|nomem, num I/Os "
	 "(default 1; 0 removes the rules on io_type; 4294967295: no limit), queue_depth, "
	 "corrupt_offset/corrupt_value. nvemu's: offset_blocks/num_blocks (an LBA range of the "
	 "bdev), probability (percent), seed, and status (a name such as unrecovered_read_error, "
	 "write_fault, guard_check_error, access_denied, internal_error) or sct/sc/dnr for "
	 "failure. pending holds I/O until cleared (io_type clear) or aborted by the host."},
	{"bdev_error_list", bdev_error_list,
	 (const struct rpc_param[]){P_BDEV("name", false), {0}},
	 "List error bdevs: base, rules with their remaining and injected counts, I/O held "
	 "pending and in flight."},
	{0},
};
