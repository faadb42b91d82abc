/* SPDX-License-Identifier: MIT */
#ifndef NVEMU_ERROR_H
#define NVEMU_ERROR_H

/*
 * Functions that validate caller input return 0 or a negative errno and,
 * when given a non-NULL struct nvemu_error, fill it with a message that
 * names the offending field and the rule it broke ("nqn: at most 223
 * bytes"). Control planes pass it straight to their users.
 */
struct nvemu_error {
	int code; /* negative errno, 0 when no error */
	char msg[256];
};

/* Set err (if non-NULL) and return code. */
int nvemu_error_set(struct nvemu_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
