#!/usr/bin/env python3
"""tools/count-tests.py on made-up meson test logs: a skip is counted as a
skip (never as a pass) and fails the run unless NVEMU_ALLOW_SKIP=1; a
failure or a crash after passing cases fails it. TAP output.

usage: count-tests-selftest.py COUNT_TESTS_PY"""
import json
import os
import subprocess
import sys
import tempfile

tool = sys.argv[1]
cases = []


def case(desc, tests, want_line, want_rc, allow_skip=False):
    cases.append((desc, tests, want_line, want_rc, allow_skip))


def t(name, result, stdout=""):
    return {"name": name, "result": result, "stdout": stdout}


case("all passing", [t("a", "OK", "ok 1 - x\nok 2 - y\n1..2\n"), t("b", "OK")],
     "3 passed, 0 failed", 0)
case("a TAP SKIP directive counts as skipped, not passed, and fails",
     [t("a", "OK", "ok 1 - x\nok 2 - y # SKIP no tool\n1..2\n")],
     "1 passed, 0 failed, 1 skipped", 1)
case("a lower-case skip directive without a space is a skip too",
     [t("a", "OK", "ok 1 - x\nok 2 - y #skip\n1..2\n")], "1 passed, 0 failed, 1 skipped", 1)
case("exit status 77 (meson SKIP) is a skip and fails",
     [t("a", "OK"), t("fuzz-jsonrpc", "SKIP")], "1 passed, 0 failed, 1 skipped", 1)
case("a TAP plan 1..0 with a SKIP directive is a skip", [t("a", "OK"), t("b", "SKIP", "1..0 # SKIP nothing\n")],
     "1 passed, 0 failed, 1 skipped", 1)
case("NVEMU_ALLOW_SKIP=1 accepts skips but still counts them",
     [t("a", "OK", "ok 1 - x\nok 2 - y # SKIP no tool\n1..2\n")],
     "1 passed, 0 failed, 1 skipped", 0, True)
case("not ok fails", [t("a", "FAIL", "ok 1 - x\nnot ok 2 - y\n1..2\n")],
     "1 passed, 1 failed", 1)
case("a crash after passing cases fails", [t("a", "FAIL", "ok 1 - x\n")],
     "1 passed, 1 failed", 1)
case("a non-TAP failure fails", [t("a", "FAIL"), t("b", "TIMEOUT")], "0 passed, 2 failed", 1)
case("nothing ran fails", [], "0 passed, 0 failed", 1)

n = failed = 0
with tempfile.TemporaryDirectory() as d:
    for desc, tests, want_line, want_rc, allow in cases:
        log = os.path.join(d, "testlog.json")
        with open(log, "w") as f:
            for x in tests:
                f.write(json.dumps(x) + "\n")
        env = dict(os.environ)
        env.pop("NVEMU_ALLOW_SKIP", None)
        if allow:
            env["NVEMU_ALLOW_SKIP"] = "1"
        p = subprocess.run([sys.executable, tool, log], capture_output=True, text=True, env=env)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        n += 1
        if line == want_line and p.returncode == want_rc:
            print(f"ok {n} - {desc}")
        else:
            failed += 1
            print(f"not ok {n} - {desc}")
            print(f"# got '{line}' exit {p.returncode}, want '{want_line}' exit {want_rc}")
print(f"1..{n}")
sys.exit(1 if failed else 0)
