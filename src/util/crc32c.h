/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli), as NVMe/TCP digests and the NVMe-MI Message
 * Integrity Check use it: seed ~0, final inversion. ISA-L's crc32_iscsi
 * does the table/SSE4.2 work but leaves seeding and inversion to the caller.
 */
#ifndef NVEMU_UTIL_CRC32C_H
#define NVEMU_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#include <isa-l/crc.h>

#define NVEMU_CRC32C_INIT 0xffffffffu

/* Extends a running CRC (start from NVEMU_CRC32C_INIT) over buf. */
static inline uint32_t nvemu_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	return crc32_iscsi((unsigned char *)buf, (int)len, crc);
}

/* The value that goes on the wire for a running CRC. */
static inline uint32_t nvemu_crc32c_final(uint32_t crc)
{
	return ~crc;
}

/* CRC-32C of one buffer. */
static inline uint32_t nvemu_crc32c(const void *buf, size_t len)
{
	return nvemu_crc32c_final(nvemu_crc32c_update(NVEMU_CRC32C_INIT, buf, len));
}

#endif
