/* SPDX-License-Identifier: MIT */
/*
 * Finds where one JSON value ends in a byte stream without parsing it, so a
 * request that arrives in many small pieces is scanned once in total
 * (nesting depth and string/escape state carry over between reads) and
 * handed to the parser only when complete.
 */
#ifndef NVEMUD_RPC_FRAMER_H
#define NVEMUD_RPC_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct rpc_framer {
	size_t pos;	/* bytes of the current value scanned so far */
	size_t depth;	/* open objects/arrays */
	bool started;	/* the value's first byte was seen */
	bool in_str;	/* inside a string */
	bool esc;	/* after a backslash in a string */
	bool scalar;	/* a top-level number/keyword: ends at a delimiter or the data */
};

void rpc_framer_reset(struct rpc_framer *f);

/*
 * Scan buf[0..len) (the same buffer, grown, on every call; buf[0] is the
 * value's first byte, leading whitespace already skipped). Returns the
 * value's length once it is complete, 0 while more input is needed. With
 * eof, whatever is there is the value (the parser then reports what is
 * wrong with it); so is a bare number or keyword cut short, which can never
 * be a request anyway.
 */
size_t rpc_framer_scan(struct rpc_framer *f, const char *buf, size_t len, bool eof);

#endif
