// SPDX-License-Identifier: MIT
/*
 * The daemon's registries: subsystems, bdevs and controller names, looked
 * up by the method files and the other daemon objects; calls nothing above
 * it. Helpers shared by all of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "daemon.h"
#include "event-loop.h"

/* ---- backends */

int nvemud_poll_backends(struct nvemud *d)
{
	int n = 0;

	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		int r = nvemu_bdev_poll(d->bdevs[i].bdev);

		if (r > 0)
			n += r;
	}
	/* Namespaces with their own (unregistered) bdevs. */
	for (unsigned i = 0; i < d->nr_subsys; i++) {
		int r = nvemu_subsys_poll(d->subsys[i]);

		if (r > 0)
			n += r;
	}
	return n;
}

static unsigned total_inflight(struct nvemud *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < d->nr_subsys; i++) {
		struct nvemu_subsys *s = d->subsys[i];

		struct nvemu_ctrl *ctrl;

		for (unsigned c = 0; (ctrl = nvemu_subsys_ctrl_at(s, c)); c++)
			n += nvemu_ctrl_inflight(ctrl);
	}
	for (unsigned i = 0; i < d->nr_bdevs; i++)
		n += nvemu_bdev_inflight(d->bdevs[i].bdev);
	return n;
}

static void flush_end_io(struct nvemu_bio *bio, int err)
{
	*(int *)bio->private = err ? err : 1;
}

void nvemud_drain(struct nvemud *d, unsigned timeout_ms)
{
	uint64_t deadline = nvemud_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	const struct timespec ts = { 0, 200000 };

	while (total_inflight(d) && nvemud_now_ns() < deadline) {
		if (!nvemud_poll_backends(d))
			nanosleep(&ts, NULL);
	}
	if (total_inflight(d))
		nvemud_log(d, NVEMUD_LOG_WARN, "%u commands still in flight at shutdown",
			   total_inflight(d));
	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		struct nvemu_bdev *b = d->bdevs[i].bdev;
		struct nvemu_bio bio = { .bdev = b, .op = NVEMU_BIO_FLUSH, .end_io = flush_end_io };
		int done = 0;

		if (strcmp(b->ops->type, "file") || b->read_only)
			continue;
		bio.private = &done;
		if (nvemu_bdev_submit(b, &bio))
			continue;
		while (!done && nvemud_now_ns() < deadline + 5000000000ull) {
			if (nvemu_bdev_poll(b) <= 0 && !done)
				nanosleep(&ts, NULL);
		}
		if (done < 0)
			nvemud_log(d, NVEMUD_LOG_WARN, "bdev %s: flush failed: %s", b->name,
				   strerror(-done));
		else if (!done)
			nvemud_log(d, NVEMUD_LOG_WARN, "bdev %s: flush did not complete", b->name);
	}
}

/* ---- Namespace Management backing store */

/*
 * A RAM bdev made for a namespace a host creates is named and listed like any
 * other, so save_config saves it (geometry only, as RAM bdevs are). The
 * engine destroys it with its namespace: the wrapper drops it from the list.
 */
struct nsm_bdev {
	struct nvemu_bdev_ops ops; /* first: the bdev's ops point here */
	const struct nvemu_bdev_ops *orig;
	struct nvemud *d;
};

static void nsm_destroy(struct nvemu_bdev *b)
{
	struct nsm_bdev *w = (struct nsm_bdev *)(uintptr_t)b->ops;
	struct nvemud *d = w->d;

	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		if (d->bdevs[i].bdev == b) {
			nvemud_del_bdev(d, &d->bdevs[i]);
			break;
		}
	}
	b->ops = w->orig;
	free(w);
	b->ops->destroy(b);
}

static int nsm_alloc(struct nvemu_subsys *s, uint64_t bytes, uint32_t lba_size,
		     struct nvemu_bdev **out, void *arg)
{
	struct nvemud *d = arg;
	struct nsm_bdev *w = calloc(1, sizeof(*w));
	struct nvemu_bdev *b;
	char name[64];

