/* SPDX-License-Identifier: MIT */
/*
 * The subsystem model: lifecycle of subsystems, ports, controllers and
 * namespaces, attachment, resize and health. Every entry point validates
 * its input and reports a message naming the field; nothing asserts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <poll.h>
#include <uuid/uuid.h>

#include "config.h"
#include "nvemu-internal.h"
#include "reservations.h"

#define DEFAULT_TNVMCAP (1ull << 40) /* 1 TiB for Namespace Management */

const char *nvemu_version(void)
{
	return NVEMU_VERSION;
}

uint64_t nvemu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void nvemu_strpad(char *dst, size_t dst_len, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n > dst_len)
		n = dst_len;
	memset(dst, ' ', dst_len);
	if (n)
		memcpy(dst, src, n);
}

uint32_t nvemu_lbaf_size(uint8_t lbaf)
{
	static const uint32_t sizes[NVEMU_NUM_LBAF] = {512, 4096};

	return lbaf < NVEMU_NUM_LBAF ? sizes[lbaf] : 0;
}

/* ---- validation */

static bool is_printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

int nvemu_nqn_validate(const char *nqn, struct nvemu_error *err)
{
	size_t len, i;

	if (!nqn || !*nqn)
		return nvemu_error_set(err, -EINVAL, "nqn: required");
	len = strlen(nqn);
	if (len > NVEMU_NQN_MAX)
		return nvemu_error_set(err, -EINVAL, "nqn: at most %d bytes", NVEMU_NQN_MAX);
	if (!is_printable(nqn))
		return nvemu_error_set(err, -EINVAL, "nqn: printable ASCII only");
	if (strncmp(nqn, "nqn.", 4))
		return nvemu_error_set(err, -EINVAL, "nqn: must start with \"nqn.\"");
	/* nqn.yyyy-mm.<reverse domain>[:<string>] */
	for (i = 4; i < 8; i++)
		if (nqn[i] < '0' || nqn[i] > '9')
			goto bad_date;
	if (nqn[8] != '-' || nqn[9] < '0' || nqn[9] > '1' || nqn[10] < '0' || nqn[10] > '9' ||
	    nqn[11] != '.')
		goto bad_date;
	if ((nqn[9] - '0') * 10 + (nqn[10] - '0') < 1 || (nqn[9] - '0') * 10 + (nqn[10] - '0') > 12)
		goto bad_date;
	for (i = 12; nqn[i] && nqn[i] != ':'; i++) {
		char c = nqn[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return nvemu_error_set(
				err, -EINVAL,
				"nqn: the domain part may hold letters, digits, '-' and '.' only");
	}
	if (i == 12 || nqn[i - 1] == '.')
		return nvemu_error_set(err, -EINVAL,
				       "nqn: a reverse domain name must follow the date");
	if (nqn[i] == ':' && nqn[i + 1] == 0)
		return nvemu_error_set(err, -EINVAL, "nqn: nothing follows ':'");
	return 0;
bad_date:
	return nvemu_error_set(err, -EINVAL, "nqn: must be nqn.yyyy-mm.<reverse domain>[:<name>]");
}

static int check_string(const char *field, const char *s, size_t max, bool allow_empty,
			struct nvemu_error *err)
{
	if (!s)
		return 0;
	if (!allow_empty && !*s)
		return nvemu_error_set(err, -EINVAL, "%s: must not be empty", field);
	if (strlen(s) > max)
		return nvemu_error_set(err, -EINVAL, "%s: at most %zu characters", field, max);
	if (!is_printable(s))
		return nvemu_error_set(err, -EINVAL, "%s: printable ASCII only", field);
	return 0;
}

/* ---- subsystem */

void nvemu_subsys_params_init(struct nvemu_subsys_params *p)
{
	memset(p, 0, sizeof(*p));
	p->nn = 0xfffffffe;
	p->mnan = 1024;
	nvemu_vendor_build_default(&p->vendor);
}

int nvemu_subsys_info_environment(struct nvemu_subsys_params *p, struct nvemu_error *err)
{
	nvemu_subsys_params_init(p);
	return nvemu_vendor_from_env(&p->vendor, err);
}

int nvemu_subsys_create(const struct nvemu_subsys_params *p, struct nvemu_subsys **out,
			struct nvemu_error *err)
{
	struct nvemu_subsys *s;
	uuid_t u;
	char ustr[37];
	int ret;

	if (p->nqn && (ret = nvemu_nqn_validate(p->nqn, err)))
		return ret;
	if ((ret = check_string("serial_number", p->serial, NVEMU_SN_MAX, false, err)) ||
	    (ret = check_string("model_number", p->model, NVEMU_MN_MAX, false, err)) ||
	    (ret = check_string("firmware_revision", p->firmware_rev, NVEMU_FR_MAX, false, err)))
		return ret;
	if (p->nn < 1 || p->nn > 0xfffffffe)
		return nvemu_error_set(err, -EINVAL, "nn: must be in 1..0xfffffffe");
	if (p->mnan < 1 || p->mnan > p->nn)
		return nvemu_error_set(err, -EINVAL, "mnan: must be in 1..nn (%u)", p->nn);

	s = calloc(1, sizeof(*s));
	if (!s)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	uuid_generate(u);
	uuid_unparse_lower(u, ustr);
	if (p->nqn)
		snprintf(s->nqn, sizeof(s->nqn), "%s", p->nqn);
	else
		snprintf(s->nqn, sizeof(s->nqn), "nqn.2014-08.org.nvmexpress:uuid:%s", ustr);
	if (p->serial)
		snprintf(s->sn, sizeof(s->sn), "%s", p->serial);
	else /* a serial unique enough to tell instances apart */
		snprintf(s->sn, sizeof(s->sn), "NVEMU%.8s%.4s", ustr, ustr + 9);
	snprintf(s->mn, sizeof(s->mn), "%s", p->model ? p->model : "nvemu");
	snprintf(s->fr, sizeof(s->fr), "%s", p->firmware_rev ? p->firmware_rev : NVEMU_VERSION);
	s->nn = p->nn;
	s->mnan = p->mnan;
	s->single_ctrl = p->single_ctrl;
	s->vendor = p->vendor;
	s->tnvmcap = DEFAULT_TNVMCAP;
	s->health =
		(struct nvemu_health){.temperature_k = 303, .avail_spare = 100, .spare_thresh = 10};
	s->poh_base_ns = nvemu_now_ns();
	*out = s;
	return 0;
}

static void ctrl_free(struct nvemu_ctrl *ctrl)
{
	for (unsigned i = 0; i < ctrl->nr_ns; i++)
		ctrl->ns[i]->nr_attached--;
	nvemu_fw_free(ctrl);
	nvemu_resv_ctrl_free(ctrl);
	free(ctrl->ns);
	free(ctrl->sqs);
	free(ctrl->cqs);
	free(ctrl);
}

/* A destroyed subsystem goes once nothing it owned is still in use. */
static void subsys_maybe_free(struct nvemu_subsys *s)
{
	if (!s->dying || !LIST_EMPTY(&s->dead_ns) || !LIST_EMPTY(&s->dying_ctrls))
		return;
	free(s);
}

static void ns_release(struct nvemu_ns *ns)
{
	struct nvemu_subsys *s = ns->subsys;

	if (ns->removed)
		LIST_REMOVE(ns, dead_link);
	if (ns->bdev) {
		ns->bdev->users--;
		if (ns->owns_bdev)
			nvemu_bdev_destroy(ns->bdev, NULL);
	}
	nvemu_resv_ns_free(ns);
	nvemu_ana_ns_free(ns);
	free(ns);
	subsys_maybe_free(s);
}

void nvemu_ns_put(struct nvemu_ns *ns)
{
	if (--ns->refs == 0)
		ns_release(ns);
	else if (ns->resv)
		nvemu_fused_ns_put(ns); /* a fused pair may be waiting for the I/O to drain */
}

/* Take ns out of the subsystem; it lives on while commands hold it. */
static void ns_unlink(struct nvemu_subsys *s, struct nvemu_ns *ns)
{
	ns->removed = true;
	LIST_INSERT_HEAD(&s->dead_ns, ns, dead_link);
	nvemu_ns_put(ns);
}

void nvemu_ctrl_release(struct nvemu_ctrl *ctrl)
{
	struct nvemu_subsys *s = ctrl->subsys;

	LIST_REMOVE(ctrl, dying_link);
	ctrl_free(ctrl);
	subsys_maybe_free(s);
}

/* Detach every namespace from ctrl, without events: the controller is going away. */
static void ctrl_detach_all(struct nvemu_ctrl *ctrl)
{
	for (unsigned i = 0; i < ctrl->nr_ns; i++)
		ctrl->ns[i]->nr_attached--;
	ctrl->nr_ns = 0;
}

/*
 * Stop a controller that is leaving the model: what it holds goes back
 * first. reset: also a controller reset, which reaches a transport still
 * bound through its reset hook.
 */
static void ctrl_quiesce(struct nvemu_ctrl *ctrl, bool reset)
{
	/* Teardown owns the controller now; a stale waiter must not run. */
	ctrl->idle_fn = NULL;
	nvemu_ctrl_fail_held(ctrl, NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	nvemu_ctrl_abort_aers(ctrl);
	if (reset && nvemu_ctrl_enabled(ctrl))
		nvemu_ctrl_set_cc(ctrl, 0);
}

void nvemu_subsys_destroy(struct nvemu_subsys *s)
{
	if (!s || s->dying)
		return;
	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *ctrl = s->ctrls[i];

		/* No controller reset: the transport may be half gone already. */
		ctrl_quiesce(ctrl, false);
		ctrl_detach_all(ctrl);
		if (nvemu_ctrl_inflight(ctrl)) {
			/* Its completions still reach the transport; the last one frees it. */
			ctrl->dying = true;
			LIST_INSERT_HEAD(&s->dying_ctrls, ctrl, dying_link);
		} else {
			ctrl_free(ctrl);
		}
	}
	free(s->ctrls);
	s->ctrls = NULL;
	s->nr_ctrls = 0;
	while (s->nr_ns) {
		struct nvemu_ns *ns = s->ns[--s->nr_ns];

		ns_unlink(s, ns);
	}
	free(s->ns);
	s->ns = NULL;
	s->ns_cap = 0;
	free(s->ports);
	s->ports = NULL;
	s->nr_ports = 0;
	/* A sanitize still running is not recorded as done: a restart runs it again. */
	free(s->state_file);
	s->state_file = NULL;
	/* Set last: releases above must not free the subsystem under this loop. */
	s->dying = true;
	subsys_maybe_free(s);
}

const char *nvemu_subsys_nqn(const struct nvemu_subsys *subsys)
{
	return subsys->nqn;
}

/* ---- ports */

void nvemu_port_params_init(struct nvemu_port_params *p, enum nvemu_port_type type)
{
	memset(p, 0, sizeof(*p));
	p->type = type;
	switch (type) {
	case NVEMU_PORT_PCIE:
		p->pcie.max_link_speed = 4; /* 16 GT/s */
		p->pcie.max_link_width = 4;
		break;
	case NVEMU_PORT_TWO_WIRE:
		p->two_wire.address = 0x1d; /* the NVMe-MI default SMBus address */
		p->two_wire.max_freq = 1;   /* 100 kHz */
		break;
	case NVEMU_PORT_TCP:
		snprintf(p->tcp.traddr, sizeof(p->tcp.traddr), "127.0.0.1");
		snprintf(p->tcp.trsvcid, sizeof(p->tcp.trsvcid), "4420");
		p->tcp.adrfam = 1; /* NVMF_ADDR_FAMILY_IP4 */
		break;
	}
}

static struct nvemu_port *find_port(struct nvemu_subsys *s, uint16_t id)
{
	for (unsigned i = 0; i < s->nr_ports; i++)
		if (s->ports[i].id == id)
			return &s->ports[i];
	return NULL;
}

int nvemu_subsys_add_port(struct nvemu_subsys *s, const struct nvemu_port_params *p,
			  uint16_t *port_id, struct nvemu_error *err)
{
	struct nvemu_port *ports;

	if (p->type != NVEMU_PORT_PCIE && p->type != NVEMU_PORT_TWO_WIRE &&
	    p->type != NVEMU_PORT_TCP)
		return nvemu_error_set(err, -EINVAL, "type: must be pcie, two-wire or tcp");
	if (p->type == NVEMU_PORT_TWO_WIRE && p->two_wire.address > 0x7f)
		return nvemu_error_set(err, -EINVAL, "address: a 7-bit SMBus/I2C address");
	if (s->nr_ports == 255)
		return nvemu_error_set(err, -ENOSPC, "port: at most 255 ports");
	ports = realloc(s->ports, (s->nr_ports + 1) * sizeof(*ports));
	if (!ports)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	s->ports = ports;
	ports[s->nr_ports] = (struct nvemu_port){.id = s->next_port_id++, .p = *p};
	if (port_id)
		*port_id = ports[s->nr_ports].id;
	s->nr_ports++;
	return 0;
}

int nvemu_subsys_remove_port(struct nvemu_subsys *s, uint16_t port_id, struct nvemu_error *err)
{
	struct nvemu_port *port = find_port(s, port_id);

	if (!port)
		return nvemu_error_set(err, -ENOENT, "port: no port %u", port_id);
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		if (s->ctrls[i]->p.port_id == port_id)
			return nvemu_error_set(err, -EBUSY,
					       "port: controller %u is bound to port %u",
					       s->ctrls[i]->cntlid, port_id);
	memmove(port, port + 1, (size_t)(s->ports + s->nr_ports - port - 1) * sizeof(*port));
	s->nr_ports--;
	return 0;
}

/* ---- controllers */

void nvemu_ctrl_params_init(struct nvemu_ctrl_params *p)
{
	memset(p, 0, sizeof(*p));
	p->num_io_queues = 31;
	p->mdts = 7;
	p->max_queue_entries = 1024;
	p->fw_slots = 4;
	p->write_zeroes = p->compare = p->dsm = true;
	p->compare_write = true; /* fused Compare and Write (io-fused.c) */
	p->aerl = 3;
}

struct nvemu_ctrl *nvemu_subsys_ctrl(struct nvemu_subsys *s, uint16_t cntlid)
{
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		if (s->ctrls[i]->cntlid == cntlid)
			return s->ctrls[i];
	return NULL;
}

uint16_t nvemu_ctrl_cntlid(const struct nvemu_ctrl *ctrl)
{
	return ctrl->cntlid;
}

struct nvemu_subsys *nvemu_ctrl_subsys(struct nvemu_ctrl *ctrl)
{
	return ctrl->subsys;
}

static uint64_t make_cap(const struct nvemu_ctrl_params *p)
{
	return (uint64_t)(p->max_queue_entries - 1) << NVME_CAP_MQES_SHIFT |
	       1ull << NVME_CAP_CQR_SHIFT | 15ull << NVME_CAP_TO_SHIFT |
	       1ull << NVME_CAP_NSSRC_SHIFT | (uint64_t)NVME_CAP_CSS_NVM << NVME_CAP_CSS_SHIFT |
	       0ull << NVME_CAP_MPSMIN_SHIFT | 4ull << NVME_CAP_MPSMAX_SHIFT;
}

int nvemu_subsys_add_ctrl_ex(struct nvemu_subsys *s, const struct nvemu_ctrl_params *p,
			     uint16_t *cntlid, struct nvemu_error *err)
{
	struct nvemu_port *port = find_port(s, p->port_id);
	struct nvemu_ctrl *ctrl, **ctrls;
	uint16_t id = p->cntlid;
	unsigned pos;

	if (!port)
		return nvemu_error_set(err, -ENOENT, "port: no port %u in %s", p->port_id, s->nqn);
	if (port->p.type == NVEMU_PORT_TWO_WIRE)
		return nvemu_error_set(err, -EINVAL,
				       "port: %u is a two-wire management port; controllers sit on "
				       "PCIe or TCP ports",
				       p->port_id);
	if (s->single_ctrl && s->nr_ctrls)
		return nvemu_error_set(err, -EBUSY, "single_ctrl: %s allows one controller",
				       s->nqn);
	if (p->num_io_queues < 1 || p->num_io_queues > NVEMU_MAX_IO_QUEUES)
		return nvemu_error_set(err, -EINVAL, "num_queues: must be in 1..%d",
				       NVEMU_MAX_IO_QUEUES);
	if (p->mdts < 1 || p->mdts > 7)
		return nvemu_error_set(err, -EINVAL, "mdts: must be in 1..7");
	if (p->max_queue_entries < 2 || p->max_queue_entries > 4096)
		return nvemu_error_set(err, -EINVAL, "max_queue_entries: must be in 2..4096");
	if (p->fw_slots < 1 || p->fw_slots > NVEMU_FW_SLOTS_MAX)
		return nvemu_error_set(err, -EINVAL, "fw_slots: must be in 1..%d",
				       NVEMU_FW_SLOTS_MAX);
	if (p->aerl > 15)
		return nvemu_error_set(err, -EINVAL, "aerl: must be in 0..15");
	if (id >= 0xfff0)
		return nvemu_error_set(err, -EINVAL, "ctrl: controller ids are 1..0xffef");
	if (id && nvemu_subsys_ctrl(s, id))
		return nvemu_error_set(err, -EEXIST, "ctrl: controller id %u is in use", id);
	if (!id) {
		for (id = 1; id < 0xfff0 && nvemu_subsys_ctrl(s, id); id++)
			;
		if (id == 0xfff0)
			return nvemu_error_set(err, -ENOSPC, "ctrl: no free controller id");
	}

	ctrl = calloc(1, sizeof(*ctrl));
	ctrls = realloc(s->ctrls, (s->nr_ctrls + 1) * sizeof(*ctrls));
	if (ctrls)
		s->ctrls = ctrls;
	if (!ctrl || !ctrls)
		goto nomem;
	ctrl->sqs = calloc(p->num_io_queues + 1u, sizeof(*ctrl->sqs));
	ctrl->cqs = calloc(p->num_io_queues + 1u, sizeof(*ctrl->cqs));
	if (!ctrl->sqs || !ctrl->cqs)
		goto nomem;
	ctrl->subsys = s;
	STAILQ_INIT(&ctrl->aers);
	STAILQ_INIT(&ctrl->held);
	ctrl->cntlid = id;
	ctrl->p = *p;
	ctrl->p.cntlid = id;
	ctrl->cap = make_cap(p);
	nvemu_features_init(ctrl);
	nvemu_fw_init(ctrl, s->fr);

	for (pos = 0; pos < s->nr_ctrls && s->ctrls[pos]->cntlid < id; pos++)
		;
	memmove(&s->ctrls[pos + 1], &s->ctrls[pos], (s->nr_ctrls - pos) * sizeof(*ctrls));
	s->ctrls[pos] = ctrl;
	s->nr_ctrls++;
	if (cntlid)
		*cntlid = id;
	/* A sanitize cut by the last power off goes on once a host can watch it. */
	nvemu_sanitize_resume(s);
	return 0;
nomem:
	if (ctrl) {
		free(ctrl->sqs);
		free(ctrl->cqs);
	}
	free(ctrl);
	return nvemu_error_set(err, -ENOMEM, "out of memory");
}

int nvemu_subsys_add_ctrl(struct nvemu_subsys *s, uint16_t port_id, uint16_t *cntlid,
			  struct nvemu_error *err)
{
	struct nvemu_ctrl_params p;

	nvemu_ctrl_params_init(&p);
	p.port_id = port_id;
	return nvemu_subsys_add_ctrl_ex(s, &p, cntlid, err);
}

int nvemu_subsys_remove_ctrl(struct nvemu_subsys *s, uint16_t cntlid, struct nvemu_error *err)
{
	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *ctrl = s->ctrls[i];

		if (ctrl->cntlid != cntlid)
			continue;
		if (nvemu_ctrl_inflight(ctrl))
			return nvemu_error_set(err, -EBUSY,
					       "ctrl: controller %u has %u commands in flight",
					       cntlid, nvemu_ctrl_inflight(ctrl));
		/*
		 * Outstanding AERs and commands held by a suspend never started:
		 * they go back to their transport as aborted.
		 */
		ctrl_quiesce(ctrl, true);
		memmove(&s->ctrls[i], &s->ctrls[i + 1], (s->nr_ctrls - i - 1) * sizeof(*s->ctrls));
		s->nr_ctrls--;
		ctrl_free(ctrl);
		return 0;
	}
	return nvemu_error_set(err, -ENOENT, "ctrl: no controller %u in %s", cntlid, s->nqn);
}

