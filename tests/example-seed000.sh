#!/bin/sh
# Runs the seed-000 example and checks what it reports (TAP).
echo "1..2"
out=$("$1" 2>&1); rc=$?
[ $rc -eq 0 ] && echo "ok 1 - seed000 example exits 0" || { echo "not ok 1 - seed000 exited $rc: $out"; }
echo "$out" | grep -q "controller 1, namespaces 1 (attached) and 2, two-wire port 1" \
	&& echo "ok 2 - seed000 reports the seed-000 model" || echo "not ok 2 - unexpected output: $out"
