/* SPDX-License-Identifier: MIT */
/*
 * vfio-user server: serves one controller's PCIe function (include/nvemu/pcie.h)
 * to a VMM such as QEMU (>= 10.1, -device vfio-user-pci) over a unix socket.
 *
 * Built for an epoll loop: nvemu_vfu_server_fd() is one pollable fd (an
 * internal epoll set holding the listening socket and the connected client)
 * that stays the same for the server's lifetime. When it is readable, call
 * nvemu_vfu_server_process(); it never blocks except for the DMA read/write
 * round trips of guest memory that was not shared by fd.
 *
 * One client at a time; when it disconnects (or crashes) the controller is
 * reset, its DMA mappings dropped, and the socket accepts the next client.
 */
#ifndef NVEMU_VFIO_USER_H
#define NVEMU_VFIO_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nvemu/error.h>
#include <nvemu/model.h>

struct nvemu_vfu_server;

struct nvemu_vfu_params {
	/* Reply timeout for server-initiated DMA_READ/DMA_WRITE messages. */
	unsigned dma_timeout_ms; /* 0: 5000 */
	/* Largest REGION_READ/WRITE and DMA message data accepted. */
	uint32_t max_data_xfer; /* 0: 1 MiB */
	/* Log protocol errors to stderr. */
	bool verbose;
	/*
	 * Offer BAR0's doorbell pages for mmap (default true). Only worth it
	 * when the caller polls often (nvemu_vfu_server_poll): a client that
	 * maps them never sends a doorbell message that would wake it.
	 */
	bool map_doorbells;
};

void nvemu_vfu_params_init(struct nvemu_vfu_params *p);

/*
 * Create the unix socket at path, mode 0600 whatever the umask, and bind the
 * controller's PCIe function to it. A socket file nobody serves is replaced;
 * a live one is refused with -EADDRINUSE, any other file with -EEXIST.
 * params may be NULL for the defaults.
 */
int nvemu_vfu_server_create(const char *path, struct nvemu_ctrl *ctrl,
			    const struct nvemu_vfu_params *params, struct nvemu_vfu_server **out,
			    struct nvemu_error *err);
/* Disconnects the client, resets the controller and unlinks the socket. */
void nvemu_vfu_server_destroy(struct nvemu_vfu_server *s);

/* Stable pollable fd (EPOLLIN): call nvemu_vfu_server_process() when readable. */
int nvemu_vfu_server_fd(const struct nvemu_vfu_server *s);
/* Handle every ready event without blocking; returns events handled or -errno. */
int nvemu_vfu_server_process(struct nvemu_vfu_server *s);

/*
 * BAR0's doorbell pages are offered for mmap (a sparse area, memory shared
 * by fd, new for each client): a client that maps them rings doorbells
 * without messages, and the server finds the values by polling. While
 * nvemu_vfu_server_needs_polling() says so, call nvemu_vfu_server_poll()
 * often (every loop iteration, with a bounded sleep); it returns the
 * doorbell values taken.
 */
bool nvemu_vfu_server_needs_polling(const struct nvemu_vfu_server *s);
int nvemu_vfu_server_poll(struct nvemu_vfu_server *s);

const char *nvemu_vfu_server_path(const struct nvemu_vfu_server *s);
/* The PCIe function it serves (include/nvemu/pcie.h), e.g. for nvemu_pcie_ctrl_debug(). */
struct nvemu_pcie_ctrl *nvemu_vfu_server_pcie(struct nvemu_vfu_server *s);
bool nvemu_vfu_server_connected(const struct nvemu_vfu_server *s);

struct nvemu_vfu_stats {
	uint64_t connects;
	uint64_t disconnects;
	uint64_t messages;
	uint64_t region_reads;
	uint64_t region_writes;
	uint64_t dma_maps;
	uint64_t dma_unmaps;
	uint64_t dma_msgs; /* DMA_READ/WRITE round trips for unshared memory */
	uint64_t irqs;	   /* eventfd signals sent */
	uint64_t errors;   /* requests answered with an error */
	uint64_t accept_errors; /* accepts that failed for want of fds or memory */
};

void nvemu_vfu_server_stats(const struct nvemu_vfu_server *s, struct nvemu_vfu_stats *st);

/*
 * ---- live update: the server, its connected client and guest memory
 * handed to another process (docs/live-update.md)
 */

/* Stop / restart fetching commands from the guest's queues (doorbells are still taken). */
void nvemu_vfu_server_pause(struct nvemu_vfu_server *s, bool paused);
/*
 * The server's state as a malloc'd blob plus the descriptors it refers to
 * (*fds malloc'd; the descriptors stay the server's: send copies). Needs
 * the function paused with nothing in flight but AERs (-EBUSY) and no
 * message half handled (-EAGAIN: try again from the loop).
 */
int nvemu_vfu_server_save(struct nvemu_vfu_server *s, uint8_t **blob, size_t *len, int **fds,
			  unsigned *nfds, struct nvemu_error *err);
/*
 * After the new process took over: forget the guest without touching it
 * (no reset, no interrupt, no unmap it would see) and free the server; the
 * socket file stays for the new process.
 */
void nvemu_vfu_server_release(struct nvemu_vfu_server *s);
/*
 * The new process: a server on path for ctrl (fresh, not enabled) from a
 * saved blob and copies of its descriptors (duplicated; the caller closes
 * its own). Then restore the engine's state into ctrl (registers, queues)
 * and call nvemu_vfu_server_restore_queues(); the function stays paused.
 */
int nvemu_vfu_server_restore(const char *path, struct nvemu_ctrl *ctrl,
			     const struct nvemu_vfu_params *params, const uint8_t *blob, size_t len,
			     const int *fds, unsigned nfds, struct nvemu_vfu_server **out,
			     struct nvemu_error *err);
int nvemu_vfu_server_restore_queues(struct nvemu_vfu_server *s, struct nvemu_error *err);

#endif
