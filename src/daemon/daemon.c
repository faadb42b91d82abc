// SPDX-License-Identifier: MIT
/* The daemon's registries (subsystems, bdevs, controller names) and the default setup. */
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
#include "rpc.h"
#include <nvemu/tcp.h>

void nvemud_log(struct nvemud *d, int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug", "trace" };
	char msg[1024], out[4 * sizeof(msg)];
	size_t o = 0;
	va_list ap;

	if (d && level > d->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Names and NQNs come from peers: a newline in one must not forge a log line. */
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", *p);
		else if (*p == '\\')
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\\\");
		else
			out[o++] = (char)*p;
	}
	out[o] = 0;
	fprintf(stderr, "nvemud: %s: %s\n", names[level < 0 ? 0 : level > 4 ? 4 : level], out);
}

/* ---- the TCP target on the daemon's loop */

struct tcp_watch {
	struct loop_src *src;
	nvemu_tcp_fd_cb cb;
	void *arg;
};

static void tcp_watch_cb(struct loop_src *src, int fd, uint32_t revents, void *arg)
{
	struct tcp_watch *w = arg;

	/* w may be freed by the callback (del_fd): do not touch it after. */
	w->cb(fd, revents, w->arg);
}

static void *tcp_add_fd(void *loop, int fd, uint32_t events, nvemu_tcp_fd_cb cb, void *arg)
{
	struct tcp_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->src = loop_add_fd(loop, fd, events, tcp_watch_cb, w);
	if (!w->src) {
		free(w);
		return NULL;
	}
	return w;
}

static int tcp_mod_fd(void *loop, void *handle, uint32_t events)
{
	return loop_mod_fd(((struct tcp_watch *)handle)->src, events);
}

static void tcp_del_fd(void *loop, void *handle)
{
	struct tcp_watch *w = handle;

	/* loop_del keeps the source until the dispatch round ends; w is ours. */
	loop_del(w->src);
	free(w);
}

static const struct nvemu_tcp_loop_ops tcp_loop_ops = {
	.add_fd = tcp_add_fd,
	.mod_fd = tcp_mod_fd,
	.del_fd = tcp_del_fd,
};

static void tcp_log_cb(void *arg, int level, const char *msg)
{
	nvemud_log(arg, level, "tcp: %s", msg);
}

static void tcp_tick_cb(struct loop_src *src, void *arg)
{
	struct nvemud *d = arg;

	if (d->tcp)
		nvemu_tcp_target_tick(d->tcp);
}

void nvemud_tcp_stop(struct nvemud *d)
{
	loop_del(d->tcp_tick);
	d->tcp_tick = NULL;
	nvemu_tcp_target_destroy(d->tcp);
	d->tcp = NULL;
}

struct nvemud *nvemud_new(struct loop *loop, int log_level)
{
	struct nvemud *d = calloc(1, sizeof(*d));
	struct nvemu_tcp_target_params tp;
	struct nvemu_error err = { 0 };

	if (!d)
		return NULL;
	d->loop = loop;
	d->log_level = log_level;
	d->next_ctrl_idx = 1;
	nvemu_tcp_target_params_init(&tp);
	tp.log = tcp_log_cb;
	tp.log_arg = d;
	if (loop) {
		tp.ops = &tcp_loop_ops;
		tp.loop = loop;
	}
	if (nvemu_tcp_target_create(&tp, &d->tcp, &err)) {
		nvemud_log(d, NVEMUD_LOG_ERR, "TCP target: %s", err.msg);
		free(d);
		return NULL;
	}
	if (loop) {
		d->tcp_tick = loop_add_timer(loop, 100, true, tcp_tick_cb, d);
		if (!d->tcp_tick || nvemud_teardown_init(d)) {
			loop_del(d->tcp_tick);
			loop_del(d->td_tick);
			loop_del(d->td_kick);
			nvemu_tcp_target_destroy(d->tcp);
			free(d);
			return NULL;
		}
	}
	return d;
}

