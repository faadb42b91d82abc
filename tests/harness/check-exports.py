#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libnvemu.so exports exactly its public API.

usage: check-exports.py LIBNVEMU_SO VERSION_SCRIPT HEADER...

TAP: the functions the public headers declare are the version script's
global list, and `nm -D --defined-only` of the library lists nothing else.
"""
import re
import subprocess
import sys


def header_functions(path):
    """Names of the functions a header declares (not static inline ones)."""
    text = open(path).read()
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    text = re.sub(r'^\s*#(?:[^\n]*\\\n)*[^\n]*', ' ', text, flags=re.M)
    names, stmt, depth = set(), [], 0
    for ch in text:
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth == 0 and stmt and re.match(r'\s*static\b', ''.join(stmt)):
                stmt = []  # a static inline definition ends here
        elif depth == 0:
            if ch == ';':
                s = ' '.join(''.join(stmt).split())
                stmt = []
                if re.match(r'(typedef|static)\b', s):
                    continue
                m = re.match(r'[\w\s\*]*?\b(\w+)\s*\(', s)
                if m and m.group(1) not in ('__attribute__', '_Static_assert'):
                    names.add(m.group(1))
            else:
                stmt.append(ch)
    return names


def script_globals(path):
    text = re.sub(r'/\*.*?\*/', ' ', open(path).read(), flags=re.S)
    m = re.search(r'global:(.*?)local:', text, flags=re.S)
    return {n.strip() for n in m.group(1).split(';') if n.strip()}


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[-1].split('@')[0] for line in out.splitlines() if line.strip()}


def main():
    lib, script, headers = sys.argv[1], sys.argv[2], sys.argv[3:]
    declared = set()
    for h in headers:
        declared |= header_functions(h)
    listed = script_globals(script)
    dynsym = exported(lib)
    checks = [
        ('every public function is in the version script', sorted(declared - listed)),
        ('the version script lists only public functions', sorted(listed - declared)),
        ('libnvemu.so exports every listed function', sorted(listed - dynsym)),
        ('libnvemu.so exports nothing else', sorted(dynsym - listed)),
    ]
    print('1..%d' % len(checks))
    failed = 0
    for i, (what, bad) in enumerate(checks, 1):
        print('%s %d - %s' % ('not ok' if bad else 'ok', i, what))
        for name in bad:
            print('#   %s' % name)
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
