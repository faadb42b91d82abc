#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Memory a host can pin: command slots follow SQSIZE; nothing is buffered
and no R2T is sent before the queue is connected and the command is valid;
a host that never reads its responses is held back (its socket is not read)
instead of growing the target without bound, and loses no command."""
import socket
import struct
import time

from nvmetcp import (C2H_DATA, DNR, R2T, RSP, SC_INVALID_NS, SC_SEQ_ERROR, SC_SGL_LEN, Conn,
                     Daemon, Tap, admin, io_queue, status_str)

tap = Tap()
HOST = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
QUEUES = 4
READ_KIB = 512  # MDTS (7: 4 KiB << 7)
d = Daemon("target", ["-m", "8"])
SUB = d.subnqn
NS = 3
WRITE = 0x01
READ = 0x02


def lba_cmd(q, opc, nblocks, nsid=NS, sgl_len=None, **kw):
    sqe, cid = q.sqe(opc, nsid=nsid, cdw10=0, cdw12=nblocks - 1,
                     sgl_len=nblocks * 512 if sgl_len is None else sgl_len, **kw)
    q.send_cmd(sqe)
    return cid


try:
    # Before Connect: a write is refused without an R2T (no buffer either).
    c = Conn(d.port)
    c.icreq()
    cid = lba_cmd(c, WRITE, 128)
    r = c.wait_rsp(cid, expect_no_r2t=True)
    tap.ok(r["r2ts"] == 0 and r["status"] == SC_SEQ_ERROR | DNR,
           "a write before Connect: Command Sequence Error, no R2T",
           f"r2ts {r['r2ts']} status {status_str(r['status'])}")
    c.close()

    a = admin(d.port, SUB, HOST)
    q = io_queue(d.port, SUB, HOST, a.cntlid, qid=1, sqsize=3)
    cid = lba_cmd(q, WRITE, 8, sgl_len=8192)
    r = q.wait_rsp(cid, expect_no_r2t=True)
    tap.ok(r["r2ts"] == 0 and r["status"] == SC_SGL_LEN | DNR,
           "a write whose SGL is longer than its blocks: Data SGL Length Invalid, no R2T",
           f"r2ts {r['r2ts']} status {status_str(r['status'])}")
    cid = lba_cmd(q, WRITE, 8, nsid=99)
    r = q.wait_rsp(cid, expect_no_r2t=True)
    tap.ok(r["r2ts"] == 0 and r["status"] == SC_INVALID_NS | DNR,
           "a write to a namespace that does not exist: Invalid Namespace, no R2T",
           f"r2ts {r['r2ts']} status {status_str(r['status'])}")
    cid = lba_cmd(q, WRITE, 8, sgl_len=4096 - 512)
    r = q.wait_rsp(cid, expect_no_r2t=True)
    tap.ok(r["r2ts"] == 0 and r["status"] == SC_SGL_LEN | DNR,
           "a write whose SGL is shorter than its blocks: Data SGL Length Invalid, no R2T",
           status_str(r["status"]))

    # SQSIZE 3 (4 entries): four writes waiting for data hold every slot.
    r2ts = 0
    for _ in range(4):
        lba_cmd(q, WRITE, 8)
    for _ in range(4):
        t, hdr, _ = q.recv_pdu()
        r2ts += t == R2T
    tap.eq(r2ts, 4, "SQSIZE 3: four writes get their R2Ts")
    lba_cmd(q, WRITE, 8)
    r = q.wait_rsp(0xFFFF)
    tap.ok(r["term"] is not None and r["term"][0] == 3,
           "a fifth command on a 4-entry queue: C2HTermReq (queue overflow)", repr(r))
    q.close()
    a.close()
    time.sleep(0.3)

    # Hosts that never read: QUEUES queues of 128 entries, 128 reads of 512 KiB each.
    a = admin(d.port, SUB, HOST)
    qs = [io_queue(d.port, SUB, HOST, a.cntlid, qid=i + 1, sqsize=127) for i in range(QUEUES)]
    for q in qs:
        q.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    time.sleep(0.3)
    rss0 = d.rss_kib()
    blocks = READ_KIB * 2
    for q in qs:
        batch = b""
        for i in range(128):
            sqe, _ = q.sqe(READ, nsid=NS, cdw10=0, cdw12=blocks - 1, sgl_len=READ_KIB * 1024)
            batch += struct.pack("<BBBBI", 4, 0, 72, 0, 72) + sqe
        q.send(batch)
    time.sleep(2.0)
    rss1 = d.rss_kib()
    grew = rss1 - rss0
    old = QUEUES * 128 * READ_KIB
    bound = QUEUES * (4096 + 2048) + 8192  # queue_buf_max + slots/in-capsule, + slack
    tap.ok(d.alive(), "the target survives hosts that never read")
    tap.ok(grew < bound,
           f"RSS grew {grew} KiB for {QUEUES} stalled queues (bound {bound} KiB; "
           f"unbounded would be {old} KiB)")
    # Now read everything: backpressure lost nothing.
    got = 0
    bad = 0
    for q in qs:
        q.s.settimeout(10)
        n = 0
        while n < 128:
            try:
                t, hdr, data = q.recv_pdu()
            except Exception as e:
                tap.diag(f"queue broke after {n} reads: {e}")
                break
            if t == C2H_DATA and hdr[1] & 8:
                n += 1
            elif t == RSP:
                st = struct.unpack_from("<H", hdr, 22)[0] >> 1
                bad += st != 0
                n += 1
        got += n
    tap.eq((got, bad), (QUEUES * 128, 0),
           "once the host reads, every held-back read completes successfully")
    for q in qs:
        q.close()
    a.close()
    tap.ok(d.alive(), "the target is still running")
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")

# Commands waiting for buffer room must not hold back the data of earlier
# ones: queue_buf_max 2 MiB, five 512 KiB writes sent back to back.
d = Daemon("target", ["-m", "8", "-B", str(2 << 20)])
try:
    a = admin(d.port, d.subnqn, HOST)
    q = io_queue(d.port, d.subnqn, HOST, a.cntlid, qid=1, sqsize=15)
    n = READ_KIB * 2
    payload = [bytes([0x40 + i]) * (READ_KIB * 1024) for i in range(5)]
    cids = {}
    for i in range(5):
        sqe, cid = q.sqe(WRITE, nsid=NS, cdw10=i * n, cdw12=n - 1, sgl_len=READ_KIB * 1024)
        cids[cid] = i
        q.send_cmd(sqe)
    done, bad, r2t_before = {}, 0, 0
    q.s.settimeout(10)
    try:
        while len(done) < 5:
            t, hdr, _ = q.recv_pdu()
            if t == R2T:
                cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
                if cids[cccid] == 4 and len(done) == 0:
                    r2t_before += 1
                pos = r2to
                while pos < r2to + r2tl:
                    m = min(q.maxh2cdata, r2to + r2tl - pos)
                    h = struct.pack("<BBBBIHHIII", 6, 4 if pos + m == r2to + r2tl else 0, 0, 0,
                                    0, cccid, ttag, pos, m, 0)
                    q.send_pdu(h, payload[cids[cccid]][pos:pos + m])
                    pos += m
            elif t == RSP:
                cid = struct.unpack_from("<H", hdr, 20)[0]
                done[cid] = struct.unpack_from("<H", hdr, 22)[0] >> 1
    except Exception as e:
        tap.diag(f"broke after {len(done)} writes: {e!r}")
    tap.eq(sorted(done.values()), [0] * 5,
           "five 512 KiB writes over a 2 MiB queue budget all complete")
    tap.eq(r2t_before, 0, "the fifth write got no R2T while the others held the budget")
    ok = True
    for i in range(5):
        r = q.cmd(READ, rlen=READ_KIB * 1024, nsid=NS, cdw10=i * n, cdw12=n - 1)
        ok &= r["status"] == 0 and bytes(r["data"]) == payload[i]
    tap.ok(ok, "... and read back intact")
    q.close()
    a.close()
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")
tap.done()
