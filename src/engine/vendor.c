/* SPDX-License-Identifier: MIT */
/* Vendor identity: build-time defaults (config.h) with run-time overrides. */
#include <ctype.h>
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

int nvemu_vendor_from_env(struct nvemu_vendor *v, struct nvemu_error *err)
{
	static const struct {
		const char *var;
		size_t off;
	} ids[] = {
		{"NVEMU_PCI_VID", offsetof(struct nvemu_vendor, pci_vid)},
		{"NVEMU_PCI_DID", offsetof(struct nvemu_vendor, pci_did)},
		{"NVEMU_PCI_SVID", offsetof(struct nvemu_vendor, pci_svid)},
		{"NVEMU_PCI_SDID", offsetof(struct nvemu_vendor, pci_sdid)},
	};
	struct nvemu_vendor nv = *v;
	const char *s = getenv("NVEMU_IEEE_OUI");

	if (s && nvemu_vendor_parse_oui(s, nv.ieee_oui))
		return nvemu_error_set(
			err, -EINVAL,
			"NVEMU_IEEE_OUI: '%s' is not an IEEE RA hex OUI such as ac-de-48", s);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		s = getenv(ids[i].var);
		if (s && nvemu_vendor_parse_id16(s, (uint16_t *)((char *)&nv + ids[i].off)))
			return nvemu_error_set(err, -EINVAL,
					       "%s: '%s' is not a 16-bit hex value such as ffff",
					       ids[i].var, s);
	}
	*v = nv;
	return 0;
}

bool nvemu_vendor_is_placeholder(const struct nvemu_vendor *v)
{
	return (v->ieee_oui[0] == 0xac && v->ieee_oui[1] == 0xde && v->ieee_oui[2] == 0x48) ||
	       v->pci_vid == 0xffff || v->pci_did == 0xffff || v->pci_svid == 0xffff ||
	       v->pci_sdid == 0xffff;
}
