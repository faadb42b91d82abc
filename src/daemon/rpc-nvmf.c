// SPDX-License-Identifier: MIT
/*
 * nvmf_* methods: the NVMe/TCP target's listeners and access lists, named
 * and shaped as in SPDK (nvmf_subsystem_add_listener with a listen_address
 * object {trtype, adrfam, traddr, trsvcid}; the flat trtype/traddr/trsvcid/
 * adrfam form is accepted too). Hosts reach a subsystem through dynamic
 * controllers that carry every namespace of the subsystem, so namespace
 * creation and destruction (rpc-namespace.c) are what hosts see as
 * namespace attachment changes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rpc.h"
#include "engine/auth.h"
#include "teardown.h"
#include <nvemu/tcp.h>

struct listen_addr {
	char traddr[64];
	char trsvcid[32];
	uint8_t adrfam; /* NVMF_ADDR_FAMILY_IP4/IP6 */
};

static const struct rpc_param addr_spec[] = {
	{ "trtype", RPC_P_STR, false, 1, 16 },
	{ "adrfam", RPC_P_STR, false, 1, 8 },
	{ "traddr", RPC_P_STR, true, 1, 63 },
	{ "trsvcid", RPC_P_STR, true, 1, 5 },
	{ .name = NULL },
};

/* Both forms; every message names the field (listen_address.X for the object form). */
static int parse_addr(json_t *params, struct listen_addr *la, struct rpc_err *e)
{
	static const char *const flat[] = { "trtype", "adrfam", "traddr", "trsvcid", NULL };
	json_t *obj = json_object_get(params, "listen_address"), *src = params;
	const char *pfx = "", *trtype, *adrfam, *traddr, *trsvcid;
	bool has_flat = false;
	unsigned char buf[sizeof(struct in6_addr)];
	unsigned long port;
	char *end;

	for (const char *const *k = flat; *k; k++)
		has_flat |= rpc_has(params, *k);
	if (obj && has_flat)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "listen_address: give either listen_address or trtype/traddr/trsvcid/adrfam, not both");
	if (obj) {
		if (rpc_check_params(obj, addr_spec, e)) {
			char msg[sizeof(e->msg)];

			snprintf(msg, sizeof(msg), "%s", e->msg);
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "listen_address.%.200s", msg);
		}
		src = obj;
		pfx = "listen_address.";
	} else {
		if (!rpc_has(params, "traddr"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "traddr: required (or listen_address)");
		if (!rpc_has(params, "trsvcid"))
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "trsvcid: required (or listen_address)");
	}
	trtype = rpc_str(src, "trtype");
	adrfam = rpc_str(src, "adrfam");
	traddr = rpc_str(src, "traddr");
	trsvcid = rpc_str(src, "trsvcid");
	if (trtype && strcasecmp(trtype, "tcp"))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%strtype: only \"tcp\" is supported",
				   pfx);
	if (!adrfam)
		la->adrfam = strchr(traddr, ':') ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
	else if (!strcasecmp(adrfam, "ipv4"))
		la->adrfam = NVMF_ADDR_FAMILY_IP4;
	else if (!strcasecmp(adrfam, "ipv6"))
		la->adrfam = NVMF_ADDR_FAMILY_IP6;
	else
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "%sadrfam: must be \"ipv4\" or \"ipv6\"", pfx);
	if (strlen(traddr) >= sizeof(la->traddr) ||
	    inet_pton(la->adrfam == NVMF_ADDR_FAMILY_IP6 ? AF_INET6 : AF_INET, traddr, buf) != 1)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "%straddr: not a numeric %s address: %.64s", pfx,
				   la->adrfam == NVMF_ADDR_FAMILY_IP6 ? "IPv6" : "IPv4", traddr);
	errno = 0;
	port = strtoul(trsvcid, &end, 10);
	if (!*trsvcid || *end || trsvcid[0] < '0' || trsvcid[0] > '9' || errno || port > 65535)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "%strsvcid: must be a port number (0-65535)", pfx);
	snprintf(la->traddr, sizeof(la->traddr), "%s", traddr);
	snprintf(la->trsvcid, sizeof(la->trsvcid), "%lu", port);
	return 0;
}

