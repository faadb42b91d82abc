/* SPDX-License-Identifier: MIT */
/* NVM I/O commands through the in-process host, on RAM, file and test backends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test-util.h"

#define NS1_BLOCKS	  1024 /* the fixture's namespace 1: 512-byte LBAs, RAM */
#define SC_LBA_RANGE	  (NVEMU_SC_GENERIC(NVME_SC_LBA_RANGE) | NVEMU_DNR)
#define SC_INVALID_FIELD  (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define SC_INVALID_NS	  (NVEMU_SC_GENERIC(NVME_SC_INVALID_NS) | NVEMU_DNR)
#define SC_INVALID_OPCODE (NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVEMU_DNR)
#define SC_SGL_LEN	  (NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR)
#define SC_WP		  (NVEMU_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVEMU_DNR)
#define SC_SIZE_LIMIT	  (NVEMU_SC_CMD(NVME_SC_CMD_SIZE_LIMIT_EXCEEDED) | NVEMU_DNR)

/* Exact status, DNR included, and the command's Error Information log entry. */
#define assert_failed(got, want) tu_assert_failed(env, (got), (want))

static uint16_t io(struct tu_env *env, uint8_t opc, uint32_t nsid, uint32_t cdw10, uint32_t cdw11,
		   uint32_t cdw12, void *buf, uint32_t len)
{
	struct nvemu_sqe cmd = {.opc = opc, .nsid = nsid};

	cmd.cdw10 = cdw10;
	cmd.cdw11 = cdw11;
	cmd.cdw12 = cdw12;
	return tu_io(env, &cmd, buf, len, NULL);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed * 101 + (i >> 9) * 7 + 1);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void attach(struct tu_env *env, struct nvemu_bdev *bdev, uint8_t lbaf, uint32_t nsid)
{
	struct nvemu_error err = {0};
	struct nvemu_ns_params p;
	uint32_t got;

	nvemu_ns_params_init(&p);
	p.nsid = nsid;
	p.lbaf = lbaf;
	p.bdev = bdev;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, &got, &err), 0);
	assert_int_equal(got, nsid);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);
}

static void detach(struct tu_env *env, uint32_t nsid)
{
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, nsid, &err), 0);
}

/* ---- a test backend: RAM underneath, completions deferred to poll(), errors on demand */

struct test_bdev {
	struct nvemu_bdev bdev;
	struct nvemu_bdev *ram;
	struct nvemu_bio *pending[64];
	int errs[64];
	unsigned nr;
	int fail[5]; /* per op: the errno end_io reports (0: do the I/O) */
	int refuse;  /* submit returns this without calling end_io */
	bool defer;  /* complete from poll() instead of inline */
	unsigned submitted;
};

static void tb_ram_done(struct nvemu_bio *bio, int err)
{
	*(int *)bio->private = err;
}

static int tb_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct test_bdev *t = (struct test_bdev *)bdev;
	int err = t->fail[bio->op];

	if (t->refuse)
		return t->refuse;
	t->submitted++;
	if (!err) {
		struct nvemu_bio sub = *bio;

		sub.end_io = tb_ram_done;
		sub.private = &err;
		assert_int_equal(nvemu_bdev_submit(t->ram, &sub), 0);
	}
	if (!t->defer) {
		bio->end_io(bio, err);
		return 0;
	}
	assert_true(t->nr < 64);
	t->errs[t->nr] = err;
	t->pending[t->nr++] = bio;
	return 0;
}

static int tb_poll(struct nvemu_bdev *bdev)
{
	struct test_bdev *t = (struct test_bdev *)bdev;
	unsigned n = t->nr;

	/* Completions may submit more: take the current batch first. */
	struct nvemu_bio *b[64];
	int e[64];

	memcpy(b, t->pending, n * sizeof(b[0]));
	memcpy(e, t->errs, n * sizeof(e[0]));
	t->nr = 0;
	for (unsigned i = 0; i < n; i++)
		b[i]->end_io(b[i], e[i]);
	return (int)n;
}

static unsigned tb_inflight(struct nvemu_bdev *bdev)
{
	return ((struct test_bdev *)bdev)->nr;
}

static void tb_destroy(struct nvemu_bdev *bdev)
{
	struct test_bdev *t = (struct test_bdev *)bdev;

	nvemu_bdev_destroy(t->ram, NULL);
	free(t);
}

static const struct nvemu_bdev_ops tb_ops = {
	.type = "test",
	.submit = tb_submit,
	.poll = tb_poll,
	.inflight = tb_inflight,
	.destroy = tb_destroy,
};

static struct test_bdev *tb_create(uint64_t size)
{
	struct nvemu_error err = {0};
	struct test_bdev *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	assert_int_equal(nvemu_bdev_init(&t->bdev, &tb_ops, "test", size, 512, &err), 0);
	assert_int_equal(nvemu_bdev_ram_create("test-ram", size, 512, &t->ram, &err), 0);
	return t;
}

/* ---- Read / Write */

static void test_rw_ram(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_smart_counters before = env->ctrl->smart;
	uint8_t w[8 * 512], r[8 * 512];

	fill(w, sizeof(w), 1);
	memset(r, 0xaa, sizeof(r));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 100, 8, r, sizeof(r)));
	assert_true(all_zero(r, sizeof(r)));
	assert_success(tu_rw(env, nvme_cmd_write, 1, 100, 8, w, sizeof(w)));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 100, 8, r, sizeof(r)));
	assert_memory_equal(r, w, sizeof(w));
	/* Overlapping, unaligned to the write, and the last LBA. */
	assert_success(tu_rw(env, nvme_cmd_read, 1, 103, 2, r, 1024));
	assert_memory_equal(r, w + 3 * 512, 1024);
	assert_success(tu_rw(env, nvme_cmd_write, 1, NS1_BLOCKS - 1, 1, w, 512));
	assert_success(tu_rw(env, nvme_cmd_read, 1, NS1_BLOCKS - 1, 1, r, 512));
	assert_memory_equal(r, w, 512);

	/* SMART counts 512-byte units and commands. */
	assert_int_equal(env->ctrl->smart.units_read - before.units_read, 8 + 8 + 2 + 1);
	assert_int_equal(env->ctrl->smart.host_read_cmds - before.host_read_cmds, 4);
	assert_int_equal(env->ctrl->smart.units_written - before.units_written, 9);
	assert_int_equal(env->ctrl->smart.host_write_cmds - before.host_write_cmds, 2);
	assert_int_equal(env->ctrl->smart.media_errors, before.media_errors);
}

static void test_rw_cqe(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_cmd_write, .nsid = 1, .cid = 0x1234};
	struct nvemu_cqe cqe;
	uint8_t w[512] = {1};

	assert_success(tu_io(env, &cmd, w, sizeof(w), &cqe));
	assert_int_equal(cqe.cid, 0x1234);
	assert_int_equal(cqe.sqid, 1);
	assert_int_equal(cqe.status, 0);
}

