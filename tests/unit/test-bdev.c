/* SPDX-License-Identifier: MIT */
/* The bdev backends, driven directly (no controller). */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-util.h"

#define KIB   1024ull
#define MIB   (1024 * KIB)
#define GIB   (1024 * MIB)
#define CHUNK (64 * KIB)

struct bio_done {
	int called;
	int err;
};

static void bio_end(struct nvemu_bio *bio, int err)
{
	struct bio_done *d = bio->private;

	d->called++;
	d->err = err;
}

/* Wait until every bio of b has completed (at most ~10 s). */
static void drain(struct nvemu_bdev *b)
{
	for (int i = 0; i < 1000 && nvemu_bdev_inflight(b); i++) {
		int fd = nvemu_bdev_get_fd(b);

		if (fd >= 0) {
			struct pollfd p = {.fd = fd, .events = POLLIN};

			poll(&p, 1, 10);
		}
		nvemu_bdev_poll(b);
	}
	assert_int_equal(nvemu_bdev_inflight(b), 0);
}

/* Run one bio to completion; returns submit's error or end_io's. */
static int run(struct nvemu_bdev *b, enum nvemu_bio_op op, uint64_t off, uint64_t len, void *buf,
	       bool fua)
{
	struct bio_done d = {0};
	struct nvemu_bio bio = {
		.op = op,
		.offset = off,
		.len = len,
		.buf = buf,
		.fua = fua,
		.end_io = bio_end,
		.private = &d,
	};
	int rc = nvemu_bdev_submit(b, &bio);

	if (rc) {
		assert_int_equal(d.called, 0); /* a refused bio never calls end_io */
		return rc;
	}
	drain(b);
	assert_int_equal(d.called, 1);
	return d.err;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 9));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void destroy(struct nvemu_bdev *b)
{
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_bdev_destroy(b, &err), 0);
}

/* ---- null */

static void test_null(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev *b;
	uint8_t buf[4096];

	(void)state;
	assert_int_equal(nvemu_bdev_null_create("null0", 1 * MIB, 512, &b, &err), 0);
	assert_string_equal(b->ops->type, "null");
	assert_int_equal(b->size, 1 * MIB);
	fill(buf, sizeof(buf), 1);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, sizeof(buf), buf, false), 0);
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(run(b, NVEMU_BIO_READ, 0, sizeof(buf), buf, false), 0);
	assert_true(all_zero(buf, sizeof(buf)));
	assert_int_equal(run(b, NVEMU_BIO_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_WRITE_ZEROES, 0, 4096, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, 0, 4096, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, 1 * MIB - 512, 1024, buf, false), -ERANGE);
	assert_int_equal(nvemu_bdev_get_fd(b), -1);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);
	destroy(b);
}

/* ---- ram */

static void test_ram_roundtrip(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev *b;
	size_t len = 3 * CHUNK; /* spans chunk boundaries at an odd offset */
	uint8_t *w = malloc(len), *r = malloc(len);
	uint64_t off = CHUNK - 4096;

	(void)state;
	assert_int_equal(nvemu_bdev_ram_create("ram0", 16 * MIB, 512, &b, &err), 0);
	assert_string_equal(b->ops->type, "ram");
	memset(r, 0xaa, len);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, len, r, false), 0);
	assert_true(all_zero(r, len));

	fill(w, len, 2);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, off, len, w, true), 0);
	assert_int_equal(run(b, NVEMU_BIO_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, len, r, false), 0);
	assert_memory_equal(r, w, len);

	/* Write Zeroes over the middle, partial chunks on both sides. */
	assert_int_equal(run(b, NVEMU_BIO_WRITE_ZEROES, off + 512, len - 1024, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, len, r, false), 0);
	assert_memory_equal(r, w, 512);
	assert_true(all_zero(r + 512, len - 1024));
	assert_memory_equal(r + len - 512, w + len - 512, 512);

	/* Deallocate reads back zeroes too. */
	assert_int_equal(run(b, NVEMU_BIO_WRITE, off, len, w, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, off, 4096, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, len, r, false), 0);
	assert_true(all_zero(r, 4096));
	assert_memory_equal(r + 4096, w + 4096, len - 4096);
	destroy(b);
	free(w);
	free(r);
}

