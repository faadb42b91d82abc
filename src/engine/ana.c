/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric Namespace Access (NVMe Base 2.0, 8.1.3) and per-host namespace
 * masking. A port holds one ANA state per ANA group; the state a controller
 * reports for a namespace is its port's state for the namespace's group, so
 * one namespace reached through two listeners can be optimized on one path
 * and inaccessible on the other. Masking is enforced through attachment: a
 * controller with a host NQN never has a namespace attached that its host
 * may not see, so Identify, the log pages and I/O follow without checks of
 * their own.
 */
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "nvemu-internal.h"

static const struct {
	enum nvemu_ana_state st;
	const char *name;
} ana_names[] = {
	{NVEMU_ANA_OPTIMIZED, "optimized"},
	{NVEMU_ANA_NON_OPTIMIZED, "non_optimized"},
	{NVEMU_ANA_INACCESSIBLE, "inaccessible"},
	{NVEMU_ANA_PERSISTENT_LOSS, "persistent_loss"},
	{NVEMU_ANA_CHANGE, "change"},
};

const char *nvemu_ana_state_name(enum nvemu_ana_state st)
{
	for (size_t i = 0; i < sizeof(ana_names) / sizeof(ana_names[0]); i++)
		if (ana_names[i].st == st)
			return ana_names[i].name;
	return NULL;
}

int nvemu_ana_state_parse(const char *name, enum nvemu_ana_state *st)
{
	for (size_t i = 0; name && i < sizeof(ana_names) / sizeof(ana_names[0]); i++)
		if (!strcasecmp(ana_names[i].name, name)) {
			*st = ana_names[i].st;
			return 0;
		}
	return -EINVAL;
}

static struct nvemu_port *port_find(const struct nvemu_subsys *s, uint16_t id)
{
	for (unsigned i = 0; i < s->nr_ports; i++)
		if (s->ports[i].id == id)
			return &s->ports[i];
	return NULL;
}

static enum nvemu_ana_state port_state(const struct nvemu_port *port, uint32_t grp)
{
	uint8_t st = port && grp >= 1 && grp <= NVEMU_ANAGRPMAX ? port->ana_state[grp - 1] : 0;

	return st ? (enum nvemu_ana_state)st : NVEMU_ANA_OPTIMIZED;
}

int nvemu_subsys_set_ana_reporting(struct nvemu_subsys *s, bool on, struct nvemu_error *err)
{
	if (s->ana_reporting == on)
		return 0;
	if (s->nr_ctrls)
		return nvemu_error_set(err, -EBUSY,
				       "ana_reporting: %s has controllers; set it before any",
				       s->nqn);
	s->ana_reporting = on;
	return 0;
}

bool nvemu_subsys_ana_reporting(const struct nvemu_subsys *s)
{
	return s->ana_reporting;
}

/* ANA Change notice on the controllers bound to port that see a namespace of the groups. */
static void ana_notify(struct nvemu_subsys *s, uint16_t port_id, const bool *changed)
{
	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *c = s->ctrls[i];
		bool hit = false;

		if (c->p.port_id != port_id || !nvemu_ctrl_enabled(c))
			continue;
		for (unsigned k = 0; k < c->nr_ns && !hit; k++)
			hit = changed[c->ns[k]->anagrpid - 1];
		if (hit)
			nvemu_ctrl_add_event(c, NVME_AER_NOTICE, NVME_AER_NOTICE_ANA,
					     NVME_LOG_LID_ANA);
	}
}

int nvemu_port_set_ana_state(struct nvemu_subsys *s, uint16_t port_id, uint32_t anagrpid,
			     enum nvemu_ana_state st, struct nvemu_error *err)
{
	struct nvemu_port *port = port_find(s, port_id);
	bool changed[NVEMU_ANAGRPMAX] = {false};
	bool any = false;

