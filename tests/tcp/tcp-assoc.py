#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Associations belong to their host: an I/O queue Connect must match the
controller's cntlid, hostnqn and hostid; nvmf_subsystem_remove_host ends
the removed host's live associations and later Connects are refused."""

from nvmetcp import (CD_CNTLID, CD_HOSTID, CD_HOSTNQN, DNR, IATTR_DATA, SC_CONNECT_INVALID_HOST,
                     SC_CONNECT_INVALID_PARAM, Conn, Daemon, Tap, admin, io_queue, status_str)

tap = Tap()
d = Daemon()
SUB = d.subnqn
HOST1 = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:66666666-7777-4888-9999-aaaaaaaaaaaa"
ID1, ID2 = b"\x11" * 16, b"\x22" * 16

def io_connect(cntlid, host, hostid, qid=1):
    c = Conn(d.port)
    c.icreq()
    r = c.connect(SUB, host, qid=qid, cntlid=cntlid, sqsize=31, hostid=hostid)
    return c, r

def refused(desc, r, status, ipo):
    tap.ok(r["status"] == status | DNR and r["dw0"] == IATTR_DATA | ipo, desc,
           f"got {status_str(r['status'])} dw0 {r['dw0']:#x}")

def read_lba0(q):
    return q.cmd(0x02, rlen=512, nsid=1, cdw10=0, cdw12=0)

try:
    a = admin(d.port, SUB, HOST1, hostid=ID1)
    c, r = io_connect(a.cntlid, HOST1, ID2)
    refused("I/O Connect with the right cntlid and hostnqn but another hostid is refused", r,
            SC_CONNECT_INVALID_PARAM, CD_HOSTID)
    r2 = c.cmd(0x02, rlen=512, nsid=1)
    tap.ok(r2["status"] != 0, "... and the refused queue cannot read the namespace",
           status_str(r2["status"]))
    c.close()
    c, r = io_connect(a.cntlid, HOST2, ID1)
    refused("I/O Connect with another hostnqn is refused", r, SC_CONNECT_INVALID_PARAM,
            CD_HOSTNQN)
    c.close()
    c, r = io_connect(a.cntlid + 7, HOST1, ID1)
    refused("I/O Connect to an unknown cntlid is refused", r, SC_CONNECT_INVALID_PARAM,
            CD_CNTLID)
    c.close()
    q, r = io_connect(a.cntlid, HOST1, ID1)
    tap.ok(r["status"] == 0, "I/O Connect with matching cntlid, hostnqn and hostid succeeds",
           status_str(r["status"]))
    tap.ok(read_lba0(q)["status"] == 0, "... and reads the namespace")

    # Access list: HOST1 allowed, then removed while connected.
    d.rpc("nvmf_subsystem_allow_any_host", "--nqn", SUB, "--allow_any_host", "false")
    d.rpc("nvmf_subsystem_add_host", "--nqn", SUB, "--host", HOST1)
    ctrls = d.rpc("nvmf_subsystem_get_controllers", "--nqn", SUB)
    tap.eq(len(ctrls), 1, "one association before remove_host")
    d.rpc("nvmf_subsystem_remove_host", "--nqn", SUB, "--host", HOST1)
    tap.ok(a.closed_within(3), "remove_host closes the host's admin queue")
    tap.ok(q.closed_within(3), "remove_host closes the host's I/O queue")
    ctrls = d.rpc("nvmf_subsystem_get_controllers", "--nqn", SUB)
    tap.eq(len(ctrls or []), 0, "nvmf_subsystem_get_controllers: the association is gone")
    c = Conn(d.port)
    c.icreq()
    r = c.connect(SUB, HOST1, hostid=ID1)
    tap.ok(r["status"] == SC_CONNECT_INVALID_HOST | DNR,
           "a new Connect of the removed host is refused (Connect Invalid Host)",
           status_str(r["status"]))
    c.close()
    tap.ok(d.alive(), "nvemud is still running")
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")
tap.done()