void nvemud_free(struct nvemud *d)
{
	struct nvemu_error err;

	if (!d)
		return;
	nvemud_teardown_finish_all(d, 5000);
	nvemud_drain(d, 5000);
	/* Before the subsystems: it ends the host associations and removes their controllers. */
	nvemud_tcp_stop(d);
	nvemud_mi_free(d);
	while (d->nr_subsys) {
		struct nvemu_subsys *s = d->subsys[d->nr_subsys - 1];

		nvemud_del_subsys(d, s);
		nvemu_subsys_destroy(s);
	}
	while (d->nr_bdevs) {
		struct nvemud_bdev *b = &d->bdevs[d->nr_bdevs - 1];
		struct nvemu_bdev *bdev = b->bdev;

		nvemud_del_bdev(d, b);
		if (nvemu_bdev_destroy(bdev, &err))
			nvemud_log(d, NVEMUD_LOG_WARN, "bdev: %s", err.msg);
	}
	free(d->subsys);
	free(d->bdevs);
	free(d->ctrls);
	json_decref(d->skipped);
	free(d);
}

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
	d->nr_bdevs++;
	return 0;
}

void nvemud_del_bdev(struct nvemud *d, struct nvemud_bdev *b)
{
	unsigned i = b - d->bdevs;

	loop_del(b->src);
	free(b->filename);
	memmove(&d->bdevs[i], &d->bdevs[i + 1], (d->nr_bdevs - i - 1) * sizeof(*d->bdevs));
	d->nr_bdevs--;
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

	nvemud_vfu_stop(d, c);
	memmove(&d->ctrls[i], &d->ctrls[i + 1], (d->nr_ctrls - i - 1) * sizeof(*d->ctrls));
	d->nr_ctrls--;
}

/* ---- the seed-000 default */

int nvemud_load_default(struct nvemud *d, struct nvemu_error *err)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ns_params np;
	struct nvemu_subsys *s;
	struct nvemu_bdev *b0 = NULL, *b1 = NULL;
	uint16_t port, twport, cntlid;
	uint32_t nsid1, nsid2;
	int ret;

	ret = nvemu_subsys_info_environment(&sp, err);
	if (ret)
		return ret;
	sp.nqn = NVEMUD_DEFAULT_NQN;
	/* Served over PCIe: SeaBIOS identifies every NSID up to NN at boot. */
	sp.nn = 256;
	sp.mnan = 256;
	ret = nvemu_subsys_create(&sp, &s, err);
	if (ret)
		return ret;
	ret = nvemu_bdev_ram_create("Malloc0", 1024 * 512ull, 512, &b0, err);
	if (!ret)
		ret = nvemu_bdev_ram_create("Malloc1", 2048 * 512ull, 512, &b1, err);
	if (ret)
		goto fail;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	ret = nvemu_subsys_add_port(s, &pp, &port, err);
	if (!ret)
		ret = nvemu_subsys_add_ctrl(s, port, &cntlid, err);
	if (ret)
		goto fail;
	nvemu_ns_params_init(&np);
	np.bdev = b0;
	ret = nvemu_subsys_add_ns_ex(s, &np, &nsid1, err);
	if (ret)
		goto fail;
	np.bdev = b1;
	ret = nvemu_subsys_add_ns_ex(s, &np, &nsid2, err);
	if (!ret)
		ret = nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(s, cntlid), nsid1, err);
	if (ret)
		goto fail;
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	ret = nvemu_subsys_add_port(s, &pp, &twport, err);
	if (ret)
		goto fail;
	if (nvemud_add_subsys(d, s) || nvemud_add_bdev(d, b0, NULL) ||
	    nvemud_add_bdev(d, b1, NULL) || !nvemud_add_ctrl(d, NULL, s, cntlid))
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	nvemud_subsys_setup(d, s);
	/* NVMe-MI on the two-wire port, MCTP network 1, EID 9. */
	return nvemud_mi_add_ep(d, s, twport, 1, 9, 0, err);
fail:
	nvemu_subsys_destroy(s);
	if (b1)
		nvemu_bdev_destroy(b1, NULL);
	if (b0)
		nvemu_bdev_destroy(b0, NULL);
	return ret;
}

int nvemud_add_default_listener(struct nvemud *d, const char *traddr, const char *trsvcid,
				struct nvemu_error *err)
{
	struct nvemu_subsys *s = nvemud_find_subsys(d, NVEMUD_DEFAULT_NQN);
	int ret;

	if (!s || !d->tcp)
		return nvemu_error_set(err, -ENOENT, "no default subsystem");
	if (!nvemu_tcp_has_subsys(d->tcp, s)) {
		ret = nvemu_tcp_add_subsys(d->tcp, s, err);
		if (ret)
			return ret;
	}
	ret = nvemu_tcp_set_allow_any_host(d->tcp, s, true, err);
	if (ret)
		return ret;
	return nvemu_tcp_add_listener(d->tcp, s, traddr, trsvcid, 0, err);
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