static char *tmp_file(void)
{
	char *path = strdup("/var/tmp/nvemu-test-io-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	return path;
}

static void rw_file(struct tu_env *env, bool direct)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev *bdev;
	size_t len = 64 * 4096;
	uint8_t *w = malloc(len), *r = malloc(len);
	char *path = tmp_file();
	int rc, fd;

	o.path = path;
	o.size = 4 << 20;
	o.direct = direct;
	rc = nvemu_bdev_file_create("file-ns", &o, &bdev, &err);
	if (direct && rc == -EINVAL) {
		unlink(path);
		free(path);
		free(w);
		free(r);
		print_message("# SKIP: O_DIRECT not supported under /var/tmp: %s\n", err.msg);
		skip();
	}
	assert_int_equal(rc, 0);
	attach(env, bdev, 1, 3); /* 4 KiB LBAs: 1024 blocks */

	fill(w, len, 2);
	assert_success(tu_rw(env, nvme_cmd_write, 3, 10, 64, w, len));
	memset(r, 0, len);
	assert_success(tu_rw(env, nvme_cmd_read, 3, 10, 64, r, len));
	assert_memory_equal(r, w, len);
	/* FUA write */
	assert_success(io(env, nvme_cmd_write, 3, 1000, 0, 1u << 30 | 3, w, 4 * 4096));
	assert_success(tu_rw(env, nvme_cmd_read, 3, 1000, 4, r, 4 * 4096));
	assert_memory_equal(r, w, 4 * 4096);
	assert_success(io(env, nvme_cmd_flush, 3, 0, 0, 0, NULL, 0));
	assert_failed(tu_rw(env, nvme_cmd_read, 3, 1021, 4, r, 4 * 4096), SC_LBA_RANGE);

	/* Write Zeroes and DSM deallocate on a file read back zeroes. */
	assert_success(io(env, nvme_cmd_write_zeroes, 3, 12, 0, 1, NULL, 0));
	struct nvme_dsm_range range = {.nlb = htole32(2), .slba = htole64(20)};

	assert_success(io(env, nvme_cmd_dsm, 3, 0, 1u << 2, 0, &range, sizeof(range)));
	assert_success(tu_rw(env, nvme_cmd_read, 3, 10, 64, r, len));
	assert_memory_equal(r, w, 2 * 4096);
	assert_true(all_zero(r + 2 * 4096, 2 * 4096));
	assert_memory_equal(r + 4 * 4096, w + 4 * 4096, 6 * 4096);
	assert_true(all_zero(r + 10 * 4096, 2 * 4096));
	assert_memory_equal(r + 12 * 4096, w + 12 * 4096, len - 12 * 4096);

	/* Copy within the file namespace. */
	struct nvme_copy_range cr = {.slba = htole64(10), .nlb = htole16(1)};

	assert_success(io(env, nvme_cmd_copy, 3, 500, 0, 0, &cr, sizeof(cr)));
	assert_success(tu_rw(env, nvme_cmd_read, 3, 500, 2, r, 2 * 4096));
	assert_memory_equal(r, w, 2 * 4096);

	detach(env, 3);
	assert_int_equal(bdev->users, 0);
	assert_int_equal(nvemu_bdev_destroy(bdev, &err), 0);

	/* The data reached the file. */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 4096, 10 * 4096), 4096);
	assert_memory_equal(r, w, 4096);
	close(fd);
	unlink(path);
	free(path);
	free(w);
	free(r);
}

static void test_rw_file(void **state)
{
	rw_file(*state, false);
}

static void test_rw_file_direct(void **state)
{
	rw_file(*state, true);
}

/* ---- Flush */

static void test_flush(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20);
	struct nvemu_error err = {0};

	assert_success(io(env, nvme_cmd_flush, 1, 0, 0, 0, NULL, 0));
	attach(env, &t->bdev, 0, 5);
	t->defer = true;
	assert_success(io(env, nvme_cmd_flush, 5, 0, 0, 0, NULL, 0));
	assert_int_equal(t->submitted, 1);
	/* FFFFFFFFh flushes every attached namespace. */
	assert_success(io(env, nvme_cmd_flush, NVEMU_NSID_ALL, 0, 0, 0, NULL, 0));
	assert_int_equal(t->submitted, 2);
	/* ... and reports a failing one. */
	t->fail[NVEMU_BIO_FLUSH] = -EIO;
	assert_failed(io(env, nvme_cmd_flush, NVEMU_NSID_ALL, 0, 0, 0, NULL, 0),
		      NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT));
	t->fail[NVEMU_BIO_FLUSH] = 0;

	assert_failed(io(env, nvme_cmd_flush, 0, 0, 0, 0, NULL, 0), SC_INVALID_NS);
	assert_dnr(io(env, nvme_cmd_flush, 0, 0, 0, 0, NULL, 0));
	assert_failed(io(env, nvme_cmd_flush, 2, 0, 0, 0, NULL, 0), SC_INVALID_NS);
	assert_failed(io(env, nvme_cmd_flush, 77, 0, 0, 0, NULL, 0), SC_INVALID_NS);
	assert_failed(io(env, nvme_cmd_flush, 0xfffffffe, 0, 0, 0, NULL, 0), SC_INVALID_NS);

	detach(env, 5);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
	/* A controller with no namespace attached: nothing to flush, success. */
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 1, &err), 0);
	assert_success(io(env, nvme_cmd_flush, NVEMU_NSID_ALL, 0, 0, 0, NULL, 0));
}

/* ---- Write Zeroes */

static void test_write_zeroes(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_smart_counters before;
	uint8_t w[16 * 512], r[16 * 512];

	fill(w, sizeof(w), 3);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 200, 16, w, sizeof(w)));
	before = env->ctrl->smart;
	assert_success(io(env, nvme_cmd_write_zeroes, 1, 202, 0, 3, NULL, 0));
	/* DEAC with FUA */
	assert_success(io(env, nvme_cmd_write_zeroes, 1, 210, 0, 1u << 25 | 1u << 30 | 1, NULL, 0));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 200, 16, r, sizeof(r)));
	assert_memory_equal(r, w, 2 * 512);
	assert_true(all_zero(r + 2 * 512, 4 * 512));
	assert_memory_equal(r + 6 * 512, w + 6 * 512, 4 * 512);
	assert_true(all_zero(r + 10 * 512, 2 * 512));
	assert_memory_equal(r + 12 * 512, w + 12 * 512, 4 * 512);
	/* Write Zeroes does not count as host data written. */
	assert_int_equal(env->ctrl->smart.units_written, before.units_written);

	/* The whole namespace, in one command, frees the RAM. */
	assert_success(io(env, nvme_cmd_write_zeroes, 1, 0, 0, NS1_BLOCKS - 1, NULL, 0));
	assert_int_equal(nvemu_bdev_ram_resident(nvemu_subsys_ns(env->subsys, 1)->bdev), 0);

	assert_failed(io(env, nvme_cmd_write_zeroes, 1, NS1_BLOCKS, 0, 0, NULL, 0), SC_LBA_RANGE);
	assert_failed(io(env, nvme_cmd_write_zeroes, 1, NS1_BLOCKS - 1, 0, 1, NULL, 0),
		      SC_LBA_RANGE);
	assert_failed(io(env, nvme_cmd_write_zeroes, 2, 0, 0, 0, NULL, 0), SC_INVALID_NS);
	env->ctrl->p.write_zeroes = false;
	assert_failed(io(env, nvme_cmd_write_zeroes, 1, 0, 0, 0, NULL, 0), SC_INVALID_OPCODE);
}