static void test_ram_sparse(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev *b;
	uint8_t w[512], r[512];
	uint64_t off = 512 * MIB + 3 * 512;

	(void)state;
	assert_int_equal(nvemu_bdev_ram_create("big", 1 * GIB, 512, &b, &err), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);
	/* Reading does not allocate. */
	assert_int_equal(run(b, NVEMU_BIO_READ, off, sizeof(r), r, false), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);

	fill(w, sizeof(w), 3);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, off, sizeof(w), w, false), 0);
	assert_true(nvemu_bdev_ram_resident(b) > 0);
	assert_true(nvemu_bdev_ram_resident(b) <= CHUNK);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, sizeof(r), r, false), 0);
	assert_memory_equal(r, w, sizeof(w));

	/* A partial deallocate zeroes but keeps the chunk... */
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, off, 512, NULL, false), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), CHUNK);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, sizeof(r), r, false), 0);
	assert_true(all_zero(r, sizeof(r)));
	/* ...a whole-chunk one frees it. */
	assert_int_equal(run(b, NVEMU_BIO_WRITE, off, sizeof(w), w, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, 512 * MIB, CHUNK, NULL, false), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, off, sizeof(r), r, false), 0);
	assert_true(all_zero(r, sizeof(r)));

	/* Write Zeroes over whole chunks frees them as well. */
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, sizeof(w), w, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 1 * GIB - 512, sizeof(w), w, false), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 2 * CHUNK);
	assert_int_equal(run(b, NVEMU_BIO_WRITE_ZEROES, 0, 1 * GIB, NULL, false), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);
	destroy(b);
}

static void test_ram_thousand(void **state)
{
	enum { N = 1000 };
	struct nvemu_error err = {0};
	struct nvemu_bdev **b = calloc(N, sizeof(*b));
	struct mallinfo2 before, after;
	uint8_t w[4096];

	(void)state;
	fill(w, sizeof(w), 4);
	before = mallinfo2();
	for (int i = 0; i < N; i++) {
		char name[16];

		snprintf(name, sizeof(name), "ram%d", i);
		assert_int_equal(nvemu_bdev_ram_create(name, 1 * GIB, 512, &b[i], &err), 0);
	}
	after = mallinfo2();
	/* Only the top levels exist: 256 bytes per GiB plus the struct. */
	size_t used = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
	print_message("# 1000 x 1 GiB RAM bdevs: %zu KiB of heap\n", used / 1024);
	assert_true(used < 1 * MIB);
	for (int i = 0; i < N; i++)
		assert_int_equal(run(b[i], NVEMU_BIO_WRITE, (uint64_t)i * MIB, sizeof(w), w, false),
				 0);
	after = mallinfo2();
	/* One chunk each plus one 4 KiB leaf table. */
	used = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
	print_message("# ... after one 4 KiB write to each: %zu KiB of heap\n", used / 1024);
	assert_true(used < 1 * MIB + N * (CHUNK + 8 * KIB));
	for (int i = 0; i < N; i++) {
		uint8_t r[4096];

		assert_int_equal(nvemu_bdev_ram_resident(b[i]), CHUNK);
		assert_int_equal(run(b[i], NVEMU_BIO_READ, (uint64_t)i * MIB, sizeof(r), r, false),
				 0);
		assert_memory_equal(r, w, sizeof(w));
		destroy(b[i]);
	}
	free(b);
}

static void test_ram_resize(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev *b;
	uint8_t w[4096], r[4096];

	(void)state;
	assert_int_equal(nvemu_bdev_ram_create("rs", 64 * MIB, 4096, &b, &err), 0);
	fill(w, sizeof(w), 5);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, sizeof(w), w, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 40 * MIB, sizeof(w), w, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 40 * MIB + 8192, sizeof(w), w, false), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 2 * CHUNK);

	/* Shrink into the middle of the second chunk: the part beyond is dropped. */
	assert_int_equal(nvemu_bdev_resize(b, 40 * MIB + 4096), 0);
	assert_int_equal(b->size, 40 * MIB + 4096);
	assert_int_equal(run(b, NVEMU_BIO_READ, 40 * MIB + 4096, 4096, r, false), -ERANGE);
	assert_int_equal(nvemu_bdev_resize(b, 32 * MIB), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), CHUNK);
	assert_int_equal(nvemu_bdev_resize(b, 40 * MIB + 4096), 0);
	assert_int_equal(nvemu_bdev_resize(b, 2 * GIB), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, 40 * MIB, sizeof(r), r, false), 0);
	assert_true(all_zero(r, sizeof(r)));
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 2 * GIB - 4096, sizeof(w), w, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, 2 * GIB - 4096, sizeof(r), r, false), 0);
	assert_memory_equal(r, w, sizeof(w));
	assert_int_equal(run(b, NVEMU_BIO_READ, 0, sizeof(r), r, false), 0);
	assert_memory_equal(r, w, sizeof(w));
	/* Not a multiple of the block size. */
	assert_int_equal(nvemu_bdev_resize(b, 2 * GIB + 512), -EINVAL);
	assert_int_equal(nvemu_bdev_resize(b, 0), 0);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);
	destroy(b);
}