/* ---- namespaces */

void nvemu_ns_params_init(struct nvemu_ns_params *p)
{
	memset(p, 0, sizeof(*p));
}

static unsigned ns_pos(struct nvemu_ns *const *arr, unsigned n, uint32_t nsid)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (arr[mid]->nsid < nsid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct nvemu_ns *nvemu_subsys_ns(struct nvemu_subsys *s, uint32_t nsid)
{
	unsigned i = ns_pos(s->ns, s->nr_ns, nsid);

	return i < s->nr_ns && s->ns[i]->nsid == nsid ? s->ns[i] : NULL;
}

struct nvemu_ns *nvemu_ctrl_find_ns(const struct nvemu_ctrl *ctrl, uint32_t nsid)
{
	unsigned i = ns_pos(ctrl->ns, ctrl->nr_ns, nsid);

	return i < ctrl->nr_ns && ctrl->ns[i]->nsid == nsid ? ctrl->ns[i] : NULL;
}

static int ns_insert(struct nvemu_ns ***arr, unsigned *n, unsigned *cap, struct nvemu_ns *ns)
{
	unsigned pos = ns_pos(*arr, *n, ns->nsid);

	if (*n == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 16;
		struct nvemu_ns **na = realloc(*arr, ncap * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = ncap;
	}
	memmove(&(*arr)[pos + 1], &(*arr)[pos], (*n - pos) * sizeof(**arr));
	(*arr)[pos] = ns;
	(*n)++;
	return 0;
}

static void ns_delete(struct nvemu_ns **arr, unsigned *n, uint32_t nsid)
{
	unsigned pos = ns_pos(arr, *n, nsid);

	if (pos < *n && arr[pos]->nsid == nsid) {
		memmove(&arr[pos], &arr[pos + 1], (*n - pos - 1) * sizeof(*arr));
		(*n)--;
	}
}

static uint64_t ns_bytes_total(const struct nvemu_subsys *s)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < s->nr_ns; i++)
		t += s->ns[i]->nblocks << s->ns[i]->lba_shift;
	return t;
}

