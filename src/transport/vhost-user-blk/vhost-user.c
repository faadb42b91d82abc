/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user back end: the client's socket, message framing with fds
 * (SCM_RIGHTS), feature negotiation, the memory table, ring set-up and
 * tear-down, config space and inflight shared memory. Every message is
 * checked for its size, indices and fds before use; anything malformed
 * drops the client with one log line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vblk-internal.h"

#define PROTOCOL_FEATURES                                                                          \
	(1ull << VHOST_USER_PROTOCOL_F_MQ | 1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK |              \
	 1ull << VHOST_USER_PROTOCOL_F_CONFIG | 1ull << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD |     \
	 1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE |                                              \
	 1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void set_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

void vblk_queue_call(struct vblk_queue *q)
{
	if (q->call_fd >= 0)
		eventfd_write(q->call_fd, 1);
}

static int send_reply(struct vblk_conn *c, struct vhost_user_msg *msg, uint32_t size, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov[2] = {{.iov_base = msg, .iov_len = VHOST_USER_HDR_SIZE},
			       {.iov_base = &msg->p, .iov_len = size}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;

	msg->flags = VHOST_USER_VERSION | VHOST_USER_REPLY;
	msg->size = size;
	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	/* Replies are small; a client that lets its socket fill up is not waited for. */
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n == (ssize_t)(VHOST_USER_HDR_SIZE + size) ? 0 : -EIO;
}

static int reply_u64(struct vblk_conn *c, struct vhost_user_msg *msg, uint64_t v)
{
	msg->p.u64 = v;
	return send_reply(c, msg, sizeof(uint64_t), -1);
}

static void conn_watch(struct nvemu_vblk *vb, bool on)
{
	struct vblk_conn *c = vb->conn;

	if (c->reading != on && !vb->p.ops->mod_fd(vb->p.loop, c->handle, on ? EPOLLIN : 0))
		c->reading = on;
}

/* ---- rings */

static struct vblk_queue *queue(struct nvemu_vblk *vb, uint32_t idx)
{
	struct vblk_conn *c = vb->conn;
	uint16_t n = vb->p.num_queues;

	if (idx >= n)
		return NULL;
	if (idx >= c->nr_q)
		c->nr_q = idx + 1;
	return &c->q[idx];
}

static void kick_cb(int fd, uint32_t revents, void *arg)
{
	struct vblk_queue *q = arg;
	eventfd_t v;

	(void)revents;
	eventfd_read(fd, &v);
	vblk_queue_process(q);
}

static void queue_stop(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	if (q->kick_handle)
		vb->p.ops->del_fd(vb->p.loop, q->kick_handle);
	q->kick_handle = NULL;
	set_fd(&q->kick_fd, -1);
	q->started = false;
	free(q->resubmit);
	q->resubmit = NULL;
	q->nr_resubmit = q->resubmit_pos = 0;
}

static void queue_reset(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	queue_stop(vb, q);
	vblk_orphan_queue(vb, q);
	set_fd(&q->call_fd, -1);
	set_fd(&q->err_fd, -1);
	memset(&q->vr, 0, sizeof(q->vr));
	q->addr_set = q->enabled = q->base_pending = q->kicked = false;
}

static void queue_init(struct nvemu_vblk *vb, struct vblk_queue *q, uint16_t idx)
{
	memset(q, 0, sizeof(*q));
	q->vb = vb;
	q->idx = idx;
	q->kick_fd = q->call_fd = q->err_fd = -1;
}

static int queue_map(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	struct vblk_conn *c = vb->conn;
	char why[128];

	if (!q->addr_set)
		return 0;
	if (vblk_vring_map(&q->vr, c->mem, q->desc_uva, q->avail_uva, q->used_uva, why,
			   sizeof(why))) {
		vblk_conn_fail(vb, "ring %u: %s", q->idx, why);
		return -EINVAL;
	}
	return 0;
}

static size_t inflight_stride(uint32_t qs)
{
	return (sizeof(struct vblk_inflight_queue) + qs * sizeof(struct vblk_inflight_desc) + 63) &
	       ~(size_t)63;
}

/* Inflight memory: attach the ring's part and collect what to resubmit. */
static int queue_inflight(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	struct vblk_conn *c = vb->conn;
	size_t per = inflight_stride(c->inflight_qsize);
	int n;

	q->vr.inflight = NULL;
	if (!c->inflight_map)
		return 0;
	if (q->idx >= c->inflight_nq || q->vr.num > c->inflight_qsize) {
		vblk_conn_fail(vb, "ring %u: not covered by the inflight memory", q->idx);
		return -EINVAL;
	}
	q->vr.inflight = (void *)((uint8_t *)c->inflight_map + q->idx * per);
	q->resubmit = calloc(q->vr.num, sizeof(*q->resubmit));
	if (!q->resubmit)
		return -ENOMEM;
	n = vblk_vring_inflight_start(&q->vr, q->resubmit, q->vr.num);
	if (n < 0) {
		vblk_conn_fail(vb, "ring %u: inflight memory does not match the ring", q->idx);
		return -EINVAL;
	}
	q->nr_resubmit = (unsigned)n;
	vb->st.resubmitted += (unsigned)n;
	if (n)
		vblk_log(vb, NVEMU_VBLK_LOG_INFO, "%s: ring %u: resubmitting %d requests in flight",
			 vb->path, q->idx, n);
	return 0;
}

static bool ring_packed(const struct nvemu_vblk *vb)
{
	return vb->conn->features & (1ull << VIRTIO_F_RING_PACKED);
}

static int queue_start(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	if (!q->addr_set || !vb->conn->mem || q->kick_fd < 0) {
		vblk_conn_fail(vb, "ring %u kicked before its size, addresses and memory", q->idx);
		return -EINVAL;
	}
	q->vr.packed = ring_packed(vb);
	if (queue_map(vb, q))
		return -EINVAL;
	q->vr.event_idx = vb->conn->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	q->vr.signalled_valid = false;
	if (q->vr.packed) {
		/* No inflight tracking in packed layout: the client's memory is left alone. */
		if (q->vr.last_avail >= q->vr.num || q->vr.used_idx >= q->vr.num) {
			vblk_conn_fail(vb, "ring %u: base beyond the ring", q->idx);
			return -EINVAL;
		}
	} else {
		q->vr.used_idx = le16toh(q->vr.used->idx);
		if (queue_inflight(vb, q))
			return -EINVAL;
	}
	q->vr.signalled = q->vr.used_idx;
	q->kick_handle = vb->p.ops->add_fd(vb->p.loop, q->kick_fd, EPOLLIN, kick_cb, q);
	if (!q->kick_handle)
		return -ENOMEM;
	q->started = true;
	if (!(vb->conn->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
		q->enabled = true;
	q->kicked = true;
	vblk_queue_process(q);
	return 0;
}

void vblk_queue_idle(struct nvemu_vblk *vb, struct vblk_queue *q)
{
	struct vhost_user_msg msg = {.request = VHOST_USER_GET_VRING_BASE};

	if (!q->base_pending || q->inflight)
		return;
	q->base_pending = false;
	msg.p.state = (struct vhost_user_vring_state){.index = q->idx,
						      .num = vblk_vring_get_base(&q->vr)};
	if (send_reply(vb->conn, &msg, sizeof(msg.p.state), -1)) {
		vblk_conn_fail(vb, "cannot send a reply");
		return;
	}
	conn_watch(vb, true);
}

/* ---- message handlers: 0 done, 1 done and acked already (reply sent), <0 drop */

static int h_vring_state(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds)
{
	struct vblk_queue *q = queue(vb, msg->p.state.index);
	uint32_t num = msg->p.state.num;

	(void)fds;
	if (!q) {
		vblk_conn_fail(vb, "ring index %u out of range", msg->p.state.index);
		return -EINVAL;
	}
	switch (msg->request) {
	case VHOST_USER_SET_VRING_NUM:
		if (q->started || !num || (num & (num - 1)) || num > vb->p.queue_size) {
			vblk_conn_fail(vb, "ring %u: size %u refused (power of 2 up to %u)", q->idx,
				       num, vb->p.queue_size);
			return -EINVAL;
		}
		q->vr.num = (uint16_t)num;
		return 0;
	case VHOST_USER_SET_VRING_BASE:
		q->vr.packed = ring_packed(vb);
		if (q->started || (!q->vr.packed && num > 0xffff)) {
			vblk_conn_fail(vb, "ring %u: base %u refused", q->idx, num);
			return -EINVAL;
		}
		vblk_vring_set_base(&q->vr, num);
		return 0;
	case VHOST_USER_SET_VRING_ENABLE:
		q->enabled = num != 0;
		if (q->enabled && q->started)
			vblk_queue_process(q);
		return 0;
	default: /* GET_VRING_BASE: the ring stops; answer once its requests completed */
		queue_stop(vb, q);
		q->enabled = false;
		q->base_pending = true;
		if (q->inflight) {
			conn_watch(vb, false);
			return 1;
		}
		vblk_queue_idle(vb, q);
		return vb->conn ? 1 : -EIO;
	}
}

static int h_vring_addr(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds)
{
	struct vblk_queue *q = queue(vb, msg->p.addr.index);

	(void)fds;
	if (!q || q->started || !q->vr.num) {
		vblk_conn_fail(vb, "ring %u: addresses refused", msg->p.addr.index);
		return -EINVAL;
	}
	q->desc_uva = msg->p.addr.desc;
	q->avail_uva = msg->p.addr.avail;
	q->used_uva = msg->p.addr.used;
	q->addr_set = true;
	if (vb->conn->mem && queue_map(vb, q))
		return -EINVAL;
	return 0;
}

static int h_vring_fd(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds)
{
	struct vblk_queue *q = queue(vb, msg->p.u64 & VHOST_USER_VRING_IDX_MASK);
	bool nofd = msg->p.u64 & VHOST_USER_VRING_NOFD;
	int fd = nofd ? -1 : fds[0];

	if (!nofd)
		fds[0] = -1;
	if (!nofd && fd < 0) {
		vblk_conn_fail(vb, "ring fd message without an fd");
		return -EINVAL;
	}
	if (!q) {
		if (fd >= 0)
			close(fd);
		vblk_conn_fail(vb, "ring index %u out of range",
			       (unsigned)(msg->p.u64 & VHOST_USER_VRING_IDX_MASK));
		return -EINVAL;
	}
	if (msg->request == VHOST_USER_SET_VRING_CALL) {
		set_fd(&q->call_fd, fd);
		return 0;
	}
	if (msg->request == VHOST_USER_SET_VRING_ERR) {
		set_fd(&q->err_fd, fd);
		return 0;
	}
	if (fd < 0) {
		vblk_conn_fail(vb, "ring %u: polling mode (no kick fd) is not offered", q->idx);
		return -EINVAL;
	}
	queue_stop(vb, q);
	q->kick_fd = fd;
	return queue_start(vb, q);
}

/* Re-translate the started rings after the table changed. */
static int remap_rings(struct nvemu_vblk *vb)
{
	for (unsigned i = 0; vb->conn && i < vb->conn->nr_q; i++)
		if (vb->conn->q[i].addr_set && queue_map(vb, &vb->conn->q[i]))
			return -EINVAL;
	return 0;
}

static void mem_replace(struct nvemu_vblk *vb, struct vblk_mem *m)
{
	vblk_mem_put(vb->conn->mem);
	vb->conn->mem = m;
}

static int h_mem_table(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds, unsigned nr)
{
	uint32_t n = msg->p.mem.nregions;
	struct vblk_mem *m;
	char why[160];
	int ret = 0;

	if (n > VHOST_USER_MEM_BASELINE || n != nr ||
	    msg->size < 8 + n * sizeof(struct vhost_user_region)) {
		vblk_conn_fail(vb, "SET_MEM_TABLE: %u regions with %u fds", n, nr);
		return -EINVAL;
	}
	m = vblk_mem_new();
	if (!m)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		int fd = fds[i];

		fds[i] = -1;
		if (!ret)
			ret = vblk_mem_add(m, vb->p.ds_max, &msg->p.mem.regions[i], fd,
					   vb->register_ds, why, sizeof(why));
		else
			close(fd);
	}
	if (ret) {
		vblk_mem_put(m);
		vblk_conn_fail(vb, "SET_MEM_TABLE: %s", why);
		return ret;
	}
	mem_replace(vb, m);
	return remap_rings(vb);
}

static int h_mem_reg(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds, unsigned nr)
{
	const struct vhost_user_region *r = &msg->p.mem_one.region;
	struct vblk_mem *m = vblk_mem_clone(vb->conn->mem);
	char why[160] = "no such region";
	int ret;

	if (!m)
		return -ENOMEM;
	if (msg->request == VHOST_USER_ADD_MEM_REG) {
		if (nr != 1) {
			vblk_mem_put(m);
			vblk_conn_fail(vb, "ADD_MEM_REG without exactly one fd");
			return -EINVAL;
		}
		ret = vblk_mem_add(m, vb->p.ds_max, r, fds[0], vb->register_ds, why, sizeof(why));
		fds[0] = -1;
	} else {
		ret = vblk_mem_remove(m, r->gpa, r->size);
	}
	if (ret) {
		vblk_mem_put(m);
		vblk_conn_fail(vb, "%s: %s",
			       msg->request == VHOST_USER_ADD_MEM_REG ? "ADD_MEM_REG"
								      : "REM_MEM_REG",
			       why);
		return ret;
	}
	mem_replace(vb, m);
	return remap_rings(vb);
}

static int h_config(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds)
{
	struct virtio_blk_config cfg;
	uint32_t off = msg->p.config.offset, size = msg->p.config.size;

	(void)fds;
	if (size > VHOST_USER_CONFIG_SPACE_MAX || msg->size < 12 + size) {
		vblk_conn_fail(vb, "config message of bad size");
		return -EINVAL;
	}
	if (msg->request == VHOST_USER_SET_CONFIG)
		return 0; /* nothing is writable (no VIRTIO_BLK_F_CONFIG_WCE) */
	vblk_config(vb, &cfg);
	if (off > sizeof(cfg) || size > sizeof(cfg) - off)
		size = 0; /* the client sees the error as a short reply */
	memcpy(msg->p.config.region, (uint8_t *)&cfg + off, size);
	msg->p.config.size = size;
	return send_reply(vb->conn, msg, 12 + size, -1) ? -EIO : 1;
}

static size_t inflight_size(uint32_t nq, uint32_t qs)
{
	return inflight_stride(qs) * nq;
}

/* Map the inflight memory; a file shorter than the mapping would SIGBUS us later. */
static int map_inflight(struct nvemu_vblk *vb, int fd, const struct vhost_user_inflight *in)
{
	struct vblk_conn *c = vb->conn;
	struct stat st;
	void *p;

	if (fstat(fd, &st) || (uint64_t)st.st_size < in->mmap_offset + in->mmap_size)
		return -EINVAL;
	p = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)in->mmap_offset);
	if (p == MAP_FAILED)
		return -errno;
	if (c->inflight_map)
		munmap(c->inflight_map, c->inflight_len);
	c->inflight_map = p;
	c->inflight_len = in->mmap_size;
	c->inflight_nq = in->num_queues;
	c->inflight_qsize = in->queue_size;
	return 0;
}

static int h_inflight(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds, unsigned nr)
{
	struct vhost_user_inflight *in = &msg->p.inflight;
	size_t size = inflight_size(in->num_queues, in->queue_size);
	int fd, ret;

	if (!in->num_queues || in->num_queues > vb->p.num_queues || !in->queue_size ||
	    in->queue_size > vb->p.queue_size) {
		vblk_conn_fail(vb, "inflight memory: %u queues of %u refused", in->num_queues,
			       in->queue_size);
		return -EINVAL;
	}
	if (msg->request == VHOST_USER_SET_INFLIGHT_FD) {
		if (nr != 1 || in->mmap_size != size || in->mmap_offset & 4095 ||
		    in->mmap_offset > (1ull << 40)) {
			vblk_conn_fail(vb, "SET_INFLIGHT_FD: bad size, offset or fd");
			return -EINVAL;
		}
		ret = map_inflight(vb, fds[0], in);
		if (ret)
			vblk_conn_fail(vb, "SET_INFLIGHT_FD: cannot map it: %s", strerror(-ret));
		return ret;
	}
	fd = memfd_create("vhost-blk-inflight", MFD_CLOEXEC);
	in->mmap_size = size;
	in->mmap_offset = 0;
	if (fd < 0 || ftruncate(fd, (off_t)size) || map_inflight(vb, fd, in)) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	memset(vb->conn->inflight_map, 0, size);
	for (unsigned i = 0; i < in->num_queues; i++)
		((struct vblk_inflight_queue *)((uint8_t *)vb->conn->inflight_map +
						i * inflight_stride(in->queue_size)))
			->desc_num = in->queue_size;
	ret = send_reply(vb->conn, msg, sizeof(*in), fd);
	close(fd);
	return ret ? -EIO : 1;
}

static void device_reset(struct nvemu_vblk *vb)
{
	struct vblk_conn *c = vb->conn;

	for (unsigned i = 0; i < NVEMU_VBLK_MAX_QUEUES; i++)
		queue_reset(vb, &c->q[i]);
	c->features = 0;
	c->features_set = false;
}

static int h_features(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds)
{
	struct vblk_conn *c = vb->conn;
	uint64_t v = msg->p.u64;

	(void)fds;
	switch (msg->request) {
	case VHOST_USER_GET_FEATURES:
		return reply_u64(c, msg, vblk_features(vb)) ? -EIO : 1;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return reply_u64(c, msg, PROTOCOL_FEATURES) ? -EIO : 1;
	case VHOST_USER_GET_QUEUE_NUM:
		return reply_u64(c, msg, vb->p.num_queues) ? -EIO : 1;
	case VHOST_USER_GET_MAX_MEM_SLOTS:
		return reply_u64(c, msg, vb->p.ds_max) ? -EIO : 1;
	case VHOST_USER_SET_FEATURES:
		if (v & ~vblk_features(vb)) {
			vblk_conn_fail(vb, "SET_FEATURES: %#llx not offered",
				       (unsigned long long)(v & ~vblk_features(vb)));
			return -EINVAL;
		}
		c->features = v;
		c->features_set = true;
		vblk_log(vb, NVEMU_VBLK_LOG_DEBUG, "%s: features %#llx (%s ring)", vb->path,
			 (unsigned long long)v,
			 v & (1ull << VIRTIO_F_RING_PACKED) ? "packed" : "split");
		return 0;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (v & ~PROTOCOL_FEATURES) {
			vblk_conn_fail(vb, "SET_PROTOCOL_FEATURES: %#llx not offered",
				       (unsigned long long)(v & ~PROTOCOL_FEATURES));
			return -EINVAL;
		}
		c->protocol_features = v;
		return 0;
	case VHOST_USER_SET_OWNER:
		return 0;
	default: /* RESET_OWNER, RESET_DEVICE */
		device_reset(vb);
		return 0;
	}
}

struct handler {
	int (*fn)(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds);
	int (*fn_fds)(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds, unsigned nr);
	uint32_t min_size; /* payload bytes the message must carry */
	uint8_t fds;	   /* 0: none, 1: at most one, 2: several */
};

static const struct handler handlers[] = {
	[VHOST_USER_GET_FEATURES] = {h_features, NULL, 0, 0},
	[VHOST_USER_SET_FEATURES] = {h_features, NULL, 8, 0},
	[VHOST_USER_SET_OWNER] = {h_features, NULL, 0, 0},
	[VHOST_USER_RESET_OWNER] = {h_features, NULL, 0, 0},
	[VHOST_USER_SET_MEM_TABLE] = {NULL, h_mem_table, 8, 2},
	[VHOST_USER_SET_VRING_NUM] = {h_vring_state, NULL, 8, 0},
	[VHOST_USER_SET_VRING_ADDR] = {h_vring_addr, NULL, sizeof(struct vhost_user_vring_addr), 0},
	[VHOST_USER_SET_VRING_BASE] = {h_vring_state, NULL, 8, 0},
	[VHOST_USER_GET_VRING_BASE] = {h_vring_state, NULL, 8, 0},
	[VHOST_USER_SET_VRING_KICK] = {h_vring_fd, NULL, 8, 1},
	[VHOST_USER_SET_VRING_CALL] = {h_vring_fd, NULL, 8, 1},
	[VHOST_USER_SET_VRING_ERR] = {h_vring_fd, NULL, 8, 1},
	[VHOST_USER_GET_PROTOCOL_FEATURES] = {h_features, NULL, 0, 0},
	[VHOST_USER_SET_PROTOCOL_FEATURES] = {h_features, NULL, 8, 0},
	[VHOST_USER_GET_QUEUE_NUM] = {h_features, NULL, 0, 0},
	[VHOST_USER_SET_VRING_ENABLE] = {h_vring_state, NULL, 8, 0},
	[VHOST_USER_GET_CONFIG] = {h_config, NULL, 12, 0},
	[VHOST_USER_SET_CONFIG] = {h_config, NULL, 12, 0},
	[VHOST_USER_GET_INFLIGHT_FD] = {NULL, h_inflight, sizeof(struct vhost_user_inflight), 0},
	[VHOST_USER_SET_INFLIGHT_FD] = {NULL, h_inflight, sizeof(struct vhost_user_inflight), 1},
	[VHOST_USER_RESET_DEVICE] = {h_features, NULL, 0, 0},
	[VHOST_USER_GET_MAX_MEM_SLOTS] = {h_features, NULL, 0, 0},
	[VHOST_USER_ADD_MEM_REG] = {NULL, h_mem_reg, sizeof(struct vhost_user_mem_one), 1},
	[VHOST_USER_REM_MEM_REG] = {NULL, h_mem_reg, sizeof(struct vhost_user_mem_one), 1},
};

int vblk_handle_msg(struct nvemu_vblk *vb, struct vhost_user_msg *msg, int *fds, unsigned nr_fds)
{
	const struct handler *h = NULL;
	bool ack;
	int ret;

	for (unsigned i = nr_fds; i < VHOST_USER_MAX_FDS; i++)
		fds[i] = -1;
	if (msg->request < sizeof(handlers) / sizeof(handlers[0]))
		h = &handlers[msg->request];
	if (!h || (!h->fn && !h->fn_fds)) {
		vblk_conn_fail(vb, "unknown or unsupported request %u", msg->request);
		ret = -EINVAL;
	} else if ((msg->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
		   msg->size < h->min_size ||
		   nr_fds > (h->fds == 2 ? VHOST_USER_MAX_FDS : h->fds)) {
		vblk_conn_fail(vb, "request %u: bad version, size %u or %u fds", msg->request,
			       msg->size, nr_fds);
		ret = -EINVAL;
	} else {
		if (msg->size < sizeof(msg->p))
			memset(msg->p.raw + msg->size, 0, sizeof(msg->p) - msg->size);
		ack = (msg->flags & VHOST_USER_NEED_REPLY) &&
		      (vb->conn->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
		ret = h->fn ? h->fn(vb, msg, fds) : h->fn_fds(vb, msg, fds, nr_fds);
		if (ret == 0 && ack && vb->conn && reply_u64(vb->conn, msg, 0))
			ret = -EIO;
	}
	close_fds(fds, nr_fds);
	return ret < 0 ? ret : 0;
}

int vblk_msg_parse(const uint8_t *buf, size_t len, struct vhost_user_msg *msg)
{
	if (len < VHOST_USER_HDR_SIZE)
		return -EINVAL;
	memcpy(msg, buf, VHOST_USER_HDR_SIZE);
	if (msg->size > VHOST_USER_PAYLOAD_MAX || len - VHOST_USER_HDR_SIZE != msg->size)
		return -EINVAL;
	memcpy(&msg->p, buf + VHOST_USER_HDR_SIZE, msg->size);
	return 0;
}

/* ---- the socket */

/* Take fds a message carried; more than a message may hold is a protocol error. */
static int take_fds(struct vblk_conn *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		int fds[VHOST_USER_MAX_FDS];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (c->nr_rx_fds < VHOST_USER_MAX_FDS)
				c->rx_fds[c->nr_rx_fds++] = fds[i];
			else
				close(fds[i]);
		}
		if (c->nr_rx_fds == VHOST_USER_MAX_FDS && n)
			return (mh->msg_flags & MSG_CTRUNC) ? -EINVAL : 0;
	}
	return (mh->msg_flags & MSG_CTRUNC) ? -EINVAL : 0;
}

/* Read what is there of the current message; 1 when it is complete. */
static int rx_some(struct nvemu_vblk *vb)
{
	struct vblk_conn *c = vb->conn;
	char cbuf[CMSG_SPACE(VHOST_USER_MAX_FDS * sizeof(int))];
	size_t want = VHOST_USER_HDR_SIZE;
	struct iovec iov;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (c->rx_len >= VHOST_USER_HDR_SIZE) {
		uint32_t size;

		memcpy(&size, c->rx + 8, sizeof(size));
		if (size > VHOST_USER_PAYLOAD_MAX) {
			vblk_conn_fail(vb, "message payload of %u bytes", size);
			return -EINVAL;
		}
		want += size;
	}
	if (c->rx_len == want)
		return 1;
	iov = (struct iovec){.iov_base = c->rx + c->rx_len, .iov_len = want - c->rx_len};
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		vblk_log(vb, NVEMU_VBLK_LOG_INFO, "%s: client disconnected", vb->path);
		vblk_conn_close(vb);
		return -EPIPE;
	}
	if (take_fds(c, &mh)) {
		vblk_conn_fail(vb, "too many fds in one message");
		return -EINVAL;
	}
	c->rx_len += (size_t)n;
	return c->rx_len == want && want > VHOST_USER_HDR_SIZE ? 1 : rx_some(vb);
}