/* ---- Compare */

static void test_compare(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_smart_counters before;
	uint8_t w[4 * 512];

	fill(w, sizeof(w), 4);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 300, 4, w, sizeof(w)));
	before = env->ctrl->smart;
	assert_success(tu_rw(env, nvme_cmd_compare, 1, 300, 4, w, sizeof(w)));
	assert_int_equal(env->ctrl->smart.host_read_cmds, before.host_read_cmds + 1);
	assert_int_equal(env->ctrl->smart.units_read, before.units_read + 4);
	w[1000] ^= 1;
	uint16_t st = tu_rw(env, nvme_cmd_compare, 1, 300, 4, w, sizeof(w));

	assert_failed(st, NVEMU_SC_MEDIA(NVME_SC_COMPARE_FAILED) | NVEMU_DNR);
	assert_int_equal(nvemu_status_sct(st), NVME_SCT_MEDIA);
	/* A compare failure is not a media error. */
	assert_int_equal(env->ctrl->smart.media_errors, before.media_errors);
	assert_failed(tu_rw(env, nvme_cmd_compare, 1, 300, 4, w, sizeof(w) - 1), SC_SGL_LEN);
	assert_failed(tu_rw(env, nvme_cmd_compare, 1, NS1_BLOCKS - 2, 4, w, sizeof(w)),
		      SC_LBA_RANGE);
	env->ctrl->p.compare = false;
	env->ctrl->p.compare_write = false;
	assert_failed(tu_rw(env, nvme_cmd_compare, 1, 300, 4, w, sizeof(w)), SC_INVALID_OPCODE);
}

/* ---- Dataset Management */

static void test_dsm(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *bdev = nvemu_subsys_ns(env->subsys, 1)->bdev;
	uint8_t w[256 * 512], r[256 * 512];
	struct nvme_dsm_range ranges[3] = {
		{.slba = htole64(0), .nlb = htole32(128)}, /* one whole 64 KiB chunk */
		{.slba = htole64(130), .nlb = htole32(2)},
		{.slba = htole64(200), .nlb = htole32(0)}, /* empty: ignored */
	};

	fill(w, sizeof(w), 5);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 256, w, sizeof(w)));
	assert_int_equal(nvemu_bdev_ram_resident(bdev), 2 * 65536);
	/* Without AD the ranges are hints: nothing changes. */
	assert_success(io(env, nvme_cmd_dsm, 1, 2, 1u << 0 | 1u << 1, 0, ranges, sizeof(ranges)));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 256, r, sizeof(r)));
	assert_memory_equal(r, w, sizeof(w));

	assert_success(io(env, nvme_cmd_dsm, 1, 2, 1u << 2, 0, ranges, sizeof(ranges)));
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 256, r, sizeof(r)));
	assert_true(all_zero(r, 128 * 512));
	assert_memory_equal(r + 128 * 512, w + 128 * 512, 2 * 512);
	assert_true(all_zero(r + 130 * 512, 2 * 512));
	assert_memory_equal(r + 132 * 512, w + 132 * 512, 124 * 512);
	assert_int_equal(nvemu_bdev_ram_resident(bdev), 65536);

	/* A range past the end fails the whole command before anything happens. */
	struct nvme_dsm_range bad[2] = {
		{.slba = htole64(132), .nlb = htole32(1)},
		{.slba = htole64(NS1_BLOCKS - 1), .nlb = htole32(2)},
	};

	assert_failed(io(env, nvme_cmd_dsm, 1, 1, 1u << 2, 0, bad, sizeof(bad)), SC_LBA_RANGE);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 132, 1, r, 512));
	assert_memory_equal(r, w + 132 * 512, 512);
	/* NR = 1 means two ranges: 16 bytes is too short. */
	assert_failed(io(env, nvme_cmd_dsm, 1, 1, 1u << 2, 0, bad, sizeof(bad[0])), SC_SGL_LEN);
	assert_failed(io(env, nvme_cmd_dsm, 2, 0, 1u << 2, 0, bad, sizeof(bad[0])), SC_INVALID_NS);
	env->ctrl->p.dsm = false;
	assert_failed(io(env, nvme_cmd_dsm, 1, 0, 1u << 2, 0, ranges, sizeof(ranges[0])),
		      SC_INVALID_OPCODE);
}

/* ---- Verify */

static void test_verify(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_smart_counters before = env->ctrl->smart;

	assert_success(io(env, nvme_cmd_verify, 1, 0, 0, NS1_BLOCKS - 1, NULL, 0));
	assert_int_equal(env->ctrl->smart.host_read_cmds, before.host_read_cmds + 1);
	assert_int_equal(env->ctrl->smart.units_read, before.units_read + NS1_BLOCKS);
	assert_success(io(env, nvme_cmd_verify, 1, NS1_BLOCKS - 1, 0, 0, NULL, 0));
	assert_failed(io(env, nvme_cmd_verify, 1, NS1_BLOCKS - 1, 0, 1, NULL, 0), SC_LBA_RANGE);
	assert_failed(io(env, nvme_cmd_verify, 1, 0, 1, 0, NULL, 0), SC_LBA_RANGE);
	assert_failed(io(env, nvme_cmd_verify, 9, 0, 0, 0, NULL, 0), SC_INVALID_NS);
}

/* ---- Copy */

static void test_copy(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_smart_counters before;
	uint8_t w[64 * 512], r[64 * 512];
	struct nvme_copy_range cr[3] = {
		{.slba = htole64(40), .nlb = htole16(9)}, /* 10 blocks */
		{.slba = htole64(0), .nlb = htole16(0)},  /* 1 block */
		{.slba = htole64(20), .nlb = htole16(4)}, /* 5 blocks */
	};

	fill(w, sizeof(w), 6);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 64, w, sizeof(w)));
	before = env->ctrl->smart;
	assert_success(io(env, nvme_cmd_copy, 1, 600, 0, 2 | 1u << 30, cr, sizeof(cr)));
	assert_int_equal(env->ctrl->smart.host_write_cmds, before.host_write_cmds + 1);
	assert_int_equal(env->ctrl->smart.units_written, before.units_written + 16);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 600, 16, r, 16 * 512));
	assert_memory_equal(r, w + 40 * 512, 10 * 512);
	assert_memory_equal(r + 10 * 512, w, 512);
	assert_memory_equal(r + 11 * 512, w + 20 * 512, 5 * 512);
	/* The source is untouched. */
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 64, r, sizeof(r)));
	assert_memory_equal(r, w, sizeof(w));
}