/* The identifiers the caller gave, or generated ones (EUI-64 under the vendor's OUI). */
static void ns_set_ids(struct nvemu_ns *ns, const struct nvemu_ns_params *p,
		       const struct nvemu_vendor *vendor)
{
	uuid_t u;

	if (p->has_uuid) {
		memcpy(ns->uuid, p->uuid, 16);
	} else {
		uuid_generate(u);
		memcpy(ns->uuid, u, 16);
	}
	if (p->has_nguid) {
		memcpy(ns->nguid, p->nguid, 16);
	} else {
		uuid_generate(u);
		memcpy(ns->nguid, u, 16);
	}
	if (p->has_eui64) {
		memcpy(ns->eui64, p->eui64, 8);
	} else {
		/* EUI-64 from the vendor's OUI and 40 random bits */
		uuid_generate(u);
		memcpy(ns->eui64, vendor->ieee_oui, 3);
		memcpy(ns->eui64 + 3, u, 5);
	}
}

/* The size in blocks of lba bytes: given, or all of bdev (NULL: a RAM bdev is made). */
static int ns_check_size(const struct nvemu_bdev *bdev, uint32_t lba, uint64_t *nblocks,
			 struct nvemu_error *err)
{
	if (bdev) {
		if (lba < bdev->blk_size || lba % bdev->blk_size)
			return nvemu_error_set(
				err, -EINVAL,
				"lbaf: %u-byte blocks do not fit bdev %s's %u-byte blocks", lba,
				bdev->name, bdev->blk_size);
		if (!*nblocks)
			*nblocks = bdev->size / lba;
		if (*nblocks > bdev->size / lba)
			return nvemu_error_set(err, -EINVAL, "size: %llu blocks exceed bdev %s",
					       (unsigned long long)*nblocks, bdev->name);
	}
	if (!*nblocks)
		return nvemu_error_set(err, -EINVAL, "size: must be at least one block");
	if (*nblocks > (UINT64_MAX >> 13))
		return nvemu_error_set(err, -EINVAL, "size: too large");
	return 0;
}

