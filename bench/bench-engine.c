/* SPDX-License-Identifier: MIT */
/*
 * The engine's command rate on one core: 4 KiB reads and writes at queue
 * depth 32 against the null and RAM backends, submitted through the
 * in-process host with no transport in between. What is measured is the
 * request path itself: dispatch, validation, the bio, the backend's copy
 * (RAM) and completion.
 *
 *   bench-engine [-t SECONDS] [-q DEPTH] [-c CPU]
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvemu/nvemu.h>

#define IO_SIZE	    4096u
#define LBA_SIZE    512u
#define NS_BYTES    (64ull << 20) /* the range I/O cycles over */
#define MAX_DEPTH   1024
#define CLOCK_EVERY 1024 /* completions between clock reads */

struct bench {
	struct nvemu_host *host;
	uint8_t opc;
	uint64_t next_lba, nr_lbas;
	uint64_t deadline_ns;
	uint64_t completed, errors;
	unsigned inflight;
	bool running;
	/* Completions wait here to be resubmitted by the outermost frame, so
	 * that backends completing inside submit() do not recurse. */
	struct nvemu_req *ready[MAX_DEPTH];
	unsigned nr_ready;
	bool submitting;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void submit_one(struct bench *b, struct nvemu_req *req)
{
	uint64_t lba = b->next_lba;

	b->next_lba += IO_SIZE / LBA_SIZE;
	if (b->next_lba >= b->nr_lbas)
		b->next_lba = 0;
	req->cmd.opc = b->opc;
	req->cmd.cdw10 = (uint32_t)lba;
	req->cmd.cdw11 = (uint32_t)(lba >> 32);
	req->cmd.cdw12 = IO_SIZE / LBA_SIZE - 1;
	req->buf_len = IO_SIZE;
	nvemu_host_submit(b->host, 1, req);
}

static void drain_ready(struct bench *b)
{
	if (b->submitting)
		return;
	b->submitting = true;
	while (b->nr_ready)
		submit_one(b, b->ready[--b->nr_ready]);
	b->submitting = false;
}

static void bench_done(struct nvemu_req *req)
{
	struct bench *b = req->transport_priv;

	b->completed++;
	if (req->cqe.status)
		b->errors++;
	if (b->running && !(b->completed % CLOCK_EVERY) && now_ns() >= b->deadline_ns)
		b->running = false;
	if (!b->running) {
		b->inflight--;
		return;
	}
	b->ready[b->nr_ready++] = req;
	drain_ready(b);
}

struct model {
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_host *host;
	struct nvemu_bdev *bdev; /* given to the namespace, so ours to destroy */
};

static int admin(struct model *m, struct nvemu_sqe *cmd)
{
	uint16_t st = nvemu_host_exec(m->host, 0, cmd, NULL, 0, NULL);

	if (st)
		fprintf(stderr, "bench-engine: admin opcode 0x%02x failed: status 0x%x\n", cmd->opc,
			st);
	return st ? -EIO : 0;
}

static int model_create(struct model *m, const char *backend, unsigned depth)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_ns_params np;
	struct nvemu_error err = {0};
	struct nvemu_sqe cmd;
	uint16_t port, cntlid;
	int rc;

	memset(m, 0, sizeof(*m));
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:bench";
	sp.serial = "BENCH0001";
	if ((rc = nvemu_subsys_create(&sp, &m->subsys, &err)))
		goto fail;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	if ((rc = nvemu_subsys_add_port(m->subsys, &pp, &port, &err)))
		goto fail;
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = 1;
	if ((rc = nvemu_subsys_add_ctrl_ex(m->subsys, &cp, &cntlid, &err)))
		goto fail;
	m->ctrl = nvemu_subsys_ctrl(m->subsys, cntlid);

	if (!strcmp(backend, "null"))
		rc = nvemu_bdev_null_create("bench-null", NS_BYTES, LBA_SIZE, &m->bdev, &err);
	else
		rc = nvemu_bdev_ram_create("bench-ram", NS_BYTES, LBA_SIZE, &m->bdev, &err);
	if (rc)
		goto fail;
	nvemu_ns_params_init(&np);
	np.bdev = m->bdev;
	if ((rc = nvemu_subsys_add_ns_ex(m->subsys, &np, NULL, &err)) ||
	    (rc = nvemu_ctrl_attach_ns(m->ctrl, 1, &err)) ||
	    (rc = nvemu_host_create(m->ctrl, &m->host, &err)))
		goto fail;
	if ((rc = nvemu_host_enable(m->host))) {
		snprintf(err.msg, sizeof(err.msg), "controller did not become ready");
		goto fail;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_set_features;
	cmd.cdw10 = NVME_FEAT_FID_NUM_QUEUES;
	if ((rc = admin(m, &cmd)))
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x100000;
	cmd.cdw10 = 1 | (depth * 2 - 1) << 16;
	cmd.cdw11 = 1 | 1u << 1;
	if ((rc = admin(m, &cmd)))
		return rc;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_sq;
	cmd.dptr1 = 0x200000;
	cmd.cdw10 = 1 | (depth * 2 - 1) << 16;
	cmd.cdw11 = 1 | 1u << 16;
	return admin(m, &cmd);
fail:
	fprintf(stderr, "bench-engine: %s\n", err.msg);
	return rc;
}

static void model_destroy(struct model *m)
{
	nvemu_host_destroy(m->host);
	nvemu_subsys_destroy(m->subsys);
	if (m->bdev)
		nvemu_bdev_destroy(m->bdev, NULL);
}

struct result {
	uint64_t completed, errors, elapsed_ns;
};

static int run_case(const char *backend, uint8_t opc, unsigned depth, double seconds,
		    struct result *res)
{
	struct nvemu_req *reqs = calloc(depth, sizeof(*reqs));
	uint8_t *bufs = aligned_alloc(4096, (size_t)depth * IO_SIZE);
	struct bench b = {0};
	struct model m;
	uint64_t start;
	int rc = -ENOMEM;

