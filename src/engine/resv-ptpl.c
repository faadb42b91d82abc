/* SPDX-License-Identifier: MIT */
/*
 * Persist Through Power Loss: a namespace's reservation state in a small
 * text file, one record a line:
 *
 *   nvemu-resv 1
 *   ptpl 1
 *   gen <decimal>
 *   rtype <0..6>
 *   holder <ext 0|1> <anon cntlid> <32 hex digits>
 *   reg <ext 0|1> <anon cntlid> <32 hex digits> <rkey, 16 hex digits>
 *
 * Written to <file>.tmp, synced and renamed over the file, so a crash
 * leaves the old state or the new one. The file is outside input when read
 * back: every field is checked (tests/fuzz/fuzz-resv.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nvemu/resv.h>

#include "reservations.h"

#define PTPL_MAX_FILE (64 + 96 * NVEMU_RESV_MAX_REGS + 96)

static void hex(char *out, const uint8_t *b, size_t n)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

static int put_host(char *p, size_t left, const char *tag, const struct nvemu_resv_host *h)
{
	char id[33];

	hex(id, h->id, 16);
	return snprintf(p, left, "%s %d %u %s", tag, h->ext, h->anon, id);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int nvemu_resv_ptpl_save(struct nvemu_ns *ns)
{
	struct nvemu_resv *r = ns->resv;
	char *buf, *tmp;
	size_t len = 0, cap = PTPL_MAX_FILE;
	int fd, ret;

	if (!r || !r->ptpl_file)
		return 0;
	buf = malloc(cap);
	tmp = malloc(strlen(r->ptpl_file) + 5);
	if (!buf || !tmp) {
		free(buf);
		free(tmp);
		return -ENOMEM;
	}
	len += (size_t)snprintf(buf + len, cap - len, "nvemu-resv 1\nptpl %d\ngen %u\nrtype %u\n",
				r->ptpl, r->gen, r->rtype);
	if (r->rtype) {
		len += (size_t)put_host(buf + len, cap - len, "holder", &r->holder);
		len += (size_t)snprintf(buf + len, cap - len, "\n");
	}
	for (unsigned i = 0; i < r->nr_regs; i++) {
		len += (size_t)put_host(buf + len, cap - len, "reg", &r->regs[i].host);
		len += (size_t)snprintf(buf + len, cap - len, " %016llx\n",
					(unsigned long long)r->regs[i].rkey);
	}
	sprintf(tmp, "%s.tmp", r->ptpl_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	ret = fd < 0 ? -errno : write_all(fd, buf, len);
	if (!ret && fdatasync(fd))
		ret = -errno;
	if (fd >= 0 && close(fd) && !ret)
		ret = -EIO;
	if (!ret && rename(tmp, r->ptpl_file))
		ret = -errno;
	if (ret && fd >= 0)
		unlink(tmp);
	free(tmp);
	free(buf);
	return ret;
}

/* ---- parsing */

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		if (i & 1)
			out[i / 2] |= (uint8_t)v;
		else
			out[i / 2] = (uint8_t)(v << 4);
	}
	return s[2 * n] == ' ' || s[2 * n] == 0 ? 0 : -EINVAL;
}

static int parse_u64(const char **s, int base, uint64_t max, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;
	int digits = 0;

	for (;; p++, digits++) {
		int d = *p >= '0' && *p <= '9'			? *p - '0'
			: base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
							       : -1;
		if (d < 0)
			break;
		if ((uint64_t)d > max || x > (max - (uint64_t)d) / (uint64_t)base)
			return -EINVAL;
		x = x * (uint64_t)base + (uint64_t)d;
	}
	if (!digits || digits > 20)
		return -EINVAL;
	*v = x;
	*s = p;
	return 0;
}

static int expect(const char **s, char c)
{
	if (**s != c)
		return -EINVAL;
	(*s)++;
	return 0;
}

static int parse_host(const char **s, struct nvemu_resv_host *h)
{
	uint64_t ext, anon;

	memset(h, 0, sizeof(*h));
	if (parse_u64(s, 10, 1, &ext) || expect(s, ' ') || parse_u64(s, 10, 0xffef, &anon) ||
	    expect(s, ' ') || unhex(*s, h->id, 16))
		return -EINVAL;
	*s += 32;
	h->ext = ext;
	h->anon = (uint16_t)anon;
	return 0;
}

