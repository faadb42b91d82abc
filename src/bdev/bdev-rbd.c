/* SPDX-License-Identifier: MIT */
/*
 * The RBD backend: a Ceph RADOS block device image through librbd's
 * asynchronous API. librbd completes I/O on its own threads; the callback
 * only moves the finished I/O onto a mutex-protected list and signals an
 * eventfd, and poll(), on the owner's thread, calls end_io. Nothing of the
 * engine is touched from a librbd thread.
 *
 * One worker thread per bdev does what librbd offers only as blocking
 * calls: re-reading the image size after a header update (someone ran
 * `rbd resize`) and, in exclusive mode, taking RBD's exclusive lock by hand
 * (rbd_lock_acquire) and checking it is still held. Its results are
 * reported through the same eventfd and handed to the owner's event
 * callback from poll().
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine/nvemu-internal.h"

#if NVEMU_HAVE_RBD
#include <rados/librados.h>
#include <rbd/librbd.h>

#define LOCK_RETRY_MS 1000 /* exclusive mode: how often a standby tries the lock */
#define EXIT_WAIT_MS  10000 /* how long exit waits for images still closing */

/*
 * Images closing on their own threads. Process-wide on purpose: librbd and
 * librados are, and exit() must not pull them from under a thread still
 * closing an image (it would leave librbd's objects half torn down).
 */
static pthread_mutex_t closing_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closing_cond = PTHREAD_COND_INITIALIZER;
static unsigned closing;

int nvemu_bdev_rbd_wait_closed(unsigned timeout_ms)
{
	struct timespec ts;
	int ret;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&closing_lock);
	while (closing && !pthread_cond_timedwait(&closing_cond, &closing_lock, &ts))
		;
	ret = closing ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&closing_lock);
	return ret;
}

/* For library users that exit without waiting. */
__attribute__((destructor)) static void rbd_wait_closers(void)
{
	nvemu_bdev_rbd_wait_closed(EXIT_WAIT_MS);
}

struct rbd_io {
	STAILQ_ENTRY(rbd_io) link; /* rbd_bdev.done */
	struct nvemu_bio *bio;
	rbd_completion_t comp;
	struct rbd_bdev *r;
};

struct rbd_bdev {
	struct nvemu_bdev bdev;
	rados_t cluster;
	rados_ioctx_t ioctx;
	rbd_image_t image;
	uint64_t watch;
	bool watching;
	int efd;
	unsigned inflight;
	bool exclusive;

	/* Shared with librbd's threads and the worker: under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	STAILQ_HEAD(, rbd_io) done;
	bool refresh;	     /* the header changed: re-read the size */
	bool stop;	     /* the worker ends */
	uint64_t image_size; /* the worker's latest reading */
	bool owner;	     /* exclusive mode: we hold the lock */
	int lock_err;	     /* the last failed rbd_lock_acquire */
	unsigned events;     /* NVEMU_BDEV_RBD_* for the owner, not yet delivered */
	pthread_t worker;
	bool worker_ok;

	/* The owner's thread only. */
	uint64_t completed, errors;
	nvemu_bdev_rbd_event_fn event_fn;
	void *event_arg;
	bool in_poll, destroyed;
};

static struct rbd_bdev *to_rbd(struct nvemu_bdev *bdev)
{
	return (struct rbd_bdev *)bdev;
}

static void kick(struct rbd_bdev *r)
{
	uint64_t one = 1;

	/* A full counter is still readable: nothing is lost if this fails. */
	if (write(r->efd, &one, sizeof(one)) < 0) {
	}
}

/* librbd's thread: queue it for poll(). */
static void rbd_io_done(rbd_completion_t comp, void *arg)
{
	struct rbd_io *io = arg;
	struct rbd_bdev *r = io->r;

	pthread_mutex_lock(&r->lock);
	STAILQ_INSERT_TAIL(&r->done, io, link);
	pthread_mutex_unlock(&r->lock);
	kick(r);
}

