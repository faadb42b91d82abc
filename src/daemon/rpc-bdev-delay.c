// SPDX-License-Identifier: MIT
/*
 * bdev_delay_* methods: a bdev that adds a fixed latency to every I/O of a
 * base bdev (SPDK's bdev_delay_create), to keep commands in flight in tests.
 */
#include <errno.h>
#include <string.h>

#include "rpc.h"

#define BDEV_NAME_MAX 63

bool rpc_bdev_used_by_ns(struct nvemud *d, const struct nvemu_bdev *bdev)
{
	struct nvemu_ns *ns;

	for (unsigned i = 0; i < d->nr_subsys; i++)
		for (unsigned k = 0; (ns = nvemu_subsys_ns_at(d->subsys[i], k)); k++) {
			struct nvemu_ns_info ni;

			nvemu_ns_info(ns, &ni);
			if (ni.bdev == bdev)
				return true;
		}
	return false;
}

bool rpc_bdev_skipped(struct nvemud *d, const char *name)
{
	size_t i;
	json_t *v;

	if (!d->skipped || !name)
		return false;
	json_array_foreach(d->skipped, i, v) {
		const char *b = json_string_value(json_object_get(v, "bdev"));

		if (b && !strcmp(b, name))
			return true;
	}
	return false;
}

/* Start-up with the base skipped (its file is missing): skip this one with it. */
bool rpc_bdev_base_skipped(struct nvemud *d, const char *name, const char *base)
{
	size_t i;
	json_t *v;

	if (!d->lenient_config || !d->skipped)
		return false;
	json_array_foreach(d->skipped, i, v) {
		const char *b = json_string_value(json_object_get(v, "bdev"));

		if (b && !strcmp(b, base)) {
			nvemud_log(d, NVEMUD_LOG_ERR,
				   "bdev %s skipped: its base bdev %s was skipped; its namespaces "
				   "and attachments are skipped too",
				   name, base);
			json_array_append_new(d->skipped, json_pack("{s:s, s:s}", "bdev", name,
								    "base_bdev_name", base));
			return true;
		}
	}
	return false;
}

