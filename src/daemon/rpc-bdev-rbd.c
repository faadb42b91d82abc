// SPDX-License-Identifier: MIT
/*
 * bdev_rbd_* methods: Ceph RBD images as bdevs, with SPDK's parameter names
 * (docs/rbd.md). Connecting to a cluster blocks for up to its mount timeout,
 * so bdev_rbd_create connects on a thread of its own and answers when it
 * is done; the loop goes on meanwhile. The image's resizes reach the
 * namespaces on it (Capacity Change through the Namespace Attribute Changed
 * event), and in exclusive mode the lock decides each gateway's ANA state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <nvemu/ctrl-state.h>

#include "event-loop.h"
#include "rpc.h"

#define BDEV_NAME_MAX 63
#define RBD_STR_MAX   255
#define RBD_CONF_MAX  64 /* config_param entries */

/* A registered RBD bdev: what re-creates it. */
struct nvemud_rbd {
	LIST_ENTRY(nvemud_rbd) link;
	struct nvemud *d;
	struct nvemu_bdev *bdev;
	json_t *params; /* bdev_rbd_create's, as given */
	/* Exclusive mode: keeps ports added after the lock changed in line with it. */
	struct loop_src *timer;
};

/* A create in progress on its own thread. */
struct rbd_job {
	LIST_ENTRY(rbd_job) link; /* d->rbd_jobs while the thread runs */
	bool listed;
	struct nvemud *d;
	json_t *params;
	struct nvemu_bdev_rbd_opts o;
	const char **conf;
	char name[BDEV_NAME_MAX + 1];
	int efd;
	struct loop_src *src;
	pthread_t thread;
	struct rpc_pending *reply;
	/* Set by the thread. */
	struct nvemu_bdev *bdev;
	struct nvemu_error err;
	int rc;
};

static const char *const secret_keys[] = { "key", "keyring_key", NULL };

static bool is_secret(const char *k)
{
	for (const char *const *s = secret_keys; *s; s++)
		if (!strcmp(k, *s))
			return true;
	return false;
}

static void rbd_entry_free(struct nvemud_rbd *r)
{
	if (r->timer)
		loop_del(r->timer);
	json_decref(r->params);
	free(r);
}

static bool registered(struct nvemud *d, struct nvemu_bdev *bdev)
{
	for (unsigned i = 0; i < d->nr_bdevs; i++)
		if (d->bdevs[i].bdev == bdev)
			return true;
	return false;
}

static struct nvemud_rbd *find_rbd(struct nvemud *d, const char *name)
{
	struct nvemud_rbd *r;

	LIST_FOREACH(r, &d->rbds, link) {
		struct nvemud_bdev *b = nvemud_find_bdev(d, name);

		if (!strcmp(r->bdev->name, name) && b && b->bdev == r->bdev)
			return r;
	}
	return NULL;
}

/* Entries whose bdev went through bdev_delete. */
static void prune(struct nvemud *d)
{
	struct nvemud_rbd *r, *n;

	for (r = LIST_FIRST(&d->rbds); r; r = n) {
		n = LIST_NEXT(r, link);
		if (!registered(d, r->bdev)) {
			LIST_REMOVE(r, link);
			rbd_entry_free(r);
		}
	}
}

/* The image changed size: every namespace on it follows, in its own LBAs. */
static void follow_resize(struct nvemud *d, struct nvemu_bdev *bdev)
{
	for (unsigned i = 0; i < d->nr_subsys; i++) {
		struct nvemu_subsys *s = d->subsys[i];
		struct nvemu_ns *ns;

		for (unsigned j = 0; (ns = nvemu_subsys_ns_at(s, j)); j++) {
			struct nvemu_ns_info ni;
			struct nvemu_error nerr = { 0 };
			uint64_t nb;

			nvemu_ns_info(ns, &ni);
			if (ni.bdev != bdev || !ni.lba_size)
				continue;
			nb = bdev->size / ni.lba_size;
			if (nb == ni.nblocks || !nb)
				continue;
			if (nvemu_subsys_resize_ns(s, ni.nsid, nb, &nerr))
				nvemud_log(d, NVEMUD_LOG_ERR, "rbd %s: namespace %u: %s", bdev->name,
					   ni.nsid, nerr.msg);
			else
				nvemud_log(d, NVEMUD_LOG_INFO,
					   "rbd %s: namespace %u of %s now %llu blocks", bdev->name,
					   ni.nsid, nvemu_subsys_nqn(s), (unsigned long long)nb);
		}
	}
}

/*
 * Exclusive mode: the gateway that holds the image's lock is the optimized
 * path of the namespaces on it, every other gateway inaccessible, so that
 * hosts write only where writes are accepted.
 */
