/* SPDX-License-Identifier: MIT */
/*
 * What reservations and fused Compare and Write cost on the request path:
 * 4 KiB writes at queue depth 1 through the in-process host on a RAM
 * namespace, with no reservation (the comparison), with a reservation the
 * host holds, and as a registrant of another host's Registrants Only
 * reservation; then Compare + Write as a fused pair against the same two
 * commands unfused. Each case prints requests/s and its ratio to the
 * comparison.
 *
 *   bench-resv [-t SECONDS]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvemu/nvemu.h>

#define IO_SIZE 4096u
#define NBLOCKS 8192u

struct model {
	struct nvemu_subsys *subsys;
	struct nvemu_host *host[2];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, unsigned st)
{
	fprintf(stderr, "bench-resv: %s failed (status 0x%x)\n", what, st);
	exit(1);
}

static void x(struct nvemu_host *h, uint16_t sqid, struct nvemu_sqe *cmd, void *buf,
	      uint32_t len, const char *what)
{
	uint16_t st = nvemu_host_exec(h, sqid, cmd, buf, len, NULL);

	if (st)
		die(what, st);
}

static void model_create(struct model *m)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_error err = {0};
	uint16_t port;

	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:bench-resv";
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	if (nvemu_subsys_create(&sp, &m->subsys, &err) ||
	    nvemu_subsys_add_port(m->subsys, &pp, &port, &err) ||
	    nvemu_subsys_add_ns(m->subsys, NBLOCKS, NULL, &err))
		die(err.msg, 0);
	for (int i = 0; i < 2; i++) {
		struct nvemu_ctrl_params cp;
		struct nvemu_sqe cmd;
		uint8_t id[8] = {(uint8_t)(0x40 + i), 1, 2, 3};
		uint16_t cntlid;

		nvemu_ctrl_params_init(&cp);
		cp.port_id = port;
		cp.num_io_queues = 1;
		if (nvemu_subsys_add_ctrl_ex(m->subsys, &cp, &cntlid, &err) ||
		    nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(m->subsys, cntlid), 1, &err) ||
		    nvemu_host_create(nvemu_subsys_ctrl(m->subsys, cntlid), &m->host[i], &err) ||
		    nvemu_host_enable(m->host[i]))
			die(err.msg[0] ? err.msg : "enable", 0);
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_create_cq;
		cmd.dptr1 = 0x100000;
		cmd.cdw10 = 1 | 63u << 16;
		cmd.cdw11 = 3;
		x(m->host[i], 0, &cmd, NULL, 0, "create cq");
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_create_sq;
		cmd.dptr1 = 0x200000;
		cmd.cdw10 = 1 | 63u << 16;
		cmd.cdw11 = 1 | 1u << 16;
		x(m->host[i], 0, &cmd, NULL, 0, "create sq");
		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = nvme_admin_set_features;
		cmd.cdw10 = NVME_FEAT_FID_HOST_ID;
		x(m->host[i], 0, &cmd, id, 8, "host id");
	}
}

static void resv(struct nvemu_host *h, uint8_t opc, uint32_t cdw10, uint64_t k1, uint64_t k2)
{
	struct nvemu_sqe cmd = {.opc = opc, .nsid = 1, .cdw10 = cdw10};
	uint64_t keys[2] = {k1, k2};

	x(h, 1, &cmd, keys, 16, "reservation command");
}

static uint8_t data[IO_SIZE];

static void write_at(struct nvemu_host *h, uint64_t lba, uint8_t flags)
{
	struct nvemu_sqe cmd = {.opc = nvme_cmd_write, .flags = flags, .nsid = 1};

	cmd.cdw10 = (uint32_t)lba;
	cmd.cdw12 = IO_SIZE / 512 - 1;
	x(h, 1, &cmd, data, IO_SIZE, "write");
}

static void compare_done(struct nvemu_req *req)
{
	if (req->cqe.status)
		die("fused compare", req->cqe.status);
}

/* Writes per second for t seconds; pairs: Compare + Write, fused or not (ops counted as pairs). */
static double run(struct nvemu_host *h, double t, int mode)
{
	uint64_t end = now_ns() + (uint64_t)(t * 1e9), n = 0, start = now_ns(), lba = 0;

	while ((n & 255) || now_ns() < end) {
		if (mode == 0) {
			write_at(h, lba, 0);
		} else {
			struct nvemu_sqe c = {.opc = nvme_cmd_compare, .nsid = 1};

			c.cdw10 = (uint32_t)lba;
			c.cdw12 = IO_SIZE / 512 - 1;
			if (mode == 1) {
				x(h, 1, &c, data, IO_SIZE, "compare");
				write_at(h, lba, 0);
			} else {
				struct nvemu_req req = {.cmd = c, .buf = data, .buf_len = IO_SIZE,
							.done = compare_done};

				req.cmd.flags = 1;
				nvemu_host_submit(h, 1, &req);
				write_at(h, lba, 2);
			}
		}
		lba = (lba + IO_SIZE / 512) % NBLOCKS;
		n++;
	}
	return (double)n / ((double)(now_ns() - start) / 1e9);
}

int main(int argc, char **argv)
{
	double t = 2, base, r;
	struct model m;
	int opt;

	while ((opt = getopt(argc, argv, "t:h")) != -1) {
		if (opt == 't' && atof(optarg) > 0) {
			t = atof(optarg);
		} else {
			fprintf(stderr, "usage: %s [-t SECONDS]\n", argv[0]);
			return 2;
		}
	}
	memset(data, 0x5a, sizeof(data));
	model_create(&m);
	for (uint64_t lba = 0; lba < NBLOCKS; lba += IO_SIZE / 512)
		write_at(m.host[0], lba, 0); /* every block holds the pattern Compare expects */
	printf("nvemu %s reservations benchmark: 4 KiB writes, queue depth 1, RAM, %.1f s per "
	       "case\n",
	       nvemu_version(), t);
	printf("%-44s %12s %8s\n", "case", "ops/s", "ratio");
	base = run(m.host[0], t, 0);
	printf("%-44s %12.0f %8s\n", "write, no reservation (comparison)", base, "1.00");
	resv(m.host[0], nvme_cmd_resv_register, 0, 0, 0xa);
	resv(m.host[0], nvme_cmd_resv_acquire, 1u << 8, 0xa, 0);
	r = run(m.host[0], t, 0);
	printf("%-44s %12.0f %8.2f\n", "write, holder of Write Exclusive", r, r / base);
	resv(m.host[0], nvme_cmd_resv_release, 1u << 8, 0xa, 0);
	resv(m.host[1], nvme_cmd_resv_register, 0, 0, 0xb);
	resv(m.host[1], nvme_cmd_resv_acquire, 3u << 8, 0xb, 0);
	r = run(m.host[0], t, 0);
	printf("%-44s %12.0f %8.2f\n", "write, registrant under WE Registrants Only", r, r / base);
	resv(m.host[1], nvme_cmd_resv_release, 1, 0xb, 0); /* clear */
	base = run(m.host[0], t, 1);
	printf("%-44s %12.0f %8s\n", "Compare + Write, unfused (comparison)", base, "1.00");
	r = run(m.host[0], t, 2);
	printf("%-44s %12.0f %8.2f\n", "Compare + Write, fused pair", r, r / base);
	for (int i = 0; i < 2; i++)
		nvemu_host_destroy(m.host[i]);
	nvemu_subsys_destroy(m.subsys);
	return 0;
}
