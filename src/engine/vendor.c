/* SPDX-License-Identifier: MIT */
/* Vendor identity: build-time defaults (config.h) with run-time overrides. */
#include <ctype.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "nvemu-internal.h"

void nvemu_vendor_build_default(struct nvemu_vendor *v)
{
	v->ieee_oui[0] = NVEMU_BUILD_OUI0;
	v->ieee_oui[1] = NVEMU_BUILD_OUI1;
	v->ieee_oui[2] = NVEMU_BUILD_OUI2;
	v->pci_vid = NVEMU_BUILD_PCI_VID;
	v->pci_did = NVEMU_BUILD_PCI_DID;
	v->pci_svid = NVEMU_BUILD_PCI_SVID;
	v->pci_sdid = NVEMU_BUILD_PCI_SDID;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int nvemu_vendor_parse_oui(const char *s, uint8_t oui[3])
{
	/* IEEE RA form: three hex octets separated by '-', e.g. ac-de-48 */
	if (!s || strlen(s) != 8 || s[2] != '-' || s[5] != '-')
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		oui[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int nvemu_vendor_parse_id16(const char *s, uint16_t *id)
{
	unsigned v = 0;
	size_t n;

	if (!s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	n = strlen(s);
	if (n == 0 || n > 4)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(s[i]);

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (unsigned)d;
	}
	*id = (uint16_t)v;
	return 0;
}

/*
 * Each identity variable under nvemu's name and under the name the
 * nvme-mi-dev crate (which the MI model follows) reads at build time.
 */
static const struct vendor_var {
	const char *var, *alias;
	size_t off; /* SIZE_MAX: the OUI */
} vendor_vars[] = {
	{"NVEMU_IEEE_OUI", "NVME_MI_DEV_IEEE_OUI", SIZE_MAX},
	{"NVEMU_PCI_VID", "NVME_MI_DEV_PCI_VID", offsetof(struct nvemu_vendor, pci_vid)},
	{"NVEMU_PCI_DID", "NVME_MI_DEV_PCI_DID", offsetof(struct nvemu_vendor, pci_did)},
	{"NVEMU_PCI_SVID", "NVME_MI_DEV_PCI_SVID", offsetof(struct nvemu_vendor, pci_svid)},
	{"NVEMU_PCI_SDID", "NVME_MI_DEV_PCI_SDID", offsetof(struct nvemu_vendor, pci_sdid)},
};

#define NR_VENDOR_VARS (sizeof(vendor_vars) / sizeof(vendor_vars[0]))

/* The value in force and the name it came from: nvemu's name wins over the alias. */
static const char *vendor_getenv(const struct vendor_var *vv, const char **name)
{
	const char *s = getenv(vv->var);

	*name = vv->var;
	if (!s) {
		s = getenv(vv->alias);
		*name = vv->alias;
	}
	return s;
}

int nvemu_vendor_from_env(struct nvemu_vendor *v, struct nvemu_error *err)
{
	struct nvemu_vendor nv = *v;

	for (size_t i = 0; i < NR_VENDOR_VARS; i++) {
		const struct vendor_var *vv = &vendor_vars[i];
		const char *name, *s = vendor_getenv(vv, &name);

		if (!s)
			continue;
		if (vv->off == SIZE_MAX) {
			if (nvemu_vendor_parse_oui(s, nv.ieee_oui))
				return nvemu_error_set(
					err, -EINVAL,
					"%s: '%s' is not an IEEE RA hex OUI such as ac-de-48", name,
					s);
		} else if (nvemu_vendor_parse_id16(s, (uint16_t *)((char *)&nv + vv->off))) {
			return nvemu_error_set(err, -EINVAL,
					       "%s: '%s' is not a 16-bit hex value such as ffff", name,
					       s);
		}
	}
	*v = nv;
	return 0;
}

size_t nvemu_vendor_env_shadowed(char *buf, size_t len)
{
	size_t n = 0, used = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < NR_VENDOR_VARS; i++) {
		const char *a = getenv(vendor_vars[i].var), *b = getenv(vendor_vars[i].alias);
		int w;

		if (!a || !b || !strcmp(a, b))
			continue;
		n++;
		if (used >= len)
			continue;
		w = snprintf(buf + used, len - used, "%s%s (%s wins)", used ? ", " : "",
			     vendor_vars[i].alias, vendor_vars[i].var);
		if (w > 0)
			used += (size_t)w;
	}
	return n;
}

bool nvemu_vendor_is_placeholder(const struct nvemu_vendor *v)
{
	return (v->ieee_oui[0] == 0xac && v->ieee_oui[1] == 0xde && v->ieee_oui[2] == 0x48) ||
	       v->pci_vid == 0xffff || v->pci_did == 0xffff || v->pci_svid == 0xffff ||
	       v->pci_sdid == 0xffff;
}
