/* SPDX-License-Identifier: MIT */
/*
 * The client's memory table: regions of guest memory it shares by fd,
 * mapped here, and the translation of guest physical and VMM virtual
 * addresses into pointers, each range checked to lie inside one region.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vblk-internal.h"

struct vblk_mem *vblk_mem_new(void)
{
	struct vblk_mem *m = calloc(1, sizeof(*m));

	if (m)
		m->refs = 1;
	return m;
}

struct vblk_mem *vblk_mem_clone(const struct vblk_mem *m)
{
	struct vblk_mem *c = vblk_mem_new();

	if (!c)
		return NULL;
	if (m) {
		c->nr = m->nr;
		memcpy(c->r, m->r, m->nr * sizeof(m->r[0]));
		for (unsigned i = 0; i < c->nr; i++)
			c->r[i].map->refs++;
	}
	return c;
}

void vblk_mem_get(struct vblk_mem *m)
{
	m->refs++;
}

static void map_put(struct vblk_map *map)
{
	if (--map->refs)
		return;
	munmap(map->addr, map->len);
	free(map);
}

void vblk_mem_put(struct vblk_mem *m)
{
	if (!m || --m->refs)
		return;
	for (unsigned i = 0; i < m->nr; i++)
		map_put(m->r[i].map);
	free(m);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Only the trusted file's memory, when one is set: same device and inode. */
static int check_trusted(int fd, const char *trusted, char *why, size_t why_len)
{
	struct stat a, b;

	if (!trusted || !*trusted)
		return 0;
	if (fstat(fd, &a) || stat(trusted, &b)) {
		snprintf(why, why_len, "cannot stat the region fd or %s", trusted);
		return -EPERM;
	}
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		snprintf(why, why_len, "memory region is not the registered file %s", trusted);
		return -EPERM;
	}
	return 0;
}

static int check_region(const struct vblk_mem *m, unsigned max, const struct vhost_user_region *r,
			char *why, size_t why_len)
{
	if (m->nr >= max) {
		snprintf(why, why_len, "more than ds_max=%u memory regions", max);
		return -ENOSPC;
	}
	if (!r->size || r->gpa + r->size < r->gpa || r->uva + r->size < r->uva ||
	    r->mmap_offset + r->size < r->mmap_offset || r->size > SIZE_MAX / 2) {
		snprintf(why, why_len, "memory region of bad size or address");
		return -EINVAL;
	}
	for (unsigned i = 0; i < m->nr; i++) {
		if (overlaps(r->gpa, r->size, m->r[i].gpa, m->r[i].size) ||
		    overlaps(r->uva, r->size, m->r[i].uva, m->r[i].size)) {
			snprintf(why, why_len, "memory regions overlap");
			return -EINVAL;
		}
	}
	return 0;
}

int vblk_mem_add(struct vblk_mem *m, unsigned max, const struct vhost_user_region *r, int fd,
		 const char *trusted, char *why, size_t why_len)
{
	struct vblk_map *map;
	struct stat st;
	int ret;
	void *p;

	ret = check_region(m, max, r, why, why_len);
	if (!ret)
		ret = check_trusted(fd, trusted, why, why_len);
	if (!ret && (fstat(fd, &st) ||
		     (S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->mmap_offset + r->size))) {
		/* A region past the end of its file would SIGBUS us on access. */
		snprintf(why, why_len, "memory region beyond the end of its file");
		ret = -EINVAL;
	}
	map = ret ? NULL : calloc(1, sizeof(*map));
	if (!ret && !map)
		ret = -ENOMEM;
	if (ret) {
		close(fd);
		return ret;
	}
	map->len = r->mmap_offset + r->size;
	p = mmap(NULL, map->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		ret = -errno;
		snprintf(why, why_len, "mmap of a memory region failed: %s", strerror(-ret));
		free(map);
		return ret;
	}
	map->addr = p;
	map->refs = 1;
	m->r[m->nr++] = (struct vblk_region){.gpa = r->gpa,
					     .size = r->size,
					     .uva = r->uva,
					     .host = (uint8_t *)p + r->mmap_offset,
					     .map = map};
	return 0;
}

int vblk_mem_remove(struct vblk_mem *m, uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < m->nr; i++) {
		if (m->r[i].gpa != gpa || m->r[i].size != size)
			continue;
		map_put(m->r[i].map);
		m->r[i] = m->r[--m->nr];
		return 0;
	}
	return -ENOENT;
}

void *vblk_gpa(const struct vblk_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; m && i < m->nr; i++) {
		const struct vblk_region *r = &m->r[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void *vblk_uva(const struct vblk_mem *m, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; m && i < m->nr; i++) {
		const struct vblk_region *r = &m->r[i];

		if (uva >= r->uva && uva - r->uva <= r->size && len <= r->size - (uva - r->uva))
			return r->host + (uva - r->uva);
	}
	return NULL;
}
