// SPDX-License-Identifier: MIT
/*
 * Sanitize (NVMe Base 2.0, 5.24 and 8.21) and the Sanitize Status log
 * (81h). A sanitize erases every namespace of the subsystem in the
 * background: the command completes once the operation started, commands
 * other than the few the spec allows fail with Sanitize In Progress until
 * it ends, and its end raises the Sanitize Operation Completed event on
 * every controller. Block Erase and Crypto Erase deallocate (the data reads
 * back as zeroes); Overwrite writes the pattern of the last pass, which is
 * all a host can observe of several passes.
 */
#include <stdlib.h>
#include <string.h>

#include "nvemu-internal.h"

#define SANACT(cdw10)  ((cdw10)&0x7)
#define AUSE(cdw10)    (((cdw10) >> 3) & 1)
#define OWPASS(cdw10)  (((cdw10) >> 4) & 0xf)
#define OIPBP(cdw10)   (((cdw10) >> 8) & 1)
#define NODAS(cdw10)   (((cdw10) >> 9) & 1)
#define SAN_CHUNK      (1u << 20) /* bytes an Overwrite writes per bio */
#define SAN_PROG_SCALE 65536u

struct san_job {
	struct nvemu_subsys *subsys;
	uint8_t sanact;
	uint32_t pattern;     /* Overwrite: the last pass's pattern */
	uint64_t total, done; /* bytes, for SPROG */
	unsigned cur;	      /* namespace being erased */
	uint64_t off;	      /* in it */
	int err;
	struct nvemu_bio bio;
	void *buf; /* Overwrite: SAN_CHUNK bytes of the pattern */
	unsigned nr;
	struct nvemu_ns *ns[];
};

static uint16_t sprog(const struct san_job *j)
{
	if (!j->total)
		return 0;
	return (uint16_t)((unsigned __int128)j->done * (SAN_PROG_SCALE - 1) / j->total);
}

static void san_finish(struct san_job *j)
{
	struct nvemu_subsys *s = j->subsys;
	struct nvemu_sanitize *san = &s->san;

	san->running = false;
	san->job = NULL;
	san->sprog = (uint16_t)(SAN_PROG_SCALE - 1);
	if (j->err) {
		san->failed = true;
		san->sstat = NVME_SANITIZE_SSTAT_STATUS_COMPLETED_FAILED;
	} else {
		san->failed = false;
		san->sstat = NVME_SANITIZE_SSTAT_STATUS_COMPLETE_SUCCESS;
		if (j->sanact == NVME_SANITIZE_SANACT_START_OVERWRITE)
			san->sstat |= (uint16_t)(san->passes
						 << NVME_SANITIZE_SSTAT_COMPLETED_PASSES_SHIFT);
	}
	/* If this cannot be saved, a restart finds it running and runs it again: harmless. */
	nvemu_subsys_state_save(s);
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		nvemu_ctrl_add_event(s->ctrls[i], NVME_AER_CSS, NVME_AER_CSS_NVM_SANITIZE_COMPLETED,
				     NVME_LOG_LID_SANITIZE);
	for (unsigned i = 0; i < j->nr; i++)
		nvemu_ns_put(j->ns[i]);
	free(j->buf);
	free(j);
}

static void san_step(struct san_job *j);

static void san_bio_done(struct nvemu_bio *bio, int err)
{
	struct san_job *j = bio->private;

	if (err && !j->err)
		j->err = err;
	j->done += bio->len;
	j->off += bio->len;
	j->subsys->san.sprog = sprog(j);
	san_step(j);
}

/* Start the next bio, or finish. One bio at a time keeps SPROG meaningful. */
static void san_step(struct san_job *j)
{
	while (!j->err && j->cur < j->nr) {
		struct nvemu_ns *ns = j->ns[j->cur];
		uint64_t size = ns->removed ? 0 : ns->nblocks << ns->lba_shift;
		struct nvemu_bio *bio = &j->bio;
		int ret;

		if (j->off >= size) {
			j->cur++;
			j->off = 0;
			continue;
		}
		memset(bio, 0, sizeof(*bio));
		bio->offset = j->off;
		bio->private = j;
		bio->end_io = san_bio_done;
		if (j->sanact == NVME_SANITIZE_SANACT_START_OVERWRITE) {
			bio->op = NVEMU_BIO_WRITE;
			bio->buf = j->buf;
			bio->len = size - j->off < SAN_CHUNK ? size - j->off : SAN_CHUNK;
		} else {
			bio->op = NVEMU_BIO_DEALLOCATE;
			bio->len = size - j->off;
		}
		ret = nvemu_bdev_submit(ns->bdev, bio);
		if (!ret)
			return; /* san_bio_done continues */
		j->err = ret;
	}
	san_finish(j);
}

