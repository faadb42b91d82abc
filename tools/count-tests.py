#!/usr/bin/env python3
"""Counts test cases in meson's testlog.json files: each TAP line of a TAP
test, or the test itself otherwise. Prints "N passed, N failed"; exits 1
if anything failed or nothing ran."""
import json
import re
import sys

passed = failed = skipped = 0
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
        out = t.get("stdout") or t.get("stdo") or ""
        oks = len(re.findall(r"^ok\b(?!.*# SKIP)", out, re.M))
        skips = len(re.findall(r"^ok\b.*# SKIP", out, re.M))
        bad = len(re.findall(r"^not ok\b", out, re.M))
        if oks + bad + skips:
            passed += oks
            skipped += skips
            failed += bad
            if t["result"] not in ("OK", "SKIP") and bad == 0:
                failed += 1  # crashed or exited non-zero after its cases
        elif t["result"] == "OK":
            passed += 1
        elif t["result"] == "SKIP":
            skipped += 1
        else:
            failed += 1
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
