/* SPDX-License-Identifier: MIT */
#ifndef NVEMU_NVEMU_H
#define NVEMU_NVEMU_H

#include <nvemu/spec.h>
#include <nvemu/error.h>
#include <nvemu/bdev.h>
#include <nvemu/model.h>
#include <nvemu/request.h>
#include <nvemu/host.h>
#include <nvemu/resv.h>
#include <nvemu/metrics.h>
#include <nvemu/virt.h>

const char *nvemu_version(void);

#endif