int nvemu_subsys_add_ns_ex(struct nvemu_subsys *s, const struct nvemu_ns_params *p,
			   uint32_t *nsid_out, struct nvemu_error *err)
{
	uint32_t nsid = p->nsid, lba = nvemu_lbaf_size(p->lbaf);
	struct nvemu_bdev *bdev = p->bdev;
	struct nvemu_ns *ns;
	uint64_t nblocks = p->nblocks;
	bool owns = false;
	int ret;

	if (!lba)
		return nvemu_error_set(err, -EINVAL, "lbaf: must be 0 (512 B) or 1 (4 KiB)");
	ret = nvemu_ana_ns_check(s, p, err);
	if (ret)
		return ret;
	if (nsid == NVEMU_NSID_ALL || nsid > s->nn)
		return nvemu_error_set(err, -EINVAL, "nsid: must be in 1..%u", s->nn);
	if (nsid && nvemu_subsys_ns(s, nsid))
		return nvemu_error_set(err, -EEXIST, "nsid: %u is already in use in %s", nsid,
				       s->nqn);
	if (s->nr_ns >= s->mnan)
		return nvemu_error_set(err, -ENOSPC, "nsid: %s already has mnan (%u) namespaces",
				       s->nqn, s->mnan);
	if (!nsid) {
		for (nsid = 1; nsid <= s->nn && nvemu_subsys_ns(s, nsid); nsid++)
			;
		if (nsid > s->nn)
			return nvemu_error_set(err, -ENOSPC, "nsid: no free NSID");
	}
	ret = ns_check_size(bdev, lba, &nblocks, err);
	if (ret)
		return ret;
	if (!bdev) {
		char name[64];

		snprintf(name, sizeof(name), "ns%u", nsid);
		ret = nvemu_bdev_ram_create(name, nblocks * lba, 512, &bdev, err);
		if (ret)
			return ret;
		owns = true;
	}
	ns = calloc(1, sizeof(*ns));
	if (ns)
		ns->nsid = nsid;
	if (!ns || ns_insert(&s->ns, &s->nr_ns, &s->ns_cap, ns)) {
		free(ns);
		if (owns)
			nvemu_bdev_destroy(bdev, NULL);
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	}
	ns->subsys = s;
	ns->nblocks = nblocks;
	ns->lbaf = p->lbaf;
	ns->lba_shift = (uint8_t)__builtin_ctz(lba);
	ns->bdev = bdev;
	ns->owns_bdev = owns;
	ns->ready = true;
	ns->refs = 1; /* the subsystem's list */
	bdev->users++;
	ns_set_ids(ns, p, &s->vendor);
	nvemu_ana_ns_init(ns, p);
	if (nsid_out)
		*nsid_out = nsid;
	return 0;
}