/* ---- generic checks */

static void test_errors(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev *b;
	char longname[80];
	uint8_t buf[4096];

	(void)state;
	assert_int_equal(nvemu_bdev_ram_create("", 1 * MIB, 512, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "name"));
	/* The chunk directory is bounded: a RAM bdev is at most 64 TiB, at creation and resize. */
	assert_int_equal(nvemu_bdev_ram_create("huge", NVEMU_BDEV_RAM_MAX_BYTES + 512, 512, &b, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "at most 64 TiB"));
	assert_int_equal(nvemu_bdev_ram_create("max", NVEMU_BDEV_RAM_MAX_BYTES, 512, &b, &err), 0);
	assert_int_equal(nvemu_bdev_resize(b, NVEMU_BDEV_RAM_MAX_BYTES + 512), -EFBIG);
	destroy(b);
	memset(longname, 'x', 64);
	longname[64] = 0;
	assert_int_equal(nvemu_bdev_ram_create(longname, 1 * MIB, 512, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "1 to 63"));
	longname[63] = 0;
	assert_int_equal(nvemu_bdev_null_create(longname, 1 * MIB, 512, &b, &err), 0);
	destroy(b);
	assert_int_equal(nvemu_bdev_ram_create("bs", 1 * MIB, 1000, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "block size"));
	assert_int_equal(nvemu_bdev_ram_create("sz", 1000, 512, &b, &err), -EINVAL);

	assert_int_equal(nvemu_bdev_ram_create("e", 1 * MIB, 512, &b, &err), 0);
	/* Out of range, overflowing, unaligned, missing buffer: refused before the backend. */
	assert_int_equal(run(b, NVEMU_BIO_READ, 1 * MIB - 512, 1024, buf, false), -ERANGE);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, UINT64_MAX - 511, 1024, buf, false), -ERANGE);
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, 1 * MIB, 512, NULL, false), -ERANGE);
	assert_int_equal(run(b, NVEMU_BIO_READ, 100, 512, buf, false), -EINVAL);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, 512, NULL, false), -EINVAL);
	assert_int_equal(run(b, (enum nvemu_bio_op)42, 0, 512, buf, false), -EINVAL);
	assert_int_equal(nvemu_bdev_ram_resident(b), 0);

	/* Read-only: writes of any kind are refused, reads and flushes work. */
	b->read_only = true;
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, 512, buf, false), -EROFS);
	assert_int_equal(run(b, NVEMU_BIO_WRITE_ZEROES, 0, 512, NULL, false), -EROFS);
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, 0, 512, NULL, false), -EROFS);
	assert_int_equal(run(b, NVEMU_BIO_READ, 0, 512, buf, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_FLUSH, 0, 0, NULL, false), 0);
	b->read_only = false;

	/* Destroy refuses while a namespace uses the bdev. */
	b->users = 1;
	memset(&err, 0, sizeof(err));
	assert_int_equal(nvemu_bdev_destroy(b, &err), -EBUSY);
	assert_int_equal(err.code, -EBUSY);
	assert_non_null(strstr(err.msg, "e: in use by 1 namespace"));
	b->users = 0;
	destroy(b);
}

/* ---- file */

