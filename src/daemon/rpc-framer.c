// SPDX-License-Identifier: MIT
/* Incremental JSON value framing for the RPC socket (see rpc-framer.h). */
#include <string.h>

#include "rpc-framer.h"

void rpc_framer_reset(struct rpc_framer *f)
{
	memset(f, 0, sizeof(*f));
}

static bool delimiter(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '{' || c == '}' ||
	       c == '[' || c == ']' || c == ',' || c == ':' || c == '"';
}

size_t rpc_framer_scan(struct rpc_framer *f, const char *buf, size_t len, bool eof)
{
	size_t i = f->pos;

	if (!f->started && i < len) {
		f->started = true;
		if (buf[0] == '{' || buf[0] == '[')
			f->depth = 1;
		else if (buf[0] == '"')
			f->in_str = true;
		else
			f->scalar = true;
		i = 1;
	}
	for (; i < len; i++) {
		char c = buf[i];

		if (f->in_str) {
			if (f->esc)
				f->esc = false;
			else if (c == '\\')
				f->esc = true;
			else if (c == '"') {
				f->in_str = false;
				if (!f->depth)
					return f->pos = i + 1;
			}
			continue;
		}
		if (f->scalar) {
			if (delimiter(c))
				return f->pos = i;
			continue;
		}
		switch (c) {
		case '"':
			f->in_str = true;
			break;
		case '{':
		case '[':
			f->depth++;
			break;
		case '}':
		case ']':
			/* A mismatched bracket still ends the value: the parser rejects it. */
			if (!--f->depth)
				return f->pos = i + 1;
			break;
		default:
			break;
		}
	}
	f->pos = len;
	/* A bare scalar is no request whatever follows: answer it now rather than wait. */
	return (eof || f->scalar) && len ? len : 0;
}