int nvemu_subsys_add_ns(struct nvemu_subsys *s, uint64_t nblocks, uint32_t *nsid,
			struct nvemu_error *err)
{
	struct nvemu_ns_params p;

	nvemu_ns_params_init(&p);
	p.nblocks = nblocks;
	return nvemu_subsys_add_ns_ex(s, &p, nsid, err);
}

int nvemu_subsys_remove_ns(struct nvemu_subsys *s, uint32_t nsid, struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);

	if (!ns)
		return nvemu_error_set(err, -ENOENT, "nsid: no namespace %u in %s", nsid, s->nqn);
	if (ns->nr_attached)
		return nvemu_error_set(
			err, -EBUSY,
			"nsid: namespace %u is attached to %u controller(s); detach it first", nsid,
			ns->nr_attached);
	/* New commands see Invalid Namespace now; running ones keep it until they end. */
	ns_delete(s->ns, &s->nr_ns, nsid);
	ns_unlink(s, ns);
	return 0;
}

uint16_t nvemu_subsys_ns_create_status(struct nvemu_subsys *s, uint64_t nsze, uint8_t lbaf,
				       uint32_t *nsid)
{
	uint32_t lba = nvemu_lbaf_size(lbaf);
	struct nvemu_ns_params p;
	struct nvemu_bdev *bdev = NULL;
	struct nvemu_error err = {0};
	uint64_t used, avail;

	if (!lba)
		return NVEMU_SC_CMD(NVME_SC_INVALID_FORMAT) | NVEMU_DNR;
	if (s->nr_ns >= s->mnan)
		return NVEMU_SC_CMD(NVME_SC_NS_ID_UNAVAILABLE) | NVEMU_DNR;
	/* Namespaces created by the control plane may already exceed TNVMCAP. */
	used = ns_bytes_total(s);
	avail = used < s->tnvmcap ? s->tnvmcap - used : 0;
	if (!nsze || nsze > avail / lba)
		return NVEMU_SC_CMD(NVME_SC_NS_INSUFFICIENT_CAP) | NVEMU_DNR;
	nvemu_ns_params_init(&p);
	p.nblocks = nsze;
	p.lbaf = lbaf;
	if (s->ns_bdev_alloc) {
		if (s->ns_bdev_alloc(s, nsze * lba, lba, &bdev, s->ns_bdev_arg))
			return NVEMU_SC_CMD(NVME_SC_NS_INSUFFICIENT_CAP) | NVEMU_DNR;
		p.bdev = bdev;
	}
	if (nvemu_subsys_add_ns_ex(s, &p, nsid, &err)) {
		if (bdev)
			nvemu_bdev_destroy(bdev, NULL);
		return err.code == -ENOSPC ? NVEMU_SC_CMD(NVME_SC_NS_ID_UNAVAILABLE) | NVEMU_DNR
					   : NVEMU_SC_CMD(NVME_SC_NS_INSUFFICIENT_CAP) | NVEMU_DNR;
	}
	if (bdev)
		nvemu_subsys_ns(s, *nsid)->owns_bdev = true;
	return 0;
}