static char *tmp_file(uint64_t size)
{
	char *path = strdup("/var/tmp/nvemu-test-bdev-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	return path;
}

static void file_roundtrip(bool direct)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev *b;
	size_t len = 256 * KIB;
	uint8_t *w = malloc(len + 1), *r = malloc(len + 1);
	char *path = tmp_file(0);
	struct stat st;
	int rc;

	o.path = path;
	o.direct = direct;
	o.size = 8 * MIB; /* grows the empty file */
	o.depth = 8;
	rc = nvemu_bdev_file_create("file0", &o, &b, &err);
	if (direct && rc == -EINVAL) {
		unlink(path);
		free(path);
		free(w);
		free(r);
		print_message("# SKIP: O_DIRECT not supported under /var/tmp: %s\n", err.msg);
		skip();
	}
	assert_int_equal(rc, 0);
	assert_string_equal(b->ops->type, "file");
	assert_int_equal(b->size, 8 * MIB);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 8 * MIB);
	assert_true(nvemu_bdev_get_fd(b) >= 0);

	/* An unaligned buffer (bounced under O_DIRECT), FUA, then read back. */
	fill(w + 1, len, 6);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 1 * MIB, len, w + 1, true), 0);
	assert_int_equal(run(b, NVEMU_BIO_FLUSH, 0, 0, NULL, false), 0);
	memset(r, 0xaa, len + 1);
	assert_int_equal(run(b, NVEMU_BIO_READ, 1 * MIB, len, r + 1, false), 0);
	assert_memory_equal(r + 1, w + 1, len);
	assert_int_equal(r[0], 0xaa);

	/* Write Zeroes, then Deallocate: both read back as zeroes. */
	assert_int_equal(run(b, NVEMU_BIO_WRITE_ZEROES, 1 * MIB + 4096, 8192, NULL, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_DEALLOCATE, 1 * MIB + 64 * KIB, 64 * KIB, NULL, true), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, 1 * MIB, len, r, false), 0);
	assert_memory_equal(r, w + 1, 4096);
	assert_true(all_zero(r + 4096, 8192));
	assert_memory_equal(r + 12288, w + 1 + 12288, 64 * KIB - 12288);
	assert_true(all_zero(r + 64 * KIB, 64 * KIB));
	assert_memory_equal(r + 128 * KIB, w + 1 + 128 * KIB, len - 128 * KIB);

	/* A page-aligned buffer goes to the kernel as it is. */
	void *al = NULL;

	assert_int_equal(posix_memalign(&al, 4096, 8192), 0);
	memcpy(al, w + 1, 8192);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 2 * MIB, 8192, al, false), 0);
	memset(al, 0, 8192);
	assert_int_equal(run(b, NVEMU_BIO_READ, 2 * MIB, 8192, al, false), 0);
	assert_memory_equal(al, w + 1, 8192);
	free(al);

	/* The last block, and one past the end. */
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 8 * MIB - 4096, 4096, w + 1, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_READ, 8 * MIB - 4096, 4096, r, false), 0);
	assert_memory_equal(r, w + 1, 4096);
	assert_int_equal(run(b, NVEMU_BIO_READ, 8 * MIB - 4096, 8192, r, false), -ERANGE);
	destroy(b);

	/* The data is in the file. */
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 4096, 1 * MIB), 4096);
	assert_memory_equal(r, w + 1, 4096);
	close(fd);
	unlink(path);
	free(path);
	free(w);
	free(r);
}

static void test_file_buffered(void **state)
{
	(void)state;
	file_roundtrip(false);
}

static void test_file_direct(void **state)
{
	(void)state;
	file_roundtrip(true);
}

/* More bios than ring entries: the overflow waits in the software queue. */
static void test_file_queue_full(void **state)
{
	enum { N = 64, BS = 4096 };
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev *b;
	struct nvemu_bio bio[N];
	struct bio_done d[N];
	uint8_t *w = malloc(N * BS), *r = malloc(N * BS);
	char *path = tmp_file(N * BS);

	(void)state;
	o.path = path;
	o.depth = 4;
	assert_int_equal(nvemu_bdev_file_create("q", &o, &b, &err), 0);
	assert_int_equal(b->size, N * BS);
	fill(w, N * BS, 7);
	memset(d, 0, sizeof(d));
	for (int i = 0; i < N; i++) {
		bio[i] = (struct nvemu_bio){.op = NVEMU_BIO_WRITE,
					    .offset = (uint64_t)i * BS,
					    .len = BS,
					    .buf = w + i * BS,
					    .end_io = bio_end,
					    .private = &d[i]};
		assert_int_equal(nvemu_bdev_submit(b, &bio[i]), 0);
	}
	assert_int_equal(nvemu_bdev_inflight(b), N);
	/* In flight: destroy refuses. */
	memset(&err, 0, sizeof(err));
	assert_int_equal(nvemu_bdev_destroy(b, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "in flight"));
	drain(b);
	for (int i = 0; i < N; i++) {
		assert_int_equal(d[i].called, 1);
		assert_int_equal(d[i].err, 0);
	}
	memset(d, 0, sizeof(d));
	for (int i = 0; i < N; i++) {
		bio[i] = (struct nvemu_bio){.op = NVEMU_BIO_READ,
					    .offset = (uint64_t)i * BS,
					    .len = BS,
					    .buf = r + i * BS,
					    .end_io = bio_end,
					    .private = &d[i]};
		assert_int_equal(nvemu_bdev_submit(b, &bio[i]), 0);
	}
	drain(b);
	for (int i = 0; i < N; i++)
		assert_int_equal(d[i].called, 1);
	assert_memory_equal(r, w, N * BS);
	destroy(b);
	unlink(path);
	free(path);
	free(w);
	free(r);
}

