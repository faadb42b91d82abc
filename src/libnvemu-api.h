/* SPDX-License-Identifier: MIT */
/*
 * Forced into every libnvemu source (-include, see meson.build): the
 * library is compiled with hidden visibility, and the functions the public
 * headers declare are declared here first, with default visibility, so
 * that they alone can be exported. src/libnvemu.map lists the same names.
 */
#ifndef NVEMU_LIBNVEMU_API_H
#define NVEMU_LIBNVEMU_API_H

#pragma GCC visibility push(default)
#include <nvemu/nvemu.h>
#include <nvemu/ctrl-state.h>
#include <nvemu/driver.h>
#include <nvemu/mctp.h>
#include <nvemu/mi.h>
#include <nvemu/partition.h>
#include <nvemu/pcie.h>
#include <nvemu/tcp.h>
#include <nvemu/vfio-user.h>
#include <nvemu/vhost-blk.h>
#pragma GCC visibility pop

#endif
