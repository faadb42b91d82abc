// SPDX-License-Identifier: MIT
/*
 * save_config / nvemud -c: the running configuration as the list of RPC
 * calls that rebuild it, so loading goes through the same checks as the
 * methods themselves. RAM and null bdevs are saved by geometry only: their
 * data is not part of the configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/nvemu-internal.h"
#include "rpc.h"

#define CONFIG_VERSION 1
/* A configuration or snapshot file larger than this is refused (not read). */
#define JSON_FILE_MAX (64u << 20)

static void call(json_t *calls, const char *method, json_t *params)
{
	json_array_append_new(calls, json_pack("{s:s, s:o}", "method", method, "params", params));
}

static void save_bdevs(struct nvemud *d, json_t *calls)
{
	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		struct nvemud_bdev *b = &d->bdevs[i];
		struct nvemu_bdev *bd = b->bdev;
		json_int_t nb = (json_int_t)(bd->size / bd->blk_size);

		/* A given size is kept: a file that grew must not grow its namespace. */
		if (!strcmp(bd->ops->type, "file")) {
			json_t *p = json_pack("{s:s, s:s, s:i, s:b, s:b}", "name", bd->name,
					      "filename", b->filename ? b->filename : "",
					      "block_size", (int)bd->blk_size, "read_only",
					      bd->read_only, "direct", b->direct);

			if (b->sized && nb)
				json_object_set_new(p, "num_blocks", json_integer(nb));
			call(calls, "bdev_file_create", p);
		}
		else if (!strcmp(bd->ops->type, "delay"))
			call(calls, "bdev_delay_create", rpc_bdev_delay_params(bd));
		else
			call(calls, !strcmp(bd->ops->type, "null") ? "bdev_null_create" :
								       "bdev_malloc_create",
			     json_pack("{s:s, s:I, s:i}", "name", bd->name, "num_blocks", nb,
				       "block_size", (int)bd->blk_size));
	}
}

uint16_t rpc_saved_port_id(struct nvemud *d, struct nvemu_subsys *s, uint16_t port)
{
	uint16_t id = 0;

	for (unsigned i = 0; i < s->nr_ports && s->ports[i].id != port; i++) {
		json_t *listener = NULL;

		if (!rpc_nvmf_owns_port(d, s, s->ports[i].id, &listener) || listener)
			id++;
		json_decref(listener);
	}
	return id;
}

/* nvme_subsystem_add_port params: the listed port without its id (ids are reassigned in order). */
static json_t *port_params(struct nvemu_subsys *s, const struct nvemu_port *pt)
{
	json_t *p = nvemud_port_json(pt);

	json_object_del(p, "id");
	json_object_set_new(p, "nqn", json_string(s->nqn));
	return p;
}

static void save_subsys(struct nvemud *d, struct nvemu_subsys *s, json_t *calls)
{
	struct nvemu_health h;

	call(calls, "nvme_subsystem_create",
	     json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "nqn", s->nqn, "serial_number",
		       s->sn, "model_number", s->mn, "firmware_rev", s->fr, "nn",
		       (json_int_t)s->nn, "mnan", (json_int_t)s->mnan, "single_ctrl",
		       s->single_ctrl));
	/* Access first, so a restored listener never serves a host it should refuse. */
	rpc_nvmf_save_access(d, s, calls);
	/* In port order, so that port IDs come back the same. */
	for (unsigned i = 0; i < s->nr_ports; i++) {
		json_t *p, *listener;

		if (rpc_nvmf_owns_port(d, s, s->ports[i].id, &listener)) {
			if (listener)
				call(calls, "nvmf_subsystem_add_listener", listener);
			continue;
		}
		p = port_params(s, &s->ports[i]);
		if (p)
			call(calls, "nvme_subsystem_add_port", p);
	}
	nvemu_subsys_get_health(s, &h);
	call(calls, "nvme_subsystem_set_health",
	     json_pack("{s:s, s:i, s:i, s:i, s:i, s:i}", "nqn", s->nqn, "temperature",
		       h.temperature_k, "available_spare", h.avail_spare,
		       "available_spare_threshold", h.spare_thresh, "percentage_used",
		       h.percent_used, "critical_warning", h.critical_warning));
	for (unsigned i = 0; i < s->nr_ns; i++) {
		struct nvemu_ns *ns = s->ns[i];
		char uuid[37], nguid[33], eui64[17];

		if (nvemud_ns_destroying(d, s, ns->nsid))
			continue;
		/* A host's Namespace Management namespaces have named bdevs too (daemon.c). */
		if (!ns->bdev || !nvemud_find_bdev(d, ns->bdev->name)) {
			nvemud_log(d, NVEMUD_LOG_WARN,
				   "save_config: %s namespace %u has no named bdev; not saved",
				   s->nqn, ns->nsid);
			continue;
		}
		nvemud_uuid_unparse(ns->uuid, uuid);
		nvemud_hex(ns->nguid, 16, nguid);
		nvemud_hex(ns->eui64, 8, eui64);
		call(calls, "nvme_namespace_create",
		     json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "nqn", s->nqn, "bdev_name",
			       ns->bdev->name, "nsid", (json_int_t)ns->nsid, "uuid", uuid, "nguid",
			       nguid, "eui64", eui64));
	}
}

