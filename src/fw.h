/* SPDX-License-Identifier: MIT */
/* Firmware slots and the image being downloaded (admin-fw.c). */
#ifndef NVEMU_FW_H
#define NVEMU_FW_H

#include <stddef.h>
#include <stdint.h>

#define NVEMU_FW_SLOTS_MAX 7

struct nvemu_fw_state {
	char slot_rev[NVEMU_FW_SLOTS_MAX][8]; /* space padded; all-zero = empty */
	uint8_t active_slot;		      /* 1-based */
	uint8_t next_slot;		      /* activated at the next reset, 0: none */
	uint8_t *image;			      /* the image being downloaded */
	size_t image_len;
};

#endif
