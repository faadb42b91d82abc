/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: arbitrary submission queue entries and data through
 * the engine's real request path (the in-process host).
 *
 * Build and run (tests/fuzz/meson.build, configured with CC=clang and
 * -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false):
 *
 *   exe = executable('fuzz-sqe', 'fuzz-sqe.c', dependencies: nvemu_dep,
 *                    c_args: ['-fsanitize=fuzzer'], link_args: ['-fsanitize=fuzzer'])
 *   test('fuzz-sqe', exe, args: ['-max_total_time=20', '-timeout=10'])
 *
 * Coverage feedback needs the library instrumented too: configure with
 * -Dc_args=-fsanitize=fuzzer-no-link -Dc_link_args=-fsanitize=fuzzer-no-link
 * (see tests/fuzz/meson.build), or build by hand as below.
 *
 * By hand, from the top of the tree:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc -I<builddir> \
 *         tests/fuzz/fuzz-sqe.c src/engine/[a-z]*.c src/bdev/[a-z]*.c src/transport/loop.c \
 *         -lnvme -luring -luuid -o fuzz-sqe
 *   ./fuzz-sqe -max_total_time=60 -timeout=10
 *
 * Input: a sequence of records, each
 *   u8 selector | 64-byte SQE | le16 buffer length | data
 * The selector picks the queue and the mode:
 *   bits 1:0  0 admin queue, 1 I/O queue 1, 2 I/O queue 1 with NSID forced
 *             to an attached namespace (bit 2 picks which), 3 any queue id
 *             (bits 7:4) so QID checks are exercised too
 *   bit 3     submit asynchronously (nvemu_host_submit) and go on; such
 *             commands are reaped at the end of the input
 * The buffer is "buffer length" bytes; for opcodes that move data to the
 * controller it is filled from the input that follows (as much as there
 * is), otherwise it is zeroed and the input is not consumed. Buffers add
 * up to at most 64 KiB per input.
 *
 * Asynchronous Event Requests never complete by themselves, so they are
 * always submitted asynchronously; the controller is disabled at the end
 * of the input, which must complete them (aborted).
 *
 * The model is built once (the file backend's io_uring included) and
 * reset to the same state before each input so that a crash reproduces
 * from its input alone: the subsystem is rebuilt (cheap: RAM namespaces of
 * 64 blocks), while the file-backed bdev persists across inputs and is
 * zeroed before each.
 *
 * Besides the sanitizers, the target checks the engine's contract: every
 * command completes exactly once, within a deadline, with its CID and
 * SQID echoed and no more data transferred than the buffer holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/nvemu-internal.h"

#define MAX_DATA	(64 * 1024)
#define MAX_RECORDS	128
#define MAX_ASYNC	32
#define NS_BLOCKS	64
#define CMD_DEADLINE_NS (5ull * 1000000000ull)
#define REC_HDR		(1 + 64 + 2)

enum slot_state { SLOT_FREE, SLOT_PENDING, SLOT_DONE };

struct slot {
	struct nvemu_req req;
	enum slot_state state;
	uint8_t *buf;
};

struct fuzz_state {
	struct nvemu_bdev *file_bdev; /* persists across inputs */
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_host *host;
	struct slot sync;
	struct slot async[MAX_ASYNC];
};

static struct fuzz_state fs;

static void die(const char *what, const struct nvemu_req *req)
{
	fprintf(stderr, "fuzz-sqe: %s (sqid %u opc 0x%02x cid %u nsid %u cdw10 0x%x)\n", what,
		req ? req->sqid : 0, req ? req->cmd.opc : 0, req ? req->cmd.cid : 0,
		req ? req->cmd.nsid : 0, req ? req->cmd.cdw10 : 0);
	abort();
}

static void slot_done(struct nvemu_req *req)
{
	struct slot *s = req->transport_priv;

	if (s->state != SLOT_PENDING)
		die("command completed twice", req);
	if (req->cqe.cid != req->cmd.cid || req->cqe.sqid != req->sqid)
		die("completion does not echo CID/SQID", req);
	if (req->xfer_len > req->buf_len)
		die("transferred more than the buffer holds", req);
	s->state = SLOT_DONE;
}

static void slot_submit(struct slot *s, uint16_t sqid, const struct nvemu_sqe *cmd, uint8_t *buf,
			uint32_t len)
{
	memset(&s->req, 0, sizeof(s->req));
	s->req.cmd = *cmd;
	s->req.buf = len ? buf : NULL;
	s->req.buf_len = len;
	s->req.done = slot_done;
	s->req.transport_priv = s;
	s->buf = buf;
	s->state = SLOT_PENDING;
	nvemu_host_submit(fs.host, sqid, &s->req);
}

/* nvemu_host_exec with a deadline: a command that never completes is a bug. */
static uint16_t exec(uint16_t sqid, const struct nvemu_sqe *cmd, void *buf, uint32_t len)
{
	uint64_t deadline = nvemu_now_ns() + CMD_DEADLINE_NS;

	slot_submit(&fs.sync, sqid, cmd, buf, len);
	while (fs.sync.state == SLOT_PENDING) {
		if (!nvemu_host_poll(fs.host))
			usleep(10);
		if (nvemu_now_ns() > deadline)
			die("command did not complete", &fs.sync.req);
	}
	fs.sync.state = SLOT_FREE;
	return fs.sync.req.cqe.status;
}

static void create_io_queue_pair(void)
{
	struct nvemu_sqe cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_cq;
	cmd.dptr1 = 0x10000;
	cmd.cdw10 = 1 | 31u << 16;
	cmd.cdw11 = 1 | 1u << 1;
	exec(0, &cmd, NULL, 0);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = nvme_admin_create_sq;
	cmd.dptr1 = 0x20000;
	cmd.cdw10 = 1 | 31u << 16;
	cmd.cdw11 = 1 | 1u << 16;
	exec(0, &cmd, NULL, 0);
}

/* Bring the controller back to "probed": enabled, I/O queue pair 1. */
static void make_ready(void)
{
	struct nvemu_ctrl *ctrl = fs.ctrl;
	uint32_t csts = nvemu_ctrl_get_csts(ctrl);

	if (!(csts & (1u << NVME_CSTS_RDY_SHIFT)) || (csts & (1u << NVME_CSTS_CFS_SHIFT)) ||
	    NVME_CSTS_SHST(csts)) {
		nvemu_ctrl_set_cc(ctrl, 0);
		if (nvemu_host_enable(fs.host))
			die("controller does not enable", NULL);
	}
	if (!ctrl->sqs[1].valid || !ctrl->cqs[1].valid) {
		struct nvemu_sqe cmd = {.opc = nvme_admin_set_features};

		/* Harmless if queues exist (Command Sequence Error). */
		cmd.cdw10 = NVME_FEAT_FID_NUM_QUEUES;
		cmd.cdw11 = 3 | 3u << 16;
		exec(0, &cmd, NULL, 0);
		create_io_queue_pair();
	}
}

static void model_init_once(void)
{
	struct nvemu_bdev_file_opts fo = {0};
	struct nvemu_error err = {0};
	char path[] = "/var/tmp/nvemu-fuzz-XXXXXX";
	int fd;

	if (fs.file_bdev)
		return;
	fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp", NULL);
	close(fd);
	fo.path = path;
	fo.blk_size = 512;
	fo.size = NS_BLOCKS * 4096; /* room for a Format to 4 KiB LBAs */
	if (nvemu_bdev_file_create("fuzz-file", &fo, &fs.file_bdev, &err)) {
		fprintf(stderr, "fuzz-sqe: file bdev: %s\n", err.msg);
		abort();
	}
	unlink(path); /* the backend keeps its fd */
}

static void wipe_done(struct nvemu_bio *bio, int err)
{
	if (err)
		die("could not zero the file bdev", NULL);
	bio->private = NULL;
}

/* The file's data would otherwise carry over (Compare results) between inputs. */
static void wipe_file_bdev(void)
{
	uint64_t deadline = nvemu_now_ns() + CMD_DEADLINE_NS;
	struct nvemu_bio bio = {
		.op = NVEMU_BIO_WRITE_ZEROES,
		.len = fs.file_bdev->size,
		.end_io = wipe_done,
		.private = &bio,
	};

	if (nvemu_bdev_submit(fs.file_bdev, &bio))
		die("could not zero the file bdev", NULL);
	while (bio.private) {
		if (!nvemu_bdev_poll(fs.file_bdev))
			usleep(10);
		if (nvemu_now_ns() > deadline)
			die("zeroing the file bdev did not complete", NULL);
	}
}

static void model_build(void)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_ns_params np;
	struct nvemu_error err = {0};
	uint16_t port, cntlid;
	int rc = 0;

	model_init_once();
	wipe_file_bdev();
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fuzz";
	sp.serial = "FUZZ0001";
	sp.model = "nvemu fuzz";
	sp.nn = 16;
	sp.mnan = 8;
	rc |= nvemu_subsys_create(&sp, &fs.subsys, &err);
	if (rc)
		goto fail;
	/* Namespace Management may hand out 256 KiB in all: creates stay cheap. */
	fs.subsys->tnvmcap = 256 * 1024;

	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	rc |= nvemu_subsys_add_port(fs.subsys, &pp, &port, &err);
	/* ANA on, so the ANA log (LSP, offsets) and the I/O path check are fuzzed too. */
	rc |= nvemu_subsys_set_ana_reporting(fs.subsys, true, &err);
	rc |= nvemu_port_set_ana_state(fs.subsys, port, 2, NVEMU_ANA_NON_OPTIMIZED, &err);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = 4;
	cp.mdts = 3; /* 32 KiB: inputs can exceed it */
	cp.max_queue_entries = 64;
	cp.compare_write = true;
	rc |= nvemu_subsys_add_ctrl_ex(fs.subsys, &cp, &cntlid, &err);
	if (rc)
		goto fail;
	fs.ctrl = nvemu_subsys_ctrl(fs.subsys, cntlid);
	/* A primary controller with two secondaries: Virtualization Management (1Ch) and CNS 14h/15h. */
	{
		struct nvemu_virt_params vp;
		uint16_t sec;

		nvemu_virt_params_init(&vp, 2);
		vp.vq_flex = vp.vi_flex = 8;
		rc |= nvemu_subsys_virt_add(fs.subsys, cntlid, &vp, &err);
		for (uint16_t vfn = 1; vfn <= 2 && !rc; vfn++) {
			rc |= nvemu_subsys_add_ctrl_ex(fs.subsys, &cp, &sec, &err);
			rc |= nvemu_ctrl_set_secondary(nvemu_subsys_ctrl(fs.subsys, sec), cntlid, vfn,
						       &err);
		}
		if (rc)
			goto fail;
	}

	rc |= nvemu_subsys_add_ns(fs.subsys, NS_BLOCKS, NULL, &err); /* 1: RAM */
	nvemu_ns_params_init(&np);
	np.nsid = 2;
	np.nblocks = NS_BLOCKS;
	np.bdev = fs.file_bdev;
	rc |= nvemu_subsys_add_ns_ex(fs.subsys, &np, NULL, &err);    /* 2: file */
	rc |= nvemu_subsys_add_ns(fs.subsys, NS_BLOCKS, NULL, &err); /* 3: not attached */
	rc |= nvemu_ctrl_attach_ns(fs.ctrl, 1, &err);
	rc |= nvemu_ctrl_attach_ns(fs.ctrl, 2, &err);
	rc |= nvemu_host_create(fs.ctrl, &fs.host, &err);
	if (rc)
		goto fail;
	make_ready();
	return;
fail:
	fprintf(stderr, "fuzz-sqe: model: %s\n", err.msg);
	abort();
}

