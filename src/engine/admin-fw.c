/* SPDX-License-Identifier: MIT */
/*
 * Firmware Image Download, Firmware Commit and the firmware slots.
 *
 * nvemu's firmware image format: an image is at least 8 bytes long and its
 * first 8 bytes are printable ASCII (the first one not a space); they are
 * the firmware revision the image reports once active (Identify Controller
 * FR, Firmware Slot log FRS). The rest of the image is not interpreted.
 *
 * Slot 1 holds the subsystem's firmware revision and is read-only (FRMW
 * bit 0). "Activation at the next reset" happens at the next Controller
 * Level Reset (CC.EN 1 -> 0), which is why Firmware Commit reports
 * Firmware Activation Requires Controller Level Reset for it.
 */
#include <stdlib.h>

#include "nvemu-internal.h"

#define FW_CA_REPLACE	       0 /* replace the image in the slot */
#define FW_CA_REPLACE_ACTIVATE 1 /* replace, activate at the next reset */
#define FW_CA_ACTIVATE	       2 /* activate the slot at the next reset */
#define FW_CA_REPLACE_NOW      3 /* replace (if downloaded) and activate now */

#define FRMW_SLOT1_RO	    (1u << 0)
#define FRMW_NR_SLOTS_SHIFT 1
#define FRMW_ACT_NO_RESET   (1u << 4)

static inline uint16_t fw_status(uint8_t sc)
{
	return NVEMU_SC_CMD(sc) | NVEMU_DNR;
}

void nvemu_fw_init(struct nvemu_ctrl *ctrl, const char *fr)
{
	struct nvemu_fw_state *fw = &ctrl->fw;
	uint8_t n = ctrl->p.fw_slots;

	if (n < 1)
		n = 1;
	if (n > NVEMU_FW_SLOTS_MAX)
		n = NVEMU_FW_SLOTS_MAX;
	memset(fw, 0, sizeof(*fw));
	nvemu_strpad(fw->slot_rev[0], sizeof(fw->slot_rev[0]), fr);
	fw->active_slot = 1;
	fw->nr_slots = n;
	fw->frmw = FRMW_SLOT1_RO | (uint8_t)(n << FRMW_NR_SLOTS_SHIFT) | FRMW_ACT_NO_RESET;
}

void nvemu_fw_free(struct nvemu_ctrl *ctrl)
{
	free(ctrl->fw.image);
	ctrl->fw.image = NULL;
	ctrl->fw.image_len = 0;
}

static bool slot_empty(const struct nvemu_fw_state *fw, unsigned slot)
{
	static const char zero[8];

	return !memcmp(fw->slot_rev[slot - 1], zero, sizeof(zero));
}

void nvemu_fw_reset(struct nvemu_ctrl *ctrl)
{
	struct nvemu_fw_state *fw = &ctrl->fw;

	if (fw->next_slot && fw->next_slot <= fw->nr_slots && !slot_empty(fw, fw->next_slot))
		fw->active_slot = fw->next_slot;
	fw->next_slot = 0;
}

void nvemu_execute_fw_download(struct nvemu_req *req)
{
	struct nvemu_fw_state *fw = &req->ctrl->fw;
	uint64_t len = ((uint64_t)req->cmd.cdw10 + 1) * 4;
	uint64_t off = (uint64_t)req->cmd.cdw11 * 4;
	uint8_t *img;
	uint16_t st;

	if (off + len > NVEMU_FW_IMAGE_MAX) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
		return;
	}
	/*
	 * Pieces must follow each other. Offset 0 starts a new image, so that a
	 * host can restart an interrupted download.
	 */
	if (off && off < fw->image_len) {
		nvemu_req_complete(req, fw_status(NVME_SC_OVERLAPPING_RANGE));
		return;
	}
	if (off > fw->image_len) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
		return;
	}
	st = nvemu_req_check_len(req, (uint32_t)len);
	if (st) {
		nvemu_req_complete(req, st);
		return;
	}
	if (!off)
		fw->image_len = 0;
	img = realloc(fw->image, off + len);
	if (!img) {
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
		return;
	}
	fw->image = img;
	st = nvemu_req_from_host(req, img + off, (uint32_t)len);
	if (!st)
		fw->image_len = off + len;
	nvemu_req_complete(req, st);
}