	if (!s->ana_reporting)
		return nvemu_error_set(err, -EPERM,
				       "ana_state: ANA reporting is off in %s (ana_reporting)",
				       s->nqn);
	if (!port)
		return nvemu_error_set(err, -ENOENT, "port: no port %u in %s", port_id, s->nqn);
	if (port->p.type == NVEMU_PORT_TWO_WIRE)
		return nvemu_error_set(err, -EINVAL, "port: port %u is a management port",
				       port_id);
	if (anagrpid > NVEMU_ANAGRPMAX)
		return nvemu_error_set(err, -EINVAL, "anagrpid: must be in 1..%u (0: all)",
				       NVEMU_ANAGRPMAX);
	if (!nvemu_ana_state_name(st))
		return nvemu_error_set(err, -EINVAL,
				       "ana_state: optimized, non_optimized, inaccessible, "
				       "persistent_loss or change");
	for (uint32_t g = 1; g <= NVEMU_ANAGRPMAX; g++) {
		if ((anagrpid && g != anagrpid) || port_state(port, g) == st)
			continue;
		port->ana_state[g - 1] = (uint8_t)st;
		s->ana_grp_chgcnt[g - 1]++;
		changed[g - 1] = any = true;
	}
	if (!any)
		return 0;
	/* The change count wraps to 1: 0 is reserved for "never changed". */
	if (++s->ana_chgcnt == 0)
		s->ana_chgcnt = 1;
	ana_notify(s, port_id, changed);
	return 0;
}

int nvemu_port_get_ana_state(struct nvemu_subsys *s, uint16_t port_id, uint32_t anagrpid,
			     enum nvemu_ana_state *st)
{
	struct nvemu_port *port = port_find(s, port_id);

	if (!port || anagrpid < 1 || anagrpid > NVEMU_ANAGRPMAX)
		return -ENOENT;
	*st = port_state(port, anagrpid);
	return 0;
}

uint32_t nvemu_ns_anagrpid(struct nvemu_subsys *s, uint32_t nsid)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);

	return ns ? ns->anagrpid : 0;
}

/* ---- engine hooks */

uint16_t nvemu_ana_io_status(const struct nvemu_ctrl *ctrl, const struct nvemu_ns *ns)
{
	const struct nvemu_subsys *s = ctrl->subsys;

	if (!s->ana_reporting)
		return 0;
	/* No DNR: the host is meant to retry on another path. */
	switch (port_state(port_find(s, ctrl->p.port_id), ns->anagrpid)) {
	case NVEMU_ANA_INACCESSIBLE:
		return NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE);
	case NVEMU_ANA_PERSISTENT_LOSS:
		return NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_PERSISTENT_LOSS);
	case NVEMU_ANA_CHANGE:
		return NVEMU_STATUS(NVME_SCT_PATH, NVME_SC_ANA_TRANSITION);
	default:
		return 0;
	}
}

void nvemu_ana_fill_id_ctrl(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id)
{
	if (!ctrl->subsys->ana_reporting)
		return;
	id->cmic |= NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
	id->oaes |= htole32(NVME_CTRL_OAES_ANA);
	id->anatt = NVEMU_ANATT_S;
	id->anacap = NVME_CTRL_ANACAP_OPT | NVME_CTRL_ANACAP_NON_OPT |
		     NVME_CTRL_ANACAP_INACCESSIBLE | NVME_CTRL_ANACAP_PERSISTENT_LOSS |
		     NVME_CTRL_ANACAP_CHANGE | NVME_CTRL_ANACAP_GRPID_NO_CHG;
	id->anagrpmax = htole32(NVEMU_ANAGRPMAX);
	id->nanagrpid = htole32(NVEMU_ANAGRPMAX);
}

void nvemu_ana_fill_id_ns(const struct nvemu_ns *ns, struct nvme_id_ns *id)
{
	if (ns->subsys->ana_reporting)
		id->anagrpid = htole32(ns->anagrpid);
}

size_t nvemu_ana_log_max(const struct nvemu_ctrl *ctrl)
{
	return sizeof(struct nvme_ana_log) +
	       NVEMU_ANAGRPMAX * sizeof(struct nvme_ana_group_desc) +
	       (size_t)ctrl->nr_ns * sizeof(uint32_t);
}