/* librbd's thread: the image header changed (resize, lock owner, features). */
static void rbd_header_changed(void *arg)
{
	struct rbd_bdev *r = arg;

	pthread_mutex_lock(&r->lock);
	r->refresh = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *rbd_worker(void *arg)
{
	struct rbd_bdev *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		bool refresh = r->refresh, owner = r->owner;
		struct timespec ts;

		r->refresh = false;
		pthread_mutex_unlock(&r->lock);

		if (refresh) {
			uint64_t size;

			if (!rbd_get_size(r->image, &size)) {
				pthread_mutex_lock(&r->lock);
				if (size != r->image_size) {
					r->image_size = size;
					r->events |= NVEMU_BDEV_RBD_RESIZED;
				}
				pthread_mutex_unlock(&r->lock);
			}
		}
		if (r->exclusive) {
			int held = 0, rc;

			if (!owner) {
				/* Breaks the lock of an owner whose watch is gone (and blocklists it). */
				rc = rbd_lock_acquire(r->image, RBD_LOCK_MODE_EXCLUSIVE);
				held = !rc;
				pthread_mutex_lock(&r->lock);
				r->lock_err = rc;
				pthread_mutex_unlock(&r->lock);
			} else if (rbd_is_exclusive_lock_owner(r->image, &held)) {
				held = 0;
			}
			pthread_mutex_lock(&r->lock);
			if (!!held != r->owner) {
				r->owner = held;
				r->events |= NVEMU_BDEV_RBD_LOCK;
			}
			pthread_mutex_unlock(&r->lock);
		}
		pthread_mutex_lock(&r->lock);
		if (r->events)
			kick(r);
		if (r->stop || r->refresh)
			continue;
		if (r->exclusive) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += LOCK_RETRY_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&r->cond, &r->lock, &ts);
		} else {
			pthread_cond_wait(&r->cond, &r->lock);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int rbd_bdev_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct rbd_bdev *r = to_rbd(bdev);
	struct rbd_io *io;
	int rc;

	if (r->exclusive && bio->op != NVEMU_BIO_READ) {
		bool owner;

		pthread_mutex_lock(&r->lock);
		owner = r->owner;
		pthread_mutex_unlock(&r->lock);
		/* Another gateway holds the image: this path is not the one to write through. */
		if (!owner)
			return -ENOLCK;
	}
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->bio = bio;
	io->r = r;
	rc = rbd_aio_create_completion(io, rbd_io_done, &io->comp);
	if (rc) {
		free(io);
		return rc < 0 ? rc : -ENOMEM;
	}
	switch (bio->op) {
	case NVEMU_BIO_READ:
		rc = rbd_aio_read(r->image, bio->offset, bio->len, bio->buf, io->comp);
		break;
	case NVEMU_BIO_WRITE:
		/* FUA needs nothing more: librbd's cache is off, a completed write is on the OSDs. */
		rc = rbd_aio_write(r->image, bio->offset, bio->len, bio->buf, io->comp);
		break;
	case NVEMU_BIO_FLUSH:
		rc = rbd_aio_flush(r->image, io->comp);
		break;
	case NVEMU_BIO_WRITE_ZEROES:
		rc = rbd_aio_write_zeroes(r->image, bio->offset, bio->len, io->comp, 0, 0);
		break;
	case NVEMU_BIO_DEALLOCATE:
		rc = rbd_aio_discard(r->image, bio->offset, bio->len, io->comp);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc < 0) {
		rbd_aio_release(io->comp);
		free(io);
		return rc;
	}
	r->inflight++;
	return 0;
}

/* librbd's error for an I/O, as the errno the engine maps to a status. */
static int rbd_errno(struct nvemu_bio *bio, ssize_t ret)
{
	if (ret >= 0) {
		/* A short read past a shrunk end: rbd_aio_read returns the bytes it read. */
		if (bio->op == NVEMU_BIO_READ && (uint64_t)ret < bio->len)
			memset((uint8_t *)bio->buf + ret, 0, bio->len - (uint64_t)ret);
		return 0;
	}
	switch (ret) {
	case -ETIMEDOUT: /* rados_osd_op_timeout: the cluster did not answer in time */
	case -ENOTCONN:
	case -ESHUTDOWN: /* this client was blocklisted (another gateway broke our lock) */
		return ret == -ESHUTDOWN ? -ENOLCK : -ETIMEDOUT;
	case -EROFS: /* exclusive lock lost to another gateway */
		return -ENOLCK;
	case -EINVAL:
		return -ERANGE; /* beyond an image another client shrank */
	default:
		return (int)ret;
	}
}

static void rbd_bdev_free(struct rbd_bdev *r);