static void conn_cb(int fd, uint32_t revents, void *arg)
{
	struct nvemu_vblk *vb = arg;

	(void)fd;
	if (vb->conn && !vb->conn->reading && (revents & (EPOLLHUP | EPOLLERR))) {
		/* Gone while a GET_VRING_BASE waited: epoll keeps reporting it. */
		vblk_log(vb, NVEMU_VBLK_LOG_INFO, "%s: client disconnected", vb->path);
		vblk_conn_close(vb);
		return;
	}
	/* A bounded number of messages per wake-up keeps the loop fair. */
	for (int i = 0; i < 64 && vb->conn && vb->conn->reading; i++) {
		struct vblk_conn *c = vb->conn;
		struct vhost_user_msg msg;
		int fds[VHOST_USER_MAX_FDS];
		unsigned nr;
		int r = rx_some(vb);

		if (r <= 0)
			return;
		vblk_msg_parse(c->rx, c->rx_len, &msg);
		nr = c->nr_rx_fds;
		memcpy(fds, c->rx_fds, nr * sizeof(int));
		c->rx_len = 0;
		c->nr_rx_fds = 0;
		if (vblk_handle_msg(vb, &msg, fds, nr) < 0 && vb->conn)
			vblk_conn_fail(vb, "request %u failed", msg.request);
	}
}

