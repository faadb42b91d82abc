#!/bin/bash
# SPDX-License-Identifier: MIT
# The engine's command rate before and after reservations and fused
# Compare and Write: bench-engine of OLD_BUILDDIR (a build without them) and
# of BUILDDIR, alternating for ROUNDS rounds on one CPU; the best round of
# each side per case (the machine may be shared), then new/old.
#   bench/resv-overhead.sh BUILDDIR [OLD_BUILDDIR] [SECONDS] [ROUNDS]
set -eu
new=$1/bench/bench-engine
old=${2:-/work/oldbuild}/bench/bench-engine
secs=${3:-1}
rounds=${4:-3}
cpu=$(cut -d' ' -f39 /proc/self/stat)
[ -x "$old" ] && [ -x "$new" ] || { echo "usage: $0 BUILDDIR [OLD_BUILDDIR] [SECONDS] [ROUNDS]" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$rounds"); do
	for side in old new; do
		bin=$old
		[ $side = new ] && bin=$new
		"$bin" -t "$secs" -c "$cpu" | awk -v s=$side '$3 ~ /^[0-9]+$/ { print s, $1 "-" $2, $3 }' >>"$tmp/all"
	done
done
echo "bench-engine, best of $rounds rounds of $secs s per side and case (old: $old)"
printf '%-8s %-6s %14s %14s %8s\n' backend op "old req/s" "new req/s" new/old
awk '{ k = $2; if ($3 > best[$1, k]) best[$1, k] = $3; keys[k] = 1 }
     END { for (k in keys) { split(k, p, "-");
	printf "%-8s %-6s %14d %14d %8.3f\n", p[1], p[2], best["old", k], best["new", k],
	       best["new", k] / best["old", k] } }' "$tmp/all" | sort