/* The revision of the downloaded image, false if it is not a valid nvemu image. */
static bool image_rev(const struct nvemu_fw_state *fw, char rev[8])
{
	if (!fw->image || fw->image_len < 8 || fw->image[0] == ' ')
		return false;
	for (unsigned i = 0; i < 8; i++)
		if (fw->image[i] < 0x20 || fw->image[i] > 0x7e)
			return false;
	memcpy(rev, fw->image, 8);
	return true;
}

/* FS 0: the controller picks a writable slot, preferring an empty inactive one. */
static unsigned choose_slot(const struct nvemu_fw_state *fw)
{
	unsigned s;

	for (s = 2; s <= fw->nr_slots; s++)
		if (s != fw->active_slot && slot_empty(fw, s))
			return s;
	for (s = 2; s <= fw->nr_slots; s++)
		if (s != fw->active_slot)
			return s;
	return fw->nr_slots >= 2 ? fw->active_slot : 0;
}

static uint16_t fw_activate_now(struct nvemu_ctrl *ctrl, unsigned slot)
{
	struct nvemu_fw_state *fw = &ctrl->fw;

	fw->active_slot = (uint8_t)slot;
	if (fw->next_slot == slot)
		fw->next_slot = 0;
	nvemu_ctrl_add_event(ctrl, NVME_AER_NOTICE, NVME_AER_NOTICE_FW_ACT_STARTING,
			     NVME_LOG_LID_FW_SLOT);
	return 0;
}

static uint16_t fw_commit(struct nvemu_ctrl *ctrl, unsigned fs, unsigned ca)
{
	struct nvemu_fw_state *fw = &ctrl->fw;
	char rev[8];
	bool have_image = fw->image_len != 0;

	if (fs > fw->nr_slots)
		return fw_status(NVME_SC_FIRMWARE_SLOT);

	if (ca == FW_CA_ACTIVATE || (ca == FW_CA_REPLACE_NOW && !have_image)) {
		if (!fs)
			return fw_status(NVME_SC_FIRMWARE_SLOT);
		if (slot_empty(fw, fs))
			return fw_status(NVME_SC_FIRMWARE_IMAGE);
		if (ca == FW_CA_REPLACE_NOW)
			return fw_activate_now(ctrl, fs);
		if (fs == fw->active_slot) {
			fw->next_slot = 0; /* already running: nothing left to activate */
			return 0;
		}
		fw->next_slot = (uint8_t)fs;
		return NVEMU_SC_CMD(NVME_SC_FW_NEEDS_RESET);
	}

	/* CA 0, 1 and 3 with an image: replace the image in the slot. */
	if (!have_image)
		return fw_status(NVME_SC_FIRMWARE_IMAGE);
	if (!fs)
		fs = choose_slot(fw);
	if (fs == 1 || !fs)
		return fw_status(NVME_SC_FIRMWARE_SLOT); /* slot 1 is read-only */
	if (!image_rev(fw, rev)) {
		nvemu_fw_free(ctrl); /* a bad image is consumed: the next download restarts */
		return fw_status(NVME_SC_FIRMWARE_IMAGE);
	}
	memcpy(fw->slot_rev[fs - 1], rev, 8);
	nvemu_fw_free(ctrl);
	switch (ca) {
	case FW_CA_REPLACE_ACTIVATE:
		/* The active slot reloads its (new) image at reset by itself. */
		fw->next_slot = fs == fw->active_slot ? 0 : (uint8_t)fs;
		return NVEMU_SC_CMD(NVME_SC_FW_NEEDS_RESET);
	case FW_CA_REPLACE_NOW:
		return fw_activate_now(ctrl, fs);
	default:
		return 0;
	}
}

void nvemu_execute_fw_commit(struct nvemu_req *req)
{
	uint32_t cdw10 = req->cmd.cdw10;
	unsigned fs = cdw10 & 0x7, ca = (cdw10 >> 3) & 0x7;

	switch (ca) {
	case FW_CA_REPLACE:
	case FW_CA_REPLACE_ACTIVATE:
	case FW_CA_ACTIVATE:
	case FW_CA_REPLACE_NOW:
		nvemu_req_complete(req, fw_commit(req->ctrl, fs, ca));
		return;
	default:
		/* 6h/7h are Boot Partition actions: no boot partitions (CAP.BPS = 0). */
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
		return;
	}
}
