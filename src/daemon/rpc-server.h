/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 over a unix stream socket (mode 0600). Each client has its
 * own non-blocking buffers: a client that stalls half way through a request
 * never holds up the others.
 */
#ifndef NVEMUD_RPC_SERVER_H
#define NVEMUD_RPC_SERVER_H

#include "daemon.h"

/*
 * Listen on path. A socket a live daemon answers on is refused (-EADDRINUSE,
 * with a message in err); a stale one is replaced.
 */
int rpc_server_start(struct nvemud *d, const char *path, struct nvemu_error *err);
/*
 * Serve on a listening socket passed by systemd (socket activation); path is
 * where it is bound. The socket file stays when the server stops.
 */
int rpc_server_adopt(struct nvemud *d, int fd, const char *path, struct nvemu_error *err);
/* Stop accepting, drop clients, remove the socket file. */
void rpc_server_stop(struct nvemud *d);
/* Live update: stop listening and remove the socket file; connected clients stay. */
void rpc_server_close_listener(struct nvemud *d);

#endif