void nvemu_ctrl_ns_changed(struct nvemu_ctrl *ctrl, uint32_t nsid)
{
	if (!nvemu_ctrl_enabled(ctrl))
		return;
	for (unsigned i = 0; i < ctrl->nr_changed_ns; i++)
		if (ctrl->changed_ns[i] == nsid)
			goto event;
	if (ctrl->nr_changed_ns < NVEMU_CHANGED_NS_MAX)
		ctrl->changed_ns[ctrl->nr_changed_ns++] = nsid;
	else
		ctrl->changed_ns_overflow = true;
event:
	nvemu_ctrl_add_event(ctrl, NVME_AER_NOTICE, 0 /* NS attribute changed */,
			     NVME_LOG_LID_CHANGED_NS);
}

int nvemu_subsys_resize_ns(struct nvemu_subsys *s, uint32_t nsid, uint64_t nblocks,
			   struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);
	uint64_t bytes;
	int ret;

	if (!ns)
		return nvemu_error_set(err, -ENOENT, "nsid: no namespace %u in %s", nsid, s->nqn);
	if (!nblocks || nblocks > (UINT64_MAX >> 13))
		return nvemu_error_set(err, -EINVAL, "size: must be at least one block");
	bytes = nblocks << ns->lba_shift;
	if (bytes > ns->bdev->size || ns->owns_bdev) {
		ret = nvemu_bdev_resize(ns->bdev, bytes);
		if (ret)
			return nvemu_error_set(err, ret,
					       "size: bdev %s cannot be resized to %llu bytes",
					       ns->bdev->name, (unsigned long long)bytes);
	}
	ns->nblocks = nblocks;
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		if (nvemu_ctrl_find_ns(s->ctrls[i], nsid))
			nvemu_ctrl_ns_changed(s->ctrls[i], nsid);
	return 0;
}