	if (!w)
		return -ENOMEM;
	do
		snprintf(name, sizeof(name), "NsMgmt%u", ++d->next_nsm_bdev);
	while (nvemud_find_bdev(d, name));
	if (nvemu_bdev_ram_create(name, bytes, 512, &b, NULL)) {
		free(w);
		return -ENOMEM;
	}
	w->ops = *b->ops;
	w->ops.destroy = nsm_destroy;
	w->orig = b->ops;
	w->d = d;
	b->ops = &w->ops;
	if (nvemud_add_bdev(d, b, NULL)) {
		nvemu_bdev_destroy(b, NULL);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void nvemud_subsys_setup(struct nvemud *d, struct nvemu_subsys *s)
{
	nvemu_subsys_set_ns_bdev_alloc(s, nsm_alloc, d);
}

/* ---- lookups */

struct nvemu_subsys *nvemud_find_subsys(struct nvemud *d, const char *nqn)
{
	for (unsigned i = 0; i < d->nr_subsys; i++)
		if (!strcmp(nvemu_subsys_nqn(d->subsys[i]), nqn))
			return d->subsys[i];
	return NULL;
}

struct nvemud_bdev *nvemud_find_bdev(struct nvemud *d, const char *name)
{
	for (unsigned i = 0; i < d->nr_bdevs; i++)
		if (!strcmp(d->bdevs[i].bdev->name, name))
			return &d->bdevs[i];
	return NULL;
}

struct nvemud_ctrl *nvemud_find_ctrl(struct nvemud *d, const char *name)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		if (!strcmp(d->ctrls[i].name, name))
			return &d->ctrls[i];
	return NULL;
}

const char *nvemud_ctrl_name(struct nvemud *d, struct nvemu_subsys *s, uint16_t cntlid)
{
	for (unsigned i = 0; i < d->nr_ctrls; i++)
		if (d->ctrls[i].subsys == s && d->ctrls[i].cntlid == cntlid)
			return d->ctrls[i].name;
	return NULL;
}

struct nvemu_ctrl *nvemud_ctrl_get(struct nvemud_ctrl *c)
{
	return nvemu_subsys_ctrl(c->subsys, c->cntlid);
}

/* ---- registry updates */

int nvemud_add_subsys(struct nvemud *d, struct nvemu_subsys *s)
{
	struct nvemu_subsys **n = realloc(d->subsys, (d->nr_subsys + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	d->subsys = n;
	d->subsys[d->nr_subsys++] = s;
	return 0;
}

void nvemud_del_subsys(struct nvemud *d, struct nvemu_subsys *s)
{
	/* Its virtio-blk exports detach (their controllers go when their requests have). */
	nvemud_vblk_ns_removed(d, s, 0);
	for (unsigned i = 0; i < d->nr_ctrls;) {
		if (d->ctrls[i].subsys == s)
			nvemud_del_ctrl(d, &d->ctrls[i]);
		else
			i++;
	}
	for (unsigned i = 0; i < d->nr_subsys; i++) {
		if (d->subsys[i] == s) {
			memmove(&d->subsys[i], &d->subsys[i + 1],
				(d->nr_subsys - i - 1) * sizeof(*d->subsys));
			d->nr_subsys--;
			return;
		}
	}
}

static void bdev_ready(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	nvemu_bdev_poll(arg);
}

/*
 * End of a loop iteration: one system call starts everything the iteration
 * queued on the bdev. If it could not, the loop comes back within its idle
 * poll interval to try again rather than sleeping on queued I/O.
 */
int nvemud_bdevs_flush(struct nvemud *d, bool *again)
{
	int n = 0;

	for (unsigned i = 0; i < d->nr_bdevs; i++) {
		int rc = nvemu_bdev_flush_submit(d->bdevs[i].bdev);

		if (rc < 0)
			*again = true;
		else
			n += rc;
	}
	return n;
}

static int bdevs_flush(void *arg)
{
	struct nvemud *d = arg;
	bool again = false;
	int n = nvemud_bdevs_flush(d, &again);

	loop_poller_set_needs_polling(d->bdev_flusher, again);
	return n;
}

int nvemud_add_bdev(struct nvemud *d, struct nvemu_bdev *b, const char *filename)
{
	struct nvemud_bdev *n = realloc(d->bdevs, (d->nr_bdevs + 1) * sizeof(*n));
	struct nvemud_bdev *nb;
	int fd;

	if (!n)
		return -ENOMEM;
	d->bdevs = n;
	nb = &d->bdevs[d->nr_bdevs];
	memset(nb, 0, sizeof(*nb));
	nb->bdev = b;
	if (filename) {
		nb->filename = strdup(filename);
		if (!nb->filename)
			return -ENOMEM;
	}
	fd = nvemu_bdev_get_fd(b);
	if (d->loop && fd >= 0)
		nb->src = loop_add_fd(d->loop, fd, EPOLLIN, bdev_ready, b);
	if (d->loop && !d->bdev_flusher)
		d->bdev_flusher = loop_add_flusher(d->loop, bdevs_flush, d);
	/* Without the flusher, every bio starts inside submit() as before. */
	if (d->bdev_flusher)
		nvemu_bdev_set_batching(b, true);
	d->nr_bdevs++;
	return 0;
}

void nvemud_del_bdev(struct nvemud *d, struct nvemud_bdev *b)
{
	unsigned i = b - d->bdevs;

	/* Starts what is still queued: the bdev may outlive the registry (delete waits). */
	nvemu_bdev_set_batching(b->bdev, false);
	loop_del(b->src);
	free(b->filename);
	memmove(&d->bdevs[i], &d->bdevs[i + 1], (d->nr_bdevs - i - 1) * sizeof(*d->bdevs));
	d->nr_bdevs--;
	if (!d->nr_bdevs) {
		loop_del(d->bdev_flusher);
		d->bdev_flusher = NULL;
	}
}

struct nvemud_ctrl *nvemud_add_ctrl(struct nvemud *d, const char *name,
				    struct nvemu_subsys *s, uint16_t cntlid)
{
	struct nvemud_ctrl *n = realloc(d->ctrls, (d->nr_ctrls + 1) * sizeof(*n));
	struct nvemud_ctrl *c;
	unsigned idx;

	if (!n)
		return NULL;
	d->ctrls = n;
	c = &d->ctrls[d->nr_ctrls];
	memset(c, 0, sizeof(*c));
	if (name) {
		snprintf(c->name, sizeof(c->name), "%s", name);
		/* Keep generated names from colliding with restored ones. */
		if (sscanf(name, "NVMeCtrl%u", &idx) == 1 && idx >= d->next_ctrl_idx)
			d->next_ctrl_idx = idx + 1;
	} else {
		do
			snprintf(c->name, sizeof(c->name), "NVMeCtrl%u", d->next_ctrl_idx++);
		while (nvemud_find_ctrl(d, c->name) != NULL);
	}
	c->subsys = s;
	c->cntlid = cntlid;
	d->nr_ctrls++;
	return c;
}

void nvemud_del_ctrl(struct nvemud *d, struct nvemud_ctrl *c)
{
	unsigned i = c - d->ctrls;

	nvemud_func_ctrl_gone(d, c);
	nvemud_fwd_free(c);
	memmove(&d->ctrls[i], &d->ctrls[i + 1], (d->nr_ctrls - i - 1) * sizeof(*d->ctrls));
	d->nr_ctrls--;
}

/* ---- helpers */

uint64_t nvemud_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void nvemud_uuid_unparse(const uint8_t uuid[16], char out[37])
{
	uuid_unparse_lower(uuid, out);
}

void nvemud_hex(const void *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nvemud_unhex(const char *s, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (!s || strlen(s) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool nvemud_all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}