struct vblk_conn *vblk_conn_new(struct nvemu_vblk *vb, int fd)
{
	struct vblk_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	for (unsigned i = 0; i < NVEMU_VBLK_MAX_QUEUES; i++)
		queue_init(vb, &c->q[i], (uint16_t)i);
	vb->conn = c;
	c->handle = vb->p.ops->add_fd(vb->p.loop, fd, EPOLLIN, conn_cb, vb);
	if (!c->handle) {
		vb->conn = NULL;
		free(c);
		return NULL;
	}
	c->reading = true;
	vb->st.connects++;
	return c;
}

void vblk_conn_close(struct nvemu_vblk *vb)
{
	struct vblk_conn *c = vb->conn;

	if (!c)
		return;
	for (unsigned i = 0; i < NVEMU_VBLK_MAX_QUEUES; i++)
		queue_reset(vb, &c->q[i]);
	vb->p.ops->del_fd(vb->p.loop, c->handle);
	close(c->fd);
	close_fds(c->rx_fds, c->nr_rx_fds);
	vblk_mem_put(c->mem);
	if (c->inflight_map)
		munmap(c->inflight_map, c->inflight_len);
	free(c);
	vb->conn = NULL;
	vb->st.disconnects++;
	vblk_listen(vb);
}

void vblk_conn_fail(struct nvemu_vblk *vb, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!vb->conn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vblk_log(vb, NVEMU_VBLK_LOG_WARN, "%s: client dropped: %s", vb->path, msg);
	vb->st.protocol_errors++;
	vblk_conn_close(vb);
}