static void test_copy_errors(void **state)
{
	struct tu_env *env = *state;
	static struct nvme_copy_range cr[256];
	uint8_t r[512], w[512];

	memset(cr, 0, sizeof(cr));
	/* Descriptor formats other than 0 */
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 0, 1u << 8, cr, 32), SC_INVALID_FIELD);
	/* 129 ranges > MSRC + 1 */
	assert_failed(io(env, nvme_cmd_copy, 1, 900, 0, NVEMU_COPY_MSRC + 1, cr, sizeof(cr)),
		      SC_SIZE_LIMIT);
	assert_success(
		io(env, nvme_cmd_copy, 1, 800, 0, NVEMU_COPY_MSRC, cr, (NVEMU_COPY_MSRC + 1) * 32));
	/* A 65536-block range > MSSRL */
	cr[0].nlb = htole16(0xffff);
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 0, 0, cr, 32), SC_SIZE_LIMIT);
	/* Two ranges of 40000 blocks > MCL */
	cr[0].nlb = cr[1].nlb = htole16(39999);
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 0, 1, cr, 64), SC_SIZE_LIMIT);
	/* Source past the end */
	cr[0].nlb = htole16(1);
	cr[0].slba = htole64(NS1_BLOCKS - 1);
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 0, 0, cr, 32), SC_LBA_RANGE);
	/* Destination past the end */
	cr[0].slba = htole64(0);
	assert_failed(io(env, nvme_cmd_copy, 1, NS1_BLOCKS - 1, 0, 0, cr, 32), SC_LBA_RANGE);
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 1, 0, cr, 32), SC_LBA_RANGE);
	/* The range list shorter than NR says */
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 0, 1, cr, 32), SC_SGL_LEN);
	assert_failed(io(env, nvme_cmd_copy, 1, 0, 0, 0, NULL, 0), SC_SGL_LEN);
	/* The refused copies wrote nothing: block 0 and its targets are as they were. */
	fill(w, sizeof(w), 10);
	assert_success(tu_rw(env, nvme_cmd_write, 1, 0, 1, w, 512));
	assert_failed(io(env, nvme_cmd_copy, 1, NS1_BLOCKS - 1, 0, 0, cr, 32), SC_LBA_RANGE);
	assert_success(tu_rw(env, nvme_cmd_read, 1, NS1_BLOCKS - 1, 1, r, 512));
	assert_true(all_zero(r, 512));
}

/* ---- invalid cases common to every command */

static void test_invalid(void **state)
{
	struct tu_env *env = *state;
	static uint8_t buf[64 * 1024];

	/* LBA range: past the end, straddling it, and SLBA + NLB wrapping 64 bits. */
	assert_failed(tu_rw(env, nvme_cmd_read, 1, NS1_BLOCKS, 1, buf, 512), SC_LBA_RANGE);
	assert_dnr(tu_rw(env, nvme_cmd_read, 1, NS1_BLOCKS, 1, buf, 512));
	assert_failed(tu_rw(env, nvme_cmd_write, 1, NS1_BLOCKS - 4, 8, buf, 4096), SC_LBA_RANGE);
	assert_failed(tu_rw(env, nvme_cmd_read, 1, UINT64_MAX, 2, buf, 1024), SC_LBA_RANGE);
	assert_failed(tu_rw(env, nvme_cmd_write, 1, UINT64_MAX - 1, 4, buf, 2048), SC_LBA_RANGE);

	/* MDTS: 4 KiB << 1 = 8 KiB */
	env->ctrl->p.mdts = 1;
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 16, buf, 8192));
	assert_failed(tu_rw(env, nvme_cmd_read, 1, 0, 17, buf, sizeof(buf)), SC_INVALID_FIELD);
	assert_failed(tu_rw(env, nvme_cmd_write, 1, 0, 17, buf, sizeof(buf)), SC_INVALID_FIELD);
	assert_failed(tu_rw(env, nvme_cmd_compare, 1, 0, 17, buf, sizeof(buf)), SC_INVALID_FIELD);
	assert_dnr(tu_rw(env, nvme_cmd_read, 1, 0, 17, buf, sizeof(buf)));
	env->ctrl->p.mdts = 7;

	/* NSIDs: 0, not attached, not existing, broadcast (only Flush takes it). */
	assert_failed(tu_rw(env, nvme_cmd_read, 0, 0, 1, buf, 512), SC_INVALID_NS);
	assert_failed(tu_rw(env, nvme_cmd_write, 2, 0, 1, buf, 512), SC_INVALID_NS);
	assert_failed(tu_rw(env, nvme_cmd_read, 1000, 0, 1, buf, 512), SC_INVALID_NS);
	assert_failed(tu_rw(env, nvme_cmd_read, NVEMU_NSID_ALL, 0, 1, buf, 512), SC_INVALID_NS);

	/* Host buffer shorter than the transfer, or none at all. */
	assert_failed(tu_rw(env, nvme_cmd_read, 1, 0, 2, buf, 1023), SC_SGL_LEN);
	assert_failed(tu_rw(env, nvme_cmd_write, 1, 0, 2, buf, 512), SC_SGL_LEN);
	assert_failed(tu_rw(env, nvme_cmd_read, 1, 0, 1, NULL, 0), SC_SGL_LEN);

	/* An opcode the NVM command set does not have. */
	assert_failed(io(env, 0x7f, 1, 0, 0, 0, NULL, 0), SC_INVALID_OPCODE);
}

static void test_read_only(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *bdev = nvemu_subsys_ns(env->subsys, 1)->bdev;
	struct nvme_dsm_range range = {.slba = htole64(0), .nlb = htole32(1)};
	struct nvme_copy_range cr = {.slba = htole64(0)};
	uint8_t w[512] = {7}, r[512];

	assert_success(tu_rw(env, nvme_cmd_write, 1, 5, 1, w, 512));
	bdev->read_only = true;
	assert_failed(tu_rw(env, nvme_cmd_write, 1, 5, 1, r, 512), SC_WP);
	assert_dnr(tu_rw(env, nvme_cmd_write, 1, 5, 1, r, 512));
	assert_failed(io(env, nvme_cmd_write_zeroes, 1, 5, 0, 0, NULL, 0), SC_WP);
	assert_failed(io(env, nvme_cmd_dsm, 1, 0, 1u << 2, 0, &range, sizeof(range)), SC_WP);
	assert_failed(io(env, nvme_cmd_copy, 1, 5, 0, 0, &cr, sizeof(cr)), SC_WP);
	/* Reads, compares, verifies, flushes and DSM hints still work. */
	assert_success(tu_rw(env, nvme_cmd_read, 1, 5, 1, r, 512));
	assert_memory_equal(r, w, 512);
	assert_success(tu_rw(env, nvme_cmd_compare, 1, 5, 1, w, 512));
	assert_success(io(env, nvme_cmd_verify, 1, 5, 0, 0, NULL, 0));
	assert_success(io(env, nvme_cmd_flush, 1, 0, 0, 0, NULL, 0));
	assert_success(io(env, nvme_cmd_dsm, 1, 0, 1u << 0, 0, &range, sizeof(range)));
	bdev->read_only = false;
}

/* ---- backend errors and asynchronous completions */