uint16_t nvemu_ana_log(const struct nvemu_ctrl *ctrl, bool rgo, void *buf, size_t *size)
{
	const struct nvemu_subsys *s = ctrl->subsys;
	const struct nvemu_port *port = port_find(s, ctrl->p.port_id);
	struct nvme_ana_log hdr = {0};
	uint8_t *p = (uint8_t *)buf + sizeof(hdr);
	uint16_t ngrps = 0;

	if (!s->ana_reporting)
		return NVEMU_SC_CMD(NVME_SC_INVALID_LOG_PAGE) | NVEMU_DNR;
	/*
	 * One descriptor per group that holds a namespace attached here,
	 * ascending. A descriptor follows an odd number of NSIDs at a 4-byte
	 * boundary only: fields are copied in, never written through a pointer.
	 */
	for (uint32_t g = 1; g <= NVEMU_ANAGRPMAX; g++) {
		struct nvme_ana_group_desc d = {0};
		uint8_t *nsids = p + sizeof(d);
		uint32_t n = 0;

		for (unsigned i = 0; i < ctrl->nr_ns; i++) {
			uint32_t nsid = htole32(ctrl->ns[i]->nsid);

			if (ctrl->ns[i]->anagrpid != g)
				continue;
			if (!rgo)
				memcpy(nsids + n * sizeof(nsid), &nsid, sizeof(nsid));
			n++;
		}
		if (!n)
			continue;
		d.grpid = htole32(g);
		d.nnsids = htole32(rgo ? 0 : n);
		d.chgcnt = htole64(s->ana_grp_chgcnt[g - 1]);
		d.state = (uint8_t)port_state(port, g);
		memcpy(p, &d, sizeof(d));
		p += sizeof(d) + (rgo ? 0 : n * sizeof(uint32_t));
		ngrps++;
	}
	hdr.chgcnt = htole64(s->ana_chgcnt);
	hdr.ngrps = htole16(ngrps);
	memcpy(buf, &hdr, sizeof(hdr));
	*size = (size_t)(p - (uint8_t *)buf);
	return 0;
}

/* ---- namespaces: ANA group and host list */

int nvemu_ana_ns_check(const struct nvemu_subsys *s, const struct nvemu_ns_params *p,
		       struct nvemu_error *err)
{
	(void)s;
	if (p->anagrpid > NVEMU_ANAGRPMAX)
		return nvemu_error_set(err, -EINVAL, "anagrpid: must be in 1..%u (0: default)",
				       NVEMU_ANAGRPMAX);
	return 0;
}

void nvemu_ana_ns_init(struct nvemu_ns *ns, const struct nvemu_ns_params *p)
{
	/* As SPDK: the group defaults to the NSID. */
	ns->anagrpid = p->anagrpid ? p->anagrpid : ns->nsid <= NVEMU_ANAGRPMAX ? ns->nsid : 1;
	ns->no_auto_visible = p->no_auto_visible;
}

void nvemu_ana_ns_free(struct nvemu_ns *ns)
{
	for (unsigned i = 0; i < ns->nr_hosts; i++)
		free(ns->hosts[i]);
	free(ns->hosts);
	ns->hosts = NULL;
	ns->nr_hosts = 0;
}

bool nvemu_ns_visible_to(const struct nvemu_ns *ns, const char *hostnqn)
{
	if (!hostnqn || !hostnqn[0] || !ns->no_auto_visible)
		return true;
	for (unsigned i = 0; i < ns->nr_hosts; i++)
		if (!strcmp(ns->hosts[i], hostnqn))
			return true;
	return false;
}

void nvemu_ana_ctrl_mask(struct nvemu_ctrl *ctrl)
{
	unsigned i = 0;

	while (i < ctrl->nr_ns) {
		if (nvemu_ns_visible_to(ctrl->ns[i], ctrl->hostnqn))
			i++;
		else
			nvemu_ctrl_detach_ns(ctrl, ctrl->ns[i]->nsid, NULL);
	}
}