static int rbd_bdev_poll(struct nvemu_bdev *bdev)
{
	struct rbd_bdev *r = to_rbd(bdev);
	STAILQ_HEAD(, rbd_io) list = STAILQ_HEAD_INITIALIZER(list);
	unsigned events;
	uint64_t v, size;
	int n = 0;

	if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&r->lock);
	STAILQ_CONCAT(&list, &r->done);
	events = r->events;
	r->events = 0;
	size = r->image_size;
	pthread_mutex_unlock(&r->lock);

	r->in_poll = true;
	while (!STAILQ_EMPTY(&list)) {
		struct rbd_io *io = STAILQ_FIRST(&list);
		struct nvemu_bio *bio = io->bio;
		int err;

		STAILQ_REMOVE_HEAD(&list, link);
		err = rbd_errno(bio, rbd_aio_get_return_value(io->comp));
		rbd_aio_release(io->comp);
		free(io);
		r->inflight--;
		r->completed++;
		if (err)
			r->errors++;
		bio->end_io(bio, err);
		n++;
	}
	if (!r->destroyed && events) {
		if (events & NVEMU_BDEV_RBD_RESIZED)
			bdev->size = size & ~(uint64_t)(bdev->blk_size - 1);
		if (r->event_fn)
			r->event_fn(bdev, events, r->event_arg);
	}
	r->in_poll = false;
	if (r->destroyed)
		rbd_bdev_free(r);
	return n;
}

static int rbd_bdev_get_fd(struct nvemu_bdev *bdev)
{
	return to_rbd(bdev)->efd;
}

static unsigned rbd_bdev_inflight(struct nvemu_bdev *bdev)
{
	return to_rbd(bdev)->inflight;
}

static int rbd_bdev_resize(struct nvemu_bdev *bdev, uint64_t new_size)
{
	/* The image's size is the cluster's: `rbd resize` it, the namespace follows. */
	return new_size <= bdev->size ? 0 : -ENOSPC;
}

/* Closing talks to the cluster (the lock, the watch): never on the owner's thread. */
static void rbd_close_all(struct rbd_bdev *r)
{

	if (r->watching)
		rbd_update_unwatch(r->image, r->watch);
	if (r->image)
		rbd_close(r->image);
	if (r->ioctx)
		rados_ioctx_destroy(r->ioctx);
	if (r->cluster)
		rados_shutdown(r->cluster);
	if (r->efd >= 0)
		close(r->efd);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void *rbd_closer(void *arg)
{
	rbd_close_all(arg);
	pthread_mutex_lock(&closing_lock);
	if (!--closing)
		pthread_cond_broadcast(&closing_cond);
	pthread_mutex_unlock(&closing_lock);
	return NULL;
}

static void rbd_stop_worker(struct rbd_bdev *r)
{
	if (!r->worker_ok)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	/* At most one blocking librbd call (bounded by the op timeout) away. */
	pthread_join(r->worker, NULL);
	r->worker_ok = false;
}

static void rbd_bdev_free(struct rbd_bdev *r)
{
	pthread_attr_t attr;
	pthread_t t;

	rbd_stop_worker(r);
	pthread_mutex_lock(&closing_lock);
	closing++;
	pthread_mutex_unlock(&closing_lock);
	if (!pthread_attr_init(&attr)) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (!pthread_create(&t, &attr, rbd_closer, r)) {
			pthread_attr_destroy(&attr);
			return;
		}
		pthread_attr_destroy(&attr);
	}
	rbd_closer(r);
}

static void rbd_bdev_destroy(struct nvemu_bdev *bdev)
{
	struct rbd_bdev *r = to_rbd(bdev);

	if (r->in_poll) {
		r->destroyed = true;
		return;
	}
	rbd_bdev_free(r);
}

static const struct nvemu_bdev_ops rbd_ops = {
	.type = "rbd",
	.submit = rbd_bdev_submit,
	.poll = rbd_bdev_poll,
	.get_fd = rbd_bdev_get_fd,
	.inflight = rbd_bdev_inflight,
	.resize = rbd_bdev_resize,
	.destroy = rbd_bdev_destroy,
};

static int rbd_err(struct nvemu_error *err, int code, const struct nvemu_bdev_rbd_opts *o,
		   const char *what)
{
	if (code > 0)
		code = -code;
	return nvemu_error_set(err, code, "rbd: %s/%s: %s: %s", o->pool_name, o->rbd_name, what,
			       strerror(-code));
}

/* Settings a gateway needs unless the caller chose otherwise. */
static const char *const rbd_defaults[] = {
	/* A cache in the gateway would hide writes from the other gateway and lose them with it. */
	"rbd_cache", "false",
	/* Bounded waits: an unreachable cluster fails create, an outage fails I/O (retryable). */
	"client_mount_timeout", "15",
	"rados_mon_op_timeout", "15",
	"rados_osd_op_timeout", "30",
	NULL,
};