static void follow_lock(struct nvemud *d, struct nvemu_bdev *bdev, bool owner)
{
	enum nvemu_ana_state st = owner ? NVEMU_ANA_OPTIMIZED : NVEMU_ANA_INACCESSIBLE;

	for (unsigned i = 0; i < d->nr_subsys; i++) {
		struct nvemu_subsys *s = d->subsys[i];
		struct nvemu_ns *ns;

		if (!nvemu_subsys_ana_reporting(s))
			continue;
		for (unsigned j = 0; (ns = nvemu_subsys_ns_at(s, j)); j++) {
			struct nvemu_ns_info ni;
			uint16_t pid;

			nvemu_ns_info(ns, &ni);
			if (ni.bdev != bdev)
				continue;
			for (unsigned k = 0; !nvemu_subsys_port_at(s, k, &pid, NULL); k++) {
				uint32_t g = nvemu_ns_anagrpid(s, ni.nsid);
				enum nvemu_ana_state cur;

				/* Only a change: each one is an ANA change event for the hosts. */
				if (!nvemu_port_get_ana_state(s, pid, g, &cur) && cur == st)
					continue;
				nvemu_port_set_ana_state(s, pid, g, st, NULL);
			}
		}
	}
}

static void rbd_event(struct nvemu_bdev *bdev, unsigned events, void *arg)
{
	struct nvemud_rbd *r = arg;
	struct nvemu_bdev_rbd_info info;

	if (events & NVEMU_BDEV_RBD_RESIZED) {
		nvemud_log(r->d, NVEMUD_LOG_INFO, "rbd %s: image is now %llu bytes", bdev->name,
			   (unsigned long long)bdev->size);
		follow_resize(r->d, bdev);
	}
	if ((events & NVEMU_BDEV_RBD_LOCK) && !nvemu_bdev_rbd_get_info(bdev, &info)) {
		nvemud_log(r->d, NVEMUD_LOG_INFO, "rbd %s: exclusive lock %s", bdev->name,
			   info.lock_owner ? "taken" : "lost");
		follow_lock(r->d, bdev, info.lock_owner);
	}
}

static void lock_tick(struct loop_src *src, void *arg)
{
	struct nvemud_rbd *r = arg;
	struct nvemu_bdev_rbd_info info;

	if (registered(r->d, r->bdev) && !nvemu_bdev_rbd_get_info(r->bdev, &info))
		follow_lock(r->d, r->bdev, info.lock_owner);
}

static void job_free(struct rbd_job *j)
{
	if (j->listed)
		LIST_REMOVE(j, link);
	if (j->src)
		loop_del(j->src);
	if (j->efd >= 0)
		close(j->efd);
	json_decref(j->params);
	free(j->conf);
	free(j);
}

