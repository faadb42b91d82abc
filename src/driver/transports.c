// SPDX-License-Identifier: MIT
/* The host transports linked into this build, by transport type. */
#include <stddef.h>

#include "driver/driver-internal.h"

static const struct nvemu_drv_transport_ops *const transports[] = {
	&drv_tcp_ops,
	&drv_pcie_ops,
	&drv_vfio_user_ops,
};

const struct nvemu_drv_transport_ops *drv_transport_find(enum nvemu_drv_trtype t)
{
	for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
		if (transports[i] && transports[i]->trtype == t)
			return transports[i];
	return NULL;
}
