#!/usr/bin/env python3
"""Counts test cases in meson's testlog.json files: each TAP line of a TAP
test, or the test itself otherwise. Prints "N passed, N failed, N skipped".

Exits 1 if anything failed, nothing ran, or anything was skipped: a skip
here means a tool, a file system feature or a test target was missing, and
the suites are meant to run completely (tools/install-deps.sh installs
everything). NVEMU_ALLOW_SKIP=1 accepts skips (they are still listed and
counted as skipped, never as passed).

Arguments ending in .buildfail are files with one line per failed build."""
import json
import os
import re
import sys

# TAP: "ok N - desc # SKIP reason" (directive case-insensitive, "#" may touch it).
SKIP_RE = re.compile(r"#\s*skip\b", re.I)
OK_RE = re.compile(r"^ok\b(.*)$", re.M)
NOT_OK_RE = re.compile(r"^not ok\b(.*)$", re.M)
PLAN_SKIP_RE = re.compile(r"^1\.\.0\b.*#\s*skip\b", re.M | re.I)

passed = failed = skipped = 0
skipped_names = []


def skip(name):
    global skipped
    skipped += 1
    skipped_names.append(name)


for path in sys.argv[1:]:
    if path.endswith(".buildfail"):
        try:
            failed += sum(1 for _ in open(path))
        except OSError:
            pass  # an unmatched glob: no build failed
        continue
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print(f"count-tests: {path} missing", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        name = t.get("name", "?")
        out = t.get("stdout") or t.get("stdo") or ""
        oks = skips = 0
        for m in OK_RE.finditer(out):
            if SKIP_RE.search(m.group(1)):
                skips += 1
                skip(f"{name}: ok{m.group(1)}")
            else:
                oks += 1
        # "not ok ... # TODO" is an expected failure in TAP; nvemu has none, so any
        # "not ok" fails, and "not ok ... # SKIP" is a failure too.
        bad = len(NOT_OK_RE.findall(out))
        if oks + bad + skips:
            passed += oks
            failed += bad
            if t["result"] not in ("OK", "SKIP") and bad == 0:
                failed += 1  # crashed or exited non-zero after its cases
        elif t["result"] == "OK":
            passed += 1
        elif t["result"] == "SKIP" or PLAN_SKIP_RE.search(out):
            # exit status 77, or a TAP plan "1..0 # SKIP": the whole test did not run
            skip(f"{name}: whole test skipped")
        else:
            failed += 1
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
allow_skip = os.environ.get("NVEMU_ALLOW_SKIP") == "1"
if skipped:
    print("count-tests: skipped (" + ("allowed by NVEMU_ALLOW_SKIP=1" if allow_skip else
          "a failure; NVEMU_ALLOW_SKIP=1 accepts skips") + "):", file=sys.stderr)
    for n in skipped_names:
        print(f"  {n}", file=sys.stderr)
sys.exit(1 if failed or passed == 0 or (skipped and not allow_skip) else 0)
