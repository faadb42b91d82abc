/* SPDX-License-Identifier: MIT */
/*
 * What Asymmetric Namespace Access costs on the I/O path: 4 KiB reads at
 * queue depth 32 on a null namespace through the in-process host, with ANA
 * reporting off (the default: one branch) and on (the port's state for the
 * namespace's group is looked up on every command), the controller on the
 * first and on the 16th port of its subsystem. The cases run interleaved,
 * ROUNDS times each (machines are shared and clocks ramp); prints the
 * median requests/s of each case and the ratio to ANA off, in one run.
 *
 *   bench-ana [-t SECONDS] [-r ROUNDS]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvemu/nvemu.h>

#define IO_SIZE	 4096u
#define LBA_SIZE 512u
#define NS_BYTES (64ull << 20)
#define DEPTH	 32u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct model {
	struct nvemu_subsys *subsys;
	struct nvemu_host *host;
	struct nvemu_bdev *bdev;
};

static int admin(struct model *m, uint8_t opc, uint64_t dptr1, uint32_t cdw10, uint32_t cdw11)
{
	struct nvemu_sqe cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = opc;
	cmd.dptr1 = dptr1;
	cmd.cdw10 = cdw10;
	cmd.cdw11 = cdw11;
	return nvemu_host_exec(m->host, 0, &cmd, NULL, 0, NULL) ? -EIO : 0;
}

/* A subsystem with nr_ports PCIe ports, the controller on the last one. */
static int model_create(struct model *m, bool ana, unsigned nr_ports)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_ns_params np;
	struct nvemu_error err = {0};
	struct nvemu_ctrl *ctrl;
	uint16_t port = 0, cntlid;
	int rc;

	memset(m, 0, sizeof(*m));
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:bench-ana";
	sp.serial = "BENCHANA";
	if ((rc = nvemu_subsys_create(&sp, &m->subsys, &err)) ||
	    (rc = nvemu_subsys_set_ana_reporting(m->subsys, ana, &err)))
		goto fail;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	for (unsigned i = 0; i < nr_ports; i++)
		if ((rc = nvemu_subsys_add_port(m->subsys, &pp, &port, &err)))
			goto fail;
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = 1;
	if ((rc = nvemu_subsys_add_ctrl_ex(m->subsys, &cp, &cntlid, &err)))
		goto fail;
	ctrl = nvemu_subsys_ctrl(m->subsys, cntlid);
	if ((rc = nvemu_bdev_null_create("bench-null", NS_BYTES, LBA_SIZE, &m->bdev, &err)))
		goto fail;
	nvemu_ns_params_init(&np);
	np.bdev = m->bdev;
	if ((rc = nvemu_subsys_add_ns_ex(m->subsys, &np, NULL, &err)) ||
	    (rc = nvemu_ctrl_attach_ns(ctrl, 1, &err)) ||
	    (rc = nvemu_host_create(ctrl, &m->host, &err)))
		goto fail;
	if (ana && (rc = nvemu_port_set_ana_state(m->subsys, port, 1, NVEMU_ANA_NON_OPTIMIZED,
						  &err)))
		goto fail;
	if (nvemu_host_enable(m->host) ||
	    admin(m, nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0) ||
	    admin(m, nvme_admin_create_cq, 0x100000, 1 | (DEPTH * 2 - 1) << 16, 1 | 1u << 1) ||
	    admin(m, nvme_admin_create_sq, 0x200000, 1 | (DEPTH * 2 - 1) << 16, 1 | 1u << 16)) {
		fprintf(stderr, "bench-ana: bringing up the controller failed\n");
		return -EIO;
	}
	return 0;
fail:
	fprintf(stderr, "bench-ana: %s\n", err.msg);
	return rc;
}

static void model_destroy(struct model *m)
{
	if (m->host)
		nvemu_host_destroy(m->host);
	if (m->subsys)
		nvemu_subsys_destroy(m->subsys);
	if (m->bdev)
		nvemu_bdev_destroy(m->bdev, NULL);
}