static bool conf_given(const struct nvemu_bdev_rbd_opts *o, const char *key)
{
	for (const char *const *kv = o->config; kv && kv[0] && kv[1]; kv += 2)
		if (!strcmp(kv[0], key))
			return true;
	return false;
}

static int rbd_connect(struct rbd_bdev *r, const struct nvemu_bdev_rbd_opts *o,
		       struct nvemu_error *err)
{
	char id[128];
	int rc;

	snprintf(id, sizeof(id), "client.%s", o->user_id && o->user_id[0] ? o->user_id : "admin");
	rc = rados_create2(&r->cluster, o->cluster_name && o->cluster_name[0] ? o->cluster_name
									     : "ceph",
			   id, 0);
	if (rc) {
		r->cluster = NULL;
		return rbd_err(err, rc, o, "rados_create2");
	}
	if (o->config_file && o->config_file[0]) {
		rc = rados_conf_read_file(r->cluster, o->config_file);
		if (rc)
			return nvemu_error_set(err, rc, "rbd: config_file %s: %s", o->config_file,
					       strerror(-rc));
	} else if (!o->config || !conf_given(o, "mon_host")) {
		/* Ceph's own search ($CEPH_CONF, /etc/ceph/$cluster.conf, ...). */
		rados_conf_read_file(r->cluster, NULL);
	}
	for (const char *const *kv = rbd_defaults; kv[0]; kv += 2)
		if (!conf_given(o, kv[0]))
			rados_conf_set(r->cluster, kv[0], kv[1]);
	if (o->key_file && o->key_file[0]) {
		rc = rados_conf_set(r->cluster, "keyring", o->key_file);
		if (rc)
			return nvemu_error_set(err, rc, "rbd: key_file: %s", strerror(-rc));
	}
	for (const char *const *kv = o->config; kv && kv[0] && kv[1]; kv += 2) {
		rc = rados_conf_set(r->cluster, kv[0], kv[1]);
		if (rc == -ENOENT)
			return nvemu_error_set(err, -EINVAL, "rbd: config_param %s: not a Ceph option",
					       kv[0]);
		if (rc)
			return nvemu_error_set(err, rc, "rbd: config_param %s: bad value %s: %s",
					       kv[0], kv[1], strerror(-rc));
	}
	/*
	 * No monitor address: librados would look for one in DNS (SRV records),
	 * a query to whatever resolver the machine has and a wait for its
	 * timeout. nvemu wants the address given, so refuse before that.
	 */
	{
		char mon[16] = "";

		if (rados_conf_get(r->cluster, "mon_host", mon, sizeof(mon)) == -ENAMETOOLONG)
			mon[0] = 'x';
		if (!mon[0] && rados_conf_get(r->cluster, "mon_addr", mon, sizeof(mon)) == -ENAMETOOLONG)
			mon[0] = 'x';
		if (!mon[0])
			rc = -ENOENT;
		else
			rc = rados_connect(r->cluster);
	}
	if (rc == -ENOENT)
		return nvemu_error_set(err, -EINVAL,
				       "rbd: cluster %s: no monitor address (give config_file, or "
				       "mon_host in config_param)",
				       o->cluster_name && o->cluster_name[0] ? o->cluster_name
									     : "ceph");
	if (rc)
		return nvemu_error_set(err, rc, "rbd: cluster %s unreachable as %s: %s",
				       o->cluster_name && o->cluster_name[0] ? o->cluster_name
									     : "ceph",
				       id, strerror(-rc));
	rc = rados_ioctx_create(r->cluster, o->pool_name, &r->ioctx);
	if (rc) {
		r->ioctx = NULL;
		return nvemu_error_set(err, rc, "rbd: pool_name %s: %s", o->pool_name,
				       strerror(-rc));
	}
	rc = rbd_open(r->ioctx, o->rbd_name, &r->image, NULL);
	if (rc) {
		r->image = NULL;
		return nvemu_error_set(err, rc, "rbd: rbd_name %s in pool %s: %s", o->rbd_name,
				       o->pool_name, strerror(-rc));
	}
	return 0;
}

int nvemu_bdev_rbd_create(const char *name, const struct nvemu_bdev_rbd_opts *o,
			  struct nvemu_bdev **out, struct nvemu_error *err)
{
	struct rbd_bdev *r;
	uint32_t blk_size;
	uint64_t size;
	int rc;