int nvemu_ctrl_attach_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(ctrl->subsys, nsid);

	if (!ns)
		return nvemu_error_set(err, -ENOENT, "nsid: no namespace %u in %s", nsid,
				       ctrl->subsys->nqn);
	if (nvemu_ctrl_find_ns(ctrl, nsid))
		return nvemu_error_set(err, -EEXIST,
				       "nsid: namespace %u is already attached to controller %u",
				       nsid, ctrl->cntlid);
	if (!nvemu_ns_visible_to(ns, ctrl->hostnqn))
		return nvemu_error_set(err, -EPERM, "nsid: namespace %u is masked from host %s",
				       nsid, ctrl->hostnqn);
	if (ns_insert(&ctrl->ns, &ctrl->nr_ns, &ctrl->ns_cap, ns))
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	ns->nr_attached++;
	nvemu_ctrl_ns_changed(ctrl, nsid);
	return 0;
}

int nvemu_ctrl_detach_ns(struct nvemu_ctrl *ctrl, uint32_t nsid, struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_ctrl_find_ns(ctrl, nsid);

	if (!ns)
		return nvemu_error_set(err, -ENOENT,
				       "nsid: namespace %u is not attached to controller %u", nsid,
				       ctrl->cntlid);
	ns_delete(ctrl->ns, &ctrl->nr_ns, nsid);
	ns->nr_attached--;
	nvemu_ctrl_ns_changed(ctrl, nsid);
	return 0;
}