static int find_subsys(struct nvemud *d, json_t *params, struct nvemu_subsys **s,
		       struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");

	if (!d->tcp)
		return rpc_err_set(e, RPC_ERR_STATE, "the TCP target is stopped");
	*s = nvemud_find_subsys(d, nqn);
	if (!*s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	return 0;
}

static int expose(struct nvemud *d, struct nvemu_subsys *s, struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };

	if (nvemu_tcp_has_subsys(d->tcp, s))
		return 0;
	if (nvemu_tcp_add_subsys(d->tcp, s, &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static int nvmf_subsystem_add_listener(struct nvemud *d, json_t *params, json_t **result,
				       struct rpc_err *e)
{
	struct nvemu_tcp_listener_info li, last = { 0 };
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;
	struct listen_addr la;
	unsigned n = 0;

	if (parse_addr(params, &la, e) || find_subsys(d, params, &s, e))
		return -1;
	if (nvemu_tcp_add_listener_ex(d->tcp, s, la.traddr, la.trsvcid, la.adrfam,
				      rpc_bool(params, "secure_channel", false), &nerr)) {
		if (nerr.code == -EADDRINUSE)
			return rpc_err_set(e, RPC_ERR_BUSY, "listen_address: %s", nerr.msg);
		if (nerr.code == -EADDRNOTAVAIL)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "traddr: %s", nerr.msg);
		return rpc_err_nvemu(e, &nerr);
	}
	/* Appended last: read back the bound port (trsvcid "0" picks one). */
	while (!nvemu_tcp_get_listener(d->tcp, s, n, &li)) {
		last = li;
		n++;
	}
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: listening on %s:%s", nvemu_subsys_nqn(s), last.traddr,
		   last.trsvcid);
	*result = nvemud_tcp_addr_json(last.traddr, last.trsvcid, last.adrfam);
	return 0;
}

static int nvmf_subsystem_remove_listener(struct nvemud *d, json_t *params, json_t **result,
					  struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;
	struct listen_addr la;

	if (parse_addr(params, &la, e) || find_subsys(d, params, &s, e))
		return -1;
	if (nvemu_tcp_remove_listener(d->tcp, s, la.traddr, la.trsvcid, la.adrfam, &nerr))
		return rpc_err_set(e, nerr.code == -ENOENT ? RPC_ERR_NOT_FOUND : RPC_ERR_INTERNAL,
				   "listen_address: %s", nerr.msg);
	return 0;
}

static int nvmf_subsystem_add_host(struct nvemud *d, json_t *params, json_t **result,
				   struct rpc_err *e)
{
	const char *host = rpc_str(params, "host");
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;

	if (nvemu_nqn_validate(host, &nerr))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "host: %s", nerr.msg);
	const char *key = rpc_str(params, "dhchap_key"), *ckey = rpc_str(params, "dhchap_ctrlr_key");
	const char *psk = rpc_str(params, "psk");
	struct nvemu_tcp_host_params hp = { .dhchap_key_name = key, .dhchap_ctrlr_key_name = ckey,
					    .psk_name = psk };

	if (key && !(hp.dhchap_key = nvemud_key_secret(d, key)))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "dhchap_key: no key %s in the keyring", key);
	if (ckey && !(hp.dhchap_ctrlr_key = nvemud_key_secret(d, ckey)))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "dhchap_ctrlr_key: no key %s in the keyring",
				   ckey);
	if (psk && !(hp.psk = nvemud_key_secret(d, psk)))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "psk: no key %s in the keyring", psk);
	if (find_subsys(d, params, &s, e) || expose(d, s, e))
		return -1;
	if (nvemu_tcp_add_host_ex(d->tcp, s, host, &hp, &nerr))
		return rpc_err_set(e, nerr.code == -EEXIST ? RPC_ERR_EXISTS
				      : nerr.code == -EINVAL ? RPC_ERR_INVALID_PARAMS
							     : RPC_ERR_INTERNAL,
				   "%s", nerr.msg);
	return 0;
}

