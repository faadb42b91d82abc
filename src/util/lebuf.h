/* SPDX-License-Identifier: MIT */
/*
 * Little-endian byte buffers for state handed between processes (a PCIe
 * controller's state, a vfio-user server's live-update handover): a writer
 * that grows and remembers running out of memory, and a reader that stops
 * at the end and remembers reading past it (what it returns then is zero).
 * Callers check oom / bad once, at the end.
 */
#ifndef NVEMU_UTIL_LEBUF_H
#define NVEMU_UTIL_LEBUF_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct lebuf_w {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static inline void lebuf_put(struct lebuf_w *w, const void *src, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n > w->cap) {
		size_t cap = (w->len + n) * 2;
		uint8_t *np = realloc(w->p, cap);

		if (!np) {
			w->oom = true;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static inline void lebuf_put32(struct lebuf_w *w, uint32_t v)
{
	v = htole32(v);
	lebuf_put(w, &v, 4);
}

static inline void lebuf_put64(struct lebuf_w *w, uint64_t v)
{
	v = htole64(v);
	lebuf_put(w, &v, 8);
}

struct lebuf_r {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static inline void lebuf_get(struct lebuf_r *r, void *dst, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, r->p + r->off, n);
	r->off += n;
}

static inline uint32_t lebuf_get32(struct lebuf_r *r)
{
	uint32_t v;

	lebuf_get(r, &v, 4);
	return le32toh(v);
}

static inline uint64_t lebuf_get64(struct lebuf_r *r)
{
	uint64_t v;

	lebuf_get(r, &v, 8);
	return le64toh(v);
}

#endif