bool nvemu_ctrl_ns_attached(const struct nvemu_ctrl *ctrl, uint32_t nsid)
{
	return nvemu_ctrl_find_ns(ctrl, nsid) != NULL;
}

/* ---- health */

void nvemu_subsys_get_health(struct nvemu_subsys *s, struct nvemu_health *h)
{
	*h = s->health;
}

int nvemu_subsys_set_health(struct nvemu_subsys *s, const struct nvemu_health *h,
			    struct nvemu_error *err)
{
	if (h->avail_spare > 100)
		return nvemu_error_set(err, -EINVAL, "available_spare: a percentage, 0..100");
	if (h->spare_thresh > 100)
		return nvemu_error_set(err, -EINVAL, "spare_threshold: a percentage, 0..100");
	if (h->critical_warning & ~0x3f)
		return nvemu_error_set(err, -EINVAL,
				       "critical_warning: only bits 0..5 are defined");
	s->health = *h;
	for (unsigned i = 0; i < s->nr_ctrls; i++)
		nvemu_ctrl_check_health(s->ctrls[i]);
	return 0;
}

/* ---- backend completions */

int nvemu_subsys_poll(struct nvemu_subsys *s)
{
	struct nvemu_ns *ns, *next;
	int n = 0, r;

	/* A reference across each poll: a completion may remove the namespace. */
	for (unsigned i = 0; i < s->nr_ns; i++) {
		ns = nvemu_ns_get(s->ns[i]);
		r = nvemu_bdev_poll(ns->bdev);
		nvemu_ns_put(ns);
		if (r > 0)
			n += r;
	}
	/* Removed namespaces still finish the commands that hold them. */
	ns = LIST_FIRST(&s->dead_ns) ? nvemu_ns_get(LIST_FIRST(&s->dead_ns)) : NULL;
	while (ns) {
		r = nvemu_bdev_poll(ns->bdev);
		if (r > 0)
			n += r;
		next = LIST_NEXT(ns, dead_link) ? nvemu_ns_get(LIST_NEXT(ns, dead_link)) : NULL;
		nvemu_ns_put(ns);
		ns = next;
	}
	return n;
}
