/* SPDX-License-Identifier: MIT */
/* nvemu-rpc status (status.c), on top of the CLI's JSON-RPC call. */
#ifndef NVEMU_RPC_STATUS_H
#define NVEMU_RPC_STATUS_H

#include <stdarg.h>
#include <stdbool.h>

#include <jansson.h>

struct status_rpc {
	const char *sock;
	/* The method's result (new reference), or NULL on any error; params borrowed. */
	json_t *(*call)(const struct status_rpc *rpc, const char *method, json_t *params);
	bool (*reachable)(const struct status_rpc *rpc);
	void *priv;
};

/* One screen, or (watch) one per interval until SIGINT/SIGTERM; 1 if nvemud is unreachable. */
int status_run(const struct status_rpc *rpc, double interval, bool watch);

#endif