static struct nvemu_bdev_file_stats file_stats(struct nvemu_bdev *b)
{
	struct nvemu_bdev_file_stats st;

	assert_int_equal(nvemu_bdev_file_get_stats(b, &st), 0);
	return st;
}

/*
 * Batched: bios only queue until flush_submit, which starts them all with
 * one io_uring_enter; unbatched, every bio enters the kernel on its own.
 */
static void test_file_batching(void **state)
{
	enum { N = 16, BS = 4096 };
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev_file_stats st;
	struct nvemu_bdev *b, *rb;
	struct nvemu_bio bio[N];
	struct bio_done d[N];
	uint8_t *w = malloc(N * BS), *r = malloc(N * BS);
	char *path = tmp_file(N * BS);

	(void)state;
	o.path = path;
	o.depth = 32;
	assert_int_equal(nvemu_bdev_file_create("batch", &o, &b, &err), 0);
	st = file_stats(b);
	assert_true(st.fixed_file); /* every supported kernel registers files */
	assert_int_equal(st.submit_calls, 0);
	assert_int_equal(st.dio_mem_align, 0); /* buffered */
	assert_int_equal(nvemu_bdev_set_batching(b, true), 0);
	fill(w, N * BS, 3);
	memset(d, 0, sizeof(d));
	for (int i = 0; i < N; i++) {
		bio[i] = (struct nvemu_bio){.op = NVEMU_BIO_WRITE,
					    .offset = (uint64_t)i * BS,
					    .len = BS,
					    .buf = w + i * BS,
					    .end_io = bio_end,
					    .private = &d[i]};
		assert_int_equal(nvemu_bdev_submit(b, &bio[i]), 0);
	}
	/* Nothing reached the kernel yet. */
	assert_int_equal(file_stats(b).submit_calls, 0);
	assert_int_equal(nvemu_bdev_inflight(b), N);
	assert_int_equal(nvemu_bdev_flush_submit(b), N);
	st = file_stats(b);
	assert_int_equal(st.submit_calls, 1);
	assert_int_equal(st.sqes, N);
	/* Nothing left: a second flush does not enter the kernel. */
	assert_int_equal(nvemu_bdev_flush_submit(b), 0);
	assert_int_equal(file_stats(b).submit_calls, 1);
	drain(b);
	for (int i = 0; i < N; i++) {
		assert_int_equal(d[i].called, 1);
		assert_int_equal(d[i].err, 0);
	}

	/* Polling alone starts what is queued (callers that wait by polling). */
	memset(d, 0, sizeof(d));
	bio[0] = (struct nvemu_bio){.op = NVEMU_BIO_READ, .len = N * BS, .buf = r,
				    .end_io = bio_end, .private = &d[0]};
	assert_int_equal(nvemu_bdev_submit(b, &bio[0]), 0);
	drain(b);
	assert_int_equal(d[0].called, 1);
	assert_int_equal(d[0].err, 0);
	assert_memory_equal(r, w, N * BS);

	/* Unbatched: one system call per bio. */
	assert_int_equal(nvemu_bdev_set_batching(b, false), 0);
	st = file_stats(b);
	memset(d, 0, sizeof(d));
	for (int i = 0; i < 4; i++) {
		bio[i] = (struct nvemu_bio){.op = NVEMU_BIO_READ,
					    .offset = (uint64_t)i * BS,
					    .len = BS,
					    .buf = r + i * BS,
					    .end_io = bio_end,
					    .private = &d[i]};
		assert_int_equal(nvemu_bdev_submit(b, &bio[i]), 0);
	}
	assert_int_equal(file_stats(b).submit_calls, st.submit_calls + 4);
	drain(b);
	destroy(b);

	/* More bios than ring entries: one call starts a ringful, polls the rest. */
	o.depth = 4;
	assert_int_equal(nvemu_bdev_file_create("batch4", &o, &b, &err), 0);
	assert_int_equal(nvemu_bdev_set_batching(b, true), 0);
	memset(d, 0, sizeof(d));
	for (int i = 0; i < N; i++) {
		bio[i] = (struct nvemu_bio){.op = NVEMU_BIO_READ,
					    .offset = (uint64_t)i * BS,
					    .len = BS,
					    .buf = r + i * BS,
					    .end_io = bio_end,
					    .private = &d[i]};
		assert_int_equal(nvemu_bdev_submit(b, &bio[i]), 0);
	}
	assert_int_equal(nvemu_bdev_flush_submit(b), 4);
	drain(b);
	for (int i = 0; i < N; i++)
		assert_int_equal(d[i].called, 1);
	st = file_stats(b);
	assert_int_equal(st.sqes, N);
	assert_true(st.submit_calls < N);
	destroy(b);

	/* Backends that start every bio at once have no batching. */
	assert_int_equal(nvemu_bdev_ram_create("r", MIB, 512, &rb, &err), 0);
	assert_int_equal(nvemu_bdev_set_batching(rb, true), -EOPNOTSUPP);
	assert_int_equal(nvemu_bdev_flush_submit(rb), 0);
	assert_int_equal(nvemu_bdev_file_get_stats(rb, &st), -EINVAL);
	destroy(rb);
	unlink(path);
	free(path);
	free(w);
	free(r);
}