static void save_ctrls(struct nvemud *d, json_t *calls)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++) {
		struct nvemud_ctrl *c = &d->ctrls[i];
		struct nvemu_ctrl *ctrl = nvemud_ctrl_get(c);
		json_t *p;

		if (!ctrl || c->busy == NVEMUD_CTRL_DESTROYING)
			continue;
		p = rpc_ctrl_params_json(ctrl);
		/* Port ids are handed out anew on reload: the id its port gets back then. */
		json_object_set_new(p, "port",
				    json_integer(rpc_saved_port_id(d, c->subsys, ctrl->p.port_id)));
		json_object_set_new(p, "nqn", json_string(c->subsys->nqn));
		json_object_set_new(p, "name", json_string(c->name));
		/* Attach while suspended, as SNAP recommends; resume after. */
		json_object_set_new(p, "suspended", json_true());
		if (nvemud_vfu_path(c))
			json_object_set_new(p, "socket", json_string(nvemud_vfu_path(c)));
		call(calls, "nvme_controller_create", p);
		for (unsigned n = 0; n < ctrl->nr_ns; n++)
			call(calls, "nvme_controller_attach_ns",
			     json_pack("{s:s, s:I}", "ctrl", c->name, "nsid",
				       (json_int_t)ctrl->ns[n]->nsid));
		if (!nvemu_ctrl_is_suspended(ctrl))
			call(calls, "nvme_controller_resume", json_pack("{s:s}", "ctrl", c->name));
	}
}

json_t *nvemud_save_config(struct nvemud *d)
{
	json_t *calls = json_array();

	save_bdevs(d, calls);
	for (unsigned i = 0; i < d->nr_subsys; i++)
		save_subsys(d, d->subsys[i], calls);
	save_ctrls(d, calls);
	rpc_mi_save(d, calls);
	return json_pack("{s:i, s:s, s:o}", "nvemu_config", CONFIG_VERSION, "note",
			 "RAM and null bdevs are saved by size only; their data is not saved",
			 "calls", calls);
}

/* Start-up with a skipped bdev: is this call about something left out with it? */
static bool skip_dependent(struct nvemud *d, const char *method, json_t *params)
{
	const char *bdev = json_string_value(json_object_get(params, "bdev_name"));
	const char *nqn = json_string_value(json_object_get(params, "nqn"));
	const char *ctrl = json_string_value(json_object_get(params, "ctrl"));
	json_int_t nsid = json_integer_value(json_object_get(params, "nsid"));
	size_t i;
	json_t *v;

	if (!d->skipped || !json_array_size(d->skipped))
		return false;
	if (!strcmp(method, "nvme_namespace_create") && bdev) {
		json_array_foreach(d->skipped, i, v) {
			const char *b = json_string_value(json_object_get(v, "bdev"));

			if (b && !strcmp(b, bdev)) {
				nvemud_log(d, NVEMUD_LOG_ERR,
					   "namespace %lld of %s skipped: its bdev %s was skipped",
					   (long long)nsid, nqn ? nqn : "?", bdev);
				json_array_append_new(d->skipped,
						      json_pack("{s:s?, s:I, s:s}", "nqn", nqn,
								"nsid", nsid, "bdev_name", bdev));
				return true;
			}
		}
	}
	if (!strcmp(method, "nvme_controller_attach_ns") && ctrl && nvemud_find_ctrl(d, ctrl)) {
		const char *cnqn = nvemud_find_ctrl(d, ctrl)->subsys->nqn;

		json_array_foreach(d->skipped, i, v) {
			const char *n = json_string_value(json_object_get(v, "nqn"));

			if (n && !strcmp(n, cnqn) &&
			    json_integer_value(json_object_get(v, "nsid")) == nsid &&
			    !json_object_get(v, "ctrl")) {
				nvemud_log(d, NVEMUD_LOG_ERR,
					   "attachment of namespace %lld to %s skipped: the namespace was skipped",
					   (long long)nsid, ctrl);
				json_array_append_new(d->skipped,
						      json_pack("{s:s, s:s, s:I}", "ctrl", ctrl,
								"nqn", cnqn, "nsid", nsid));
				return true;
			}
		}
	}
	return false;
}

int nvemud_load_config(struct nvemud *d, json_t *cfg, struct rpc_err *e)
{
	json_t *v = json_object_get(cfg, "nvemu_config"), *calls, *c;
	size_t i;
	int ret = 0;

	if (!json_is_integer(v) || json_integer_value(v) != CONFIG_VERSION)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "nvemu_config: must be %d (not an nvemud configuration?)",
				   CONFIG_VERSION);
	calls = json_object_get(cfg, "calls");
	if (!json_is_array(calls))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "calls: must be an array");
	d->config_depth++;
	json_array_foreach(calls, i, c) {
		const char *method = json_string_value(json_object_get(c, "method"));
		json_t *params = json_object_get(c, "params");

		if (!method) {
			ret = rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					  "calls[%zu].method: must be a string", i);
			break;
		}
		if (!strcmp(method, "save_config"))
			continue;
		if (d->lenient_config && skip_dependent(d, method, params))
			continue;
		if (nvemud_rpc_invoke(d, method, json_incref(params), NULL, e)) {
			char msg[sizeof(e->msg)];

			snprintf(msg, sizeof(msg), "%s", e->msg);
			ret = rpc_err_set(e, e->code, "calls[%zu] %.60s: %s", i, method, msg);
			break;
		}
	}
	d->config_depth--;
	return ret;
}

