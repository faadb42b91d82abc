/* SPDX-License-Identifier: MIT */
/*
 * Get Log Page (NVMe Base 2.0, 5.16): Supported Log Pages, Error
 * Information, SMART / Health, Firmware Slot, Changed Namespace List,
 * Commands Supported and Effects, Feature Identifiers Supported and Effects
 * and Sanitize Status (built by admin-sanitize.c).
 */
#include <stdlib.h>

#include "nvemu-internal.h"
#include "reservations.h"

#define LID(cdw10)   ((uint8_t)((cdw10)&0xff))
#define RAE(cdw10)   (((cdw10) >> 15) & 1)
#define NUMDL(cdw10) ((cdw10) >> 16)
#define NUMDU(cdw11) ((cdw11)&0xffff)
#define OT(cdw14)    (((cdw14) >> 23) & 1)
#define CSI(cdw14)   ((uint8_t)((cdw14) >> 24))
#define LSP(cdw10)   (((cdw10) >> 8) & 0x7f)

#define NS_PER_HOUR (3600ull * 1000000000ull)
#define NS_PER_MIN  (60ull * 1000000000ull)

/* Large enough for every log this file builds. */
#define LOG_MAX 4096

_Static_assert(sizeof(struct nvme_supported_log_pages) <= LOG_MAX, "log buffer");
_Static_assert(sizeof(struct nvme_cmd_effects_log) <= LOG_MAX, "log buffer");
_Static_assert(NVEMU_ERRLOG_ENTRIES * sizeof(struct nvme_error_log_page) <= LOG_MAX, "log buffer");
_Static_assert(NVEMU_CHANGED_NS_MAX * sizeof(uint32_t) <= LOG_MAX, "log buffer");
_Static_assert(sizeof(struct nvme_fid_supported_effects_log) <= LOG_MAX, "log buffer");
_Static_assert(sizeof(struct nvme_sanitize_log_page) <= LOG_MAX, "log buffer");

static const uint8_t supported_lids[] = {
	NVME_LOG_LID_SUPPORTED_LOG_PAGES,
	NVME_LOG_LID_ERROR,
	NVME_LOG_LID_SMART,
	NVME_LOG_LID_FW_SLOT,
	NVME_LOG_LID_CHANGED_NS,
	NVME_LOG_LID_CMD_EFFECTS,
	NVME_LOG_LID_RESERVATION,
	NVME_LOG_LID_FID_SUPPORTED_EFFECTS,
	NVME_LOG_LID_SANITIZE,
};

/* 128-bit little-endian counter as SMART reports them. */
/* Data units are thousands of 512-byte units, rounded up. */
static uint64_t data_units(uint64_t units)
{
	return units / 1000 + (units % 1000 != 0);
}

static uint16_t invalid_field(void)
{
	return NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR;
}

/* ---- the logs; each fills buf (zeroed, LOG_MAX bytes) and sets *size */

static void log_supported(void *buf, size_t *size)
{
	struct nvme_supported_log_pages *l = buf;

	for (size_t i = 0; i < sizeof(supported_lids); i++)
		l->lid_support[supported_lids[i]] = htole32(1u << 0); /* LSUPP */
	*size = sizeof(*l);
}

/* The ANA log is offered while ANA reporting is on. */
static void log_supported_ana(const struct nvemu_ctrl *ctrl, void *buf)
{
	struct nvme_supported_log_pages *l = buf;

	if (ctrl->subsys->ana_reporting)
		l->lid_support[NVME_LOG_LID_ANA] = htole32(1u << 0); /* LSUPP */
}

static void log_fid_effects(const struct nvemu_ctrl *ctrl, void *buf, size_t *size)
{
	struct nvme_fid_supported_effects_log *l = buf;

	for (unsigned fid = 0; fid < NVME_LOG_FID_SUPPORTED_EFFECTS_MAX; fid++)
		l->fid_support[fid] = htole32(nvemu_feature_effects(ctrl, (uint8_t)fid));
	*size = sizeof(*l);
}

