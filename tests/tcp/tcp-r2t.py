#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Round trips of large writes: the target asks for all of a command's data
with one R2T (the host splits it into H2CData PDUs of at most MAXH2CDATA),
with and without digests; several large writes get their R2Ts at once, may
be answered in any order, and the data lands where it belongs. The data is
received straight into the command's buffer, in pieces of any size."""
import os
import struct

from nvmetcp import (C2H_DATA, F_LAST, H2C_DATA, R2T, RSP, Conn, Daemon, Tap, admin,
                     io_queue, status_str)

tap = Tap()
HOST = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
d = Daemon("target", ["-m", "8"])
SUB = d.subnqn
NS = 3
WRITE, READ = 0x01, 0x02
KIB512 = 512 << 10


def write(q, lba, data):
    sqe, cid = q.sqe(WRITE, nsid=NS, cdw10=lba, cdw12=len(data) // 512 - 1, sgl_len=len(data))
    q.send_cmd(sqe)
    return q.wait_rsp(cid, data)


def read(q, lba, n):
    sqe, cid = q.sqe(READ, nsid=NS, cdw10=lba, cdw12=n // 512 - 1, sgl_len=n)
    q.send_cmd(sqe)
    return q.wait_rsp(cid)


try:
    a = admin(d.port, SUB, HOST)
    for dg in (False, True):
        q = Conn(d.port)
        q.icreq(hdgst=dg, ddgst=dg)
        r = q.connect(SUB, HOST, qid=1, cntlid=a.cntlid, sqsize=127)
        tap.eq(r["status"], 0, f"I/O queue (digests {dg})")
        data = os.urandom(KIB512)
        r = write(q, 0, data)
        tap.eq((r["status"], r["r2ts"]), (0, 1),
               f"512 KiB write: one R2T for all of it (digests {dg})")
        r = read(q, 0, KIB512)
        tap.ok(r["status"] == 0 and bytes(r["data"]) == data, f"... and it reads back (digests {dg})")
        q.close()

    # Four 512 KiB writes in flight: four R2Ts before any data, each for the whole command.
    q = io_queue(d.port, SUB, HOST, a.cntlid)
    bufs, r2ts, cids = {}, {}, []
    for k in range(4):
        data = os.urandom(KIB512)
        sqe, cid = q.sqe(WRITE, nsid=NS, cdw10=k * 1024, cdw12=KIB512 // 512 - 1,
                         sgl_len=KIB512)
        q.send_cmd(sqe)
        bufs[cid] = (k, data)
        cids.append(cid)
    while len(r2ts) < 4:
        t, hdr, _ = q.recv_pdu()
        if t != R2T:
            break
        cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
        r2ts[cccid] = (ttag, r2to, r2tl)
    tap.eq(sorted(r2ts), sorted(cids), "four R2Ts came before any data was sent")
    tap.eq({v[1:] for v in r2ts.values()}, {(0, KIB512)}, "... each for the whole 512 KiB")
    # Answer the last first, each in odd-sized H2CData PDUs (not multiples of 4 KiB).
    for cid in reversed(cids):
        ttag, off, n = r2ts[cid]
        data = bufs[cid][1]
        pos, step = 0, 12340
        while pos < n:
            m = min(step, n - pos, q.maxh2cdata)
            h = struct.pack("<BBBBIHHIII", H2C_DATA, F_LAST if pos + m == n else 0, 0, 0, 0,
                            cid, ttag, pos, m, 0)
            q.send_pdu(h, data[pos:pos + m])
            pos += m
    done = {}
    while len(done) < 4:
        t, hdr, _ = q.recv_pdu()
        if t != RSP:
            break
        _, _, _, _, rcid, st = struct.unpack_from("<IIHHHH", hdr, 8)
        done[rcid] = st >> 1
    tap.eq(done, {cid: 0 for cid in cids}, "all four writes completed with success")
    ok = True
    for cid, (k, data) in bufs.items():
        r = read(q, k * 1024, KIB512)
        ok = ok and r["status"] == 0 and bytes(r["data"]) == data
    tap.ok(ok, "... and each reads back at its LBA")
    q.close()
    a.close()
    tap.ok(d.alive(), "the target is still running")
finally:
    d.stop()
tap.done()