static int nvmf_subsystem_remove_host(struct nvemud *d, json_t *params, json_t **result,
				      struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;

	if (find_subsys(d, params, &s, e))
		return -1;
	if (!nvemu_tcp_has_subsys(d->tcp, s))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "host: %.223s is not on the list",
				   rpc_str(params, "host"));
	if (nvemu_tcp_remove_host(d->tcp, s, rpc_str(params, "host"), &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

/* "sha256,sha512" -> a mask of IDs; -1 names an unknown entry in bad. */
static int name_mask(const char *list, const char *(*name)(uint8_t), uint8_t first, uint8_t last,
		     char *bad, size_t badsz)
{
	int mask = 0;

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		uint8_t id;

		for (id = first; id <= last; id++)
			if (strlen(name(id)) == n && !strncmp(p, name(id), n))
				break;
		if (id > last) {
			snprintf(bad, badsz, "%.*s", (int)(n > 32 ? 32 : n), p);
			return -1;
		}
		mask |= 1 << id;
		p += n;
		if (*p)
			p++;
	}
	return mask;
}

static int nvmf_set_config(struct nvemud *d, json_t *params, json_t **result, struct rpc_err *e)
{
	const char *dg = rpc_str(params, "dhchap_digests"), *gr = rpc_str(params, "dhchap_dhgroups");
	struct nvemu_error nerr = { 0 };
	uint8_t digests, groups;
	char bad[40];
	int m;

	if (!d->tcp)
		return rpc_err_set(e, RPC_ERR_STATE, "the TCP target is stopped");
	nvemu_tcp_get_dhchap(d->tcp, &digests, &groups);
	if (dg) {
		m = name_mask(dg, nvemu_auth_hash_name, 1, 3, bad, sizeof(bad));
		if (m <= 0)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "dhchap_digests: \"%s\" is not sha256, sha384 or sha512",
					   m < 0 ? bad : "");
		digests = (uint8_t)m;
	}
	if (gr) {
		m = name_mask(gr, nvemu_auth_dhgroup_name, 0, 5, bad, sizeof(bad));
		if (m <= 0)
			return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
					   "dhchap_dhgroups: \"%s\" is not null or ffdhe2048, 3072, "
					   "4096, 6144, 8192",
					   m < 0 ? bad : "");
		groups = (uint8_t)m;
	}
	if (nvemu_tcp_set_dhchap(d->tcp, digests, groups, &nerr))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "%s", nerr.msg);
	return 0;
}

json_t *nvemud_nvmf_config_json(struct nvemud *d)
{
	uint8_t digests, groups;
	char dg[64] = "", gr[128] = "";

	if (!d->tcp)
		return NULL;
	nvemu_tcp_get_dhchap(d->tcp, &digests, &groups);
	if (digests == 0x0e && groups == 0x3f)
		return NULL;
	for (uint8_t i = 1; i <= 3; i++)
		if (digests & (1u << i))
			snprintf(dg + strlen(dg), sizeof(dg) - strlen(dg), "%s%s", *dg ? "," : "",
				 nvemu_auth_hash_name(i));
	for (uint8_t i = 0; i <= 5; i++)
		if (groups & (1u << i))
			snprintf(gr + strlen(gr), sizeof(gr) - strlen(gr), "%s%s", *gr ? "," : "",
				 nvemu_auth_dhgroup_name(i));
	return json_pack("{s:s, s:s}", "dhchap_digests", dg, "dhchap_dhgroups", gr);
}

static int nvmf_subsystem_allow_any_host(struct nvemud *d, json_t *params, json_t **result,
					 struct rpc_err *e)
{
	struct nvemu_error nerr = { 0 };
	struct nvemu_subsys *s;

