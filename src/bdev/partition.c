// SPDX-License-Identifier: MIT
/*
 * Device strings of exports: "SN:n<NSID>", "<NQN>:n<NSID>" and GPT partition
 * UUIDs (include/nvemu/partition.h).
 *
 * libblkid probes an fd, not a buffer, and reads wherever the partition
 * table says. A namespace lives in a bdev (RAM, file, delay...) that has no
 * fd of its own, so the blocks where a GPT lives (protective MBR, primary
 * header and entries at the start, backup entries and header at the end)
 * are copied through the bdev into a sparse memfd as large as the
 * namespace, and libblkid probes that: it sees the table at the right
 * offsets and zeroes elsewhere, and no more than those blocks is read or
 * held in memory.
 */
#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <nvemu/bdev.h>
#include <nvemu/ctrl-state.h>
#include <nvemu/partition.h>

/* What is copied from each end: a GPT's 34 blocks at 512 B, or 128 KiB. */
#define PROBE_MIN_BLOCKS 34
#define PROBE_MIN_BYTES	 (128 * 1024)
/* How long a read through a slow bdev (a file, a delay bdev) may take. */
#define PROBE_READ_TIMEOUT_MS 5000

/* A read that may outlive its caller (on a timeout end_io frees it). */
struct probe_read {
	struct nvemu_bio bio;
	bool done, abandoned;
	int err;
	unsigned char data[];
};

static void probe_read_end(struct nvemu_bio *bio, int err)
{
	struct probe_read *r = bio->private;

	if (r->abandoned) {
		free(r);
		return;
	}
	r->done = true;
	r->err = err;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy bytes [off, off+len) of bdev into fd at the same offset. */
static int copy_range(struct nvemu_bdev *bdev, int fd, uint64_t off, uint64_t len)
{
	struct probe_read *r = calloc(1, sizeof(*r) + len);
	int64_t deadline = now_ms() + PROBE_READ_TIMEOUT_MS;
	int rc;

	if (!r)
		return -ENOMEM;
	r->bio.op = NVEMU_BIO_READ;
	r->bio.offset = off;
	r->bio.len = len;
	r->bio.buf = r->data;
	r->bio.end_io = probe_read_end;
	r->bio.private = r;
	rc = nvemu_bdev_submit(bdev, &r->bio);
	if (rc) {
		free(r);
		return rc;
	}
	/* A batching bdev only queued it: start it before sleeping on the fd. */
	nvemu_bdev_flush_submit(bdev);
	while (!r->done && now_ms() < deadline) {
		int bfd = nvemu_bdev_get_fd(bdev);

		if (bfd >= 0) {
			struct pollfd p = {.fd = bfd, .events = POLLIN};

			poll(&p, 1, 10);
		}
		nvemu_bdev_poll(bdev);
	}
	if (!r->done) {
		r->abandoned = true; /* its end_io frees it */
		return -ETIMEDOUT;
	}
	rc = r->err;
	if (!rc && pwrite(fd, r->data, len, (off_t)off) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	free(r);
	return rc;
}

/* A sparse memfd of the namespace's size holding its first and last blocks. */
static int ns_image(const struct nvemu_ns_info *ni, int *out, struct nvemu_error *err)
{
	uint64_t size = ni->nblocks * ni->lba_size;
	uint64_t span = (uint64_t)PROBE_MIN_BLOCKS * ni->lba_size;
	uint64_t head, tail_off;
	int fd = -1, rc;

	if (span < PROBE_MIN_BYTES)
		span = PROBE_MIN_BYTES;
	head = span < size ? span : size;
	tail_off = size > span && size - span > head ? size - span : head;
	fd = memfd_create("nvemu-probe", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return nvemu_error_set(err, rc, "device: namespace %" PRIu32 ": memfd: %s",
				       ni->nsid, strerror(-rc));
	}
	rc = copy_range(ni->bdev, fd, 0, head);
	if (!rc && tail_off < size)
		rc = copy_range(ni->bdev, fd, tail_off, size - tail_off);
	if (rc) {
		close(fd);
		return nvemu_error_set(err, -EIO, "device: namespace %" PRIu32 ": read: %s",
				       ni->nsid, strerror(-rc));
	}
	*out = fd;
	return 0;
}

/* Walk the partition list of the image for uuid; 1 found, 0 not, <0 error. */
static int probe_gpt(int fd, const struct nvemu_ns_info *ni, const char *uuid,
		     struct nvemu_ns_range *out)
{
	blkid_probe pr = blkid_new_probe();
	blkid_partlist pl;
	int found = 0;

	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t)(ni->nblocks * ni->lba_size)) ||
	    blkid_probe_set_sectorsize(pr, ni->lba_size)) {
		blkid_free_probe(pr);
		return -EIO;
	}
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	pl = blkid_probe_get_partitions(pr);
	if (pl && blkid_partlist_get_table(pl)) {
		const char *type = blkid_parttable_get_type(blkid_partlist_get_table(pl));
		int n = blkid_partlist_numof_partitions(pl);

		for (int i = 0; type && !strcmp(type, "gpt") && i < n && !found; i++) {
			blkid_partition p = blkid_partlist_get_partition(pl, i);
			const char *pu = p ? blkid_partition_get_uuid(p) : NULL;
			/* libblkid counts in 512-byte sectors whatever the block size. */
			uint64_t start = (uint64_t)blkid_partition_get_start(p) * 512;
			uint64_t len = (uint64_t)blkid_partition_get_size(p) * 512;

			if (!pu || strcasecmp(pu, uuid))
				continue;
			out->first_lba = start / ni->lba_size;
			out->nr_lbas = len / ni->lba_size;
			found = out->nr_lbas && out->first_lba + out->nr_lbas <= ni->nblocks
					? 1
					: -EINVAL;
		}
	}
	blkid_free_probe(pr);
	return found;
}

