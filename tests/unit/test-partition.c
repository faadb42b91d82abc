/* SPDX-License-Identifier: MIT */
/*
 * Device strings of exports: SN:n<NSID>, NQN:n<NSID>, and GPT partitions by
 * unique GUID, on tables written here by hand (512 B and 4 KiB blocks, a
 * damaged primary header) and by sfdisk on a file bdev.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/partition.h>

#include "test-util.h"

#define SN	 "NVEMU-TEST-0001"
#define NQN	 "nqn.2024-01.io.nvemu:test"
#define P1	 "5c6a1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
#define P2	 "8e2d4c6b-1a3f-4b5d-9c7e-6f8a0b1c2d3e"
#define LINUX_FS "0fc63daf-8483-4772-8e79-3d69d8477de4"

static uint32_t crc32_le(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = 0xffffffff;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320 & -(c & 1));
	}
	return ~c;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A GUID as GPT stores it: the first three fields little endian. */
static void put_guid(uint8_t *p, const char *s)
{
	uuid_t u;

	assert_int_equal(uuid_parse(s, u), 0);
	memcpy(p, u, 16);
	for (int i = 0; i < 2; i++) {
		uint8_t t = p[i];
		p[i] = p[3 - i];
		p[3 - i] = t;
	}
	for (int i = 4; i < 8; i += 2) {
		uint8_t t = p[i];
		p[i] = p[i + 1];
		p[i + 1] = t;
	}
}

static void write_done(struct nvemu_bio *bio, int err)
{
	assert_int_equal(err, 0);
	*(int *)bio->private = 1;
}

/* The test namespaces are RAM bdevs: writes complete inline. */
static void bdev_write(struct nvemu_bdev *b, uint64_t off, void *buf, uint64_t len)
{
	int done = 0;
	struct nvemu_bio bio = {.op = NVEMU_BIO_WRITE,
				.offset = off,
				.len = len,
				.buf = buf,
				.end_io = write_done,
				.private = &done};

	assert_int_equal(nvemu_bdev_submit(b, &bio), 0);
	assert_int_equal(done, 1);
}

/* Two partitions P1 [first, first+n1) and P2 after it; blocks of bs bytes. */
struct gpt_layout {
	uint32_t bs;
	uint64_t nblocks, first, n1, n2;
};

static void write_header(struct nvemu_bdev *b, const struct gpt_layout *g, uint64_t my,
			 uint64_t alt, uint64_t entries_lba, uint32_t entries_crc)
{
	uint8_t *h = calloc(1, g->bs);

	memcpy(h, "EFI PART", 8);
	put_le(h + 8, 0x00010000, 4);
	put_le(h + 12, 92, 4);
	put_le(h + 24, my, 8);
	put_le(h + 32, alt, 8);
	put_le(h + 40, g->first, 8);
	put_le(h + 48, g->nblocks - 34, 8);
	put_guid(h + 56, "11111111-2222-4333-8444-555555555555");
	put_le(h + 72, entries_lba, 8);
	put_le(h + 80, 128, 4);
	put_le(h + 84, 128, 4);
	put_le(h + 88, entries_crc, 4);
	put_le(h + 16, crc32_le(h, 92), 4);
	bdev_write(b, my * g->bs, h, g->bs);
	free(h);
}

static void write_gpt(struct nvemu_bdev *b, const struct gpt_layout *g)
{
	size_t elen = 128 * 128;
	uint8_t *e = calloc(1, elen), *mbr = calloc(1, g->bs);
	uint64_t last = g->nblocks - 1, elba_backup = last - elen / g->bs;
	uint32_t ecrc;

	put_guid(e, LINUX_FS);
	put_guid(e + 16, P1);
	put_le(e + 32, g->first, 8);
	put_le(e + 40, g->first + g->n1 - 1, 8);
	put_guid(e + 128, LINUX_FS);
	put_guid(e + 128 + 16, P2);
	put_le(e + 128 + 32, g->first + g->n1, 8);
	put_le(e + 128 + 40, g->first + g->n1 + g->n2 - 1, 8);
	ecrc = crc32_le(e, elen);
	/* Protective MBR: one partition of type EE over the disk. */
	mbr[446 + 4] = 0xee;
	put_le(mbr + 446 + 8, 1, 4);
	put_le(mbr + 446 + 12, last, 4);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	bdev_write(b, 0, mbr, g->bs);
	bdev_write(b, 2 * g->bs, e, elen);
	bdev_write(b, elba_backup * g->bs, e, elen);
	write_header(b, g, 1, last, 2, ecrc);
	write_header(b, g, last, 1, elba_backup, ecrc);
	free(e);
	free(mbr);
}

static struct nvemu_bdev *ns_bdev(struct tu_env *env, uint32_t nsid)
{
	struct nvemu_ns_info ni;

	nvemu_ns_info(nvemu_subsys_ns(env->subsys, nsid), &ni);
	return ni.bdev;
}

