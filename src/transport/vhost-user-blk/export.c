/* SPDX-License-Identifier: MIT */
/* virtio-blk exports: placeholder entry points until the server lands. */
#include <errno.h>
#include <string.h>

#include <nvemu/vhost-blk.h>

void nvemu_vblk_params_init(struct nvemu_vblk_params *p)
{
	memset(p, 0, sizeof(*p));
}

int nvemu_vblk_create(const struct nvemu_vblk_params *p, struct nvemu_vblk **out,
		      struct nvemu_error *err)
{
	(void)p;
	*out = NULL;
	return nvemu_error_set(err, -ENOSYS, "vhost-user-blk: not implemented");
}

void nvemu_vblk_destroy(struct nvemu_vblk *vb, void (*done)(void *arg), void *arg)
{
	(void)vb;
	if (done)
		done(arg);
}

void nvemu_vblk_suspend(struct nvemu_vblk *vb)
{
	(void)vb;
}

void nvemu_vblk_resume(struct nvemu_vblk *vb)
{
	(void)vb;
}

int nvemu_vblk_attach(struct nvemu_vblk *vb, const struct nvemu_vblk_target *t,
		      struct nvemu_error *err)
{
	(void)vb;
	(void)t;
	return nvemu_error_set(err, -ENOSYS, "vhost-user-blk: not implemented");
}

int nvemu_vblk_detach(struct nvemu_vblk *vb, void (*done)(void *arg), void *arg)
{
	(void)vb;
	(void)done;
	(void)arg;
	return -ENOSYS;
}

struct nvemu_ctrl *nvemu_vblk_ctrl(const struct nvemu_vblk *vb)
{
	(void)vb;
	return NULL;
}

void nvemu_vblk_get_info(const struct nvemu_vblk *vb, struct nvemu_vblk_info *out)
{
	(void)vb;
	memset(out, 0, sizeof(*out));
}