/* One line, NUL-terminated, without its newline. */
static int parse_line(struct nvemu_resv *r, const char *s, unsigned lineno)
{
	uint64_t v;

	if (lineno == 0)
		return strcmp(s, "nvemu-resv 1") ? -EINVAL : 0;
	if (!strncmp(s, "ptpl ", 5)) {
		s += 5;
		if (parse_u64(&s, 10, 1, &v))
			return -EINVAL;
		r->ptpl = v;
	} else if (!strncmp(s, "gen ", 4)) {
		s += 4;
		if (parse_u64(&s, 10, UINT32_MAX, &v))
			return -EINVAL;
		r->gen = (uint32_t)v;
	} else if (!strncmp(s, "rtype ", 6)) {
		s += 6;
		if (parse_u64(&s, 10, 6, &v))
			return -EINVAL;
		r->rtype = (uint8_t)v;
	} else if (!strncmp(s, "holder ", 7)) {
		s += 7;
		if (parse_host(&s, &r->holder))
			return -EINVAL;
	} else if (!strncmp(s, "reg ", 4)) {
		struct nvemu_resv_reg g = {0};

		s += 4;
		if (r->nr_regs == NVEMU_RESV_MAX_REGS || parse_host(&s, &g.host) ||
		    expect(&s, ' ') || parse_u64(&s, 16, UINT64_MAX, &g.rkey))
			return -EINVAL;
		for (unsigned i = 0; i < r->nr_regs; i++)
			if (!memcmp(&r->regs[i].host, &g.host, sizeof(g.host)))
				return -EINVAL; /* one registration per host */
		r->regs[r->nr_regs++] = g;
	} else {
		return -EINVAL;
	}
	return *s ? -EINVAL : 0;
}

int nvemu_resv_ptpl_parse(struct nvemu_resv *r, const char *text, size_t len)
{
	char line[160];
	unsigned lineno = 0;
	size_t pos = 0;
	bool has_holder = false;

	r->nr_regs = 0;
	r->rtype = 0;
	r->gen = 0;
	r->ptpl = false;
	memset(&r->holder, 0, sizeof(r->holder));
	while (pos < len) {
		size_t n = 0;

		while (pos < len && text[pos] != '\n') {
			if (n + 1 >= sizeof(line) || !text[pos])
				return -EINVAL;
			line[n++] = text[pos++];
		}
		if (pos == len)
			return -EINVAL; /* every line ends with a newline: a cut file is refused */
		pos++;
		line[n] = 0;
		if (!strncmp(line, "holder ", 7))
			has_holder = true;
		if (parse_line(r, line, lineno++))
			return -EINVAL;
	}
	if (!lineno)
		return -EINVAL;
	/* A reservation needs its holder among the registrants (types 5 and 6: any). */
	if (r->rtype && (!has_holder || !r->nr_regs))
		return -EINVAL;
	if (!r->rtype && has_holder)
		return -EINVAL;
	if (r->rtype && r->rtype < NVME_RESERVATION_RTYPE_WEAR) {
		bool found = false;

		for (unsigned i = 0; i < r->nr_regs; i++)
			found |= !memcmp(&r->regs[i].host, &r->holder, sizeof(r->holder));
		if (!found)
			return -EINVAL;
	}
	return 0;
}

/* ---- public API */

int nvemu_ns_set_ptpl_file(struct nvemu_subsys *subsys, uint32_t nsid, const char *path,
			   struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(subsys, nsid);
	struct nvemu_resv *r, loaded;
	char *text = NULL, *copy = NULL;
	ssize_t n = 0;
	int fd;

	if (!ns)
		return nvemu_error_set(err, -ENOENT, "nsid: no namespace %u", nsid);
	if (path && (!*path || strlen(path) > 4000))
		return nvemu_error_set(err, -EINVAL, "ptpl_file: must be a path of 1..4000 bytes");
	r = nvemu_resv_get(ns);
	if (!r)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	if (!path) {
		free(r->ptpl_file);
		r->ptpl_file = NULL;
		r->ptpl = false;
		return 0;
	}
	memset(&loaded, 0, sizeof(loaded));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno != ENOENT)
		return nvemu_error_set(err, -EINVAL, "ptpl_file: cannot open %s: %s", path,
				       strerror(errno));
	if (fd < 0) {
		/* No state yet: the place must take one, or every later save would fail. */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return nvemu_error_set(err, -EINVAL, "ptpl_file: cannot create %s: %s", path,
					       strerror(errno));
		close(fd);
		unlink(path);
		fd = -1;
	}
	if (fd >= 0) {
		text = malloc(PTPL_MAX_FILE + 1);
		if (!text) {
			close(fd);
			return nvemu_error_set(err, -ENOMEM, "out of memory");
		}
		n = read(fd, text, PTPL_MAX_FILE + 1);
		close(fd);
		if (n < 0 || n > PTPL_MAX_FILE ||
		    (n && nvemu_resv_ptpl_parse(&loaded, text, (size_t)n))) {
			free(text);
			return nvemu_error_set(err, -EINVAL,
					       "ptpl_file: %s is not a saved reservation state",
					       path);
		}
		free(text);
	}
	copy = strdup(path);
	if (!copy)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	free(r->ptpl_file);
	r->ptpl_file = copy;
	/* State from before the power loss only when the host had asked to keep it. */
	if (n && loaded.ptpl) {
		memcpy(r->regs, loaded.regs, sizeof(r->regs));
		r->nr_regs = loaded.nr_regs;
		r->gen = loaded.gen;
		r->rtype = loaded.rtype;
		r->holder = loaded.holder;
		r->ptpl = true;
	}
	return 0;
}

const char *nvemu_ns_get_ptpl_file(struct nvemu_subsys *subsys, uint32_t nsid)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(subsys, nsid);

	return ns && ns->resv ? ns->resv->ptpl_file : NULL;
}