static void log_error(struct nvemu_ctrl *ctrl, void *buf, size_t *size)
{
	struct nvme_error_log_page *l = buf;
	uint64_t n =
		ctrl->err_count < NVEMU_ERRLOG_ENTRIES ? ctrl->err_count : NVEMU_ERRLOG_ENTRIES;

	for (uint64_t i = 0; i < n; i++)
		l[i] = ctrl->errlog[(ctrl->err_count - 1 - i) % NVEMU_ERRLOG_ENTRIES];
	*size = NVEMU_ERRLOG_ENTRIES * sizeof(*l);
}

static uint16_t log_smart(struct nvemu_ctrl *ctrl, uint32_t nsid, void *buf, size_t *size)
{
	const struct nvemu_subsys *s = ctrl->subsys;
	const struct nvemu_health *h = &s->health;
	const struct nvemu_smart_counters *c = &ctrl->smart;
	struct nvme_smart_log *l = buf;
	uint64_t now = nvemu_now_ns();
	uint16_t temp = htole16(h->temperature_k);

	/* LPA bit 0 is clear: there is no per-namespace log to return. */
	if (nsid && nsid != NVEMU_NSID_ALL && !nvemu_ctrl_find_ns(ctrl, nsid))
		return invalid_field();
	l->critical_warning = h->critical_warning | ctrl->temp_warning;
	if (h->avail_spare < h->spare_thresh)
		l->critical_warning |= NVME_SMART_CRIT_SPARE;
	memcpy(l->temperature, &temp, sizeof(temp));
	l->avail_spare = h->avail_spare;
	l->spare_thresh = h->spare_thresh;
	l->percent_used = h->percent_used;
	put_le128(l->data_units_read, data_units(c->units_read));
	put_le128(l->data_units_written, data_units(c->units_written));
	put_le128(l->host_reads, c->host_read_cmds);
	put_le128(l->host_writes, c->host_write_cmds);
	put_le128(l->ctrl_busy_time, c->busy_ns / NS_PER_MIN);
	put_le128(l->power_cycles, s->power_cycles);
	put_le128(l->power_on_hours,
		  now > s->poh_base_ns ? (now - s->poh_base_ns) / NS_PER_HOUR : 0);
	put_le128(l->media_errors, c->media_errors);
	put_le128(l->num_err_log_entries, ctrl->err_count);
	*size = sizeof(*l);
	return 0;
}

static void log_fw_slot(struct nvemu_ctrl *ctrl, void *buf, size_t *size)
{
	struct nvme_firmware_slot *l = buf;
	const struct nvemu_fw_state *fw = &ctrl->fw;

	l->afi = (uint8_t)((fw->active_slot & 7) | (fw->next_slot & 7) << 4);
	for (unsigned i = 0; i < NVEMU_FW_SLOTS_MAX && i < fw->nr_slots; i++)
		memcpy(l->frs[i], fw->slot_rev[i], sizeof(l->frs[i]));
	*size = sizeof(*l);
}

static void log_changed_ns(struct nvemu_ctrl *ctrl, void *buf, size_t *size)
{
	uint32_t *l = buf;

	if (ctrl->changed_ns_overflow) {
		l[0] = htole32(0xffffffffu);
	} else {
		for (unsigned i = 0; i < ctrl->nr_changed_ns && i < NVEMU_CHANGED_NS_MAX; i++)
			l[i] = htole32(ctrl->changed_ns[i]);
	}
	*size = NVEMU_CHANGED_NS_MAX * sizeof(*l);
}

static uint16_t log_cmd_effects(struct nvemu_ctrl *ctrl, uint8_t csi, void *buf, size_t *size)
{
	struct nvme_cmd_effects_log *l = buf;

	if (csi != NVME_CSI_NVM)
		return invalid_field();
	for (unsigned opc = 0; opc < 256; opc++) {
		const struct nvemu_cmd_desc *a = nvemu_admin_cmd(ctrl, (uint8_t)opc);
		const struct nvemu_cmd_desc *io = nvemu_io_cmd(ctrl, (uint8_t)opc);

		if (a)
			l->acs[opc] = htole32(NVME_CMD_EFFECTS_CSUPP | a->effects);
		if (io)
			l->iocs[opc] = htole32(NVME_CMD_EFFECTS_CSUPP | io->effects);
	}
	*size = sizeof(*l);
	return 0;
}