/* Complete everything: commands in flight, then AERs by disabling. */
static void model_teardown(void)
{
	uint64_t deadline = nvemu_now_ns() + CMD_DEADLINE_NS;

	for (;;) {
		unsigned pending = 0;

		/*
		 * AERs, and a fused first half whose second never came (it waits
		 * for the next command on its queue), complete only on disable.
		 */
		for (unsigned i = 0; i < MAX_ASYNC; i++)
			if (fs.async[i].state == SLOT_PENDING &&
			    !(fs.async[i].req.sqid == 0 &&
			      fs.async[i].req.cmd.opc == nvme_admin_async_event) &&
			    !(fs.async[i].req.sqid != 0 && (fs.async[i].req.cmd.flags & 3) == 1))
				pending++;
		if (!pending)
			break;
		if (!nvemu_host_poll(fs.host))
			usleep(10);
		if (nvemu_now_ns() > deadline)
			die("asynchronous command did not complete", NULL);
	}
	/* nvemu_host_destroy disables the controller, which aborts AERs. */
	nvemu_host_destroy(fs.host);
	for (unsigned i = 0; i < MAX_ASYNC; i++) {
		if (fs.async[i].state == SLOT_PENDING)
			die("command still outstanding after disable", &fs.async[i].req);
		free(fs.async[i].buf);
		fs.async[i].buf = NULL;
		fs.async[i].state = SLOT_FREE;
	}
	nvemu_subsys_destroy(fs.subsys);
	fs.subsys = NULL;
	fs.ctrl = NULL;
	fs.host = NULL;
}