static uint16_t san_start(struct nvemu_subsys *s, uint32_t cdw10, uint32_t ovrpat)
{
	struct nvemu_sanitize *san = &s->san, saved = *san;
	struct san_job *j;

	for (unsigned i = 0; i < s->nr_ns; i++)
		if (s->ns[i]->bdev->read_only)
			return NVEMU_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVEMU_DNR;
	j = calloc(1, sizeof(*j) + s->nr_ns * sizeof(j->ns[0]));
	if (!j)
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	j->subsys = s;
	j->sanact = SANACT(cdw10);
	san->passes = 0;
	if (j->sanact == NVME_SANITIZE_SANACT_START_OVERWRITE) {
		unsigned passes = OWPASS(cdw10) ? OWPASS(cdw10) : 16;
		uint32_t *p;

		/* With inversion, even passes write the inverted pattern. */
		j->pattern = OIPBP(cdw10) && !(passes & 1) ? ~ovrpat : ovrpat;
		san->passes = (uint8_t)(passes & 0x1f);
		if (posix_memalign(&j->buf, 4096, SAN_CHUNK)) {
			free(j);
			return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
		}
		p = j->buf;
		for (size_t k = 0; k < SAN_CHUNK / 4; k++)
			p[k] = htole32(j->pattern);
	}
	/* Held until the erase ends: they keep the subsystem, too. */
	for (unsigned i = 0; i < s->nr_ns; i++) {
		j->ns[j->nr++] = nvemu_ns_get(s->ns[i]);
		j->total += s->ns[i]->nblocks << s->ns[i]->lba_shift;
	}
	san->running = true;
	san->resume = false;
	san->job = j;
	san->sprog = 0;
	san->scdw10 = cdw10;
	san->ovrpat = ovrpat;
	san->sstat = NVME_SANITIZE_SSTAT_STATUS_IN_PROGESS;
	/* Once started it must continue after a power cycle: refuse what could not be kept. */
	if (nvemu_subsys_state_save(s)) {
		*san = saved;
		for (unsigned i = 0; i < j->nr; i++)
			nvemu_ns_put(j->ns[i]);
		free(j->buf);
		free(j);
		return NVEMU_SC_GENERIC(NVME_SC_INTERNAL);
	}
	/* Started after the command's completion is posted: see nvemu_execute_sanitize. */
	return 0;
}

void nvemu_execute_sanitize(struct nvemu_req *req)
{
	struct nvemu_subsys *s = req->ctrl->subsys;
	uint32_t cdw10 = req->cmd.cdw10;
	uint8_t act = SANACT(cdw10);
	uint16_t st;

	if (req->cmd.nsid) {
		/* NSID is reserved: Sanitize works on the whole subsystem. */
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
		return;
	}
	switch (act) {
	case NVME_SANITIZE_SANACT_EXIT_FAILURE:
		/* Leaves failure mode (the log still reports the failure); a no-op otherwise. */
		if (s->san.failed) {
			s->san.failed = false;
			if (nvemu_subsys_state_save(s)) {
				s->san.failed = true;
				nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INTERNAL));
				return;
			}
		}
		nvemu_req_complete(req, 0);
		return;
	case NVME_SANITIZE_SANACT_START_BLOCK_ERASE:
	case NVME_SANITIZE_SANACT_START_OVERWRITE:
	case NVME_SANITIZE_SANACT_START_CRYPTO_ERASE:
		break;
	default:
		nvemu_req_complete(req, NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR);
		return;
	}
	/* No-Deallocate After Sanitize is not supported: NDI is set, so it is ignored. */
	st = san_start(s, cdw10, req->cmd.cdw11);
	nvemu_req_complete(req, st);
	if (!st)
		san_step(s->san.job);
}

void nvemu_sanitize_resume(struct nvemu_subsys *s)
{
	struct nvemu_sanitize *san = &s->san;

	if (!san->resume || san->running || !s->nr_ns)
		return;
	if (san_start(s, san->scdw10, san->ovrpat)) {
		/* It cannot run now: it stays pending, and commands keep failing. */
		san->resume = true;
		return;
	}
	san_step(san->job);
}

uint16_t nvemu_sanitize_check(const struct nvemu_ctrl *ctrl, const struct nvemu_req *req)
{
	const struct nvemu_sanitize *san = &ctrl->subsys->san;
	uint8_t opc = req->cmd.opc;

	if (!san->running && !san->resume && !san->failed)
		return 0;
	if (req->sqid) {
		if (opc == nvme_cmd_flush)
			return 0;
		return san->running || san->resume ? NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS)
						   : NVEMU_SC_GENERIC(NVME_SC_SANITIZE_FAILED);
	}
	/*
	 * Admin commands a host needs to bring a controller up and watch the
	 * operation (Base 2.1, 8.1.24.4 and the sanitize column of Figure 142).
	 */
	switch (opc) {
	case nvme_admin_create_cq:
	case nvme_admin_create_sq:
	case nvme_admin_delete_cq:
	case nvme_admin_delete_sq:
	case nvme_admin_dbbuf:
	case nvme_admin_directive_send:
	case nvme_admin_directive_recv:
	case nvme_admin_virtual_mgmt:
	case nvme_admin_nvme_mi_send:
	case nvme_admin_nvme_mi_recv:
	case nvme_admin_abort_cmd:
	case nvme_admin_async_event:
	case nvme_admin_get_log_page:
	case nvme_admin_identify:
	case nvme_admin_keep_alive:
	case nvme_admin_get_features:
	case nvme_admin_set_features:
		return 0;
	case nvme_admin_sanitize_nvm:
		/* A new sanitize may restart a failed one, not overlap a running one. */
		return san->running || san->resume ? NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS)
						   : 0;
	default:
		return san->running || san->resume ? NVEMU_SC_GENERIC(NVME_SC_SANITIZE_IN_PROGRESS)
						   : NVEMU_SC_GENERIC(NVME_SC_SANITIZE_FAILED);
	}
}

void nvemu_log_sanitize(const struct nvemu_subsys *s, void *buf, size_t *size)
{
	struct nvme_sanitize_log_page *l = buf;

	l->sprog = htole16(s->san.running || s->san.resume ? s->san.sprog
							   : (uint16_t)(SAN_PROG_SCALE - 1));
	l->sstat = htole16(s->san.sstat);
	l->scdw10 = htole32(s->san.scdw10);
	/* Estimated times: 0xffffffff is "no estimate". */
	l->eto = l->etbe = l->etce = htole32(0xffffffffu);
	l->etond = l->etbend = l->etcend = htole32(0xffffffffu);
	*size = sizeof(*l);
}