static unsigned done_count, err_count;

static void io_done(struct nvemu_req *req)
{
	done_count++;
	if (req->cqe.status)
		err_count++;
}

/* Requests per second; 0 on failure. */
static double run_case(bool ana, unsigned nr_ports, double seconds)
{
	static uint8_t bufs[DEPTH][IO_SIZE] __attribute__((aligned(4096)));
	struct nvemu_req reqs[DEPTH];
	uint64_t start, end, n = 0, lba = 0;
	struct model m;

	if (model_create(&m, ana, nr_ports)) {
		model_destroy(&m);
		return 0;
	}
	err_count = 0;
	start = now_ns();
	end = start + (uint64_t)(seconds * 1e9);
	/* Batches of DEPTH: the null backend completes inside submit. */
	do {
		for (unsigned b = 0; b < 64; b++) {
			done_count = 0;
			for (unsigned i = 0; i < DEPTH; i++) {
				memset(&reqs[i], 0, sizeof(reqs[i]));
				reqs[i].cmd.opc = nvme_cmd_read;
				reqs[i].cmd.nsid = 1;
				reqs[i].cmd.cid = (uint16_t)i;
				reqs[i].cmd.cdw10 = (uint32_t)lba;
				reqs[i].cmd.cdw12 = IO_SIZE / LBA_SIZE - 1;
				reqs[i].buf = bufs[i];
				reqs[i].buf_len = IO_SIZE;
				reqs[i].done = io_done;
				lba = (lba + IO_SIZE / LBA_SIZE) % (NS_BYTES / LBA_SIZE);
				nvemu_host_submit(m.host, 1, &reqs[i]);
			}
			while (done_count < DEPTH)
				nvemu_host_poll(m.host);
			n += DEPTH;
		}
	} while (now_ns() < end);
	end = now_ns();
	model_destroy(&m);
	if (err_count) {
		fprintf(stderr, "bench-ana: %u commands failed\n", err_count);
		return 0;
	}
	return (double)n * 1e9 / (double)(end - start);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		bool ana;
		unsigned ports;
	} cases[] = {
		{"ANA off, 1 port", false, 1},
		{"ANA on, 1 port", true, 1},
		{"ANA off, 16 ports", false, 16},
		{"ANA on, 16 ports", true, 16},
	};
	enum { NR_CASES = sizeof(cases) / sizeof(cases[0]), MAX_ROUNDS = 15 };
	double seconds = 1.0, base = 0, res[NR_CASES][MAX_ROUNDS];
	int opt, status = 0, rounds = 5;

	while ((opt = getopt(argc, argv, "t:r:h")) != -1) {
		if (opt == 't') {
			seconds = strtod(optarg, NULL);
		} else if (opt == 'r') {
			rounds = atoi(optarg);
		} else {
			fprintf(stderr, "usage: %s [-t SECONDS] [-r ROUNDS]\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || seconds > 3600 || rounds < 1 || rounds > MAX_ROUNDS)
		return 2;
	printf("nvemu %s ANA I/O path: 4 KiB reads, queue depth %u, null backend, %.1f s per "
	       "case, median of %d interleaved rounds, in-process host\n\n",
	       nvemu_version(), DEPTH, seconds, rounds);
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < NR_CASES; i++)
			res[i][r] = run_case(cases[i].ana, cases[i].ports, seconds);
	printf("%-20s %14s %12s %10s\n", "case", "requests/s", "ns/request", "vs off");
	for (size_t i = 0; i < NR_CASES; i++) {
		double r;

		qsort(res[i], (size_t)rounds, sizeof(double), cmp_double);
		r = res[i][rounds / 2];
		if (!res[i][0]) {
			printf("%-20s %14s\n", cases[i].name, "failed");
			status = 1;
			continue;
		}
		if (!cases[i].ana)
			base = r;
		printf("%-20s %14.0f %12.1f %10.3f\n", cases[i].name, r, 1e9 / r,
		       base ? r / base : 0);
	}
	return status;
}
