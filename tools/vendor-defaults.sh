#!/bin/sh
# Validates the build-time vendor identity (NVEMU_IEEE_OUI, NVEMU_PCI_VID,
# NVEMU_PCI_DID, NVEMU_PCI_SVID, NVEMU_PCI_SDID) and prints it as
# "OUI0 OUI1 OUI2 VID DID SVID SDID" for meson.build.
set -eu
oui=${NVEMU_IEEE_OUI:-ac-de-48}
if ! printf '%s\n' "$oui" | grep -Eq '^[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}$'; then
	echo "NVEMU_IEEE_OUI: '$oui' is not an IEEE RA hex OUI such as ac-de-48" >&2
	exit 1
fi
out=$(printf '%s' "$oui" | awk -F- '{printf "0x%s 0x%s 0x%s", $1, $2, $3}')
for var in NVEMU_PCI_VID NVEMU_PCI_DID NVEMU_PCI_SVID NVEMU_PCI_SDID; do
	eval "val=\${$var:-ffff}"
	if ! printf '%s\n' "$val" | grep -Eq '^(0x)?[0-9A-Fa-f]{1,4}$'; then
		echo "$var: '$val' is not a 16-bit hex value such as ffff" >&2
		exit 1
	fi
	out="$out 0x${val#0x}"
done
echo "$out"
