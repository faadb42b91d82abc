/* SPDX-License-Identifier: MIT */
/*
 * Small state files that must survive a power loss (reservations kept
 * through it, the subsystem's sanitize state): written whole to
 * <path>.tmp, synced and renamed over the file, so a crash leaves the old
 * state or the new one; read back as outside input, strictly.
 */
#ifndef NVEMU_NV_FILE_H
#define NVEMU_NV_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "nvemu-internal.h"

/* Replaces path's content with buf[0..len) atomically. 0 or -errno. */
int nvemu_nvfile_write(const char *path, const char *buf, size_t len);
/*
 * Reads the whole file (at most max bytes) into a malloc'd NUL-terminated
 * buffer. 0; -ENOENT when there is none (after checking that one could be
 * created there, so that later saves do not fail); -ENOTDIR when its
 * directory does not exist; -EFBIG; other -errno.
 */
int nvemu_nvfile_read(const char *path, size_t max, char **text, size_t *len);
/* What a failed nvemu_nvfile_read() means, for an error message. */
const char *nvemu_nvfile_strerror(int ret);
/* A decimal or lower-case hex number of at most 20 digits, <= max; advances *s. */
int nvemu_nvfile_u64(const char **s, int base, uint64_t max, uint64_t *v);
/* The character c; advances *s. */
int nvemu_nvfile_expect(const char **s, char c);
/*
 * Splits text[0..len) into lines of fewer than max_line bytes, each ending
 * with a newline (a cut file is refused) and free of NULs, and calls fn on
 * each with its number from 0. Stops at fn's first error.
 */
int nvemu_nvfile_lines(const char *text, size_t len, size_t max_line,
		       int (*fn)(void *arg, const char *line, unsigned lineno), void *arg);

#endif