/*
 * O_DIRECT takes a buffer as it is when it meets the file's DIO memory
 * alignment (STATX_DIOALIGN: often 512, not a page), and copies it through a
 * bounce buffer only when it does not.
 */
static void test_file_dio_alignment(void **state)
{
	enum { LEN = 64 * 1024 };
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev_file_stats st;
	struct nvemu_bdev *b;
	uint8_t *mem = NULL, *w = malloc(LEN);
	char *path = tmp_file(4 * MIB);
	uint32_t ma;
	int rc;

	(void)state;
	o.path = path;
	o.direct = true;
	o.blk_size = 4096;
	rc = nvemu_bdev_file_create("dio", &o, &b, &err);
	if (rc == -EINVAL && strstr(err.msg, "O_DIRECT")) {
		unlink(path);
		free(path);
		free(w);
		print_message("# SKIP: O_DIRECT not supported under /var/tmp: %s\n", err.msg);
		skip();
	}
	assert_int_equal(rc, 0);
	st = file_stats(b);
	ma = st.dio_mem_align;
	assert_true(ma >= 1 && ma <= 4096 && !(ma & (ma - 1)));
	assert_true(st.dio_offset_align >= 1 && st.dio_offset_align <= 4096);
	assert_int_equal(posix_memalign((void **)&mem, 8192, LEN + 8192), 0);
	fill(w, LEN, 9);

	/* Page-aligned: as it is. */
	memcpy(mem, w, LEN);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, LEN, mem, false), 0);
	assert_int_equal(file_stats(b).bounces, 0);

	/* Aligned to the reported alignment but not to a page: still as it is. */
	if (ma < 4096) {
		memset(mem, 0, LEN + 8192);
		assert_int_equal(run(b, NVEMU_BIO_READ, 0, LEN, mem + ma, false), 0);
		assert_memory_equal(mem + ma, w, LEN);
		assert_int_equal(file_stats(b).bounces, 0);
	}

	/* Off by one byte: bounced, twice (write and read), data intact. */
	memcpy(mem + 1, w, LEN);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 2 * MIB, LEN, mem + 1, false), 0);
	memset(mem, 0, LEN + 8192);
	assert_int_equal(run(b, NVEMU_BIO_READ, 2 * MIB, LEN, mem + 1, false), 0);
	assert_memory_equal(mem + 1, w, LEN);
	st = file_stats(b);
	assert_true(st.bounces >= 2);
	/* The pooled bounce buffer serves every later misaligned bio too. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(run(b, NVEMU_BIO_READ, 2 * MIB, LEN, mem + 1, false), 0);
	assert_memory_equal(mem + 1, w, LEN);
	destroy(b);

	/* A block size below the file's O_DIRECT offset alignment is refused up front. */
	if (st.dio_offset_align > 512) {
		o.blk_size = 512;
		memset(&err, 0, sizeof(err));
		assert_int_equal(nvemu_bdev_file_create("dio", &o, &b, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "below the O_DIRECT alignment"));
	}
	unlink(path);
	free(path);
	free(mem);
	free(w);
}