int nvemu_ns_find_partition(struct nvemu_subsys *subsys, uint32_t nsid, const char *uuid,
			    struct nvemu_ns_range *out, struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(subsys, nsid);
	struct nvemu_ns_info ni;
	uuid_t u;
	int fd = -1, rc;

	if (!uuid || uuid_parse(uuid, u))
		return nvemu_error_set(err, -EINVAL, "device: not a UUID");
	if (!ns)
		return nvemu_error_set(err, -ENOENT, "device: no namespace %" PRIu32, nsid);
	nvemu_ns_info(ns, &ni);
	if (!ni.bdev || !ni.nblocks || !ni.lba_size)
		return nvemu_error_set(err, -ENOENT, "device: namespace %" PRIu32 " has no data",
				       nsid);
	rc = ns_image(&ni, &fd, err);
	if (rc)
		return rc;
	rc = probe_gpt(fd, &ni, uuid, out);
	close(fd);
	if (rc < 0)
		return nvemu_error_set(err, rc == -EINVAL ? -EINVAL : -EIO,
				       "device: partition %s of namespace %" PRIu32 " %s", uuid,
				       nsid,
				       rc == -EINVAL ? "lies outside it" : "cannot be probed");
	if (!rc)
		return nvemu_error_set(err, -ENOENT,
				       "device: no GPT partition %s in namespace %" PRIu32, uuid,
				       nsid);
	out->subsys = subsys;
	out->nsid = nsid;
	out->lba_size = ni.lba_size;
	return 0;
}

/* "n<NSID>" after the last ':' of s; the part before it in prefix. */
static int split_nsid(const char *s, size_t *prefix_len, uint32_t *nsid)
{
	const char *c = strrchr(s, ':');
	char *end;
	unsigned long v;

	if (!c || c == s || c[1] != 'n' || !isdigit((unsigned char)c[2]))
		return -EINVAL;
	errno = 0;
	v = strtoul(c + 2, &end, 10);
	if (*end || errno || !v || v > 0xfffffffeul)
		return -EINVAL;
	*prefix_len = (size_t)(c - s);
	*nsid = (uint32_t)v;
	return 0;
}

static int whole_ns(struct nvemu_subsys *s, uint32_t nsid, const char *device,
		    struct nvemu_ns_range *out, struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);
	struct nvemu_ns_info ni;

	if (!ns)
		return nvemu_error_set(err, -ENOENT, "device: %s: no namespace %" PRIu32, device,
				       nsid);
	nvemu_ns_info(ns, &ni);
	*out = (struct nvemu_ns_range){.subsys = s,
				       .nsid = nsid,
				       .first_lba = 0,
				       .nr_lbas = ni.nblocks,
				       .lba_size = ni.lba_size};
	return 0;
}

/* By serial number first (the seed's form), then by NQN. */
static int resolve_named(struct nvemu_subsys *const *subsys, unsigned nr, const char *device,
			 size_t plen, uint32_t nsid, struct nvemu_ns_range *out,
			 struct nvemu_error *err)
{
	for (int by_nqn = 0; by_nqn < 2; by_nqn++) {
		for (unsigned i = 0; i < nr; i++) {
			struct nvemu_subsys_info si;
			const char *name;

			nvemu_subsys_info(subsys[i], &si);
			name = by_nqn ? nvemu_subsys_nqn(subsys[i]) : si.sn;
			if (name && strlen(name) == plen && !strncmp(name, device, plen))
				return whole_ns(subsys[i], nsid, device, out, err);
		}
	}
	return nvemu_error_set(err, -ENOENT,
			       "device: %s: no subsystem with serial number or NQN %.*s", device,
			       (int)plen, device);
}

static int resolve_partition(struct nvemu_subsys *const *subsys, unsigned nr, const char *uuid,
			     struct nvemu_ns_range *out, struct nvemu_error *err)
{
	unsigned found = 0;

	for (unsigned i = 0; i < nr; i++) {
		struct nvemu_ns *ns;

		for (unsigned j = 0; (ns = nvemu_subsys_ns_at(subsys[i], j)); j++) {
			struct nvemu_ns_info ni;
			struct nvemu_ns_range r;
			struct nvemu_error e;
			int rc;

			nvemu_ns_info(ns, &ni);
			rc = nvemu_ns_find_partition(subsys[i], ni.nsid, uuid, &r, &e);
			if (rc == -ENOENT)
				continue;
			if (rc)
				return nvemu_error_set(err, rc, "%s", e.msg);
			if (found++)
				return nvemu_error_set(
					err, -EEXIST,
					"device: partition %s is in more than one namespace", uuid);
			*out = r;
		}
	}
	if (!found)
		return nvemu_error_set(err, -ENOENT, "device: no GPT partition %s", uuid);
	return 0;
}

int nvemu_ns_range_resolve(struct nvemu_subsys *const *subsys, unsigned nr, const char *device,
			   struct nvemu_ns_range *out, struct nvemu_error *err)
{
	size_t plen;
	uint32_t nsid;
	uuid_t u;

	if (!device || !*device)
		return nvemu_error_set(err, -EINVAL, "device: empty");
	if (strlen(device) == 36 && !uuid_parse(device, u))
		return resolve_partition(subsys, nr, device, out, err);
	if (split_nsid(device, &plen, &nsid))
		return nvemu_error_set(
			err, -EINVAL,
			"device: %s: expected SN:n<NSID>, NQN:n<NSID> or a GPT partition UUID",
			device);
	return resolve_named(subsys, nr, device, plen, nsid, out, err);
}
