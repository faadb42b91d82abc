/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include <nvemu/error.h>

int nvemu_error_set(struct nvemu_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}
