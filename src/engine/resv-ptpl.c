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

#include "nv-file.h"
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

int nvemu_resv_ptpl_save(struct nvemu_ns *ns)
{
	struct nvemu_resv *r = ns->resv;
	size_t len = 0, cap = PTPL_MAX_FILE;
	char *buf;
	int ret;

	if (!r || !r->ptpl_file)
		return 0;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
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
	ret = nvemu_nvfile_write(r->ptpl_file, buf, len);
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

static int parse_host(const char **s, struct nvemu_resv_host *h)
{
	uint64_t ext, anon;

	memset(h, 0, sizeof(*h));
	if (nvemu_nvfile_u64(s, 10, 1, &ext) || nvemu_nvfile_expect(s, ' ') ||
	    nvemu_nvfile_u64(s, 10, 0xffef, &anon) || nvemu_nvfile_expect(s, ' ') ||
	    unhex(*s, h->id, 16))
		return -EINVAL;
	*s += 32;
	h->ext = ext;
	h->anon = (uint16_t)anon;
	return 0;
}

struct ptpl_parse {
	struct nvemu_resv *r;
	bool has_holder;
};

/* One line, NUL-terminated, without its newline. */
static int parse_line(void *arg, const char *s, unsigned lineno)
{
	struct ptpl_parse *pp = arg;
	struct nvemu_resv *r = pp->r;
	uint64_t v;

	if (lineno == 0)
		return strcmp(s, "nvemu-resv 1") ? -EINVAL : 0;
	if (!strncmp(s, "ptpl ", 5)) {
		s += 5;
		if (nvemu_nvfile_u64(&s, 10, 1, &v))
			return -EINVAL;
		r->ptpl = v;
	} else if (!strncmp(s, "gen ", 4)) {
		s += 4;
		if (nvemu_nvfile_u64(&s, 10, UINT32_MAX, &v))
			return -EINVAL;
		r->gen = (uint32_t)v;
	} else if (!strncmp(s, "rtype ", 6)) {
		s += 6;
		if (nvemu_nvfile_u64(&s, 10, 6, &v))
			return -EINVAL;
		r->rtype = (uint8_t)v;
	} else if (!strncmp(s, "holder ", 7)) {
		pp->has_holder = true;
		s += 7;
		if (parse_host(&s, &r->holder))
			return -EINVAL;
	} else if (!strncmp(s, "reg ", 4)) {
		struct nvemu_resv_reg g = {0};

		s += 4;
		if (r->nr_regs == NVEMU_RESV_MAX_REGS || parse_host(&s, &g.host) ||
		    nvemu_nvfile_expect(&s, ' ') || nvemu_nvfile_u64(&s, 16, UINT64_MAX, &g.rkey))
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
	struct ptpl_parse pp = {.r = r};
	bool has_holder;

	r->nr_regs = 0;
	r->rtype = 0;
	r->gen = 0;
	r->ptpl = false;
	memset(&r->holder, 0, sizeof(r->holder));
	if (!len || nvemu_nvfile_lines(text, len, 160, parse_line, &pp))
		return -EINVAL;
	has_holder = pp.has_holder;
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
	size_t n = 0;
	int ret;

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
	ret = nvemu_nvfile_read(path, PTPL_MAX_FILE, &text, &n);
	if (ret && ret != -ENOENT)
		return nvemu_error_set(err, -EINVAL, "ptpl_file: cannot use %s: %s", path,
				       nvemu_nvfile_strerror(ret));
	if (n && nvemu_resv_ptpl_parse(&loaded, text, n)) {
		free(text);
		return nvemu_error_set(err, -EINVAL,
				       "ptpl_file: %s is not a saved reservation state", path);
	}
	free(text);
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
