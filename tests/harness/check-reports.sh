#!/bin/sh
# usage: check-reports.sh DIR
# Exit 1 and print them if any sanitizer report (a non-empty file) is in
# DIR, where ASAN_OPTIONS/UBSAN_OPTIONS log_path put them during
# tests/run-all.sh; exit 0 if there is none.
set -u
found=$(find "$1" -type f -size +0 2>/dev/null | sort)
[ -z "$found" ] && exit 0
echo "=== sanitizer reports in $1 (each fails the run):"
for f in $found; do
	echo "--- $f"
	head -n 60 "$f"
done
exit 1