/* The whole log page lid into log (LOG_MAX bytes), its length in size. */
static uint16_t log_build(struct nvemu_ctrl *ctrl, uint8_t lid, uint32_t nsid, uint8_t csi,
			  uint8_t lsp, uint8_t *log, size_t *size)
{
	switch (lid) {
	case NVME_LOG_LID_SUPPORTED_LOG_PAGES:
		log_supported(log, size);
		log_supported_ana(ctrl, log);
		return 0;
	case NVME_LOG_LID_ERROR:
		log_error(ctrl, log, size);
		return 0;
	case NVME_LOG_LID_SMART:
		return log_smart(ctrl, nsid, log, size);
	case NVME_LOG_LID_FW_SLOT:
		log_fw_slot(ctrl, log, size);
		return 0;
	case NVME_LOG_LID_CHANGED_NS:
		log_changed_ns(ctrl, log, size);
		return 0;
	case NVME_LOG_LID_RESERVATION:
		nvemu_resv_log(ctrl, log, size);
		return 0;
	case NVME_LOG_LID_CMD_EFFECTS:
		return log_cmd_effects(ctrl, csi, log, size);
	case NVME_LOG_LID_ANA:
		if (lsp & ~(uint8_t)NVME_LOG_ANA_LSP_RGO_GROUPS_ONLY)
			return invalid_field();
		return nvemu_ana_log(ctrl, lsp & NVME_LOG_ANA_LSP_RGO_GROUPS_ONLY, log, size);
	case NVME_LOG_LID_FID_SUPPORTED_EFFECTS:
		log_fid_effects(ctrl, log, size);
		return 0;
	case NVME_LOG_LID_SANITIZE:
		nvemu_log_sanitize(ctrl->subsys, log, size);
		return 0;
	default:
		return NVEMU_SC_CMD(NVME_SC_INVALID_LOG_PAGE) | NVEMU_DNR;
	}
}

void nvemu_execute_get_log_page(struct nvemu_req *req)
{
	struct nvemu_ctrl *ctrl = req->ctrl;
	uint32_t cdw10 = req->cmd.cdw10, cdw11 = req->cmd.cdw11, cdw14 = req->cmd.cdw14;
	uint8_t lid = LID(cdw10);
	bool rae = RAE(cdw10);
	uint64_t len = ((uint64_t)(NUMDU(cdw11) << 16 | NUMDL(cdw10)) + 1) * 4;
	uint64_t off = (uint64_t)req->cmd.cdw13 << 32 | req->cmd.cdw12;
	uint8_t *log = NULL, *out = NULL;
	size_t size = 0, n;
	uint16_t st;

	st = nvemu_req_check_len(req, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
	if (!st && len > UINT32_MAX)
		st = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVEMU_DNR;
	if (st)
		goto out;
	/* Offsets are byte offsets (OT = 0) and dword aligned. */
	if (OT(cdw14) || off & 3) {
		st = invalid_field();
		goto out;
	}
	log = calloc(1, nvemu_ana_log_max(ctrl) > LOG_MAX ? nvemu_ana_log_max(ctrl) : LOG_MAX);
	if (!log) {
		st = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
		goto out;
	}

	st = log_build(ctrl, lid, req->cmd.nsid, CSI(cdw14), (uint8_t)LSP(cdw10), log, &size);
	if (st)
		goto out;
	if (off > size) {
		st = invalid_field();
		goto out;
	}

	out = calloc(1, (size_t)len);
	if (!out) {
		st = NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
		goto out;
	}
	n = size - (size_t)off;
	if (n > len)
		n = (size_t)len;
	memcpy(out, log + off, n);
	st = nvemu_req_to_host(req, out, (uint32_t)len);
	if (st)
		goto out;

	if (lid == NVME_LOG_LID_CHANGED_NS && !rae) {
		ctrl->nr_changed_ns = 0;
		ctrl->changed_ns_overflow = false;
	}
	/* Unmasking may complete an AER: do it while req is still ours. */
	nvemu_ctrl_log_read(ctrl, lid, rae);
out:
	free(log);
	free(out);
	nvemu_req_complete(req, st);
}
