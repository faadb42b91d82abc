// SPDX-License-Identifier: MIT
/* Health values of a subsystem: what SMART logs and NVMe-MI health polls report. */
#include <string.h>

#include "rpc.h"

static int nvme_subsystem_set_health(struct nvemud *d, json_t *params, json_t **result,
				     struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");
	struct nvemu_subsys *s = nvemud_find_subsys(d, nqn);
	struct nvemu_error nerr = { 0 };
	struct nvemu_health h;

	if (!s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	nvemu_subsys_get_health(s, &h);
	h.temperature_k = (uint16_t)rpc_uint(params, "temperature", h.temperature_k);
	h.avail_spare = (uint8_t)rpc_uint(params, "available_spare", h.avail_spare);
	h.spare_thresh = (uint8_t)rpc_uint(params, "available_spare_threshold", h.spare_thresh);
	h.percent_used = (uint8_t)rpc_uint(params, "percentage_used", h.percent_used);
	h.critical_warning = (uint8_t)rpc_uint(params, "critical_warning", h.critical_warning);
	if (nvemu_subsys_set_health(s, &h, &nerr))
		return rpc_err_nvemu(e, &nerr);
	return 0;
}

static int nvme_subsystem_get_health(struct nvemud *d, json_t *params, json_t **result,
				     struct rpc_err *e)
{
	const char *nqn = rpc_str(params, "nqn");
	struct nvemu_subsys *s = nvemud_find_subsys(d, nqn);
	struct nvemu_health h;

	if (!s)
		return rpc_err_set(e, RPC_ERR_NOT_FOUND, "nqn: no subsystem %.223s", nqn);
	nvemu_subsys_get_health(s, &h);
	*result = json_pack("{s:i, s:i, s:i, s:i, s:i}", "temperature", h.temperature_k,
			    "available_spare", h.avail_spare, "available_spare_threshold",
			    h.spare_thresh, "percentage_used", h.percent_used, "critical_warning",
			    h.critical_warning);
	return 0;
}

const struct rpc_method rpc_health_methods[] = {
	{ "nvme_subsystem_set_health", nvme_subsystem_set_health,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX },
				      { "temperature", RPC_P_UINT, false, 1, 0xffff },
				      { "available_spare", RPC_P_UINT, false, 0, 100 },
				      { "available_spare_threshold", RPC_P_UINT, false, 0, 100 },
				      { "percentage_used", RPC_P_UINT, false, 0, 255 },
				      { "critical_warning", RPC_P_UINT, false, 0, 0xff },
				      { .name = NULL } },
	  "Set composite temperature (Kelvin), available spare, percentage used, critical warning." },
	{ "nvme_subsystem_get_health", nvme_subsystem_get_health,
	  (const struct rpc_param[]){ { "nqn", RPC_P_STR, true, 1, NVEMU_NQN_MAX }, { .name = NULL } },
	  "Get the health values of a subsystem." },
	{ .name = NULL },
};
