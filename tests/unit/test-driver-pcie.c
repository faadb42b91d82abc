// SPDX-License-Identifier: MIT
/*
 * The NVMe-over-PCIe host transport (src/driver/pcie*.c) driving nvemu's
 * own PCIe controller through its vfio-user server, which runs its loop in
 * a thread: bring-up through the driver's public API, data round trips of
 * one page, two pages and PRP lists / SGL segment lists, with SGLs and
 * with nosgl; completions by MSI-X eventfd, by INTx through the caller's
 * loop, and by polling; then completions a hostile device writes into the
 * CQ ring (a CID never sent, another queue's SQID, an SQ head out of
 * range): an error and a controller reset, after which I/O works again.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <cmocka.h>

#include <nvemu/nvemu.h>
#include <nvemu/driver.h>
#include <nvemu/pcie.h>
#include <nvemu/vfio-user.h>

#include "driver/pcie-host.h"

#define TEST_SN	    "NVEMU-PCIEH-0001"
#define NS_BLOCKS   8192 /* 4 MiB of 512-byte blocks */
#define TEST_QUEUES 2

/*
 * The transport table lists the transports linked in; this test reaches
 * the PCIe ones through it whatever that table holds.
 */
const struct nvemu_drv_transport_ops *__real_drv_transport_find(enum nvemu_drv_trtype t);
const struct nvemu_drv_transport_ops *__wrap_drv_transport_find(enum nvemu_drv_trtype t)
{
	if (t == NVEMU_DRV_TRTYPE_VFIO_USER)
		return &drv_vfio_user_ops;
	if (t == NVEMU_DRV_TRTYPE_PCIE)
		return &drv_pcie_ops;
	return __real_drv_transport_find(t);
}

/* ---- a minimal epoll loop for loop_ops */

struct th {
	int fd;
	nvemu_drv_fd_cb cb;
	void *arg;
	bool dead;
};

struct tloop {
	int ep;
	struct th h[256]; /* never reused: del_fd may run inside a callback */
	unsigned n;
};

static void *tl_add(void *loop, int fd, uint32_t events, nvemu_drv_fd_cb cb, void *arg)
{
	struct tloop *l = loop;
	struct th *h;
	struct epoll_event ev = {.events = events};

	if (l->n == 256)
		return NULL;
	h = &l->h[l->n++];
	*h = (struct th){.fd = fd, .cb = cb, .arg = arg};
	ev.data.ptr = h;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev))
		return NULL;
	return h;
}

static int tl_mod(void *loop, void *handle, uint32_t events)
{
	struct tloop *l = loop;
	struct th *h = handle;
	struct epoll_event ev = {.events = events, .data.ptr = h};

	return epoll_ctl(l->ep, EPOLL_CTL_MOD, h->fd, &ev) ? -errno : 0;
}

static void tl_del(void *loop, void *handle)
{
	struct tloop *l = loop;
	struct th *h = handle;

	epoll_ctl(l->ep, EPOLL_CTL_DEL, h->fd, NULL);
	h->dead = true;
}

static const struct nvemu_drv_loop_ops tl_ops = {
	.add_fd = tl_add, .mod_fd = tl_mod, .del_fd = tl_del};

static unsigned tl_run(struct tloop *l, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(l->ep, evs, 16, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct th *h = evs[i].data.ptr;

		if (!h->dead)
			h->cb(h->fd, evs[i].events, h->arg);
	}
	return n > 0 ? (unsigned)n : 0;
}

/* ---- the server side */

struct env {
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_vfu_server *srv;
	pthread_t thr;
	atomic_bool stop;
	char path[108];
	struct tloop loop;
	struct nvemu_drv_ctrl *dc;
};