static int bdev_delay_create(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	const char *base_name = rpc_str(params, "base_bdev_name");
	uint64_t lat = rpc_uint(params, "latency_us", 0);
	/* SPDK's names (avg_*, p99_*) and nvemu's (latency_us, read_/write_latency_us) alike. */
	struct nvemu_bdev_delay_opts o = {
		.read_latency_us = rpc_uint(params, "avg_read_latency",
					    rpc_uint(params, "read_latency_us", lat)),
		.write_latency_us = rpc_uint(params, "avg_write_latency",
					     rpc_uint(params, "write_latency_us", lat)),
		.p99_read_latency_us = rpc_uint(params, "p99_read_latency", 0),
		.p99_write_latency_us = rpc_uint(params, "p99_write_latency", 0),
	};
	struct nvemu_error nerr = {0};
	struct nvemud_bdev *base;
	struct nvemu_bdev *b;

	if (nvemud_find_bdev(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: bdev %s already exists", name);
	base = nvemud_find_bdev(d, base_name);
	if (!base) {
		if (rpc_bdev_base_skipped(d, name, base_name))
			return 0;
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "base_bdev_name: no bdev %s", base_name);
	}
	/* A namespace writes it directly: a second path to it is refused (SPDK's claim). */
	if (rpc_bdev_used_by_ns(d, base->bdev))
		return rpc_err_set(e, RPC_ERR_EXISTS,
				   "base_bdev_name: bdev %s is already used by a namespace", base_name);
	if (nvemu_bdev_delay_create(name, base->bdev, &o, &b, &nerr))
		return rpc_err_nvemu(e, &nerr);
	if (nvemud_add_bdev(d, b, NULL)) {
		nvemu_bdev_destroy(b, NULL);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	*result = json_string(b->name);
	return 0;
}

static int bdev_delay_delete(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemud_bdev *b = nvemud_find_bdev(d, name);

	if (!b || nvemu_bdev_delay_get(b->bdev, NULL, NULL))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no delay bdev %s", name);
	return nvemud_bdev_delete(d, b, e);
}

/* A registered delay bdev by name, or NULL with e set. */
static struct nvemu_bdev *find_delay(struct nvemud *d, const char *name, struct rpc_err *e)
{
	struct nvemud_bdev *b = nvemud_find_bdev(d, name);

	if (!b || nvemu_bdev_delay_get(b->bdev, NULL, NULL)) {
		rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no delay bdev %s", name);
		return NULL;
	}
	return b->bdev;
}

static int bdev_delay_update_latency(struct nvemud *d, json_t *params, json_t **result,
				     struct rpc_err *e)
{
	const char *name = rpc_str(params, "delay_bdev_name");
	const char *type = rpc_str(params, "latency_type");
	struct nvemu_error nerr = {0};
	struct nvemu_bdev_delay_opts o;
	struct nvemu_bdev *bdev;

	if (!name)
		name = rpc_str(params, "name");
	if (!name)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "delay_bdev_name: required (or name)");
	bdev = find_delay(d, name, e);
	if (!bdev)
		return -1;
	nvemu_bdev_delay_get(bdev, NULL, &o);
	if (type) {
		/* SPDK: one latency at a time, named by latency_type. */
		uint64_t us = rpc_uint(params, "latency_us", 0);

		if (!rpc_has(params, "latency_us"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "latency_us: required with latency_type");
		if (!strcmp(type, "avg_read"))
			o.read_latency_us = us;
		else if (!strcmp(type, "avg_write"))
			o.write_latency_us = us;
		else if (!strcmp(type, "p99_read"))
			o.p99_read_latency_us = us;
		else if (!strcmp(type, "p99_write"))
			o.p99_write_latency_us = us;
		else
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "latency_type: one of avg_read, avg_write, p99_read, "
					   "p99_write; got %s",
					   type);
		if (nvemu_bdev_delay_set_latency(bdev, &o, &nerr))
			return rpc_err_nvemu(e, &nerr);
		return 0;
	}
	if (rpc_has(params, "latency_us"))
		o.read_latency_us = o.write_latency_us = rpc_uint(params, "latency_us", 0);
	o.read_latency_us = rpc_uint(params, "read_latency_us", o.read_latency_us);
	o.write_latency_us = rpc_uint(params, "write_latency_us", o.write_latency_us);
	o.p99_read_latency_us = rpc_uint(params, "p99_read_latency", o.p99_read_latency_us);
	o.p99_write_latency_us = rpc_uint(params, "p99_write_latency", o.p99_write_latency_us);
	if (nvemu_bdev_delay_set_latency(bdev, &o, &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static int bdev_delay_list(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	json_t *arr;

	if (name && !find_delay(d, name, e))
		return -1;
	arr = json_array();
	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		struct nvemu_bdev *bdev = d->bdevs[i].bdev;
		json_t *o = rpc_bdev_delay_params(bdev);

		if (!o || (name && strcmp(name, bdev->name))) {
			json_decref(o);
			continue;
		}
		/* Counters: a test proves that I/O was (or no longer is) held in the backend. */
		json_object_set_new(o, "inflight", json_integer(nvemu_bdev_inflight(bdev)));
		json_object_set_new(o, "completed",
				    json_integer((json_int_t)nvemu_bdev_delay_completed(bdev)));
		json_array_append_new(arr, o);
	}
	*result = arr;
	return 0;
}

json_t *rpc_bdev_delay_params(struct nvemu_bdev *bdev)
{
	struct nvemu_bdev_delay_opts o;
	struct nvemu_bdev *base;

	if (nvemu_bdev_delay_get(bdev, &base, &o))
		return NULL;
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", bdev->name, "base_bdev_name",
			 base->name, "read_latency_us", (json_int_t)o.read_latency_us,
			 "write_latency_us", (json_int_t)o.write_latency_us, "p99_read_latency",
			 (json_int_t)o.p99_read_latency_us, "p99_write_latency",
			 (json_int_t)o.p99_write_latency_us);
}

#define P_LATENCY(n) { n, RPC_P_UINT, false, 0, NVEMU_BDEV_DELAY_MAX_US }

const struct rpc_method rpc_bdev_delay_methods[] = {
	{"bdev_delay_create", bdev_delay_create,
	 (const struct rpc_param[]){{"name", RPC_P_STR, true, 1, BDEV_NAME_MAX},
				    {"base_bdev_name", RPC_P_STR, true, 1, BDEV_NAME_MAX},
				    P_LATENCY("latency_us"),
				    P_LATENCY("read_latency_us"),
				    P_LATENCY("write_latency_us"),
				    P_LATENCY("avg_read_latency"),
				    P_LATENCY("p99_read_latency"),
				    P_LATENCY("avg_write_latency"),
				    P_LATENCY("p99_write_latency"),
				    {0}},
	 "Create a bdev that completes each I/O of base_bdev_name only after a latency in "
	 "microseconds (latency_us for all, or read_latency_us / write_latency_us; SPDK's "
	 "avg_read_latency / avg_write_latency are the same), with 1 I/O in 100 taking "
	 "p99_read_latency / p99_write_latency instead when set; each at most 10 s."},
	{"bdev_delay_delete", bdev_delay_delete,
	 (const struct rpc_param[]){{"name", RPC_P_STR, true, 1, BDEV_NAME_MAX}, {0}},
	 "Delete a delay bdev no namespace uses (its base bdev stays)."},
	{"bdev_delay_update_latency", bdev_delay_update_latency,
	 (const struct rpc_param[]){{"name", RPC_P_STR, false, 1, BDEV_NAME_MAX},
				    {"delay_bdev_name", RPC_P_STR, false, 1, BDEV_NAME_MAX},
				    {"latency_type", RPC_P_STR, false, 1, 16},
				    P_LATENCY("latency_us"),
				    P_LATENCY("read_latency_us"),
				    P_LATENCY("write_latency_us"),
				    P_LATENCY("p99_read_latency"),
				    P_LATENCY("p99_write_latency"),
				    {0}},
	 "Change a delay bdev's latencies for the I/O submitted from now on: SPDK's "
	 "delay_bdev_name + latency_type (avg_read, avg_write, p99_read, p99_write) + "
	 "latency_us, or nvemu's name with latency_us / read_latency_us / write_latency_us / "
	 "p99_read_latency / p99_write_latency."},
	{"bdev_delay_list", bdev_delay_list,
	 (const struct rpc_param[]){{"name", RPC_P_STR, false, 1, BDEV_NAME_MAX}, {0}},
	 "List delay bdevs: base, latencies, I/O in flight and completed."},
	{0},
};