	if (!o || !o->pool_name || !o->pool_name[0])
		return nvemu_error_set(err, -EINVAL, "rbd: pool_name: required");
	if (!o->rbd_name || !o->rbd_name[0])
		return nvemu_error_set(err, -EINVAL, "rbd: rbd_name: required");
	blk_size = o->blk_size ? o->blk_size : 512;
	r = calloc(1, sizeof(*r));
	if (!r)
		return nvemu_error_set(err, -ENOMEM, "rbd: out of memory");
	r->efd = -1;
	STAILQ_INIT(&r->done);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	/* Check the name and block size before talking to the cluster. */
	rc = nvemu_bdev_init(&r->bdev, &rbd_ops, name, 0, blk_size, err);
	if (rc)
		goto fail;
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		rc = rbd_err(err, -errno, o, "eventfd");
		goto fail;
	}
	rc = rbd_connect(r, o, err);
	if (rc)
		goto fail;
	rc = rbd_get_size(r->image, &size);
	if (rc) {
		rc = rbd_err(err, rc, o, "size");
		goto fail;
	}
	if (size < blk_size) {
		rc = nvemu_error_set(err, -EINVAL, "rbd: %s/%s: %llu bytes is less than one block",
				     o->pool_name, o->rbd_name, (unsigned long long)size);
		goto fail;
	}
	rc = nvemu_bdev_init(&r->bdev, &rbd_ops, name, size & ~(uint64_t)(blk_size - 1),
			     blk_size, err);
	if (rc)
		goto fail;
	r->bdev.priv = r;
	r->image_size = size;
	r->exclusive = o->exclusive;
	if (r->exclusive) {
		/* Take the lock now if it is free, so a lone gateway writes at once. */
		r->lock_err = rbd_lock_acquire(r->image, RBD_LOCK_MODE_EXCLUSIVE);
		r->owner = !r->lock_err;
	}
	rc = rbd_update_watch(r->image, &r->watch, rbd_header_changed, r);
	if (rc) {
		rc = rbd_err(err, rc, o, "watch");
		goto fail;
	}
	r->watching = true;
	rc = -pthread_create(&r->worker, NULL, rbd_worker, r);
	if (rc) {
		rc = rbd_err(err, rc, o, "worker thread");
		goto fail;
	}
	r->worker_ok = true;
	*out = &r->bdev;
	return 0;
fail:
	rbd_close_all(r);
	return rc;
}

int nvemu_bdev_rbd_set_event_cb(struct nvemu_bdev *bdev, nvemu_bdev_rbd_event_fn fn, void *arg)
{
	if (!bdev || bdev->ops != &rbd_ops)
		return -EINVAL;
	to_rbd(bdev)->event_fn = fn;
	to_rbd(bdev)->event_arg = arg;
	return 0;
}

int nvemu_bdev_rbd_get_info(struct nvemu_bdev *bdev, struct nvemu_bdev_rbd_info *info)
{
	struct rbd_bdev *r;

	if (!bdev || bdev->ops != &rbd_ops)
		return -EINVAL;
	r = to_rbd(bdev);
	if (!info)
		return 0;
	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&r->lock);
	info->image_size = r->image_size;
	info->lock_owner = r->exclusive ? r->owner : false;
	info->lock_err = r->lock_err;
	pthread_mutex_unlock(&r->lock);
	info->exclusive = r->exclusive;
	info->completed = r->completed;
	info->errors = r->errors;
	info->inflight = r->inflight;
	return 0;
}

#else /* !NVEMU_HAVE_RBD */

int nvemu_bdev_rbd_wait_closed(unsigned timeout_ms)
{
	return 0;
}

int nvemu_bdev_rbd_create(const char *name, const struct nvemu_bdev_rbd_opts *o,
			  struct nvemu_bdev **out, struct nvemu_error *err)
{
	return nvemu_error_set(err, -ENOTSUP, "rbd: this build has no librbd (meson -Drbd)");
}

int nvemu_bdev_rbd_set_event_cb(struct nvemu_bdev *bdev, nvemu_bdev_rbd_event_fn fn, void *arg)
{
	return -EINVAL;
}

int nvemu_bdev_rbd_get_info(struct nvemu_bdev *bdev, struct nvemu_bdev_rbd_info *info)
{
	return -EINVAL;
}

#endif
