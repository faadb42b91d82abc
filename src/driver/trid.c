// SPDX-License-Identifier: MIT
/* Transport IDs: trtype names and SPDK's "key:value ..." string form. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "driver/driver-internal.h"

static const struct {
	enum nvemu_drv_trtype t;
	const char *name;
} trtypes[] = {
	{NVEMU_DRV_TRTYPE_PCIE, "pcie"},
	{NVEMU_DRV_TRTYPE_VFIO_USER, "vfio-user"},
	{NVEMU_DRV_TRTYPE_TCP, "tcp"},
};

int nvemu_drv_trtype_parse(const char *name, enum nvemu_drv_trtype *out)
{
	for (size_t i = 0; name && i < sizeof(trtypes) / sizeof(trtypes[0]); i++)
		if (!strcasecmp(name, trtypes[i].name)) {
			*out = trtypes[i].t;
			return 0;
		}
	return -EINVAL;
}

const char *nvemu_drv_trtype_name(enum nvemu_drv_trtype t)
{
	for (size_t i = 0; i < sizeof(trtypes) / sizeof(trtypes[0]); i++)
		if (trtypes[i].t == t)
			return trtypes[i].name;
	return "unknown";
}

bool nvemu_drv_trtype_supported(enum nvemu_drv_trtype t)
{
	return drv_transport_find(t) != NULL;
}

static int set_field(char *dst, size_t dstsz, const char *key, const char *val, size_t len,
		     struct nvemu_error *err)
{
	if (len >= dstsz)
		return nvemu_error_set(err, -EINVAL, "%s: at most %zu characters", key, dstsz - 1);
	memcpy(dst, val, len);
	dst[len] = 0;
	return 0;
}

static int parse_pair(struct nvemu_drv_trid *trid, const char *tok, size_t len,
		      struct nvemu_error *err)
{
	const char *colon = memchr(tok, ':', len);
	char key[16], val[NVEMU_DRV_TRADDR_MAX];
	size_t klen, vlen;

	if (!colon)
		return nvemu_error_set(err, -EINVAL, "transport ID: '%.*s' is not key:value",
				       (int)(len > 64 ? 64 : len), tok);
	klen = (size_t)(colon - tok);
	vlen = len - klen - 1;
	if (klen >= sizeof(key))
		klen = sizeof(key) - 1;
	memcpy(key, tok, klen);
	key[klen] = 0;
	if (!strcasecmp(key, "traddr"))
		return set_field(trid->traddr, sizeof(trid->traddr), "traddr", colon + 1, vlen,
				 err);
	if (!strcasecmp(key, "trsvcid"))
		return set_field(trid->trsvcid, sizeof(trid->trsvcid), "trsvcid", colon + 1, vlen,
				 err);
	if (!strcasecmp(key, "subnqn"))
		return set_field(trid->subnqn, sizeof(trid->subnqn), "subnqn", colon + 1, vlen,
				 err);
	if (vlen >= sizeof(val))
		return nvemu_error_set(err, -EINVAL, "%s: value too long", key);
	memcpy(val, colon + 1, vlen);
	val[vlen] = 0;
	if (!strcasecmp(key, "trtype")) {
		if (nvemu_drv_trtype_parse(val, &trid->trtype))
			return nvemu_error_set(err, -EINVAL,
					       "trtype: '%s' is not pcie, vfio-user or tcp", val);
		return 0;
	}
	if (!strcasecmp(key, "adrfam")) {
		if (!strcasecmp(val, "ipv4"))
			trid->adrfam = NVMF_ADDR_FAMILY_IP4;
		else if (!strcasecmp(val, "ipv6"))
			trid->adrfam = NVMF_ADDR_FAMILY_IP6;
		else
			return nvemu_error_set(err, -EINVAL, "adrfam: '%s' is not ipv4 or ipv6",
					       val);
		return 0;
	}
	return nvemu_error_set(err, -EINVAL, "transport ID: unknown key '%s'", key);
}

int nvemu_drv_trid_parse(const char *str, struct nvemu_drv_trid *trid, struct nvemu_error *err)
{
	const char *p = str;
	int rc;

	memset(trid, 0, sizeof(*trid));
	if (!str)
		return nvemu_error_set(err, -EINVAL, "transport ID: required");
	while (*p) {
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " \t");
		rc = parse_pair(trid, p, len, err);
		if (rc)
			return rc;
		p += len;
	}
	if (!trid->trtype)
		return nvemu_error_set(err, -EINVAL, "trtype: required");
	if (!trid->traddr[0])
		return nvemu_error_set(err, -EINVAL, "traddr: required");
	if (trid->trtype == NVEMU_DRV_TRTYPE_TCP) {
		if (!trid->subnqn[0])
			return nvemu_error_set(err, -EINVAL, "subnqn: required for tcp");
		if (!trid->trsvcid[0])
			strcpy(trid->trsvcid, "4420");
	}
	return 0;
}