	if (find_subsys(d, params, &s, e) || expose(d, s, e))
		return -1;
	if (nvemu_tcp_set_allow_any_host(d->tcp, s, rpc_bool(params, "allow_any_host", true),
					 &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static json_t *ana_states_json(struct nvemu_subsys *s, uint16_t port_id);

static json_t *listeners_json(struct nvemud *d, struct nvemu_subsys *s, bool wrapped)
{
	struct nvemu_tcp_listener_info li;
	json_t *arr = json_array();

	for (unsigned i = 0; !nvemu_tcp_get_listener(d->tcp, s, i, &li); i++) {
		json_t *a = nvemud_tcp_addr_json(li.traddr, li.trsvcid, li.adrfam);

		if (wrapped)
			a = json_pack("{s:o, s:b}", "address", a, "secure_channel", li.secure_channel);
		if (wrapped)
			json_object_set_new(a, "port_id", json_integer(li.port_id));
		if (wrapped && nvemu_subsys_ana_reporting(s))
			json_object_set_new(a, "ana_states", ana_states_json(s, li.port_id));
		json_array_append_new(arr, a);
	}
	return arr;
}

static json_t *controllers_json(struct nvemud *d, struct nvemu_subsys *s)
{
	struct nvemu_tcp_assoc_info ai;
	json_t *arr = json_array();

	for (unsigned i = 0; !nvemu_tcp_get_assoc(d->tcp, s, i, &ai); i++) {
		char hostid[37];

		nvemud_uuid_unparse(ai.hostid, hostid);
		json_array_append_new(arr, json_pack("{s:i, s:s, s:s, s:i, s:i, s:I}", "cntlid",
						     ai.cntlid, "hostnqn", ai.hostnqn, "hostid",
						     hostid, "port_id", ai.port_id,
						     "num_io_qpairs", ai.nr_io_queues, "kato_ms",
						     (json_int_t)ai.kato_ms));
	}
	return arr;
}

static int nvmf_subsystem_get_listeners(struct nvemud *d, json_t *params, json_t **result,
					struct rpc_err *e)
{
	struct nvemu_subsys *s;

	if (find_subsys(d, params, &s, e))
		return -1;
	*result = listeners_json(d, s, true);
	return 0;
}

static int nvmf_subsystem_get_controllers(struct nvemud *d, json_t *params, json_t **result,
					  struct rpc_err *e)
{
	struct nvemu_subsys *s;

	if (find_subsys(d, params, &s, e))
		return -1;
	*result = controllers_json(d, s);
	return 0;
}

static json_t *subsys_json(struct nvemud *d, struct nvemu_subsys *s)
{
	json_t *hosts = json_array(), *ns = json_array();
	struct nvemu_subsys_info si;
	struct nvemu_ns *n;
	const char *h;

	for (unsigned i = 0; (h = nvemu_tcp_get_host(d->tcp, s, i)); i++) {
		const char *key = NULL, *ckey = NULL;

		nvemu_tcp_get_host_auth(d->tcp, s, i, &key, &ckey);
		json_array_append_new(hosts, json_pack("{s:s, s:s*, s:s*, s:s*}", "nqn", h,
						       "dhchap_key", key, "dhchap_ctrlr_key", ckey,
						       "psk", nvemu_tcp_get_host_psk(d->tcp, s, i)));
	}
	for (unsigned i = 0; (n = nvemu_subsys_ns_at(s, i)); i++) {
		struct nvemu_ns_info ni;

		nvemu_ns_info(n, &ni);
		json_array_append_new(ns, json_pack("{s:I, s:s?, s:I}", "nsid", (json_int_t)ni.nsid,
						    "bdev_name", ni.bdev ? ni.bdev->name : NULL,
						    "anagrpid",
						    (json_int_t)nvemu_ns_anagrpid(s, ni.nsid)));
	}
	nvemu_subsys_info(s, &si);
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:b}", "nqn",
			 nvemu_subsys_nqn(s), "subtype", "NVMe", "serial_number", si.sn,
			 "model_number", si.mn,
			 "exposed", nvemu_tcp_has_subsys(d->tcp, s),
			 /* A subsystem not exposed yet gets allow-any-host once it is. */
			 "allow_any_host",
			 !nvemu_tcp_has_subsys(d->tcp, s) || nvemu_tcp_allow_any_host(d->tcp, s),
			 "hosts", hosts, "listen_addresses", listeners_json(d, s, false),
			 "namespaces", ns, "controllers", controllers_json(d, s), "ana_reporting",
			 nvemu_subsys_ana_reporting(s));
}

static int nvmf_get_subsystems(struct nvemud *d, json_t *params, json_t **result,
			       struct rpc_err *e)
{
	struct nvemu_subsys *only = NULL;
	json_t *arr;