static void test_file_errors(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev *b;
	uint8_t buf[4096];
	char *path;

	(void)state;
	o.path = "/nonexistent/nvemu-test.img";
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "file: /nonexistent/nvemu-test.img: No such file or directory");

	o.path = "/var/tmp";
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -EISDIR);
	assert_string_equal(err.msg, "file: /var/tmp: Is a directory");
	o.path = "/dev/null";
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file or a block device"));

	o.path = NULL;
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -EINVAL);

	/* Size from the file, rounded down to whole blocks. */
	path = tmp_file(1 * MIB + 100);
	o.path = path;
	assert_int_equal(nvemu_bdev_file_create("bad name", &o, &b, &err), -EINVAL);
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), 0);
	assert_int_equal(b->size, 1 * MIB);
	assert_false(b->read_only);
	fill(buf, sizeof(buf), 8);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, sizeof(buf), buf, false), 0);

	/* Someone truncates the file under us: reads past its end return zeroes. */
	assert_int_equal(truncate(path, 0), 0);
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(run(b, NVEMU_BIO_READ, 0, sizeof(buf), buf, false), 0);
	assert_true(all_zero(buf, sizeof(buf)));

	/* Resize grows the file. */
	assert_int_equal(nvemu_bdev_resize(b, 2 * MIB), 0);
	assert_int_equal(b->size, 2 * MIB);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 2 * MIB - 4096, 4096, buf, false), 0);
	b->users = 2;
	assert_int_equal(nvemu_bdev_destroy(b, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "in use by 2 namespaces"));
	b->users = 0;
	destroy(b);

	/* Read-only: opened O_RDONLY, writes refused, can't grow. */
	o.read_only = true;
	o.size = 4 * MIB;
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -EROFS);
	assert_non_null(strstr(err.msg, path));
	o.size = 0;
	assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), 0);
	assert_true(b->read_only);
	assert_int_equal(run(b, NVEMU_BIO_WRITE, 0, sizeof(buf), buf, false), -EROFS);
	assert_int_equal(run(b, NVEMU_BIO_WRITE_ZEROES, 0, 4096, NULL, false), -EROFS);
	assert_int_equal(run(b, NVEMU_BIO_READ, 2 * MIB - 4096, sizeof(buf), buf, false), 0);
	assert_int_equal(run(b, NVEMU_BIO_FLUSH, 0, 0, NULL, false), 0);
	assert_int_equal(nvemu_bdev_resize(b, 4 * MIB), -EROFS);
	destroy(b);

	/* A file without write permission can't be opened read-write. */
	if (geteuid() != 0) {
		assert_int_equal(chmod(path, 0400), 0);
		o.read_only = false;
		assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -EACCES);
		assert_non_null(strstr(err.msg, "Permission denied"));
	}
	unlink(path);
	free(path);
}

/*
 * A FIFO (no writer) is refused at once: the file type is checked before
 * anything could block. The alarm turns a hang into a failure.
 */
static void test_file_fifo(void **state)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev_file_opts o = {0};
	struct nvemu_bdev *b = NULL;
	char path[] = "/var/tmp/nvemu-test-fifo-XXXXXX";
	char fifo[sizeof(path) + 8];

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(fifo, sizeof(fifo), "%s/fifo", path);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	o.path = fifo;
	alarm(10);
	for (int ro = 0; ro < 2; ro++) {
		o.read_only = ro;
		assert_int_equal(nvemu_bdev_file_create("f", &o, &b, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "not a regular file or a block device"));
		assert_non_null(strstr(err.msg, fifo));
	}
	alarm(0);
	assert_int_equal(unlink(fifo), 0);
	assert_int_equal(rmdir(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_ram_roundtrip),
		cmocka_unit_test(test_ram_sparse),
		cmocka_unit_test(test_ram_thousand),
		cmocka_unit_test(test_ram_resize),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_file_buffered),
		cmocka_unit_test(test_file_direct),
		cmocka_unit_test(test_file_queue_full),
		cmocka_unit_test(test_file_batching),
		cmocka_unit_test(test_file_dio_alignment),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_file_fifo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