static void test_backend_errors(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20);
	struct nvemu_error err = {0};
	uint64_t media = env->ctrl->smart.media_errors;
	struct nvme_copy_range cr = {.slba = htole64(0), .nlb = htole16(3)};
	uint8_t buf[4096];

	attach(env, &t->bdev, 0, 6);
	for (int defer = 0; defer < 2; defer++) {
		t->defer = defer;
		t->fail[NVEMU_BIO_READ] = -EIO;
		assert_failed(tu_rw(env, nvme_cmd_read, 6, 0, 8, buf, 4096),
			      NVEMU_SC_MEDIA(NVME_SC_READ_ERROR));
		assert_failed(tu_rw(env, nvme_cmd_compare, 6, 0, 8, buf, 4096),
			      NVEMU_SC_MEDIA(NVME_SC_READ_ERROR));
		assert_failed(io(env, nvme_cmd_verify, 6, 0, 0, 7, NULL, 0),
			      NVEMU_SC_MEDIA(NVME_SC_READ_ERROR));
		assert_failed(io(env, nvme_cmd_copy, 6, 100, 0, 0, &cr, sizeof(cr)),
			      NVEMU_SC_MEDIA(NVME_SC_READ_ERROR));
		t->fail[NVEMU_BIO_READ] = 0;
		t->fail[NVEMU_BIO_WRITE] = -EIO;
		assert_failed(tu_rw(env, nvme_cmd_write, 6, 0, 8, buf, 4096),
			      NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT));
		assert_failed(io(env, nvme_cmd_copy, 6, 100, 0, 0, &cr, sizeof(cr)),
			      NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT));
		t->fail[NVEMU_BIO_WRITE] = -ENOSPC;
		assert_failed(tu_rw(env, nvme_cmd_write, 6, 0, 8, buf, 4096),
			      NVEMU_SC_GENERIC(NVME_SC_CAP_EXCEEDED) | NVEMU_DNR);
		t->fail[NVEMU_BIO_WRITE] = 0;
		t->fail[NVEMU_BIO_WRITE_ZEROES] = -EOPNOTSUPP;
		assert_failed(io(env, nvme_cmd_write_zeroes, 6, 0, 0, 0, NULL, 0),
			      NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
		t->fail[NVEMU_BIO_WRITE_ZEROES] = 0;
		t->fail[NVEMU_BIO_DEALLOCATE] = -EIO;
		struct nvme_dsm_range range = {.slba = htole64(0), .nlb = htole32(1)};

		assert_failed(io(env, nvme_cmd_dsm, 6, 0, 1u << 2, 0, &range, sizeof(range)),
			      NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT));
		t->fail[NVEMU_BIO_DEALLOCATE] = 0;
	}
	/* 7 media errors per pass (the ENOSPC and EOPNOTSUPP ones are not). */
	assert_int_equal(env->ctrl->smart.media_errors, media + 14);

	/* A bio the backend refuses to start. */
	t->refuse = -ENOMEM;
	assert_failed(tu_rw(env, nvme_cmd_read, 6, 0, 8, buf, 4096),
		      NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
	assert_failed(io(env, nvme_cmd_flush, 6, 0, 0, 0, NULL, 0),
		      NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
	assert_failed(io(env, nvme_cmd_verify, 6, 0, 0, 0, NULL, 0),
		      NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
	t->refuse = 0;
	detach(env, 6);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
}

/* Asynchronous completions: multi-bio commands step through poll(). */
static void test_async(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(4 << 20);
	struct nvemu_error err = {0};
	size_t len = 128 * 4096;
	uint8_t *w = malloc(len), *r = malloc(len);
	struct nvme_copy_range cr[2] = {
		{.slba = htole64(0), .nlb = htole16(299)}, /* more than one 1 MiB chunk */
		{.slba = htole64(300), .nlb = htole16(1)},
	};
	struct nvme_dsm_range dr[2] = {
		{.slba = htole64(0), .nlb = htole32(1)},
		{.slba = htole64(2), .nlb = htole32(1)},
	};

	t->defer = true;
	attach(env, &t->bdev, 1, 7); /* 4 KiB LBAs */
	fill(w, len, 9);
	assert_success(tu_rw(env, nvme_cmd_write, 7, 0, 128, w, len));
	assert_success(tu_rw(env, nvme_cmd_write, 7, 128, 128, w, len));
	assert_success(tu_rw(env, nvme_cmd_write, 7, 256, 128, w, len));
	t->submitted = 0;
	assert_success(io(env, nvme_cmd_verify, 7, 0, 0, 383, NULL, 0));
	assert_int_equal(t->submitted, 2); /* 1.5 MiB in 1 MiB chunks */
	t->submitted = 0;
	assert_success(io(env, nvme_cmd_copy, 7, 600, 0, 1, cr, sizeof(cr)));
	assert_int_equal(t->submitted, 6); /* 2 chunks + 1 chunk, each read then written */
	assert_success(tu_rw(env, nvme_cmd_read, 7, 600, 128, r, len));
	assert_memory_equal(r, w, len);
	assert_success(tu_rw(env, nvme_cmd_read, 7, 728, 128, r, len));
	assert_memory_equal(r, w, len);
	assert_success(tu_rw(env, nvme_cmd_read, 7, 856, 46, r, 46 * 4096));
	assert_memory_equal(r, w, 44 * 4096);
	assert_memory_equal(r + 44 * 4096, w + 44 * 4096, 2 * 4096);
	assert_success(io(env, nvme_cmd_dsm, 7, 1, 1u << 2, 0, dr, sizeof(dr)));
	assert_success(tu_rw(env, nvme_cmd_read, 7, 0, 4, r, 4 * 4096));
	assert_true(all_zero(r, 4096));
	assert_memory_equal(r + 4096, w + 4096, 4096);
	assert_true(all_zero(r + 2 * 4096, 4096));
	detach(env, 7);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
	free(w);
	free(r);
}

/* ---- namespaces, controllers and subsystems removed while commands run */

struct async_cmd {
	struct nvemu_req req;
	unsigned done;
};

static void async_done(struct nvemu_req *req)
{
	((struct async_cmd *)req->transport_priv)->done++;
}

static void submit_async(struct nvemu_host *h, uint16_t sqid, struct async_cmd *a,
			 const struct nvemu_sqe *cmd, void *buf, uint32_t len)
{
	memset(a, 0, sizeof(*a));
	a->req.cmd = *cmd;
	a->req.buf = buf;
	a->req.buf_len = len;
	a->req.done = async_done;
	a->req.transport_priv = a;
	nvemu_host_submit(h, sqid, &a->req);
}

static void set_idle(void *arg)
{
	*(unsigned *)arg = 1;
}

/* Complete every deferred bio of t, including the ones completions submit. */
static void tb_drain(struct test_bdev *t)
{
	for (int i = 0; i < 100 && t->nr; i++)
		nvemu_bdev_poll(&t->bdev);
	assert_int_equal(t->nr, 0);
}

static uint16_t ns_mgmt_delete(struct tu_env *env, uint32_t nsid)
{
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_mgmt, .nsid = nsid, .cdw10 = 1};

	return tu_admin(env, &cmd, NULL, 0, NULL);
}

/*
 * Namespace Management deletes every namespace (NSID FFFFFFFFh) while a
 * Copy, a DSM, a Flush of all namespaces, a Write Zeroes and a Write run on
 * one of them: they finish on the namespace they started on, new commands
 * see Invalid Namespace, and the bdev is released with the last of them.
 */
static void test_ns_delete_all_under_io(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20);
	struct nvemu_error err = {0};
	struct nvme_copy_range cr = {.slba = htole64(0), .nlb = htole16(3)};
	struct nvme_dsm_range dr[2] = {
		{.slba = htole64(8), .nlb = htole32(1)},
		{.slba = htole64(10), .nlb = htole32(1)},
	};
	static struct async_cmd a[5];
	uint8_t w[512] = {0x5a}, r[512];
	struct nvemu_sqe cmd;
	unsigned users;
	int busy;

	attach(env, &t->bdev, 0, 6);
	t->defer = true;
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_copy, .nsid = 6, .cdw10 = 100};
	submit_async(env->host, 1, &a[0], &cmd, &cr, sizeof(cr));
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_dsm, .nsid = 6, .cdw10 = 1, .cdw11 = 1u << 2};
	submit_async(env->host, 1, &a[1], &cmd, dr, sizeof(dr));
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_flush, .nsid = NVEMU_NSID_ALL};
	submit_async(env->host, 1, &a[2], &cmd, NULL, 0);
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_write_zeroes, .nsid = 6, .cdw10 = 20};
	submit_async(env->host, 1, &a[3], &cmd, NULL, 0);
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .nsid = 6, .cdw10 = 30};
	submit_async(env->host, 1, &a[4], &cmd, w, sizeof(w));
	for (int i = 0; i < 5; i++)
		assert_int_equal(a[i].done, 0);

	assert_success(ns_mgmt_delete(env, NVEMU_NSID_ALL));
	assert_null(nvemu_subsys_ns(env->subsys, 6));
	assert_null(nvemu_subsys_ns(env->subsys, 1));
	/* Still used by the commands in flight (checked after they ran, so ASan sees them run). */
	users = t->bdev.users;
	busy = nvemu_bdev_destroy(&t->bdev, &err);

	tb_drain(t);
	assert_int_equal(users, 1);
	assert_int_equal(busy, -EBUSY);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(a[i].done, 1);
		assert_int_equal(a[i].req.cqe.status, 0);
	}
	assert_int_equal(t->bdev.users, 0);
	assert_true(LIST_EMPTY(&env->subsys->dead_ns));
	/* New commands to the deleted namespace. */
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_read, .nsid = 6};
	tu_expect_error(env, 1, &cmd, r, sizeof(r), SC_INVALID_NS);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
}

