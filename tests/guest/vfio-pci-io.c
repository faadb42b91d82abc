// SPDX-License-Identifier: MIT
/*
 * Drives a PCIe NVMe controller bound to vfio-pci through nvemu's host
 * driver (trtype pcie) and checks data: writes a pattern of 1, 8, 32 and
 * 256 blocks on every I/O queue, reads it back, compares; waits for
 * completions on the queues' interrupt fds (or polls with -p).
 *
 *   vfio-pci-io [-s] [-x] [-p] BDF      -s nosgl, -x nomsix, -p no interrupts
 *
 * Prints TAP lines; exit 0 when every check passed. Run inside a guest by
 * tests/guest/vfio-pci-run.sh.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nvemu/driver.h>

#include "driver/pcie-host.h"

/* The transport table lists the transports linked in; reach the PCIe one whatever it holds. */
const struct nvemu_drv_transport_ops *__real_drv_transport_find(enum nvemu_drv_trtype t);
const struct nvemu_drv_transport_ops *__wrap_drv_transport_find(enum nvemu_drv_trtype t)
{
	if (t == NVEMU_DRV_TRTYPE_PCIE)
		return &drv_pcie_ops;
	return __real_drv_transport_find(t);
}

static unsigned n_tests, n_failed;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	n_tests++;
	n_failed += !ok;
	printf("%s %u - ", ok ? "ok" : "not ok", n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
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

/* Wait up to 10 s; counts the interrupt fd wakeups. */
static int wait_io(struct nvemu_drv_qpair *qp, struct io_wait *w, unsigned *irqs)
{
	int fd = qp->ctrl->ops->get_fd(qp);

	for (int i = 0; i < 10000 && !w->done; i++) {
		if (fd >= 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			if (poll(&pfd, 1, 1) != 1)
				continue;
			(*irqs)++;
		} else {
			usleep(1000); /* polled: QEMU completes in its own time */
		}
		if (nvemu_drv_qpair_process(qp, 0) < 0)
			return -EIO;
	}
	return w->done ? w->err : -ETIMEDOUT;
}

static int round_trip(struct nvemu_drv_ctrl *c, unsigned qidx, uint32_t bs, uint64_t slba,
		      uint32_t nlb, unsigned *irqs)
{
	struct nvemu_drv_qpair *qp = nvemu_drv_ctrl_qpair(c, qidx);
	size_t len = (size_t)nlb * bs;
	uint8_t *out = malloc(len), *in = calloc(1, len);
	struct io_wait w = {0};
	int r;

	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 13 + slba + qidx);
	r = nvemu_drv_io(qp, 1, NVEMU_DRV_IO_WRITE, slba, nlb, out, io_cb, &w);
	if (!r)
		r = wait_io(qp, &w, irqs);
	if (!r) {
		w.done = false;
		r = nvemu_drv_io(qp, 1, NVEMU_DRV_IO_READ, slba, nlb, in, io_cb, &w);
		if (!r)
			r = wait_io(qp, &w, irqs);
	}
	if (!r && memcmp(in, out, len))
		r = -EILSEQ;
	free(out);
	free(in);
	return r;
}

int main(int argc, char **argv)
{
	struct nvemu_drv_trid trid = {.trtype = NVEMU_DRV_TRTYPE_PCIE};
	struct nvemu_error err = {0};
	struct nvemu_drv_ns_info ns;
	struct nvemu_drv_ctrl *c = NULL;
	struct nvemu_drv_opts o;
	struct pcie_ctrl *pc;
	unsigned irqs = 0;
	int opt, r;

	nvemu_drv_opts_init(&o);
	o.num_io_queues = 2;
	while ((opt = getopt(argc, argv, "sxp")) != -1) {
		switch (opt) {
		case 's':
			o.nosgl = true;
			break;
		case 'x':
			o.nomsix = true;
			break;
		case 'p':
			o.nointr = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	snprintf(trid.traddr, sizeof(trid.traddr), "%s", argv[optind]);
	r = nvemu_drv_ctrl_connect(&trid, &o, &c, &err);
	check(!r, "connect %s (nosgl %d nomsix %d nointr %d)%s%s", trid.traddr, o.nosgl, o.nomsix,
	      o.nointr, r ? ": " : "", r ? err.msg : "");
	if (r)
		return 1;
	pc = c->tr;
	printf("# serial %s, %u I/O queues, interrupts %s (%u vectors), SGLs %s\n",
	       nvemu_drv_ctrl_serial(c), nvemu_drv_ctrl_nr_qpairs(c),
	       pc->irq == NVEMU_PCI_IRQ_MSIX   ? "MSI-X"
	       : pc->irq == NVEMU_PCI_IRQ_MSI  ? "MSI"
	       : pc->irq == NVEMU_PCI_IRQ_INTX ? "INTx"
					       : "none",
	       pc->nvec, pc->sgl ? "on" : "off");
	check(pc->irq == (o.nointr   ? NVEMU_PCI_IRQ_NONE
			  : o.nomsix ? NVEMU_PCI_IRQ_INTX
				     : NVEMU_PCI_IRQ_MSIX),
	      "the interrupt kind the switches ask for");
	r = nvemu_drv_ns_get(c, 1, &ns);
	check(!r && ns.nsze >= 4096, "namespace 1: %llu blocks of %u", (unsigned long long)ns.nsze,
	      ns.blk_size);
	if (r)
		return 1;
	for (unsigned q = 0; q < nvemu_drv_ctrl_nr_qpairs(c); q++) {
		static const uint32_t nlb[] = {1, 8, 32, 256};

		for (unsigned i = 0; i < 4; i++) {
			uint32_t n = (uint32_t)((uint64_t)nlb[i] * 512 / ns.blk_size);

			if (!n)
				n = 1;
			if ((uint64_t)n * ns.blk_size > nvemu_drv_ctrl_max_xfer(c))
				n = nvemu_drv_ctrl_max_xfer(c) / ns.blk_size;
			r = round_trip(c, q, ns.blk_size, 64 * q + 512 * i, n, &irqs);
			check(!r, "queue %u: %u blocks written and read back%s%s", q, n,
			      r ? ": " : "", r ? strerror(-r) : "");
		}
	}
	check(o.nointr ? irqs == 0 : irqs >= 16, "completions were signalled (%u wakeups)", irqs);
	nvemu_drv_ctrl_destroy(c);
	printf("1..%u\n", n_tests);
	return n_failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: %s [-s] [-x] [-p] BDF\n", argv[0]);
	return 2;
}