static void test_names(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_ns_range r;
	struct nvemu_error err;

	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, SN ":n2", &r, &err), 0);
	assert_ptr_equal(r.subsys, env->subsys);
	assert_int_equal(r.nsid, 2);
	assert_int_equal(r.first_lba, 0);
	assert_int_equal(r.nr_lbas, 2048);
	assert_int_equal(r.lba_size, 512);
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, NQN ":n1", &r, &err), 0);
	assert_int_equal(r.nsid, 1);
	assert_int_equal(r.nr_lbas, 1024);

	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, SN ":n3", &r, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no namespace 3"));
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, "OTHER:n1", &r, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "OTHER"));
	const char *bad[] = {"",	SN,    SN ":n0",	  SN ":n", SN ":1",
			     SN ":n1x", ":n1", SN ":n4294967295", "n1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, bad[i], &r, &err),
				 -EINVAL);
		assert_non_null(strstr(err.msg, "device"));
	}
	/* A UUID nothing carries (the namespaces hold no table yet). */
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, P1, &r, &err), -ENOENT);
	assert_int_equal(nvemu_ns_range_resolve(NULL, 0, SN ":n1", &r, &err), -ENOENT);
}

static void test_gpt_512(void **state)
{
	struct tu_env *env = *state;
	struct gpt_layout g = {.bs = 512, .nblocks = 2048, .first = 34, .n1 = 1000, .n2 = 900};
	struct nvemu_ns_range r;
	struct nvemu_error err;
	char upper[] = P2;

	write_gpt(ns_bdev(env, 2), &g);
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, P1, &r, &err), 0);
	assert_int_equal(r.nsid, 2);
	assert_int_equal(r.first_lba, 34);
	assert_int_equal(r.nr_lbas, 1000);
	for (char *c = upper; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, upper, &r, &err), 0);
	assert_int_equal(r.first_lba, 1034);
	assert_int_equal(r.nr_lbas, 900);
	assert_int_equal(nvemu_ns_find_partition(env->subsys, 1, P1, &r, &err), -ENOENT);
	assert_int_equal(nvemu_ns_find_partition(env->subsys, 2, "nope", &r, &err), -EINVAL);

	/* The primary header damaged: libblkid takes the backup at the end. */
	uint8_t zero[512] = {0};
	bdev_write(ns_bdev(env, 2), 512, zero, 512);
	assert_int_equal(nvemu_ns_find_partition(env->subsys, 2, P1, &r, &err), 0);
	assert_int_equal(r.first_lba, 34);
	assert_int_equal(r.nr_lbas, 1000);

	/* The same table in a second namespace: the name is ambiguous. */
	g.nblocks = 1024;
	g.n1 = 500;
	g.n2 = 400;
	write_gpt(ns_bdev(env, 1), &g);
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, P1, &r, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "more than one namespace"));
}

static void test_gpt_4k(void **state)
{
	struct tu_env *env = *state;
	struct gpt_layout g = {.bs = 4096, .nblocks = 512, .first = 6, .n1 = 100, .n2 = 200};
	struct nvemu_ns_params p;
	struct nvemu_ns_range r;
	struct nvemu_error err;
	uint32_t nsid;

	nvemu_ns_params_init(&p);
	p.nblocks = g.nblocks;
	p.lbaf = 1;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, &nsid, &err), 0);
	write_gpt(ns_bdev(env, nsid), &g);
	assert_int_equal(nvemu_ns_range_resolve(&env->subsys, 1, P2, &r, &err), 0);
	assert_int_equal(r.nsid, nsid);
	assert_int_equal(r.lba_size, 4096);
	assert_int_equal(r.first_lba, 106);
	assert_int_equal(r.nr_lbas, 200);
}

/* sfdisk's table on a file, served by a file bdev (reads through io_uring). */
static void test_sfdisk_file(void **state)
{
	struct tu_env *env = *state;
	char dir[] = "/tmp/nvemu-part.XXXXXX", path[64], cmd[512];
	struct nvemu_bdev_file_opts o = {.blk_size = 512};
	struct nvemu_ns_params p;
	struct nvemu_ns_range r;
	struct nvemu_error err;
	struct nvemu_bdev *b;
	uint32_t nsid;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/disk", dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 << 20), 0);
	close(fd);
	/* A missing sfdisk fails the test (tools/install-deps.sh installs fdisk). */
	snprintf(cmd, sizeof(cmd),
		 "printf 'label: gpt\\nstart=2048, size=4096, uuid=%s\\n"
		 "start=6144, size=8192, uuid=%s\\n' | "
		 "PATH=$PATH:/sbin:/usr/sbin sfdisk -q %s >/dev/null",
		 P1, P2, path);
	assert_int_equal(system(cmd), 0);
	o.path = path;
	assert_int_equal(nvemu_bdev_file_create("sf", &o, &b, &err), 0);
	nvemu_ns_params_init(&p);
	p.bdev = b;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, &nsid, &err), 0);
	assert_int_equal(nvemu_ns_find_partition(env->subsys, nsid, P2, &r, &err), 0);
	assert_int_equal(r.first_lba, 6144);
	assert_int_equal(r.nr_lbas, 8192);
	assert_int_equal(nvemu_ns_find_partition(env->subsys, nsid, P1, &r, &err), 0);
	assert_int_equal(r.first_lba, 2048);
	assert_int_equal(r.nr_lbas, 4096);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, nsid, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(b, &err), 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_gpt_512, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_gpt_4k, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_sfdisk_file, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
