#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fused Compare and Write over NVMe/TCP, where the two halves are separate
capsules (the second one's data may even come later, through an R2T), and
reservations keyed by the Host Identifier a raw host gives in Connect."""
import struct

from nvmetcp import (C2H_DATA, DNR, F_LAST, H2C_DATA, PSDT_SGL, R2T, RSP, SGL_INCAPSULE, SGL_TRANSPORT,
                     Daemon, Tap, admin, io_queue, status_str)

tap = Tap()
HOST_X = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-2222-4333-8444-555555555555"
HOST_Y = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-2222-4333-8444-555555555555"
ID_X, ID_Y = b"\xaa" * 16, b"\xbb" * 16
READ, WRITE, COMPARE = 0x02, 0x01, 0x05
REGISTER, ACQUIRE, REPORT = 0x0D, 0x11, 0x0E
FUSE_FIRST, FUSE_SECOND = 1, 2
SC_FUSED_FAIL, SC_FUSED_MISSING = 0x09, 0x0A
SC_COMPARE_FAILED = 0x285 | DNR
SC_CONFLICT = 0x83 | DNR
LBA = 10


def pattern(b):
    return bytes([b]) * 512


def run(q, cmds):
    """Send every capsule, then collect every response (serving R2Ts):
    cmds is a list of (opc, flags, data, inline); returns statuses in order."""
    cids, outs = [], {}
    for opc, flags, data, inline in cmds:
        sqe, cid = q.sqe(opc, nsid=1, cdw10=LBA, cdw12=0, sgl_len=len(data) or 512,
                         sgl_type=SGL_INCAPSULE if inline else SGL_TRANSPORT,
                         flags=PSDT_SGL | flags)
        q.send_cmd(sqe, data if inline else b"")
        cids.append(cid)
        outs[cid] = data
    got = {}
    while len(got) < len(cids):
        t, hdr, _ = q.recv_pdu()
        if t == R2T:
            cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
            h = struct.pack("<BBBBIHHIII", H2C_DATA, F_LAST, 0, 0, 0, cccid, ttag, r2to, r2tl, 0)
            q.send_pdu(h, outs[cccid][r2to:r2to + r2tl])
        elif t == C2H_DATA:
            pass  # a Read's data; its status comes with the RSP
        elif t == RSP:
            _, _, _, _, rcid, st = struct.unpack_from("<IIHHHH", hdr, 8)
            got[rcid] = st >> 1
        else:
            raise RuntimeError(f"unexpected PDU type {t}")
    return [got[c] for c in cids]


def read_block(q):
    r = q.cmd(READ, rlen=512, nsid=1, cdw10=LBA, cdw12=0)
    return r["status"], bytes(r["data"])


d = Daemon()
SUB = d.subnqn
try:
    a = admin(d.port, SUB, HOST_X, hostid=ID_X)
    q = io_queue(d.port, SUB, HOST_X, a.cntlid, hostid=ID_X)
    r = a.cmd(0x06, rlen=4096, cdw10=1)
    tap.eq(struct.unpack_from("<H", bytes(r["data"]), 522)[0] & 1, 1,
           "Identify Controller: FUSES bit 0 (Compare and Write)")

    tap.eq(run(q, [(WRITE, 0, pattern(0x11), True)]), [0], "write pattern 11h")
    st = run(q, [(COMPARE, FUSE_FIRST, pattern(0x11), True),
                 (WRITE, FUSE_SECOND, pattern(0x22), True)])
    tap.eq([status_str(s) for s in st], [status_str(0)] * 2,
           "Compare 11h + Write 22h as two capsules: both succeed")
    tap.eq(read_block(q), (0, pattern(0x22)), "the block holds 22h")

    st = run(q, [(COMPARE, FUSE_FIRST, pattern(0x11), True),
                 (WRITE, FUSE_SECOND, pattern(0x33), True)])
    tap.eq([status_str(s) for s in st], [status_str(SC_COMPARE_FAILED), status_str(SC_FUSED_FAIL)],
           "a miscompare: Compare Failure, the Write aborted as a failed fused command")
    tap.eq(read_block(q), (0, pattern(0x22)), "the block still holds 22h")

    st = run(q, [(COMPARE, FUSE_FIRST, pattern(0x22), True),
                 (WRITE, FUSE_SECOND, pattern(0x44), False)])
    tap.eq([status_str(s) for s in st], [status_str(0)] * 2,
           "the Write's data through an R2T, after the Compare: both succeed")
    tap.eq(read_block(q), (0, pattern(0x44)), "the block holds 44h")

    st = run(q, [(WRITE, FUSE_SECOND, pattern(0x55), True)])
    tap.eq(status_str(st[0]), status_str(SC_FUSED_MISSING),
           "a second half alone: Missing Fused Command")
    st = run(q, [(COMPARE, FUSE_FIRST, pattern(0x44), True), (READ, 0, b"", False)])
    tap.eq(status_str(st[0]), status_str(SC_FUSED_MISSING),
           "a first half followed by a Read: Missing Fused Command")
    tap.eq(read_block(q), (0, pattern(0x44)), "nothing was written")

    # Reservations follow the Connect Host Identifier
    keys = struct.pack("<QQ", 0, 0xA1)
    r = q.cmd(REGISTER, keys, inline=True, nsid=1, cdw10=0)
    tap.eq(r["status"], 0, "host X registers")
    r = q.cmd(ACQUIRE, struct.pack("<QQ", 0xA1, 0), inline=True, nsid=1, cdw10=2 << 8)
    tap.eq(r["status"], 0, "host X acquires Exclusive Access")
    b = admin(d.port, SUB, HOST_Y, hostid=ID_Y)
    qy = io_queue(d.port, SUB, HOST_Y, b.cntlid, hostid=ID_Y)
    st, _ = read_block(qy)
    tap.eq(status_str(st), status_str(SC_CONFLICT), "host Y's read: Reservation Conflict")
    st = run(qy, [(COMPARE, FUSE_FIRST, pattern(0x44), True),
                  (WRITE, FUSE_SECOND, pattern(0x66), True)])
    tap.eq([status_str(s) for s in st], [status_str(SC_CONFLICT), status_str(SC_FUSED_FAIL)],
           "host Y's fused pair: Reservation Conflict, the Write not run")
    r = qy.cmd(REPORT, rlen=4096, nsid=1, cdw10=1023, cdw11=1)
    rep = bytes(r["data"])
    tap.ok(r["status"] == 0 and rep[4] == 2 and rep[5] == 1 and rep[64 + 16:64 + 32] == ID_X,
           "host Y's extended report: Exclusive Access, one registrant with host X's ID",
           rep[:128].hex())
    # a second association of host X (same Host ID) is the same host
    c = admin(d.port, SUB, HOST_X, hostid=ID_X)
    qx2 = io_queue(d.port, SUB, HOST_X, c.cntlid, hostid=ID_X)
    tap.eq(read_block(qx2), (0, pattern(0x44)), "host X's second association reads")
    for conn in (q, a, qy, b, qx2, c):
        conn.close()
    tap.ok(d.alive(), "nvemud is alive")
finally:
    d.stop()
tap.done()