static int host_ns(struct nvemu_subsys *s, uint32_t nsid, const char *hostnqn,
		   struct nvemu_ns **out, struct nvemu_error *err)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);
	int ret;

	if (!ns)
		return nvemu_error_set(err, -ENOENT, "nsid: no namespace %u in %s", nsid, s->nqn);
	if (!hostnqn)
		return nvemu_error_set(err, -EINVAL, "host: required");
	ret = nvemu_nqn_validate(hostnqn, err);
	if (ret)
		return ret;
	if (!ns->no_auto_visible)
		return nvemu_error_set(err, -EPERM,
				       "nsid: namespace %u is visible to every host "
				       "(create it with no_auto_visible)",
				       nsid);
	*out = ns;
	return 0;
}

int nvemu_ns_add_host(struct nvemu_subsys *s, uint32_t nsid, const char *hostnqn,
		      struct nvemu_error *err)
{
	struct nvemu_ns *ns;
	char **hosts, *dup;
	int ret = host_ns(s, nsid, hostnqn, &ns, err);

	if (ret)
		return ret;
	if (nvemu_ns_visible_to(ns, hostnqn))
		return nvemu_error_set(err, -EEXIST, "host: %s already sees namespace %u",
				       hostnqn, nsid);
	if (ns->nr_hosts >= NVEMU_NS_HOSTS_MAX)
		return nvemu_error_set(err, -ENOSPC, "host: at most %u hosts per namespace",
				       NVEMU_NS_HOSTS_MAX);
	hosts = realloc(ns->hosts, (ns->nr_hosts + 1) * sizeof(*hosts));
	if (!hosts)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	ns->hosts = hosts;
	dup = strdup(hostnqn);
	if (!dup)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	hosts[ns->nr_hosts++] = dup;
	/* The host's live associations see it now (Namespace Attribute Changed). */
	for (unsigned i = 0; i < s->nr_ctrls; i++) {
		struct nvemu_ctrl *c = s->ctrls[i];

		if (!strcmp(c->hostnqn, hostnqn) && !nvemu_ctrl_find_ns(c, nsid))
			nvemu_ctrl_attach_ns(c, nsid, NULL);
	}
	return 0;
}

int nvemu_ns_remove_host(struct nvemu_subsys *s, uint32_t nsid, const char *hostnqn,
			 struct nvemu_error *err)
{
	struct nvemu_ns *ns;
	int ret = host_ns(s, nsid, hostnqn, &ns, err);
	unsigned i;

	if (ret)
		return ret;
	for (i = 0; i < ns->nr_hosts && strcmp(ns->hosts[i], hostnqn); i++)
		;
	if (i == ns->nr_hosts)
		return nvemu_error_set(err, -ENOENT, "host: %s is not on namespace %u's list",
				       hostnqn, nsid);
	free(ns->hosts[i]);
	memmove(&ns->hosts[i], &ns->hosts[i + 1], (ns->nr_hosts - i - 1) * sizeof(*ns->hosts));
	ns->nr_hosts--;
	for (unsigned k = 0; k < s->nr_ctrls; k++) {
		struct nvemu_ctrl *c = s->ctrls[k];

		if (!strcmp(c->hostnqn, hostnqn) && nvemu_ctrl_find_ns(c, nsid))
			nvemu_ctrl_detach_ns(c, nsid, NULL);
	}
	return 0;
}

const char *nvemu_ns_get_host(struct nvemu_subsys *s, uint32_t nsid, unsigned idx)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);

	return ns && idx < ns->nr_hosts ? ns->hosts[idx] : NULL;
}

bool nvemu_ns_auto_visible(struct nvemu_subsys *s, uint32_t nsid)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);

	return ns && !ns->no_auto_visible;
}

bool nvemu_ns_visible(struct nvemu_subsys *s, uint32_t nsid, const char *hostnqn)
{
	struct nvemu_ns *ns = nvemu_subsys_ns(s, nsid);

	return ns && nvemu_ns_visible_to(ns, hostnqn);
}
