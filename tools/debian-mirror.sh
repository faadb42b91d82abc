#!/bin/sh
# Prints the Debian archive URL this machine's apt uses (the first "deb"
# source for the main archive), so that chroots made by the tests use the
# same mirror; $NVEMU_DEBIAN_MIRROR overrides. Exits 1 if none is found.
set -eu
if [ -n "${NVEMU_DEBIAN_MIRROR:-}" ]; then
	echo "$NVEMU_DEBIAN_MIRROR"
	exit 0
fi
url=""
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	# deb822: the URIs of a stanza whose Types has deb and Suites a release (not -security).
	url=$(awk 'BEGIN{RS=""; FS="\n"}
		/(^|\n)Types:[^\n]*deb([ \t]|$|\n)/ && !/Suites:[^\n]*-security/ {
			for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); print a[2]; exit }
		}' "$f")
	[ -n "$url" ] && break
done
if [ -z "$url" ]; then
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		url=$(awk '$1 == "deb" && $3 !~ /-security/ { u = $2; if (u ~ /^\[/) u = $3; print u; exit }' "$f")
		[ -n "$url" ] && break
	done
fi
[ -n "$url" ] || { echo "debian-mirror: no Debian source in the apt configuration" >&2; exit 1; }
echo "$url"
