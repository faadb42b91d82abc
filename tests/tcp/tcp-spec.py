#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Spec exactness of the TCP transport: SGL lengths must match the transfer
(SGLS bit 18 clear), PSDT 00b (PRPs) is refused, Set Features KATO arms the
keep-alive timer, Identify carries the transport's SGLS/IOCCSZ/IORCSZ, NSSR
is refused consistently with CAP.NSSRS, and a discovery controller sends a
Discovery Log Change notice when its log changes."""
import socket
import struct
import time

from nvmetcp import (DISC_NQN, DNR, SC_INVALID_FIELD, SC_SGL_LEN, Conn, Daemon, Tap, admin,
                     io_queue, status_str)

tap = Tap()
HOST = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555"
IDENTIFY, GET_LOG, SET_FEAT, GET_FEAT, AER = 0x06, 0x02, 0x09, 0x0A, 0x0C
FID_AEC, FID_KATO = 0x0B, 0x0F
d = Daemon()
SUB = d.subnqn
try:
    a = admin(d.port, SUB, HOST)
    r = a.cmd(IDENTIFY, rlen=4096, cdw10=1, sgl_len=8192)
    tap.eq(status_str(r["status"]), status_str(SC_SGL_LEN | DNR),
           "Identify with an SGL longer than 4 KiB: Data SGL Length Invalid")
    r = a.cmd(IDENTIFY, rlen=4096, cdw10=1, flags=0x00)
    tap.eq(status_str(r["status"]), status_str(SC_INVALID_FIELD | DNR),
           "PSDT 00b (PRPs) on fabrics: Invalid Field, DNR")
    r = a.cmd(IDENTIFY, rlen=4096, cdw10=1, flags=0xC0)
    tap.eq(status_str(r["status"]), status_str(SC_INVALID_FIELD | DNR),
           "PSDT 11b (reserved): Invalid Field, DNR")
    r = a.cmd(IDENTIFY, rlen=4096, cdw10=1)
    tap.eq(r["status"], 0, "Identify Controller with a matching SGL")
    idc = bytes(r["data"])
    if len(idc) == 4096:
        sgls, = struct.unpack_from("<I", idc, 536)
        ioccsz, iorcsz = struct.unpack_from("<II", idc, 1792)
        tap.eq((sgls, ioccsz, iorcsz, idc[1803]), (0x100001, (8192 + 64) // 16, 1, 1),
               "Identify: SGLS, IOCCSZ, IORCSZ, MSDBD of the TCP transport (the id_ctrl op)")
        tap.eq(sgls & (1 << 18), 0, "Identify: SGLS bit 18 clear (no longer SGLs)")
    else:
        tap.ok(False, "Identify returned 4096 bytes", len(idc))
    q = io_queue(d.port, SUB, HOST, a.cntlid)
    sqe, cid = q.sqe(0x02, nsid=1, cdw10=0, cdw12=0, sgl_len=4096)
    q.send_cmd(sqe)
    r = q.wait_rsp(cid)
    tap.eq(status_str(r["status"]), status_str(SC_SGL_LEN | DNR),
           "a 1-block read with a 4 KiB SGL: Data SGL Length Invalid")
    sqe, cid = q.sqe(0x02, nsid=1, cdw10=0, cdw12=0, sgl_len=512, flags=0)
    q.send_cmd(sqe)
    r = q.wait_rsp(cid)
    tap.eq(status_str(r["status"]), status_str(SC_INVALID_FIELD | DNR),
           "an I/O command with PSDT 00b: Invalid Field, DNR")
    q.close()

    st, cap = a.prop_get(0x00, wide=True)
    tap.eq(st, 0, "Property Get CAP")
    tap.eq(cap >> 36 & 1, 0, "CAP.NSSRS is clear on a fabrics controller")
    tap.eq(status_str(a.prop_set(0x20, 0x4E564D65)), status_str(SC_INVALID_FIELD | DNR),
           "Property Set NSSR: Invalid Field (no NVM Subsystem Reset, as CAP says)")

    # Set Features KATO reaches the keep-alive timer.
    r = a.cmd(SET_FEAT, cdw10=FID_KATO, cdw11=1000)
    tap.eq(r["status"], 0, "Set Features KATO 1000 ms (Connect had KATO 0)")
    t0 = time.time()
    tap.ok(a.closed_within(5), "without keep-alives the association ends")
    tap.ok(1.0 <= time.time() - t0 < 5, f"... after about KATO ({time.time() - t0:.1f} s)")
    ctrls = d.rpc("nvmf_subsystem_get_controllers", "--nqn", SUB)
    tap.eq(len(ctrls or []), 0, "... and its controller is gone")

    # Discovery Log Change notices
    def disc_conn(aec):
        c = Conn(d.port)
        c.icreq()
        if c.connect(DISC_NQN, HOST, kato=30000)["status"] or c.prop_set(0x14, 1):
            raise RuntimeError("discovery Connect failed")
        if aec is not None:
            r = c.cmd(SET_FEAT, cdw10=FID_AEC, cdw11=aec)
            if r["status"]:
                raise RuntimeError("Set Features AEC failed")
        return c

    def genctr_numrec(c):
        r = c.cmd(GET_LOG, rlen=1024, cdw10=0x70 | (1024 // 4 - 1) << 16)
        return struct.unpack_from("<QQ", bytes(r["data"]), 0)

    dc = disc_conn(1 << 31)
    r = dc.cmd(IDENTIFY, rlen=4096, cdw10=1)
    oaes, = struct.unpack_from("<I", bytes(r["data"]), 92)
    tap.ok(oaes & (1 << 31), "discovery Identify: OAES reports Discovery Log Change notices")
    quiet = disc_conn(None)
    g0, n0 = genctr_numrec(dc)
    sqe, aer_cid = dc.sqe(AER)
    dc.send_cmd(sqe)
    sqe, quiet_cid = quiet.sqe(AER)
    quiet.send_cmd(sqe)
    time.sleep(0.2)
    out = d.rpc("nvmf_subsystem_add_listener", "--nqn", SUB, "--trtype", "tcp", "--traddr",
                "127.0.0.1", "--trsvcid", "0", "--adrfam", "ipv4")
    r = dc.wait_rsp(aer_cid)
    tap.eq((r["status"], r["dw0"]), (0, 0x70F002),
           "a listener added: the AER completes (Notice, F0h, log page 70h)")
    g1, n1 = genctr_numrec(dc)
    tap.ok(g1 > g0 and n1 == n0 + 1, "... and the log shows it (GENCTR, NUMREC)",
           f"{g0}->{g1}, {n0}->{n1}")
    quiet.s.settimeout(1)
    try:
        quiet.recv_pdu()
        got = True
    except Exception:
        got = False
    tap.ok(not got, "a host that did not enable the notice gets no AEN")
    # A change with no AER outstanding is reported by the next AER.
    d.rpc("nvmf_subsystem_remove_listener", "--nqn", SUB, "--trtype", "tcp", "--traddr",
          "127.0.0.1", "--trsvcid", str(out["trsvcid"]) if isinstance(out, dict) else "0",
          "--adrfam", "ipv4", check=False)
    time.sleep(0.2)
    sqe, aer_cid = dc.sqe(AER)
    dc.send_cmd(sqe)
    dc.s.settimeout(3)
    r = dc.wait_rsp(aer_cid)
    tap.eq((r["status"], r["dw0"]), (0, 0x70F002),
           "a change while no AER was outstanding is reported by the next AER")
    dc.close()
    quiet.close()
    tap.ok(d.alive(), "nvemud is still running")
except Exception as e:  # the target died or broke the protocol
    tap.ok(False, f"test aborted: {e!r}", d.logtext()[-2000:])
finally:
    tap.eq(d.stop(), 0, "the target exits cleanly (status 0, no sanitizer report)")
tap.done()