static struct slot *async_slot(void)
{
	for (unsigned i = 0; i < MAX_ASYNC; i++) {
		struct slot *s = &fs.async[i];

		if (s->state == SLOT_DONE) {
			free(s->buf);
			s->buf = NULL;
			s->state = SLOT_FREE;
		}
		if (s->state == SLOT_FREE)
			return s;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t total = 0;
	unsigned nrec = 0;

	model_build();
	while (size >= REC_HDR && nrec++ < MAX_RECORDS) {
		uint8_t sel = data[0];
		struct nvemu_sqe cmd;
		uint16_t sqid;
		uint32_t len;
		uint8_t *buf = NULL;
		bool async;

		memcpy(&cmd, data + 1, sizeof(cmd));
		len = (uint32_t)data[65] | (uint32_t)data[66] << 8;
		data += REC_HDR;
		size -= REC_HDR;
		if (total + len > MAX_DATA)
			break;
		total += len;

		switch (sel & 3) {
		case 0:
			sqid = 0;
			break;
		case 1:
			sqid = 1;
			break;
		case 2:
			sqid = 1;
			cmd.nsid = sel & 4 ? 2 : 1;
			break;
		default:
			sqid = sel >> 4;
			break;
		}
		async = sel & 8;
		if (sqid == 0 && cmd.opc == nvme_admin_async_event)
			async = true;
		/* A fused first half waits for the next command on its queue: never waited for. */
		if (sqid != 0 && (cmd.flags & 3) == 1)
			async = true;

		if (len) {
			buf = calloc(1, len);
			if (!buf)
				break;
			if (nvemu_opc_dir(cmd.opc) & NVEMU_XFER_TO_CTRL) {
				size_t n = len < size ? len : size;

				memcpy(buf, data, n);
				data += n;
				size -= n;
			}
		}

		make_ready();
		if (async) {
			struct slot *s = async_slot();

			if (!s) {
				free(buf);
				continue;
			}
			slot_submit(s, sqid, &cmd, buf, len);
			nvemu_host_poll(fs.host);
			continue;
		}
		exec(sqid, &cmd, buf, len);
		free(buf);
	}
	model_teardown();
	return 0;
}