	if (rpc_has(params, "nqn") && find_subsys(d, params, &only, e))
		return -1;
	if (!d->tcp)
		return rpc_err_set(e, RPC_ERR_STATE, "the TCP target is stopped");
	arr = json_array();
	for (unsigned i = 0; i < d->nr_subsys; i++)
		if (!only || only == d->subsys[i])
			json_array_append_new(arr, subsys_json(d, d->subsys[i]));
	*result = arr;
	return 0;
}

/* ---- ANA and namespace masking (SPDK's method names) */

/*
 * The listener's ANA state of every group that holds a namespace or was
 * set to something other than optimized, as SPDK lists them.
 */
static json_t *ana_states_json(struct nvemu_subsys *s, uint16_t port_id)
{
	json_t *arr = json_array();

	for (uint32_t g = 1; g <= NVEMU_ANAGRPMAX; g++) {
		enum nvemu_ana_state st = NVEMU_ANA_OPTIMIZED;
		bool used = false;
		struct nvemu_ns *ns;

		nvemu_port_get_ana_state(s, port_id, g, &st);
		for (unsigned i = 0; !used && (ns = nvemu_subsys_ns_at(s, i)); i++) {
			struct nvemu_ns_info ni;

			nvemu_ns_info(ns, &ni);
			used = nvemu_ns_anagrpid(s, ni.nsid) == g;
		}
		if (used || st != NVEMU_ANA_OPTIMIZED)
			json_array_append_new(arr, json_pack("{s:I, s:s}", "ana_group",
							     (json_int_t)g, "ana_state",
							     nvemu_ana_state_name(st)));
	}
	return arr;
}

static int nvmf_subsystem_listener_set_ana_state(struct nvemud *d, json_t *params,
						 json_t **result, struct rpc_err *e)
{
	uint32_t grp = (uint32_t)rpc_uint(params, "anagrpid", 0);
	uint64_t change_ms = rpc_uint(params, "change_ms", NVEMUD_ANA_CHANGE_MS);
	enum nvemu_ana_state next = NVEMU_ANA_OPTIMIZED, prev[NVEMU_ANAGRPMAX];
	struct nvemu_tcp_listener_info li;
	bool has_next;
	struct nvemu_error nerr = { 0 };
	enum nvemu_ana_state st;
	struct nvemu_subsys *s;
	struct listen_addr la;
	unsigned i;

	if (nvemu_ana_state_parse(rpc_str(params, "ana_state"), &st))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "ana_state: must be optimized, non_optimized, inaccessible, persistent_loss or change");
	has_next = rpc_has(params, "next_state");
	if (has_next && st != NVEMU_ANA_CHANGE)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "next_state: only with ana_state change");
	if (rpc_has(params, "change_ms") && st != NVEMU_ANA_CHANGE)
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "change_ms: only with ana_state change");
	if (has_next && (nvemu_ana_state_parse(rpc_str(params, "next_state"), &next) ||
			 next == NVEMU_ANA_CHANGE))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS,
				   "next_state: must be optimized, non_optimized, inaccessible or persistent_loss");
	if (parse_addr(params, &la, e) || find_subsys(d, params, &s, e))
		return -1;
	if (!nvemu_subsys_ana_reporting(s))
		return rpc_err_set(e, RPC_ERR_STATE,
				   "nqn: %s was created without ana_reporting", nvemu_subsys_nqn(s));
	for (i = 0; !nvemu_tcp_get_listener(d->tcp, s, i, &li); i++)
		if (li.adrfam == la.adrfam && !strcmp(li.traddr, la.traddr) &&
		    !strcmp(li.trsvcid, la.trsvcid))
			break;
	if (nvemu_tcp_get_listener(d->tcp, s, i, &li))
		return rpc_err_set(e, RPC_ERR_NOT_FOUND,
				   "listen_address: %s has no listener on %s:%s",
				   nvemu_subsys_nqn(s), la.traddr, la.trsvcid);
	for (uint32_t g = 1; g <= NVEMU_ANAGRPMAX; g++)
		if (!grp || g == grp)
			nvemu_port_get_ana_state(s, li.port_id, g, &prev[g - 1]);
	if (nvemu_port_set_ana_state(s, li.port_id, grp, st, &nerr))
		return rpc_err_nvemu(e, &nerr);
	/* A state set by hand replaces a transition still pending. */
	nvemud_ana_cancel(d, nvemu_subsys_nqn(s), li.port_id, grp);
	nvemud_log(d, NVEMUD_LOG_INFO, "%s: listener %s:%s ANA group %s%u: %s",
		   nvemu_subsys_nqn(s), li.traddr, li.trsvcid, grp ? "" : "all/", grp,
		   nvemu_ana_state_name(st));
	if (st != NVEMU_ANA_CHANGE || !change_ms)
		return 0;
	for (uint32_t g = 1; g <= NVEMU_ANAGRPMAX; g++) {
		enum nvemu_ana_state to = has_next ? next : prev[g - 1];

		if (grp && g != grp)
			continue;
		if (to == NVEMU_ANA_CHANGE)
			to = NVEMU_ANA_OPTIMIZED; /* it was in change already: a path that works */
		if (nvemud_ana_schedule(d, s, li.port_id, g, to, (unsigned)change_ms))
			return rpc_err_set(e, RPC_ERR_INTERNAL,
					   "out of memory or descriptors: the change state stays");
	}
	return 0;
}

