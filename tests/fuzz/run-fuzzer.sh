#!/bin/sh
# Runs a libFuzzer target for a bounded time as a test: new inputs go to a
# scratch corpus in the build tree, seeds (if any) are read only.
# usage: run-fuzzer.sh FUZZER SECONDS WORKDIR [SEED_DIR]
set -eu
fuzzer=$1; secs=$2; work=$3; seeds=${4:-}
mkdir -p "$work/corpus" "$work/artifacts"
set -- "$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
	-artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus"
[ -n "$seeds" ] && [ -d "$seeds" ] && set -- "$@" "$seeds"
exec "$@"