/*
 * Format NVM of a namespace that the control plane detaches and deletes
 * while the erase runs, and a second controller's Write to a namespace the
 * first controller deletes with Namespace Management.
 */
static void test_ns_delete_under_format_and_other_ctrl(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20), *t2 = tb_create(1 << 20);
	struct nvemu_error err = {0};
	struct nvemu_ctrl_params cp;
	struct nvemu_host *h2;
	struct nvemu_ctrl *c2;
	static struct async_cmd fmt, wr;
	uint8_t w[512] = {0x33};
	struct nvemu_sqe cmd;
	uint16_t cntlid;
	unsigned users;

	attach(env, &t->bdev, 0, 6);
	attach(env, &t2->bdev, 0, 7);
	t->defer = t2->defer = true;
	/* Format with a User Data Erase: the deallocate is deferred. */
	cmd = (struct nvemu_sqe){.opc = nvme_admin_format_nvm, .nsid = 6, .cdw10 = 1u << 9};
	submit_async(env->host, 0, &fmt, &cmd, NULL, 0);
	assert_int_equal(fmt.done, 0);
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 6, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, 6, &err), 0);
	users = t->bdev.users;
	tb_drain(t);
	assert_int_equal(users, 1);
	assert_int_equal(fmt.done, 1);
	assert_int_equal(fmt.req.cqe.status, 0);
	assert_int_equal(t->bdev.users, 0);

	/* Namespace 7 is shared with controller 2, which has a Write in flight. */
	nvemu_ctrl_params_init(&cp);
	cp.port_id = env->ctrl->p.port_id;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(env->subsys, &cp, &cntlid, &err), 0);
	c2 = nvemu_subsys_ctrl(env->subsys, cntlid);
	assert_int_equal(nvemu_ctrl_attach_ns(c2, 7, &err), 0);
	assert_int_equal(nvemu_host_create(c2, &h2, &err), 0);
	assert_int_equal(nvemu_host_enable(h2), 0);
	cmd = (struct nvemu_sqe){.opc = nvme_admin_create_cq, .dptr1 = 0x10000};
	cmd.cdw10 = 1 | 15u << 16;
	cmd.cdw11 = 1;
	assert_success(nvemu_host_exec(h2, 0, &cmd, NULL, 0, NULL));
	cmd = (struct nvemu_sqe){.opc = nvme_admin_create_sq, .dptr1 = 0x20000};
	cmd.cdw10 = 1 | 15u << 16;
	cmd.cdw11 = 1 | 1u << 16;
	assert_success(nvemu_host_exec(h2, 0, &cmd, NULL, 0, NULL));
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .nsid = 7, .cdw10 = 3};
	submit_async(h2, 1, &wr, &cmd, w, sizeof(w));
	assert_int_equal(wr.done, 0);
	assert_success(ns_mgmt_delete(env, 7));
	assert_false(nvemu_ctrl_ns_attached(c2, 7));
	users = t2->bdev.users;
	tb_drain(t2);
	assert_int_equal(users, 1);
	assert_int_equal(wr.done, 1);
	assert_int_equal(wr.req.cqe.status, 0);
	assert_int_equal(t2->bdev.users, 0);

	nvemu_host_destroy(h2);
	assert_int_equal(nvemu_subsys_remove_ctrl(env->subsys, cntlid, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(&t2->bdev, &err), 0);
}

/* Namespace Attachment detaches a namespace while a Copy runs on it. */
static void test_detach_under_io(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20);
	struct nvme_ctrl_list *list = calloc(1, sizeof(*list));
	struct nvme_copy_range cr = {.slba = htole64(0), .nlb = htole16(1)};
	struct nvemu_error err = {0};
	static struct async_cmd cp;
	uint8_t r[512];
	struct nvemu_sqe cmd;

	assert_non_null(list);
	attach(env, &t->bdev, 0, 6);
	t->defer = true;
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_copy, .nsid = 6, .cdw10 = 50};
	submit_async(env->host, 1, &cp, &cmd, &cr, sizeof(cr));
	list->num = htole16(1);
	list->identifier[0] = htole16(env->ctrl->cntlid);
	cmd = (struct nvemu_sqe){.opc = nvme_admin_ns_attach, .nsid = 6, .cdw10 = 1};
	assert_success(tu_admin(env, &cmd, list, sizeof(*list), NULL));
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_read, .nsid = 6};
	tu_expect_error(env, 1, &cmd, r, sizeof(r), SC_INVALID_NS);
	tb_drain(t);
	assert_int_equal(cp.done, 1);
	assert_int_equal(cp.req.cqe.status, 0);
	assert_int_equal(nvemu_subsys_ns(env->subsys, 6)->refs, 1);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, 6, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
	free(list);
}

