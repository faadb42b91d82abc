#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write NLB blocks of a seeded pattern at SLBA of namespace NSID over
NVMe/TCP (nvemud on 127.0.0.1:PORT, tests/tcp/nvmetcp.py's raw host) and
print the pattern's MD5, for a guest to compare with what it reads through
a virtio-blk export of the same namespace.

usage: tcp-write.py PORT NQN NSID SLBA NLB [BLOCK_SIZE]"""
import hashlib
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tcp"))
import nvmetcp  # noqa: E402

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:5b0c7f1e-2d3a-4c5b-8e6f-708192a3b4c5"


def main():
    port, nqn, nsid, slba, nlb = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                  int(sys.argv[4]), int(sys.argv[5]))
    bs = int(sys.argv[6]) if len(sys.argv) > 6 else 512
    data = random.Random(slba * 7919 + nlb).randbytes(nlb * bs)
    a = nvmetcp.admin(port, nqn, HOSTNQN)
    q = nvmetcp.io_queue(port, nqn, HOSTNQN, a.cntlid)
    step = 4096 // bs
    for i in range(0, nlb, step):
        n = min(step, nlb - i)
        lba = slba + i
        r = q.cmd(0x01, data[i * bs:(i + n) * bs], nsid=nsid, cdw10=lba & 0xFFFFFFFF,
                  cdw11=lba >> 32, cdw12=n - 1)
        if r["status"] != 0:
            sys.exit(f"Write at LBA {lba}: {nvmetcp.status_str(r['status'])}")
    print(hashlib.md5(data).hexdigest())


main()
