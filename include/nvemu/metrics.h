/* SPDX-License-Identifier: MIT */
/*
 * Per-controller command metrics the engine keeps for every completion:
 * counts, bytes, errors (by status) and latency histograms per command
 * class. Read them with nvemu_ctrl_get_metrics(); nvemud serves them in
 * the Prometheus text format (--metrics).
 */
#ifndef NVEMU_METRICS_H
#define NVEMU_METRICS_H

#include <stdint.h>

struct nvemu_ctrl;

enum nvemu_cmd_class {
	NVEMU_CLASS_READ,
	NVEMU_CLASS_WRITE,
	NVEMU_CLASS_FLUSH,
	NVEMU_CLASS_OTHER_IO, /* every other NVM command */
	NVEMU_CLASS_ADMIN,
	NVEMU_CLASS_NR,
};

/* Latency bucket upper bounds, microseconds; the last bucket is +Inf. */
#define NVEMU_LAT_BUCKETS 16
/* Upper bound of latency bucket i (< NVEMU_LAT_BUCKETS), microseconds. */
uint32_t nvemu_lat_bucket_us(unsigned i);

/* Distinct error statuses counted one by one; the rest fall in "other". */
#define NVEMU_METRIC_STATUSES 16

struct nvemu_class_metrics {
	uint64_t cmds;
	uint64_t bytes; /* data transferred */
	uint64_t errors;
	uint64_t lat_sum_ns;
	uint64_t lat_hist[NVEMU_LAT_BUCKETS + 1]; /* per bucket, not cumulative; [16]: +Inf */
};

struct nvemu_ctrl_metrics {
	struct nvemu_class_metrics cls[NVEMU_CLASS_NR];
	struct {
		uint16_t status; /* SCT << 8 | SC, as in the CQE without the phase */
		uint64_t count;
	} err[NVEMU_METRIC_STATUSES];
	uint64_t err_other;
	uint64_t aens; /* Asynchronous Event Requests completed with an event */
};

const char *nvemu_cmd_class_name(enum nvemu_cmd_class c); /* "read", "write", ... */
void nvemu_ctrl_get_metrics(const struct nvemu_ctrl *ctrl, struct nvemu_ctrl_metrics *out);

#endif
