/* SPDX-License-Identifier: MIT */
/* Firmware slots and the image being downloaded (admin-fw.c). */
#ifndef NVEMU_FW_H
#define NVEMU_FW_H

#include <stddef.h>
#include <stdint.h>

#define NVEMU_FW_SLOTS_MAX 7
/* Largest image Firmware Image Download accepts. */
#define NVEMU_FW_IMAGE_MAX (16u << 20)
/* Identify Controller FWUG: any dword-aligned piece is accepted. */
#define NVEMU_FW_FWUG 0xff

struct nvemu_fw_state {
	char slot_rev[NVEMU_FW_SLOTS_MAX][8]; /* space padded; all-zero = empty */
	uint8_t active_slot;		      /* 1-based */
	uint8_t next_slot;		      /* activated at the next reset, 0: none */
	uint8_t nr_slots;		      /* 1..NVEMU_FW_SLOTS_MAX */
	uint8_t frmw;			      /* Identify Controller FRMW */
	uint8_t *image;			      /* the image being downloaded */
	size_t image_len;
};

#endif
