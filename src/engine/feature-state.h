/* SPDX-License-Identifier: MIT */
/* Feature values of one controller (Get/Set Features, admin-features.c). */
#ifndef NVEMU_FEATURES_H
#define NVEMU_FEATURES_H

#include <stdbool.h>
#include <stdint.h>

#define NVEMU_TEMP_SENSORS 9  /* 0 = composite, 1..8 = sensors */
#define NVEMU_IV_MAX	   64 /* interrupt vectors with their own config */

struct nvemu_features {
	uint32_t arbitration;
	uint32_t power_mgmt;
	uint16_t temp_over[NVEMU_TEMP_SENSORS];	 /* Kelvin */
	uint16_t temp_under[NVEMU_TEMP_SENSORS]; /* Kelvin */
	uint32_t err_recovery;
	uint32_t volatile_wc;
	uint32_t num_queues; /* NSQA/NCQA granted, as returned in dw0 */
	bool num_queues_set;
	uint32_t irq_coalesce;
	uint32_t irq_config[NVEMU_IV_MAX];
	uint32_t write_atomic;
	uint32_t async_event_cfg;
	uint32_t kato; /* ms */
	uint8_t host_id[16];
	bool host_id_ext; /* 128-bit host identifier */
	bool host_id_set;
	/* Timestamp (0Eh): the value was ts_ms when nvemu_now_ns() was ts_ns */
	uint64_t ts_ms;
	uint64_t ts_ns;
	bool ts_set; /* Timestamp Origin 001b: set by the host */

	/*
	 * Health conditions already reported, so that SMART events fire on
	 * edges only. Kept here so that a controller reset (feat = feat_saved,
	 * where these stay clear) re-arms them along with the AEN state.
	 */
	bool temp_crossed;
	bool spare_low;
	uint8_t crit_seen; /* injected critical warning bits already reported */
};

#endif
