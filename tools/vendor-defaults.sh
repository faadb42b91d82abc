#!/bin/sh
# Validates the build-time vendor identity (NVEMU_IEEE_OUI, NVEMU_PCI_VID,
# NVEMU_PCI_DID, NVEMU_PCI_SVID, NVEMU_PCI_SDID, or the NVME_MI_DEV_* names
# nvme-mi-dev reads; the NVEMU_* value wins, with a warning) and prints it as
# "OUI0 OUI1 OUI2 VID DID SVID SDID" for meson.build.
set -eu

# pick NAME DEFAULT: the value of NVEMU_NAME, else NVME_MI_DEV_NAME, else DEFAULT.
pick() {
	eval "a=\${NVEMU_$1-} b=\${NVME_MI_DEV_$1-}"
	if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then
		echo "warning: NVME_MI_DEV_$1 ignored: NVEMU_$1 is set too and wins" >&2
	fi
	if [ -n "$a" ]; then
		name=NVEMU_$1 val=$a
	elif [ -n "$b" ]; then
		name=NVME_MI_DEV_$1 val=$b
	else
		name=NVEMU_$1 val=$2
	fi
}

pick IEEE_OUI ac-de-48
if ! printf '%s\n' "$val" | grep -Eq '^[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}$'; then
	echo "$name: '$val' is not an IEEE RA hex OUI such as ac-de-48" >&2
	exit 1
fi
out=$(printf '%s' "$val" | awk -F- '{printf "0x%s 0x%s 0x%s", $1, $2, $3}')
for id in PCI_VID PCI_DID PCI_SVID PCI_SDID; do
	pick $id ffff
	if ! printf '%s\n' "$val" | grep -Eq '^(0x)?[0-9A-Fa-f]{1,4}$'; then
		echo "$name: '$val' is not a 16-bit hex value such as ffff" >&2
		exit 1
	fi
	out="$out 0x${val#0x}"
done
echo "$out"