int nvemud_read_json_file(const char *path, const char *field, json_t **out,
			  struct rpc_err *e)
{
	/* Non-blocking open: a FIFO must not stall the daemon before it is refused. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	json_error_t jerr;
	struct stat st;
	char *buf;
	size_t len = 0;

	*out = NULL;
	if (fd < 0)
		return rpc_err_set(e, RPC_ERR_IO, "%s: cannot read %.150s: %s", field, path,
				   strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s: %.150s is not a regular file",
				   field, path);
	}
	if ((uint64_t)st.st_size > JSON_FILE_MAX) {
		close(fd);
		return rpc_err_set(e, RPC_ERR_LIMIT, "%s: %.150s is larger than %u MiB", field,
				   path, JSON_FILE_MAX >> 20);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	while (len <= (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			free(buf);
			close(fd);
			return rpc_err_set(e, RPC_ERR_IO, "%s: cannot read %.150s: %s", field,
					   path, strerror(err));
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > (size_t)st.st_size) {
		free(buf);
		return rpc_err_set(e, RPC_ERR_IO, "%s: %.150s changed while being read", field,
				   path);
	}
	*out = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (!*out)
		return rpc_err_set(e, RPC_ERR_PARSE, "%s: %.150s:%d:%d: %.80s", field, path,
				   jerr.line, jerr.column, jerr.text);
	return 0;
}

int nvemud_load_config_file(struct nvemud *d, const char *path, struct rpc_err *e)
{
	json_t *cfg;
	int ret;

	if (nvemud_read_json_file(path, "filename", &cfg, e))
		return -1;
	ret = nvemud_load_config(d, cfg, e);
	json_decref(cfg);
	return ret;
}

/* Write atomically: a crash never leaves half a file under the final name. */
static int write_json_file(const char *path, json_t *j, struct rpc_err *e)
{
	char tmp[4200];
	struct stat st;
	int fd, err;

	/* Never write through (or block on) a FIFO, device or directory at the name. */
	if (!lstat(path, &st) && !S_ISREG(st.st_mode))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "filename: %.200s exists and is not a regular file", path);
	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return rpc_err_set(e, RPC_ERR_IO, "filename: cannot write %.200s: %s", path,
				   strerror(errno));
	if (json_dumpfd(j, fd, JSON_INDENT(2) | JSON_SORT_KEYS) || fsync(fd)) {
		err = errno;
		close(fd);
		unlink(tmp);
		return rpc_err_set(e, RPC_ERR_IO, "filename: cannot write %.200s: %s", path,
				   strerror(err));
	}
	close(fd);
	if (rename(tmp, path)) {
		err = errno;
		unlink(tmp);
		return rpc_err_set(e, RPC_ERR_IO, "filename: cannot write %.200s: %s", path,
				   strerror(err));
	}
	return 0;
}

int nvemud_write_json(struct nvemud *d, const char *path, json_t *j, struct rpc_err *e)
{
	struct stat st, bst;

	/* Overwriting a bdev's backing file with JSON would destroy the disk under it. */
	if (!stat(path, &st)) {
		for (unsigned i = 0; i < d->nr_bdevs; i++) {
			const char *f = d->bdevs[i].filename;

			if (f && !stat(f, &bst) && bst.st_dev == st.st_dev && bst.st_ino == st.st_ino)
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
						   "filename: %.200s is the backing file of bdev %s",
						   path, d->bdevs[i].bdev->name);
		}
	}
	return write_json_file(path, j, e);
}

static int save_config(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *file = rpc_str(params, "filename");
	json_t *cfg = nvemud_save_config(d);
	int ret = 0;

	if (file) {
		ret = nvemud_write_json(d, file, cfg, e);
		json_decref(cfg);
		return ret;
	}
	*result = cfg;
	return 0;
}

static int load_config(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	/* A file that loads itself (or a chain that loops) would recurse without end. */
	if (d->config_depth)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "load_config: not allowed inside a configuration being loaded");
	return nvemud_load_config_file(d, rpc_str(params, "filename"), e);
}

const struct rpc_method rpc_config_methods[] = {
	{ "save_config", save_config,
	  (const struct rpc_param[]){ { "filename", RPC_P_STR, false, 1, 4095 }, { NULL } },
	  "The running configuration (written to filename if given), for nvemud -c." },
	{ "load_config", load_config,
	  (const struct rpc_param[]){ { "filename", RPC_P_STR, true, 1, 4095 }, { NULL } },
	  "Apply a configuration saved by save_config on top of the running one." },
	{ NULL },
};