	memset(&m, 0, sizeof(m));
	if (!reqs || !bufs)
		goto out;
	memset(bufs, 0x5a, (size_t)depth * IO_SIZE);
	rc = model_create(&m, backend, depth);
	if (rc)
		goto out_model;

	b.host = m.host;
	b.nr_lbas = NS_BYTES / LBA_SIZE;
	for (unsigned i = 0; i < depth; i++) {
		reqs[i].cmd.nsid = 1;
		reqs[i].cmd.cid = (uint16_t)i;
		reqs[i].buf = bufs + (size_t)i * IO_SIZE;
		reqs[i].done = bench_done;
		reqs[i].transport_priv = &b;
	}

	/* Reads of never-written RAM would only memset: fill the range first. */
	if (!strcmp(backend, "ram") && opc == nvme_cmd_read) {
		b.opc = nvme_cmd_write;
		b.running = true;
		b.deadline_ns = UINT64_MAX;
		for (uint64_t lba = 0; lba < b.nr_lbas; lba += IO_SIZE / LBA_SIZE) {
			b.running = false; /* one at a time, no resubmission */
			b.inflight = 1;
			submit_one(&b, &reqs[0]);
			while (b.inflight)
				nvemu_host_poll(m.host);
		}
		if (b.errors) {
			fprintf(stderr, "bench-engine: prefill failed\n");
			rc = -EIO;
			goto out_model;
		}
		b.completed = 0;
		b.next_lba = 0;
	}

	b.opc = opc;
	b.running = true;
	start = now_ns();
	b.deadline_ns = start + (uint64_t)(seconds * 1e9);
	b.inflight = depth;
	b.submitting = true;
	for (unsigned i = 0; i < depth; i++)
		submit_one(&b, &reqs[i]);
	b.submitting = false;
	drain_ready(&b);
	while (b.inflight) {
		nvemu_host_poll(m.host);
		drain_ready(&b);
	}
	res->elapsed_ns = now_ns() - start;
	res->completed = b.completed;
	res->errors = b.errors;
	rc = 0;
out_model:
	model_destroy(&m);
out:
	free(reqs);
	free(bufs);
	return rc;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-t SECONDS] [-q DEPTH] [-c CPU]\n"
		"  -t  run each case this long (default 2)\n"
		"  -q  requests kept outstanding (default 32)\n"
		"  -c  pin to this CPU (default: the one it starts on)\n",
		prog);
}

int main(int argc, char **argv)
{
	static const char *const backends[] = {"null", "ram"};
	static const struct {
		const char *name;
		uint8_t opc;
	} ops[] = {{"read", nvme_cmd_read}, {"write", nvme_cmd_write}};
	double seconds = 2.0;
	unsigned depth = 32;
	int cpu = -1, opt, status = 0;
	cpu_set_t set;

	while ((opt = getopt(argc, argv, "t:q:c:h")) != -1) {
		switch (opt) {
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'q':
			depth = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'c':
			cpu = atoi(optarg);
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || seconds > 3600 || depth < 1 || depth > MAX_DEPTH / 2) {
		usage(argv[0]);
		return 2;
	}
	if (cpu < 0)
		cpu = sched_getcpu();
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			perror("bench-engine: sched_setaffinity");
	}

	printf("nvemu %s engine benchmark: %u-byte I/O, queue depth %u, %.1f s per case, "
	       "CPU %d, in-process host\n\n",
	       nvemu_version(), IO_SIZE, depth, seconds, cpu);
	printf("%-8s %-6s %14s %12s\n", "backend", "op", "requests/s", "ns/request");
	for (unsigned bi = 0; bi < sizeof(backends) / sizeof(backends[0]); bi++) {
		for (unsigned oi = 0; oi < sizeof(ops) / sizeof(ops[0]); oi++) {
			struct result r = {0};

			if (run_case(backends[bi], ops[oi].opc, depth, seconds, &r) ||
			    !r.completed) {
				printf("%-8s %-6s %14s %12s\n", backends[bi], ops[oi].name,
				       "failed", "-");
				status = 1;
				continue;
			}
			printf("%-8s %-6s %14.0f %12.1f\n", backends[bi], ops[oi].name,
			       r.completed * 1e9 / (double)r.elapsed_ns,
			       (double)r.elapsed_ns / (double)r.completed);
			if (r.errors) {
				fprintf(stderr, "bench-engine: %llu of %llu commands failed\n",
					(unsigned long long)r.errors,
					(unsigned long long)r.completed);
				status = 1;
			}
			fflush(stdout);
		}
	}
	return status;
}