/*
 * A shutdown's flushes count as work in flight: the controller can't be
 * removed under them, and the namespace they flush survives its deletion.
 */
static void test_shutdown_flush_holds_ctrl(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20);
	struct nvemu_error err = {0};
	unsigned idle = 0, early_idle, inflight, users;
	int removed;

	attach(env, &t->bdev, 0, 6);
	t->defer = true;
	nvemu_ctrl_set_cc(env->ctrl,
			  env->ctrl->cc | (uint32_t)NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT);
	assert_int_equal(NVME_CSTS_SHST(nvemu_ctrl_get_csts(env->ctrl)), NVME_CSTS_SHST_OCCUR);
	inflight = nvemu_ctrl_inflight(env->ctrl);
	nvemu_ctrl_when_idle(env->ctrl, set_idle, &idle);
	early_idle = idle;
	/* Refused: freeing the controller here would leave the flush to write into it. */
	removed = nvemu_subsys_remove_ctrl(env->subsys, env->ctrl->cntlid, &err);
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 6, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, 6, &err), 0);
	users = t->bdev.users;
	tb_drain(t);
	assert_int_equal(inflight, 1);
	assert_int_equal(early_idle, 0);
	assert_int_equal(removed, -EBUSY);
	assert_int_equal(users, 1);
	assert_int_equal(NVME_CSTS_SHST(nvemu_ctrl_get_csts(env->ctrl)), NVME_CSTS_SHST_CMPLT);
	assert_int_equal(idle, 1);
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 0);
	assert_int_equal(t->bdev.users, 0);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
}

/*
 * nvemu_subsys_destroy() with a Write in flight: the controller and the
 * namespace stay until the Write completes into its transport, then go
 * (LeakSanitizer checks that they do).
 */
static void test_subsys_destroy_under_io(void **state)
{
	struct tu_env *env = *state;
	struct test_bdev *t = tb_create(1 << 20);
	struct nvemu_error err = {0};
	static struct async_cmd wr, aer;
	uint8_t w[512] = {0x77};
	struct nvemu_sqe cmd;
	unsigned users, early_done;

	attach(env, &t->bdev, 0, 6);
	t->defer = true;
	cmd = (struct nvemu_sqe){.opc = nvme_admin_async_event};
	submit_async(env->host, 0, &aer, &cmd, NULL, 0);
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .nsid = 6, .cdw10 = 9};
	submit_async(env->host, 1, &wr, &cmd, w, sizeof(w));
	assert_int_equal(wr.done + aer.done, 0);

	nvemu_subsys_destroy(env->subsys);
	env->subsys = NULL;
	users = t->bdev.users;
	early_done = wr.done;
	tb_drain(t);
	/* The AER went back aborted; the Write ran to its end. */
	assert_int_equal(aer.done, 1);
	assert_int_equal(aer.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	assert_int_equal(early_done, 0);
	assert_int_equal(users, 1);
	assert_int_equal(wr.done, 1);
	assert_int_equal(wr.req.cqe.status, 0);
	assert_int_equal(t->bdev.users, 0);
	assert_int_equal(nvemu_bdev_destroy(&t->bdev, &err), 0);
	/* The host's controller is gone with the subsystem: free the host alone. */
	free(env->host);
	env->host = NULL;
}

/* Namespace Management backing store: a file bdev per namespace. */
static int file_ns_alloc(struct nvemu_subsys *subsys, uint64_t bytes, uint32_t lba_size,
			 struct nvemu_bdev **out, void *arg)
{
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_error err = {0};

	(void)subsys;
	(void)lba_size;
	o.path = arg;
	o.size = bytes;
	return nvemu_bdev_file_create("ns-file", &o, out, &err);
}

/*
 * A namespace with its own file bdev, deleted while a Write is in the
 * io_uring: the Write completes from the subsystem's poll, and the bdev is
 * destroyed by that completion, inside the backend's own poll.
 */
static void test_owned_file_bdev_freed_by_completion(void **state)
{
	struct tu_env *env = *state;
	struct nvme_id_ns *id = calloc(1, sizeof(*id));
	char *path = tmp_file();
	static struct async_cmd wr;
	static uint8_t w[4096];
	struct nvemu_sqe cmd = {.opc = nvme_admin_ns_mgmt};
	struct nvemu_cqe cqe;
	struct nvemu_error err = {0};
	struct nvemu_bdev *bdev;
	uint32_t nsid;

	assert_non_null(id);
	env->subsys->ns_bdev_alloc = file_ns_alloc;
	env->subsys->ns_bdev_arg = path;
	id->nsze = id->ncap = htole64(64);
	assert_success(tu_admin(env, &cmd, id, sizeof(*id), &cqe));
	nsid = cqe.dw0;
	assert_true(nvemu_subsys_ns(env->subsys, nsid)->owns_bdev);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, nsid, &err), 0);
	fill(w, sizeof(w), 3);
	cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .nsid = nsid, .cdw12 = 7};
	submit_async(env->host, 1, &wr, &cmd, w, sizeof(w));
	bdev = nvemu_subsys_ns(env->subsys, nsid)->bdev;
	assert_success(ns_mgmt_delete(env, nsid));
	assert_null(nvemu_subsys_ns(env->subsys, nsid));
	/* Reaped by the bdev's own poll, as an event loop watching its fd does. */
	for (int i = 0; i < 2000 && !wr.done; i++) {
		struct pollfd pfd = {.fd = nvemu_bdev_get_fd(bdev), .events = POLLIN};

		poll(&pfd, 1, 10);
		nvemu_bdev_poll(bdev); /* the last round frees it, on its way out */
	}
	assert_int_equal(wr.done, 1);
	assert_int_equal(wr.req.cqe.status, 0);
	assert_true(LIST_EMPTY(&env->subsys->dead_ns));
	unlink(path);
	free(path);
	free(id);
}

/* ---- Volatile Write Cache: with WCE=0 every write is durable before completion */

/* A file bdev behind a spy that records whether each write asked for durability. */
struct spy_bdev {
	struct nvemu_bdev bdev;
	struct nvemu_bdev *file;
	unsigned writes, durable, flushes;
};

struct spy_io {
	struct nvemu_bio sub, *orig;
};

static void spy_end_io(struct nvemu_bio *bio, int err)
{
	struct spy_io *io = (struct spy_io *)bio;
	struct nvemu_bio *orig = io->orig;

	free(io);
	orig->end_io(orig, err);
}

static int spy_submit(struct nvemu_bdev *bdev, struct nvemu_bio *bio)
{
	struct spy_bdev *s = (struct spy_bdev *)bdev;
	struct spy_io *io = calloc(1, sizeof(*io));
	int rc;

	assert_non_null(io);
	if (bio->op == NVEMU_BIO_FLUSH) {
		s->flushes++;
	} else if (bio->op != NVEMU_BIO_READ) {
		s->writes++;
		s->durable += bio->fua;
	}
	io->sub = *bio;
	io->sub.end_io = spy_end_io;
	io->orig = bio;
	rc = nvemu_bdev_submit(s->file, &io->sub);
	if (rc)
		free(io);
	return rc;
}