static void *server_thread(void *arg)
{
	struct env *e = arg;

	while (!atomic_load(&e->stop)) {
		struct pollfd pfd = {.fd = nvemu_vfu_server_fd(e->srv), .events = POLLIN};

		/* mapped doorbells: nothing wakes the server, so it polls them */
		poll(&pfd, 1, nvemu_vfu_server_needs_polling(e->srv) ? 1 : 5);
		nvemu_vfu_server_process(e->srv);
		nvemu_vfu_server_poll(e->srv);
		nvemu_subsys_poll(e->subsys);
	}
	return NULL;
}

static void server_start(struct env *e)
{
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_vfu_server_create(e->path, e->ctrl, NULL, &e->srv, &err), 0);
	atomic_store(&e->stop, false);
	assert_int_equal(pthread_create(&e->thr, NULL, server_thread, e), 0);
}

static void server_stop(struct env *e)
{
	atomic_store(&e->stop, true);
	pthread_join(e->thr, NULL);
	nvemu_vfu_server_destroy(e->srv);
	e->srv = NULL;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct nvemu_error err = {0};
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	uint16_t port, cntlid;
	uint32_t nsid;

	nvemu_subsys_params_init(&sp);
	sp.serial = TEST_SN;
	sp.model = "nvemu pcie host test";
	assert_int_equal(nvemu_subsys_create(&sp, &e->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(e->subsys, &pp, &port, &err), 0);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = 4;
	cp.mdts = 5; /* 128 KiB */
	assert_int_equal(nvemu_subsys_add_ctrl_ex(e->subsys, &cp, &cntlid, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(e->subsys, NS_BLOCKS, &nsid, &err), 0);
	e->ctrl = nvemu_subsys_ctrl(e->subsys, cntlid);
	assert_int_equal(nvemu_ctrl_attach_ns(e->ctrl, nsid, &err), 0);
	snprintf(e->path, sizeof(e->path), "/tmp/nvemu-test-pcieh-%d.sock", getpid());
	struct nvemu_vfu_params vp;
	nvemu_vfu_params_init(&vp);
	vp.verbose = getenv("VFU_VERBOSE") != NULL;
	assert_int_equal(nvemu_vfu_server_create(e->path, e->ctrl, &vp, &e->srv, &err), 0);
	assert_int_equal(pthread_create(&e->thr, NULL, server_thread, e), 0);
	e->loop.ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(e->loop.ep >= 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	nvemu_drv_ctrl_destroy(e->dc);
	if (e->srv)
		server_stop(e);
	nvemu_subsys_destroy(e->subsys);
	close(e->loop.ep);
	free(e);
	return 0;
}

enum mode { M_MSIX, M_POLL, M_INTX_LOOP, M_INTX, M_NOSGL };

static void connect_mode(struct env *e, enum mode m)
{
	struct nvemu_drv_trid trid = {.trtype = NVEMU_DRV_TRTYPE_VFIO_USER};
	struct nvemu_error err = {0};
	struct nvemu_drv_opts o;
	int r;

	nvemu_drv_opts_init(&o);
	o.num_io_queues = TEST_QUEUES;
	o.io_queue_size = 32;
	o.nosgl = m == M_NOSGL;
	o.nointr = m == M_POLL;
	o.nomsix = m == M_INTX_LOOP || m == M_INTX;
	o.reconnect_delay_ms = 50;
	if (m == M_INTX_LOOP) {
		o.loop_ops = &tl_ops;
		o.loop = &e->loop;
	}
	snprintf(trid.traddr, sizeof(trid.traddr), "%s", e->path);
	r = nvemu_drv_ctrl_connect(&trid, &o, &e->dc, &err);
	if (r)
		fprintf(stderr, "# connect: %s\n", err.msg);
	assert_int_equal(r, 0);
	assert_int_equal(nvemu_drv_ctrl_state(e->dc), NVEMU_DRV_STATE_ENABLED);
}

struct io_wait {
	bool done;
	int err;
};

static void io_cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct io_wait *w = arg;

	w->done = true;
	w->err = err;
}

/* Wait for w the way the mode delivers completions; returns interrupts seen. */
static unsigned wait_io(struct env *e, struct nvemu_drv_qpair *qp, struct io_wait *w, enum mode m)
{
	int fd = qp->ctrl->ops->get_fd(qp);
	unsigned irqs = 0;

	for (int i = 0; i < 5000 && !w->done; i++) {
		if (m == M_INTX_LOOP) {
			irqs += tl_run(&e->loop, 1); /* only the loop's callbacks reap */
			continue;
		}
		if (fd >= 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			if (poll(&pfd, 1, 1) == 1)
				irqs++;
			else
				continue;
		} else {
			usleep(200);
		}
		assert_true(nvemu_drv_qpair_process(qp, 0) >= 0);
	}
	if (!w->done) {
		struct nvemu_pcie_queue_debug d;
		struct pcie_queue *q = qp->tr;

		nvemu_pcie_ctrl_debug(nvemu_vfu_server_pcie(e->srv), qp->qid, &d);
		fprintf(stderr,
			"# qid %u: sq valid %d size %u tail %u head %u inflight %u cq valid %d "
			"tail %u head %u backlog %u dberr %llu; host tail %u cq_head %u connected "
			"%d\n",
			qp->qid, d.sq_valid, d.sq_size, d.driver_sq_tail, d.device_sq_head,
			d.sq_inflight, d.cq_valid, d.device_cq_tail, d.driver_cq_head, d.cq_backlog,
			(unsigned long long)d.doorbell_errors, q ? q->sq_tail : 0,
			q ? q->cq_head : 0, qp->connected);
	}
	assert_true(w->done);
	return irqs;
}

static void rw_round_trip(struct env *e, enum mode m, unsigned qidx, uint64_t slba, uint32_t nlb)
{
	struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(e->dc, qidx);
	size_t len = (size_t)nlb * 512;
	uint8_t *out = malloc(len), *in = malloc(len);
	struct io_wait w = {0};
	unsigned irqs;

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + slba + nlb);
	memset(in, 0, len);
	assert_int_equal(nvemu_drv_io(qp, 1, NVEMU_DRV_IO_WRITE, slba, nlb, out, io_cb, &w), 0);
	irqs = wait_io(e, qp, &w, m);
	assert_int_equal(w.err, 0);
	w.done = false;
	assert_int_equal(nvemu_drv_io(qp, 1, NVEMU_DRV_IO_READ, slba, nlb, in, io_cb, &w), 0);
	irqs += wait_io(e, qp, &w, m);
	assert_int_equal(w.err, 0);
	assert_memory_equal(in, out, len);
	if (m == M_POLL)
		assert_int_equal(irqs, 0);
	else
		assert_true(irqs >= 2); /* each completion was signalled */
	free(out);
	free(in);
}

/* 1 block, 2 pages (PRP2), 8 and 32 pages (a PRP list or an SGL segment) on each queue. */
static void round_trips(struct env *e, enum mode m)
{
	for (unsigned q = 0; q < nvemu_drv_ctrl_nr_qpairs(e->dc); q++) {
		rw_round_trip(e, m, q, 0, 1);
		rw_round_trip(e, m, q, 3, 16);
		rw_round_trip(e, m, q, 100, 64);
		rw_round_trip(e, m, q, 1000, 256);
	}
}

static void test_identify(void **state)
{
	struct env *e = *state;
	struct nvemu_drv_ns_info ns;

	connect_mode(e, M_MSIX);
	assert_string_equal(nvemu_drv_ctrl_serial(e->dc), TEST_SN);
	assert_int_equal(nvemu_drv_ctrl_nr_qpairs(e->dc), TEST_QUEUES);
	assert_int_equal(nvemu_drv_ns_next(e->dc, 0), 1);
	assert_int_equal(nvemu_drv_ns_get(e->dc, 1, &ns), 0);
	assert_int_equal(ns.nsze, NS_BLOCKS);
	assert_int_equal(ns.blk_size, 512);
	assert_true(nvemu_drv_ctrl_max_xfer(e->dc) >= 128 * 1024);
}

static void test_msix_sgl(void **state)
{
	struct env *e = *state;
	struct pcie_ctrl *pc;

	connect_mode(e, M_MSIX);
	pc = e->dc->tr;
	assert_int_equal(pc->irq, NVEMU_PCI_IRQ_MSIX);
	assert_true(pc->sgl); /* the controller reports SGL support */
	for (unsigned q = 0; q < TEST_QUEUES; q++) {
		struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(e->dc, q);

		assert_true(qp->ctrl->ops->get_fd(qp) >= 0);
		assert_int_equal(((struct pcie_queue *)qp->tr)->vector, q + 1);
	}
	round_trips(e, M_MSIX);
}

static void test_nosgl(void **state)
{
	struct env *e = *state;

	connect_mode(e, M_NOSGL);
	assert_false(((struct pcie_ctrl *)e->dc->tr)->sgl);
	round_trips(e, M_NOSGL);
}

static void test_polling(void **state)
{
	struct env *e = *state;
	struct nvemu_drv_qpair *qp;

	connect_mode(e, M_POLL);
	qp = nvemu_drv_ctrl_qpair(e->dc, 0);
	assert_int_equal(((struct pcie_ctrl *)e->dc->tr)->nvec, 0);
	assert_int_equal(qp->ctrl->ops->get_fd(qp), -1);
	round_trips(e, M_POLL);
}

/* INTx without a loop: each queue's fd wakes on the shared line. */
static void test_intx(void **state)
{
	struct env *e = *state;

	connect_mode(e, M_INTX);
	assert_int_equal(((struct pcie_ctrl *)e->dc->tr)->irq, NVEMU_PCI_IRQ_INTX);
	for (unsigned q = 0; q < TEST_QUEUES; q++) {
		struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(e->dc, q);

		assert_true(qp->ctrl->ops->get_fd(qp) >= 0);
	}
	round_trips(e, M_INTX);
}

static void test_intx_loop(void **state)
{
	struct env *e = *state;

	connect_mode(e, M_INTX_LOOP);
	assert_int_equal(((struct pcie_ctrl *)e->dc->tr)->irq, NVEMU_PCI_IRQ_INTX);
	round_trips(e, M_INTX_LOOP);
}

/* ---- a hostile device: completions written into the CQ ring behind the driver's back */

enum forge { F_CID, F_SQID, F_SQHD };

static void forge_cqe(struct pcie_queue *q, enum forge f)
{
	uint32_t *e = (uint32_t *)((uint8_t *)q->cq.vaddr + (size_t)q->cq_head * 16);
	uint16_t cid = 5, sqid = q->qid, sqhd = q->sq_head;

	if (f == F_SQID)
		sqid = (uint16_t)(q->qid + 1);
	if (f == F_SQHD)
		sqhd = (uint16_t)(q->size + 3);
	e[0] = e[1] = 0;
	e[2] = (uint32_t)sqid << 16 | sqhd;
	__atomic_store_n(&e[3], (uint32_t)q->phase << 16 | cid, __ATOMIC_RELEASE);
}

static void test_hostile_cqe(void **state)
{
	struct env *e = *state;

	connect_mode(e, M_POLL);
	for (enum forge f = F_CID; f <= F_SQHD; f++) {
		struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(e->dc, 1);
		uint64_t resets = nvemu_drv_ctrl_resets(e->dc);

		forge_cqe(qp->tr, f);
		assert_int_equal(nvemu_drv_qpair_process(qp, 0), -EPROTO);
		assert_true(nvemu_drv_ctrl_state(e->dc) != NVEMU_DRV_STATE_ENABLED);
		for (int i = 0; i < 500 && nvemu_drv_ctrl_state(e->dc) != NVEMU_DRV_STATE_ENABLED;
		     i++) {
			nvemu_drv_ctrl_tick(e->dc);
			usleep(2000);
		}
		assert_int_equal(nvemu_drv_ctrl_state(e->dc), NVEMU_DRV_STATE_ENABLED);
		assert_int_equal(nvemu_drv_ctrl_resets(e->dc), resets + 1);
		assert_int_equal(((struct pcie_ctrl *)e->dc->tr)->errors, (unsigned)f + 1);
		rw_round_trip(e, M_POLL, 1, 8, 8);
	}
}

static bool wait_state(struct env *e, enum nvemu_drv_state st, unsigned ms)
{
	for (unsigned i = 0; i < ms / 2 && nvemu_drv_ctrl_state(e->dc) != st; i++) {
		nvemu_drv_ctrl_tick(e->dc);
		usleep(2000);
	}
	return nvemu_drv_ctrl_state(e->dc) == st;
}

/* The server goes away and comes back: I/O fails meanwhile, then the driver reconnects. */
static void test_server_restart(void **state)
{
	struct env *e = *state;
	struct nvemu_drv_qpair *qp;
	struct io_wait w = {0};
	uint8_t buf[512] = {0};
	int r;

	connect_mode(e, M_MSIX);
	rw_round_trip(e, M_MSIX, 0, 0, 8);
	server_stop(e);
	qp = nvemu_drv_ctrl_qpair(e->dc, 0);
	r = nvemu_drv_io(qp, 1, NVEMU_DRV_IO_WRITE, 0, 1, buf, io_cb, &w);
	if (!r) /* the posted doorbell may have gone out before the hang-up was seen */
		for (int i = 0; i < 1000 && !w.done; i++) {
			nvemu_drv_qpair_process(qp, 0);
			nvemu_drv_ctrl_tick(e->dc);
			usleep(2000);
		}
	assert_true(r != 0 || (w.done && w.err != 0));
	assert_true(wait_state(e, NVEMU_DRV_STATE_RESETTING, 2000));
	server_start(e);
	assert_true(wait_state(e, NVEMU_DRV_STATE_ENABLED, 5000));
	assert_true(nvemu_drv_ctrl_resets(e->dc) >= 1);
	rw_round_trip(e, M_MSIX, 1, 40, 64);
}

static void test_reset_and_no_server(void **state)
{
	struct env *e = *state;
	struct nvemu_drv_trid trid = {.trtype = NVEMU_DRV_TRTYPE_VFIO_USER};
	struct nvemu_error err = {0};
	struct nvemu_drv_ctrl *c = NULL;
	uint64_t resets;

	connect_mode(e, M_MSIX);
	resets = nvemu_drv_ctrl_resets(e->dc);
	assert_int_equal(nvemu_drv_ctrl_reset(e->dc), 0);
	/* the reset runs at the next tick */
	for (int i = 0; i < 500 && nvemu_drv_ctrl_resets(e->dc) == resets; i++) {
		nvemu_drv_ctrl_tick(e->dc);
		usleep(2000);
	}
	assert_true(nvemu_drv_ctrl_resets(e->dc) > resets);
	for (int i = 0; i < 500 && nvemu_drv_ctrl_state(e->dc) != NVEMU_DRV_STATE_ENABLED; i++) {
		nvemu_drv_ctrl_tick(e->dc);
		usleep(2000);
	}
	assert_int_equal(nvemu_drv_ctrl_state(e->dc), NVEMU_DRV_STATE_ENABLED);
	rw_round_trip(e, M_MSIX, 0, 50, 32);

	snprintf(trid.traddr, sizeof(trid.traddr), "/tmp/nvemu-test-pcieh-none.sock");
	assert_int_equal(nvemu_drv_ctrl_connect(&trid, NULL, &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "connect"));
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix_sgl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nosgl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_polling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_cqe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_no_server, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