static int ns_host(struct nvemud *d, json_t *params, bool add, struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn"), *host = rpc_str(params, "host");
	uint32_t nsid = (uint32_t)rpc_uint(params, "nsid", 0);
	struct nvemu_subsys *s = nvemud_find_subsys(d, nqn);
	struct nvemu_error nerr = { 0 };

	if (!s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	if (nvemu_nqn_validate(host, &nerr))
		return rpc_err_set(e, RPC_ERR_INVALID_PARAMS, "host: %s", nerr.msg);
	if (nvemud_ns_destroying(d, s, nsid))
		return rpc_err_set(e, RPC_ERR_BUSY, "nsid: namespace %u of %s is being destroyed",
				   nsid, nvemu_subsys_nqn(s));
	if (!(add ? nvemu_ns_add_host : nvemu_ns_remove_host)(s, nsid, host, &nerr))
		return 0;
	if (nerr.code == -EPERM)
		return rpc_err_set(e, RPC_ERR_STATE, "%s", nerr.msg);
	return rpc_err_nvemu(e, &nerr);
}

static int nvmf_ns_add_host(struct nvemud *d, json_t *params, json_t **result,
			    struct rpc_err *e)
{
	return ns_host(d, params, true, e);
}

static int nvmf_ns_remove_host(struct nvemud *d, json_t *params, json_t **result,
			       struct rpc_err *e)
{
	return ns_host(d, params, false, e);
}

#define P_NQN { "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX }
#define P_ADDR                                                                                   \
	{ "listen_address", RPC_P_OBJ, false, 0, 0 }, { "trtype", RPC_P_STR, false, 1, 16 },     \
		{ "traddr", RPC_P_STR, false, 1, 63 }, { "trsvcid", RPC_P_STR, false, 1, 5 },      \
		{ "adrfam", RPC_P_STR, false, 1, 8 }

const struct rpc_method rpc_nvmf_methods[] = {
	{ "nvmf_set_config", nvmf_set_config,
	  (const struct rpc_param[]){ { "dhchap_digests", RPC_P_STR, false, 1, 64 },
				      { "dhchap_dhgroups", RPC_P_STR, false, 1, 128 },
				      { .name = NULL } },
	  "DH-HMAC-CHAP hashes (sha256,sha384,sha512) and DH groups (null,ffdhe2048..ffdhe8192) the target may choose, comma-separated; it picks the strongest the host offers." },
	{ "nvmf_subsystem_add_listener", nvmf_subsystem_add_listener,
	  (const struct rpc_param[]){ P_NQN, P_ADDR, { "secure_channel", RPC_P_BOOL, false, 0, 1 },
				      { .name = NULL } },
	  "Listen for NVMe/TCP hosts on traddr:trsvcid (trsvcid 0: any free port); returns the address. secure_channel: TLS 1.3 with the hosts' PSKs only." },
	{ "nvmf_subsystem_remove_listener", nvmf_subsystem_remove_listener,
	  (const struct rpc_param[]){ P_NQN, P_ADDR, { .name = NULL } },
	  "Stop listening; hosts connected through it are disconnected." },
	{ "nvmf_subsystem_add_host", nvmf_subsystem_add_host,
	  (const struct rpc_param[]){ P_NQN, { "host", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
				      { "dhchap_key", RPC_P_STR, false, 1, 64 },
				      { "dhchap_ctrlr_key", RPC_P_STR, false, 1, 64 },
				      { "psk", RPC_P_STR, false, 1, 64 },
				      { .name = NULL } },
	  "Allow a host NQN (used when allow_any_host is false); with dhchap_key (a keyring key name) its queues must pass DH-HMAC-CHAP, with dhchap_ctrlr_key the controller proves itself too; with psk (a keyring key, NVMeTLSkey-1) it may use secure_channel listeners." },
	{ "nvmf_subsystem_remove_host", nvmf_subsystem_remove_host,
	  (const struct rpc_param[]){ P_NQN, { "host", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
				      { .name = NULL } },
	  "Remove a host NQN from the allow list and disconnect its associations." },
	{ "nvmf_subsystem_allow_any_host", nvmf_subsystem_allow_any_host,
	  (const struct rpc_param[]){ P_NQN, { "allow_any_host", RPC_P_BOOL, true, 0, 1 },
				      { .name = NULL } },
	  "Let any host connect (true) or only the allowed host NQNs (false)." },
	{ "nvmf_subsystem_get_listeners", nvmf_subsystem_get_listeners,
	  (const struct rpc_param[]){ P_NQN, { .name = NULL } },
	  "List the TCP listeners of a subsystem." },
	{ "nvmf_subsystem_get_controllers", nvmf_subsystem_get_controllers,
	  (const struct rpc_param[]){ P_NQN, { .name = NULL } },
	  "List the controllers connected hosts use (host NQN, host ID, queues)." },
	{ "nvmf_get_subsystems", nvmf_get_subsystems,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, false, 1, NVEMU_NQN_MAX }, { .name = NULL } },
	  "Subsystems as NVMe/TCP hosts see them: listeners, hosts, namespaces, controllers." },
	{ "nvmf_subsystem_listener_set_ana_state", nvmf_subsystem_listener_set_ana_state,
	  (const struct rpc_param[]){ P_NQN, P_ADDR,
				      { "ana_state", RPC_P_STR, true, 1, 16 },
				      { "next_state", RPC_P_STR, false, 1, 16 },
				      { "change_ms", RPC_P_UINT, false, 0, NVEMU_ANATT_S * 1000 - 1000 },
				      { "anagrpid", RPC_P_UINT, false, 1, NVEMU_ANAGRPMAX },
				      { .name = NULL } },
	  "Set a listener's ANA state (optimized, non_optimized, inaccessible, persistent_loss, change) for one ANA group, or all without anagrpid; hosts get an ANA change event. change moves on to next_state (default: the state before) after change_ms (default 1000; 0: stays in change)." },
	{ "nvmf_ns_add_host", nvmf_ns_add_host,
	  (const struct rpc_param[]){ P_NQN, { "nsid", RPC_P_UINT, true, 1, 0xfffffffe },
				      { "host", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
				      { .name = NULL } },
	  "Make a namespace created with no_auto_visible visible to a host NQN (its controllers get a Namespace Attribute Changed event)." },
	{ "nvmf_ns_remove_host", nvmf_ns_remove_host,
	  (const struct rpc_param[]){ P_NQN, { "nsid", RPC_P_UINT, true, 1, 0xfffffffe },
				      { "host", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
				      { .name = NULL } },
	  "Hide a no_auto_visible namespace from a host NQN again." },
	{ .name = NULL },
};