static int spy_poll(struct nvemu_bdev *bdev)
{
	return nvemu_bdev_poll(((struct spy_bdev *)bdev)->file);
}

static int spy_get_fd(struct nvemu_bdev *bdev)
{
	return nvemu_bdev_get_fd(((struct spy_bdev *)bdev)->file);
}

static unsigned spy_inflight(struct nvemu_bdev *bdev)
{
	return nvemu_bdev_inflight(((struct spy_bdev *)bdev)->file);
}

static void spy_destroy(struct nvemu_bdev *bdev)
{
	struct spy_bdev *s = (struct spy_bdev *)bdev;

	nvemu_bdev_destroy(s->file, NULL);
	free(s);
}

static const struct nvemu_bdev_ops spy_ops = {
	.type = "spy",
	.submit = spy_submit,
	.poll = spy_poll,
	.get_fd = spy_get_fd,
	.inflight = spy_inflight,
	.destroy = spy_destroy,
};

static void test_volatile_wc_off(void **state)
{
	struct tu_env *env = *state;
	struct spy_bdev *spy = calloc(1, sizeof(*spy));
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_error err = {0};
	struct nvme_id_ctrl *id = calloc(1, sizeof(*id));
	struct nvme_dsm_range range = {.slba = htole64(40), .nlb = htole32(2)};
	struct nvme_copy_range cr = {.slba = htole64(0), .nlb = htole16(1)};
	uint8_t w[1024], r[1024];
	char *path = tmp_file();
	uint32_t dw0 = 9;

	assert_non_null(spy);
	assert_non_null(id);
	o.path = path;
	o.size = 1 << 20;
	assert_int_equal(nvemu_bdev_file_create("vwc-file", &o, &spy->file, &err), 0);
	assert_int_equal(nvemu_bdev_init(&spy->bdev, &spy_ops, "vwc-spy", 1 << 20, 512, &err), 0);
	attach(env, &spy->bdev, 0, 3);
	fill(w, sizeof(w), 4);

	/* Cache on (the default): only FUA writes ask for durability. */
	assert_success(tu_rw(env, nvme_cmd_write, 3, 0, 2, w, sizeof(w)));
	assert_int_equal(spy->writes, 1);
	assert_int_equal(spy->durable, 0);

	/* Turning it off flushes what the cache holds, before the command completes. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_VOLATILE_WC, false, 0, NULL));
	assert_int_equal(spy->flushes, 1);
	assert_int_equal(nvemu_bdev_inflight(&spy->bdev), 0);
	/* Already off: nothing to flush. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_VOLATILE_WC, false, 0, NULL));
	assert_int_equal(spy->flushes, 1);
	assert_success(tu_get_feature(env, NVME_FEAT_FID_VOLATILE_WC, 0, 0, &dw0));
	assert_int_equal(dw0, 0);
	/* The controller still has a cache the host may turn back on. */
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	assert_true(id->vwc & NVME_CTRL_VWC_PRESENT);

	spy->writes = spy->durable = 0;
	assert_success(tu_rw(env, nvme_cmd_write, 3, 2, 2, w, sizeof(w)));
	assert_success(io(env, nvme_cmd_write_zeroes, 3, 10, 0, 1, NULL, 0));
	assert_success(io(env, nvme_cmd_dsm, 3, 0, 1u << 2, 0, &range, sizeof(range)));
	assert_success(io(env, nvme_cmd_copy, 3, 100, 0, 0, &cr, sizeof(cr)));
	assert_int_equal(spy->writes, 4);
	assert_int_equal(spy->durable, 4);
	assert_success(tu_rw(env, nvme_cmd_read, 3, 2, 2, r, sizeof(r)));
	assert_memory_equal(r, w, sizeof(r));
	assert_success(tu_rw(env, nvme_cmd_read, 3, 100, 2, r, sizeof(r)));
	assert_memory_equal(r, w, sizeof(r));

	/* Back on: plain writes may sit in the cache again. */
	assert_success(tu_set_feature(env, NVME_FEAT_FID_VOLATILE_WC, false, 1, NULL));
	spy->writes = spy->durable = 0;
	assert_success(tu_rw(env, nvme_cmd_write, 3, 4, 2, w, sizeof(w)));
	assert_success(io(env, nvme_cmd_write, 3, 6, 0, 1u << 30 | 1, w, sizeof(w)));
	assert_int_equal(spy->writes, 2);
	assert_int_equal(spy->durable, 1);

	detach(env, 3);
	assert_int_equal(nvemu_bdev_destroy(&spy->bdev, &err), 0);
	unlink(path);
	free(path);
	free(id);
}

static void test_expected_len(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_sqe cmd = {.opc = nvme_cmd_read, .nsid = 1, .cdw12 = 7};

	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), 4096);
	cmd.opc = nvme_cmd_compare;
	cmd.cdw12 = 0xffff | 1u << 30;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), 65536 * 512);
	cmd.nsid = 2;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), -1);
	cmd.nsid = 0;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), -1);
	cmd.opc = nvme_cmd_dsm;
	cmd.cdw10 = 2;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), 48);
	cmd.opc = nvme_cmd_copy;
	cmd.cdw12 = 1;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), 64);
	cmd.opc = nvme_cmd_flush;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), 0);
	cmd.opc = nvme_cmd_write_zeroes;
	assert_int_equal(nvemu_io_expected_len(env->ctrl, &cmd), 0);
}

static void test_errno_map(void **state)
{
	(void)state;
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_READ, 0), 0);
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_READ, -EIO),
			 NVEMU_SC_MEDIA(NVME_SC_READ_ERROR));
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_WRITE, -EIO),
			 NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT));
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_FLUSH, -EIO),
			 NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT));
	assert_status(nvemu_bio_errno_to_status(NVEMU_BIO_WRITE, -ENOSPC),
		      NVEMU_SC_GENERIC(NVME_SC_CAP_EXCEEDED));
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_READ, -ERANGE), SC_LBA_RANGE);
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_WRITE, -EROFS), SC_WP);
	assert_int_equal(nvemu_bio_errno_to_status(NVEMU_BIO_READ, -EINVAL),
			 NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rw_ram, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_rw_cqe, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_rw_file, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_rw_file_direct, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_flush, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_compare, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_dsm, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_verify, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_copy, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_copy_errors, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_invalid, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_read_only, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_backend_errors, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_async, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_ns_delete_all_under_io, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_ns_delete_under_format_and_other_ctrl,
						tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_detach_under_io, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_flush_holds_ctrl, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_subsys_destroy_under_io, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_owned_file_bdev_freed_by_completion, tu_setup,
						tu_teardown),
		cmocka_unit_test_setup_teardown(test_volatile_wc_off, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_expected_len, tu_setup, tu_teardown),
		cmocka_unit_test(test_errno_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