/* Register the new bdev (or report why not); 0 or -1 with e set. */
static int job_finish(struct rbd_job *j, json_t **result, struct rpc_err *e)
{
	struct nvemud *d = j->d;
	struct nvemud_rbd *r;

	if (j->rc && d->lenient_config && d->skipped) {
		/* Start-up with the cluster away: leave it and what depends on it out, start the rest. */
		nvemud_log(d, NVEMUD_LOG_ERR,
			   "bdev %s skipped: %s; its namespaces and attachments are skipped too",
			   j->name, j->err.msg);
		json_array_append_new(d->skipped, json_pack("{s:s, s:s, s:s}", "bdev", j->name,
							    "rbd_name", j->o.rbd_name, "error",
							    j->err.msg));
		*result = json_null();
		return 0;
	}
	if (j->rc)
		return rpc_err_set(e, j->rc == -EINVAL ? RPC_ERR_INVALID_PARAMS : RPC_ERR_IO, "%s",
				   j->err.msg);
	/* Another create of the name won the race while this one connected. */
	if (nvemud_find_bdev(d, j->name)) {
		nvemu_bdev_destroy(j->bdev, NULL);
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: bdev %s already exists", j->name);
	}
	r = calloc(1, sizeof(*r));
	if (!r || nvemud_add_bdev(d, j->bdev, NULL)) {
		free(r);
		nvemu_bdev_destroy(j->bdev, NULL);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	r->d = d;
	r->bdev = j->bdev;
	r->params = json_incref(j->params);
	LIST_INSERT_HEAD(&d->rbds, r, link);
	nvemu_bdev_rbd_set_event_cb(j->bdev, rbd_event, r);
	if (j->o.exclusive && d->loop)
		r->timer = loop_add_timer(d->loop, 500, true, lock_tick, r);
	nvemud_log(d, NVEMUD_LOG_INFO, "rbd %s: %s/%s, %llu bytes", j->name, j->o.pool_name,
		   j->o.rbd_name, (unsigned long long)j->bdev->size);
	*result = json_string(j->name);
	return 0;
}

static void *job_run(void *arg)
{
	struct rbd_job *j = arg;
	uint64_t one = 1;

	j->rc = nvemu_bdev_rbd_create(j->name, &j->o, &j->bdev, &j->err);
	if (write(j->efd, &one, sizeof(one)) < 0) {
	}
	return NULL;
}

static void job_done(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct rbd_job *j = arg;
	json_t *result = NULL;
	struct rpc_err e = { 0 };
	int rc;

	pthread_join(j->thread, NULL);
	rc = job_finish(j, &result, &e);
	rpc_pending_done(j->reply, rc ? NULL : result, rc ? &e : NULL);
	job_free(j);
}

static const char *opt_str(json_t *params, const char *key)
{
	const char *s = rpc_str(params, key);

	return s && s[0] ? s : NULL;
}

static int bdev_rbd_create(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	json_t *conf = json_object_get(params, "config_param");
	struct rbd_job *j;
	const char *k;
	json_t *v;
	size_t n = 0;
	int rc;

	if (!conf)
		conf = json_object_get(params, "config"); /* SPDK's bdev_rbd_create name */
	if (conf && json_object_get(params, "config_param") && json_object_get(params, "config"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "config_param: give config_param or config, not both");
	if (conf) {
		if (json_object_size(conf) > RBD_CONF_MAX)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "config_param: at most %d entries", RBD_CONF_MAX);
		json_object_foreach(conf, k, v) {
			if (!json_is_string(v))
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
						   "config_param: %s: must be a string", k);
			if (!k[0] || strlen(k) > RBD_STR_MAX ||
			    strlen(json_string_value(v)) > 4095)
				return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
						   "config_param: %s: key 1..%d characters, value "
						   "at most 4095",
						   k, RBD_STR_MAX);
		}
	}
	if (nvemud_find_bdev(d, name))
		return rpc_err_set(e, RPC_ERR_EXISTS, "name: bdev %s already exists", name);
	j = calloc(1, sizeof(*j));
	if (!j)
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	j->d = d;
	j->efd = -1;
	/* The job's strings point into its own copy of params. */
	j->params = json_deep_copy(params);
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->conf = calloc(2 * (conf ? json_object_size(conf) : 0) + 1, sizeof(*j->conf));
	if (!j->params || !j->conf) {
		job_free(j);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	j->o.pool_name = rpc_str(j->params, "pool_name");
	j->o.rbd_name = rpc_str(j->params, "rbd_name");
	j->o.user_id = opt_str(j->params, "user_id");
	j->o.cluster_name = opt_str(j->params, "cluster_name");
	j->o.config_file = opt_str(j->params, "config_file");
	j->o.key_file = opt_str(j->params, "key_file");
	j->o.blk_size = (uint32_t)rpc_uint(j->params, "block_size", 512);
	j->o.exclusive = rpc_bool(j->params, "exclusive", false);
	conf = json_object_get(j->params, json_object_get(params, "config_param") ? "config_param"
										  : "config");
	json_object_foreach(conf, k, v) {
		j->conf[n++] = k;
		j->conf[n++] = json_string_value(v);
	}
	j->o.config = j->conf;

	/* Inside load_config (or in process) nobody can wait: connect here. */
	if (!d->loop || !rpc_can_defer(d)) {
		job_run(j);
		rc = job_finish(j, result, e);
		job_free(j);
		return rc;
	}
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0) {
		job_free(j);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "eventfd: %s", strerror(errno));
	}
	j->src = loop_add_fd(d->loop, j->efd, EPOLLIN, job_done, j);
	if (!j->src) {
		job_free(j);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "out of memory");
	}
	rc = pthread_create(&j->thread, NULL, job_run, j);
	if (rc) {
		job_free(j);
		return rpc_err_set(e, RPC_ERR_INTERNAL, "thread: %s", strerror(rc));
	}
	j->reply = rpc_defer(d);
	LIST_INSERT_HEAD(&d->rbd_jobs, j, link);
	j->listed = true;
	return RPC_DEFERRED;
}

static int bdev_rbd_delete(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemud_bdev *b = nvemud_find_bdev(d, name);

	if (!b || nvemu_bdev_rbd_get_info(b->bdev, NULL))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no rbd bdev %s", name);
	if (nvemud_bdev_delete(d, b, e))
		return -1;
	prune(d);
	*result = json_true();
	return 0;
}

/* The parameters as save_config writes them: secrets only when asked. */
static json_t *saved_params(struct nvemud_rbd *r, bool secrets)
{
	json_t *p = json_deep_copy(r->params), *conf;
	const char *k;
	void *tmp;
	json_t *v;

	if (!p || secrets)
		return p;
	conf = json_object_get(p, "config_param");
	if (!conf)
		conf = json_object_get(p, "config");
	json_object_foreach_safe(conf, tmp, k, v) {
		if (is_secret(k))
			json_object_del(conf, k);
	}
	return p;
}

