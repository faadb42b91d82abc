#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connect NQN validation: hostnqn and subnqn over 223 bytes, without a NUL
in their 256-byte field, with invalid UTF-8 or control characters are
refused with Connect Invalid Parameters pointing at the field; nvemud stays
up, stores nothing, and its log carries no raw peer bytes."""
from nvmetcp import (CD_HOSTNQN, CD_SUBNQN, DNR, IATTR_DATA, SC_CONNECT_INVALID_PARAM, Conn,
                     Daemon, Tap, status_str)

tap = Tap()
d = Daemon()
SUB = d.subnqn
GOOD = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
FORGED = "nvemud: error: FORGED LINE"


def try_connect(sub, host):
    c = Conn(d.port)
    c.icreq()
    r = c.connect(sub, host)
    c.close()
    return r


def refused(desc, sub, host, ipo):
    r = try_connect(sub, host)
    tap.ok(r["status"] == SC_CONNECT_INVALID_PARAM | DNR and r["dw0"] == IATTR_DATA | ipo,
           f"{desc}: Connect Invalid Parameters, IPO {ipo}",
           f"got {status_str(r['status'])} dw0 {r['dw0']:#x}")


try:
    base = "nqn.2014-08.org.nvmexpress:uuid:"
    refused("hostnqn of 240 bytes", SUB, base + "a" * (240 - len(base)), CD_HOSTNQN)
    refused("hostnqn of 224 bytes", SUB, base + "a" * (224 - len(base)), CD_HOSTNQN)
    refused("hostnqn filling its 256 bytes without a NUL", SUB, (base + "a" * 256)[:256],
            CD_HOSTNQN)
    refused("hostnqn with invalid UTF-8", SUB, base.encode() + b"\xff\xfe", CD_HOSTNQN)
    refused("hostnqn with an overlong UTF-8 encoding", SUB, base.encode() + b"\xc0\xaf",
            CD_HOSTNQN)
    refused("hostnqn with a newline", SUB, base + "x\n" + FORGED, CD_HOSTNQN)
    refused("hostnqn with DEL", SUB, base + "x\x7f", CD_HOSTNQN)
    refused("hostnqn with a C1 control (U+0085)", SUB, base + "x\u0085", CD_HOSTNQN)
    refused("empty hostnqn", SUB, "", CD_HOSTNQN)
    refused("subnqn of 240 bytes", "nqn.2014-08.io.nvemu:" + "b" * 219, GOOD, CD_SUBNQN)
    refused("subnqn with an escape sequence", "nqn.2014-08.io.nvemu:\x1b[2J", GOOD, CD_SUBNQN)
    tap.ok(d.alive(), "nvemud is still running")
    ctrls = d.rpc("nvmf_subsystem_get_controllers", "--nqn", SUB)
    tap.eq(len(ctrls or []), 0, "no controller was created by a refused Connect")

    host223 = base + "c" * (223 - len(base))
    r = try_connect(SUB, host223)
    tap.ok(r["status"] == 0, "a hostnqn of exactly 223 bytes is accepted",
           status_str(r["status"]))
    c = Conn(d.port)
    c.icreq()
    r = c.connect(SUB, base + "h\u00e9llo")
    tap.ok(r["status"] == 0, "a hostnqn with valid UTF-8 (U+00E9) is accepted",
           status_str(r["status"]))
    ctrls = d.rpc("nvmf_subsystem_get_controllers", "--nqn", SUB)
    tap.ok(any(x.get("hostnqn") == base + "h\u00e9llo" for x in ctrls or []),
           "... and listed by nvmf_subsystem_get_controllers", repr(ctrls))
    c.close()

    log = d.logtext()
    tap.ok(not any(line.startswith(FORGED) for line in log.splitlines()),
           "the daemon log has no line forged by a hostnqn")
    tap.ok("\\x0a" in log, "the refused hostnqn is logged escaped (\\x0a)")
    tap.ok(d.alive(), "nvemud is still running at the end")
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")
tap.done()
