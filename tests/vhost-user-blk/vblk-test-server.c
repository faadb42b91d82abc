// SPDX-License-Identifier: MIT
/*
 * Serves a RAM namespace as a virtio-blk export over vhost-user-blk, so a
 * VMM can be pointed at it without the daemon:
 *
 *   vblk-test-server [-m MiB] [-b 512|4096] [-f FILE] [-q queues] [-s serial]
 *                    [-r] [-d ds_max] [-w first_lba:nr_lbas] [-v] SOCKET
 *
 * The namespace is RAM, or with -f a file of -m MiB (io_uring), whose data
 * outlives the server: kill and restart it under a VMM that reconnects.
 *
 * e.g. qemu-system-x86_64 -object memory-backend-memfd,id=mem,size=512M,share=on
 *        -numa node,memdev=mem -chardev socket,id=c,path=SOCKET
 *        -device vhost-user-blk-pci,chardev=c,num-queues=2 ...
 *
 * Prints "ready" once the socket listens; SIGTERM/SIGINT remove it and exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

#include <nvemu/nvemu.h>
#include <nvemu/vhost-blk.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct handle {
	int fd;
	nvemu_vblk_fd_cb cb;
	void *arg;
	struct handle *next_free;
};

struct loop {
	int ep;
	struct handle *dead; /* freed after the batch that may still name them */
};

static void *l_add(void *loop, int fd, uint32_t events, nvemu_vblk_fd_cb cb, void *arg)
{
	struct loop *l = loop;
	struct handle *h = calloc(1, sizeof(*h));
	struct epoll_event ev = {.events = events};

	if (!h)
		return NULL;
	*h = (struct handle){fd, cb, arg, NULL};
	ev.data.ptr = h;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev)) {
		free(h);
		return NULL;
	}
	return h;
}

static int l_mod(void *loop, void *handle, uint32_t events)
{
	struct handle *h = handle;
	struct epoll_event ev = {.events = events, .data.ptr = h};

	return epoll_ctl(((struct loop *)loop)->ep, EPOLL_CTL_MOD, h->fd, &ev);
}

static void l_del(void *loop, void *handle)
{
	struct loop *l = loop;
	struct handle *h = handle;

	epoll_ctl(l->ep, EPOLL_CTL_DEL, h->fd, NULL);
	h->cb = NULL;
	h->next_free = l->dead;
	l->dead = h;
}

static const struct nvemu_vblk_loop_ops lops = {l_add, l_mod, l_del};

static void log_cb(void *arg, int level, const char *msg)
{
	if ((arg && level <= NVEMU_VBLK_LOG_DEBUG) || level <= NVEMU_VBLK_LOG_WARN)
		fprintf(stderr, "vblk-test-server: %s\n", msg);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: vblk-test-server [-m MiB] [-b 512|4096] [-f FILE] [-q queues] [-s serial] "
		"[-r] [-d ds_max] [-w first_lba:nr_lbas] [-v] SOCKET\n");
	return 2;
}

static void bdev_ready(int fd, uint32_t revents, void *arg)
{
	(void)fd;
	(void)revents;
	nvemu_bdev_poll(arg);
}

static int build(unsigned long mib, unsigned bs, const char *file, struct loop *l,
		 struct nvemu_subsys **s, uint32_t *nsid, struct nvemu_bdev **bdev, void **watch)
{
	struct nvemu_bdev_file_opts fo = {.path = file, .blk_size = bs, .size = mib << 20};
	struct nvemu_error err = {0};
	struct nvemu_subsys_params sp;
	struct nvemu_ns_params np;

	nvemu_subsys_params_init(&sp);
	nvemu_ns_params_init(&np);
	np.lbaf = bs == 4096 ? 1 : 0;
	np.nblocks = mib * 1024 * 1024 / bs;
	if (file) {
		if (nvemu_bdev_file_create("file0", &fo, bdev, &err)) {
			fprintf(stderr, "vblk-test-server: %s\n", err.msg);
			return 1;
		}
		np.bdev = *bdev;
		*watch = l_add(l, nvemu_bdev_get_fd(*bdev), EPOLLIN, bdev_ready, *bdev);
		if (!*watch)
			return 1;
	}
	if (nvemu_subsys_create(&sp, s, &err) || nvemu_subsys_add_ns_ex(*s, &np, nsid, &err)) {
		fprintf(stderr, "vblk-test-server: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static void run(struct loop *l, struct nvemu_subsys *s)
{
	struct epoll_event ev[32];

	while (!stop) {
		int n = epoll_wait(l->ep, ev, 32, 1);

		for (int i = 0; i < n; i++) {
			struct handle *h = ev[i].data.ptr;

			if (h->cb)
				h->cb(h->fd, ev[i].events, h->arg);
		}
		while (l->dead) {
			struct handle *h = l->dead;

			l->dead = h->next_free;
			free(h);
		}
		nvemu_subsys_poll(s);
	}
}

int main(int argc, char **argv)
{
	struct nvemu_vblk_params p;
	struct nvemu_error err = {0};
	struct nvemu_subsys *s;
	struct nvemu_vblk *vb;
	struct loop l = {.ep = epoll_create1(EPOLL_CLOEXEC)};
	unsigned long mib = 64;
	const char *file = NULL;
	struct nvemu_bdev *bdev = NULL;
	void *bdev_watch = NULL;
	unsigned bs = 512;
	bool verbose = false;
	uint32_t nsid;
	int c;

	nvemu_vblk_params_init(&p);
	p.serial = "nvemu-vblk-test";
	while ((c = getopt(argc, argv, "m:b:f:q:s:rd:w:v")) != -1) {
		switch (c) {
		case 'm':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 'b':
			bs = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'f':
			file = optarg;
			break;
		case 'q':
			p.num_queues = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
			p.serial = optarg;
			break;
		case 'r':
			p.readonly = true;
			break;
		case 'd':
			p.ds_max = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			if (sscanf(optarg, "%lu:%lu", &p.target.first_lba, &p.target.nr_lbas) != 2)
				return usage();
			break;
		case 'v':
			verbose = true;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1 || (bs != 512 && bs != 4096) || !mib)
		return usage();
	if (build(mib, bs, file, &l, &s, &nsid, &bdev, &bdev_watch))
		return 1;
	p.ops = &lops;
	p.loop = &l;
	p.log = log_cb;
	p.log_arg = verbose ? &l : NULL;
	p.socket_path = argv[optind];
	p.target.subsys = s;
	p.target.nsid = nsid;
	if (nvemu_vblk_create(&p, &vb, &err)) {
		fprintf(stderr, "vblk-test-server: %s\n", err.msg);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	run(&l, s);
	nvemu_vblk_destroy(vb, NULL, NULL);
	if (bdev_watch)
		l_del(&l, bdev_watch);
	while (l.dead) {
		struct handle *h = l.dead;

		l.dead = h->next_free;
		free(h);
	}
	/* The subsystem waits for nothing: let file I/O in flight finish first. */
	while (bdev && nvemu_bdev_inflight(bdev))
		nvemu_bdev_poll(bdev);
	nvemu_subsys_destroy(s);
	if (bdev)
		nvemu_bdev_destroy(bdev, NULL);
	return 0;
}