void rpc_bdev_rbd_save(struct nvemud *d, json_t *calls, const char *name, bool secrets)
{
	struct nvemud_rbd *r = find_rbd(d, name);

	if (r)
		json_array_append_new(calls, json_pack("{s:s, s:o}", "method", "bdev_rbd_create",
						       "params", saved_params(r, secrets)));
}

static int bdev_rbd_list(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *name = rpc_str(params, "name");
	struct nvemud_rbd *r;
	json_t *arr;

	prune(d);
	if (name && !find_rbd(d, name))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "name: no rbd bdev %s", name);
	arr = json_array();
	LIST_FOREACH(r, &d->rbds, link) {
		struct nvemu_bdev_rbd_info info;
		json_t *o;

		if (name && strcmp(name, r->bdev->name))
			continue;
		nvemu_bdev_rbd_get_info(r->bdev, &info);
		o = saved_params(r, false);
		json_object_set_new(o, "num_blocks",
				    json_integer((json_int_t)(r->bdev->size / r->bdev->blk_size)));
		json_object_set_new(o, "image_size", json_integer((json_int_t)info.image_size));
		if (info.exclusive) {
			json_object_set_new(o, "lock_owner", json_boolean(info.lock_owner));
			if (!info.lock_owner && info.lock_err)
				json_object_set_new(o, "lock_error",
						    json_string(strerror(-info.lock_err)));
		}
		json_object_set_new(o, "inflight", json_integer(info.inflight));
		json_object_set_new(o, "completed", json_integer((json_int_t)info.completed));
		json_object_set_new(o, "errors", json_integer((json_int_t)info.errors));
		json_array_append_new(arr, o);
	}
	*result = arr;
	return 0;
}

void nvemud_rbd_free(struct nvemud *d)
{
	struct nvemud_rbd *r;
	struct rbd_job *j;

	/* Creates still connecting: they end within the mount timeout; nobody gets the bdev. */
	while ((j = LIST_FIRST(&d->rbd_jobs))) {
		struct rpc_err e = { .code = RPC_ERR_STATE };

		pthread_join(j->thread, NULL);
		if (!j->rc)
			nvemu_bdev_destroy(j->bdev, NULL);
		snprintf(e.msg, sizeof(e.msg), "nvemud is shutting down");
		rpc_pending_cancel(j->reply);
		rpc_pending_done(j->reply, NULL, &e);
		job_free(j);
	}

	while ((r = LIST_FIRST(&d->rbds))) {
		LIST_REMOVE(r, link);
		rbd_entry_free(r);
	}
	/* The bdevs are gone; their images close on threads: let them finish before exit. */
	if (nvemu_bdev_rbd_wait_closed(10000))
		nvemud_log(d, NVEMUD_LOG_WARN, "rbd: images still closing after 10 s");
}

#define P_STR(n, req) { n, RPC_P_STR, req, 1, RBD_STR_MAX }

const struct rpc_method rpc_bdev_rbd_methods[] = {
	{ "bdev_rbd_create", bdev_rbd_create,
	  (const struct rpc_param[]){ { "name", RPC_P_STR, true, 1, BDEV_NAME_MAX },
				      P_STR("pool_name", true),
				      P_STR("rbd_name", true),
				      { "block_size", RPC_P_UINT, false, 512, 65536 },
				      P_STR("user_id", false),
				      P_STR("cluster_name", false),
				      { "config_file", RPC_P_STR, false, 1, 4095 },
				      { "key_file", RPC_P_STR, false, 1, 4095 },
				      { "config_param", RPC_P_OBJ, false, 0, 0 },
				      { "config", RPC_P_OBJ, false, 0, 0 },
				      { "exclusive", RPC_P_BOOL, false, 0, 1 },
				      { 0 } },
	  "Create a bdev on a Ceph RBD image (pool_name/rbd_name) through librbd: user_id "
	  "(cephx, default admin), config_file (a ceph.conf) and/or config_param {key: value} "
	  "(rados_conf_set; SPDK's config accepted), key_file, cluster_name (default ceph), "
	  "block_size (default 512); exclusive: hold RBD's exclusive lock, writes only while "
	  "held (multi-gateway)." },
	{ "bdev_rbd_delete", bdev_rbd_delete,
	  (const struct rpc_param[]){ { "name", RPC_P_STR, true, 1, BDEV_NAME_MAX }, { 0 } },
	  "Delete an RBD bdev no namespace uses (the image stays in the cluster)." },
	{ "bdev_rbd_list", bdev_rbd_list,
	  (const struct rpc_param[]){ { "name", RPC_P_STR, false, 1, BDEV_NAME_MAX }, { 0 } },
	  "List RBD bdevs: parameters (without secrets), size, lock owner, I/O counters." },
	{ 0 },
};
