/* SPDX-License-Identifier: MIT */
/*
 * NVMe-MI message framing (NVMe-MI 1.2 3.1), for the MCTP glue as well as
 * the endpoint: what it needs to tell a message the endpoint drops.
 */
#ifndef NVEMU_MI_MSG_H
#define NVEMU_MI_MSG_H

#define MI_MIC_LEN 4
/* A message is at most 4 KiB + 128 bytes. */
#define MI_MSG_MAX 4224

/* nmp byte: ROR 7, NMIMT 6:3, CSI 0 */
#define MI_NMP_ROR	  0x80
#define MI_NMP_NMIMT(nmp) (((nmp) >> 3) & 0xf)
#define MI_NMP_CSI	  0x01

#endif
