/* SPDX-License-Identifier: MIT */
/*
 * NVMe-MI endpoint: byte-exact request messages (built with libnvme's
 * <nvme/mi.h> structures, MIC appended) handed to nvemu_mi_ep_handle(), the
 * responses checked against the subsystem model and the in-band view.
 */
#include <stdlib.h>

#include <nvme/mi.h>
#include <nvemu/mi.h>

#include "test-util.h"
#include "util/crc32c.h"

struct mi_env {
	struct tu_env *tu;
	struct nvemu_mi_ep *ep;
	uint16_t tw_port; /* model id of the two-wire port (MI port 1) */
	uint16_t mtu_seen_in_respond;
	uint16_t mtu_cb;
	int mtu_cb_calls;
};

struct mi_resp {
	uint8_t buf[8192];
	size_t len;
	int calls;
	struct mi_env *env;
};

static void on_resp(void *ctx, const uint8_t *r, size_t len)
{
	struct mi_resp *x = ctx;

	x->calls++;
	assert_true(len <= sizeof(x->buf));
	memcpy(x->buf, r, len);
	x->len = len;
	if (x->env)
		x->env->mtu_seen_in_respond = nvemu_mi_ep_mtu(x->env->ep);
}

static void on_mtu(void *arg, uint16_t mtu)
{
	struct mi_env *e = arg;

	e->mtu_cb = mtu;
	e->mtu_cb_calls++;
}

static int setup(void **state)
{
	struct mi_env *e = calloc(1, sizeof(*e));
	struct nvemu_port_params pp;
	struct nvemu_error err = {0};
	void *tu = NULL;

	assert_non_null(e);
	tu_setup(&tu);
	e->tu = tu;
	nvemu_port_params_init(&pp, NVEMU_PORT_TWO_WIRE);
	pp.two_wire.address = 0x1d;
	pp.two_wire.max_freq = NVME_MI_CONFIG_SMBUS_FREQ_1MHz;
	pp.two_wire.mctp_send_enabled = true;
	assert_int_equal(nvemu_subsys_add_port(e->tu->subsys, &pp, &e->tw_port, &err), 0);
	assert_int_equal(nvemu_mi_ep_create(e->tu->subsys, e->tw_port, &e->ep, &err), 0);
	nvemu_mi_ep_set_mtu_cb(e->ep, on_mtu, e);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct mi_env *e = *state;
	void *tu = e->tu;

	nvemu_mi_ep_destroy(e->ep);
	tu_teardown(&tu);
	free(e);
	return 0;
}

/* Append the MIC to msg[0..len) and run it; returns the responses seen. */
static int xfer(struct mi_env *e, uint8_t *msg, size_t len, struct mi_resp *out)
{
	uint32_t mic = htole32(nvemu_crc32c(msg, len));

	memcpy(msg + len, &mic, 4);
	memset(out, 0, sizeof(*out));
	out->env = e;
	nvemu_mi_ep_handle(e->ep, msg, len + 4, on_resp, out);
	return out->calls;
}

/* Checks the framing and MIC of a response; returns its MI status. */
static uint8_t resp_status(const struct mi_resp *r, uint8_t nmimt)
{
	uint32_t mic;

	assert_int_equal(r->calls, 1);
	assert_true(r->len >= 12);
	assert_int_equal(r->len % 4, 0);
	memcpy(&mic, r->buf + r->len - 4, 4);
	assert_int_equal(le32toh(mic), nvemu_crc32c(r->buf, r->len - 4));
	assert_int_equal(r->buf[0], NVME_MI_MSGTYPE_NVME);
	assert_int_equal(r->buf[1] & 0x80, 0x80);
	assert_int_equal((r->buf[1] >> 3) & 0xf, nmimt);
	return r->buf[4];
}

static size_t mi_req(uint8_t *buf, uint8_t opc, uint32_t dw0, uint32_t dw1)
{
	struct nvme_mi_mi_req_hdr h;

	memset(&h, 0, sizeof(h));
	h.hdr.type = NVME_MI_MSGTYPE_NVME;
	h.hdr.nmp = NVME_MI_ROR_REQ << 7 | NVME_MI_MT_MI << 3;
	h.opcode = opc;
	h.cdw0 = htole32(dw0);
	h.cdw1 = htole32(dw1);
	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

/* Run an MI command; returns the MI status, data in *data (after the 8-byte header). */
static uint8_t mi_cmd(struct mi_env *e, uint8_t opc, uint32_t dw0, uint32_t dw1, struct mi_resp *r)
{
	uint8_t msg[64];
	size_t n = mi_req(msg, opc, dw0, dw1);

	assert_int_equal(xfer(e, msg, n, r), 1);
	return resp_status(r, NVME_MI_MT_MI);
}

static size_t data_len(const struct mi_resp *r, size_t hdr)
{
	return r->len - hdr - 4;
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

/* ---- framing */

static void mic_vector(void **state)
{
	(void)state;
	assert_int_equal(nvemu_crc32c("123456789", 9), 0xE3069283);
	assert_int_equal(nvemu_crc32c("", 0), 0);
}

static void drops(void **state)
{
	struct mi_env *e = *state;
	struct mi_resp r;
	uint8_t msg[64];
	size_t n = mi_req(msg, nvme_mi_mi_opcode_mi_data_read, 0, 0);
	uint32_t mic;

	/* Bad MIC. */
	mic = htole32(nvemu_crc32c(msg, n) ^ 1);
	memcpy(msg + n, &mic, 4);
	memset(&r, 0, sizeof(r));
	nvemu_mi_ep_handle(e->ep, msg, n + 4, on_resp, &r);
	assert_int_equal(r.calls, 0);
	/* No integrity check bit / not type 4. */
	msg[0] = 0x04;
	assert_int_equal(xfer(e, msg, n, &r), 0);
	msg[0] = 0x85;
	assert_int_equal(xfer(e, msg, n, &r), 0);
	/* A response (ROR set). */
	msg[0] = NVME_MI_MSGTYPE_NVME;
	msg[1] |= 0x80;
	assert_int_equal(xfer(e, msg, n, &r), 0);
	/* Too short to hold a MIC. */
	memset(&r, 0, sizeof(r));
	nvemu_mi_ep_handle(e->ep, msg, 3, on_resp, &r);
	nvemu_mi_ep_handle(e->ep, msg, 0, on_resp, &r);
	assert_int_equal(r.calls, 0);
}

static void subsys_info_exact(void **state)
{
	struct mi_env *e = *state;
	struct mi_resp r;
	uint8_t msg[64], want[8 + 32 + 4] = {0x84, 0x89, 0, 0, 0, 32, 0, 0, 1, 1, 2};
	size_t n = mi_req(msg, nvme_mi_mi_opcode_mi_data_read, nvme_mi_dtyp_subsys_info << 24, 0);
	uint32_t mic;

	msg[1] |= 1; /* command slot 1 is echoed */
	assert_int_equal(xfer(e, msg, n, &r), 1);
	mic = htole32(nvemu_crc32c(want, 40));
	memcpy(want + 40, &mic, 4);
	assert_int_equal(r.len, sizeof(want));
	assert_memory_equal(r.buf, want, sizeof(want));
}

static void bad_messages(void **state)
{
	struct mi_env *e = *state;
	struct mi_resp r;
	uint8_t msg[128];
	size_t n;

	/* Header only: shorter than an MI request. */
	n = mi_req(msg, 0, 0, 0);
	assert_int_equal(xfer(e, msg, 8, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_CMD_SIZE);
	/* Trailing bytes on a command without data. */
	n = mi_req(msg, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0);
	memset(msg + n, 0, 4);
	assert_int_equal(xfer(e, msg, n + 4, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_CMD_SIZE);
	/* Unknown / unoffered opcodes. */
	assert_int_equal(mi_cmd(e, 0x08, 0, 0, &r), NVME_MI_RESP_INVALID_OPCODE);
	assert_int_equal(mi_cmd(e, 0x0d, 0, 0, &r), NVME_MI_RESP_INVALID_OPCODE);
	assert_int_equal(mi_cmd(e, 0xff, 0, 0, &r), NVME_MI_RESP_INVALID_OPCODE);
	/* Reserved NMIMT, PCIe commands, MEB. */
	n = mi_req(msg, 0, 0, 0);
	msg[1] = 3 << 3;
	assert_int_equal(xfer(e, msg, n, &r), 1);
	assert_int_equal(resp_status(&r, 3), NVME_MI_RESP_INVALID_PARAM);
	msg[1] = NVME_MI_MT_PCIE << 3; /* shorter than a PCIe request (20 bytes) */
	assert_int_equal(xfer(e, msg, n, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_CMD_SIZE);
	msg[1] = NVME_MI_MT_MI << 3;
	msg[2] = 1;
	assert_int_equal(xfer(e, msg, n, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_PARAM);
	/* Over the 4224-byte NVMe-MI maximum (MCTP may carry more). */
	{
		static uint8_t big[5000];

		n = mi_req(big, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0);
		assert_int_equal(xfer(e, big, 4300, &r), 1);
		assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_CMD_SIZE);
	}
	/* Control primitive Get State: success, tag echoed; bad opcode; bad size. */
	memset(msg, 0, 8);
	msg[0] = NVME_MI_MSGTYPE_NVME;
	msg[1] = NVME_MI_MT_CONTROL << 3;
	msg[4] = 0x03;
	msg[5] = 0x5a;
	assert_int_equal(xfer(e, msg, 8, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_CONTROL), NVME_MI_RESP_SUCCESS);
	assert_int_equal(r.buf[5], 0x5a);
	msg[4] = 0x20;
	assert_int_equal(xfer(e, msg, 8, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_CONTROL), NVME_MI_RESP_INVALID_OPCODE);
	assert_int_equal(xfer(e, msg, 12, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_CONTROL), NVME_MI_RESP_INVALID_CMD_SIZE);
}

/* ---- Read NVMe-MI Data Structure */

static void port_info(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct nvme_mi_read_port_info pi;
	struct mi_resp r;

	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_port_info << 24 | 0 << 16, 0, &r), 0);
	assert_int_equal(data_len(&r, 8), sizeof(pi));
	assert_int_equal(get16(r.buf + 5), sizeof(pi));
	memcpy(&pi, r.buf + 8, sizeof(pi));
	assert_int_equal(pi.portt, 1);
	assert_int_equal(le16toh(pi.mmctptus), NVEMU_MI_MTU_MAX);
	assert_int_equal(pi.pcie.cls, s->ports[0].p.pcie.max_link_speed);
	assert_int_equal(pi.pcie.sls, (1u << s->ports[0].p.pcie.max_link_speed) - 1);
	assert_int_equal(pi.pcie.mlw, s->ports[0].p.pcie.max_link_width);
	assert_int_equal(pi.pcie.nlw, s->ports[0].p.pcie.max_link_width);
	assert_int_equal(pi.pcie.pn, s->ports[0].p.pcie.port_number);

	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_port_info << 24 | 1 << 16, 0, &r), 0);
	memcpy(&pi, r.buf + 8, sizeof(pi));
	assert_int_equal(pi.portt, 2);
	assert_int_equal(pi.smb.mme_addr, 0x1d);
	assert_int_equal(pi.smb.mme_freq, NVME_MI_CONFIG_SMBUS_FREQ_1MHz);
	assert_int_equal(pi.smb.mvpd_freq, NVME_MI_CONFIG_SMBUS_FREQ_1MHz);
	/* NVMe-MI 1.2 5.7 Port Information MEBS: the endpoint's port has the buffer. */
	assert_int_equal(le32toh(pi.meb), NVEMU_MI_MEB_SIZE);

	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_port_info << 24 | 2 << 16, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(r.len, 12);
	/* Unknown data structure type; the MEB Command Support List: Admin commands. */
	assert_int_equal(mi_cmd(e, 0, 0x06u << 24, 0, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 11); /* DTYP */
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_meb_support << 24, 0, &r), 0);
	assert_int_equal(get16(r.buf + 5), 2 + 2 * 7);
	assert_int_equal(get16(r.buf + 8), 7);
	for (unsigned i = 0; i < 7; i++)
		assert_int_equal(r.buf[10 + 2 * i], NVME_MI_MT_ADMIN);
	assert_int_equal(r.buf[10 + 2 * 1], NVME_MI_MT_ADMIN);
	assert_int_equal(r.buf[11 + 2 * 1], nvme_admin_identify);
}

/* ---- PCIe Command Set (NMIMT 4): a fake function behind the ops */

static uint8_t fake_cfg[4096];
static int fake_cfg_present = 1;

static int fake_read(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size, uint32_t *v)
{
	(void)arg;
	assert_non_null(s);
	assert_true(size == 1 || size == 4);
	assert_true(off + size <= sizeof(fake_cfg));
	if (!fake_cfg_present)
		return -1;
	*v = 0;
	memcpy(v, fake_cfg + off, size);
	*v = le32toh(*v);
	return 0;
}

static int fake_write(void *arg, struct nvemu_subsys *s, uint32_t off, unsigned size, uint32_t v)
{
	(void)arg;
	(void)s;
	assert_true(off + size <= sizeof(fake_cfg));
	if (!fake_cfg_present)
		return -1;
	v = htole32(v);
	memcpy(fake_cfg + off, &v, size);
	return 0;
}

static const struct nvemu_mi_pcie_ops fake_ops = {
	.cfg_read = fake_read,
	.cfg_write = fake_write,
	.cfg_size = 4096,
};

static size_t pcie_req(uint8_t *msg, uint8_t opc, uint32_t len, uint32_t off)
{
	memset(msg, 0, 20);
	msg[0] = NVME_MI_MSGTYPE_NVME;
	msg[1] = NVME_MI_MT_PCIE << 3;
	msg[4] = opc;
	len = htole32(len);
	off = htole32(off);
	memcpy(msg + 8, &len, 4);
	memcpy(msg + 12, &off, 4);
	return 20;
}

/* NVMe-MI 1.2 7 (PCIe Command Set): Configuration Read and Write. */
static void pcie_config_read_write(void **state)
{
	struct mi_env *e = *state;
	static uint8_t msg[4200];
	struct mi_resp r;
	size_t n;

	for (unsigned i = 0; i < sizeof(fake_cfg); i++)
		fake_cfg[i] = (uint8_t)(i * 7 + 3);
	fake_cfg_present = 1;
	/* No function behind the endpoint: PCIe Inaccessible. */
	n = pcie_req(msg, 0, 4, 0);
	assert_int_equal(xfer(e, msg, n, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_PCIE_INACCESSIBLE);

	nvemu_mi_ep_set_pcie_ops(e->ep, &fake_ops, NULL);
	/* The whole 4 KiB space, then an unaligned window. */
	n = pcie_req(msg, 0, 4096, 0);
	assert_int_equal(xfer(e, msg, n, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_SUCCESS);
	assert_int_equal(r.len, 8 + 4096 + 4);
	assert_memory_equal(r.buf + 8, fake_cfg, 4096);
	n = pcie_req(msg, 0, 7, 0x31);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_SUCCESS);
	assert_memory_equal(r.buf + 8, fake_cfg + 0x31, 7);

	/* A write reaches the function; its data length must match PCIe Request Dword 0. */
	n = pcie_req(msg, 1, 4, 0x44);
	memcpy(msg + n, "\x11\x22\x33\x44", 4);
	xfer(e, msg, n + 4, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_SUCCESS);
	assert_memory_equal(fake_cfg + 0x44, "\x11\x22\x33\x44", 4);
	n = pcie_req(msg, 1, 4, 0x44);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_INPUT_SIZE);
	n = pcie_req(msg, 1, 4, 0x44);
	xfer(e, msg, n + 8, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_INPUT_SIZE);

	/* Sizes and ranges: a read with data, a short header, a window past the space. */
	n = pcie_req(msg, 0, 4, 0);
	xfer(e, msg, n + 4, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_CMD_SIZE);
	xfer(e, msg, 16, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_CMD_SIZE);
	n = pcie_req(msg, 0, 0, 0);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 8); /* the length */
	n = pcie_req(msg, 0, 8, 4092);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 12); /* the offset */
	n = pcie_req(msg, 0, 4097, 0);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_PARAM);
	/* Memory and I/O space commands are not offered. */
	n = pcie_req(msg, 2, 4, 0);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_INVALID_OPCODE);
	/* The function gone (controller destroyed): PCIe Inaccessible. */
	fake_cfg_present = 0;
	n = pcie_req(msg, 0, 4, 0);
	xfer(e, msg, n, &r);
	assert_int_equal(resp_status(&r, NVME_MI_MT_PCIE), NVME_MI_RESP_PCIE_INACCESSIBLE);
}

static void ctrl_list_and_info(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct nvme_mi_read_ctrl_info ci;
	struct nvemu_error err;
	struct mi_resp r;
	uint16_t id;

	assert_int_equal(nvemu_subsys_add_ctrl(s, s->ports[0].id, &id, &err), 0);
	assert_int_equal(id, 2);
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_list << 24, 0, &r), 0);
	/* 2 + 2 * 2 bytes, zero-padded to a dword. */
	assert_int_equal(data_len(&r, 8), 8);
	assert_int_equal(get16(r.buf + 5), 8);
	assert_int_equal(get16(r.buf + 14), 0);
	assert_int_equal(get16(r.buf + 8), 2);
	assert_int_equal(get16(r.buf + 10), 1);
	assert_int_equal(get16(r.buf + 12), 2);
	/* The port byte is not a start ID (libnvme 1.3 puts one there): the whole list. */
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_list << 24 | 2 << 16, 0, &r), 0);
	assert_int_equal(get16(r.buf + 8), 2);
	assert_int_equal(get16(r.buf + 10), 1);
	/* The spec's form: start ID in CTRLID. */
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_list << 24 | 2, 0, &r), 0);
	assert_int_equal(get16(r.buf + 8), 1);
	assert_int_equal(get16(r.buf + 10), 2);
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_list << 24 | 3, 0, &r), 0);
	assert_int_equal(get16(r.buf + 8), 0);
	assert_int_equal(data_len(&r, 8), 4);

	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_info << 24 | 2, 0, &r), 0);
	assert_int_equal(data_len(&r, 8), sizeof(ci));
	memcpy(&ci, r.buf + 8, sizeof(ci));
	assert_int_equal(ci.portid, 0);
	assert_int_equal(ci.prii, 1);
	assert_int_equal(le16toh(ci.pri), 1);
	assert_int_equal(le16toh(ci.vid), s->vendor.pci_vid);
	assert_int_equal(le16toh(ci.did), s->vendor.pci_did);
	assert_int_equal(le16toh(ci.ssvid), s->vendor.pci_svid);
	assert_int_equal(le16toh(ci.ssid), s->vendor.pci_sdid);
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_info << 24 | 9, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	/* Parameter Error Location: CTRLID, byte 8 bit 0 of the request. */
	assert_int_equal(r.buf[5], 0);
	assert_int_equal(get16(r.buf + 6), 8);
	/* ID 0: the first controller while the alias is on (the default), as Admin commands. */
	assert_true(nvemu_mi_ep_ctrl0_alias(e->ep));
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_info << 24 | 0, 0, &r), 0);
	memcpy(&ci, r.buf + 8, sizeof(ci));
	assert_int_equal(le16toh(ci.pri), 0);
	nvemu_mi_ep_set_ctrl0_alias(e->ep, false);
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_ctrl_info << 24 | 0, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 8);
}

static void opt_cmds(void **state)
{
	struct mi_env *e = *state;
	struct mi_resp r;
	unsigned n, vpdw = 0, nsm = 0;

	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_opt_cmd_support << 24, 0, &r), 0);
	n = get16(r.buf + 8);
	assert_int_equal(get16(r.buf + 5), 2 + 2 * n);
	assert_int_equal(data_len(&r, 8), (2 + 2 * n + 3) & ~3u);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *c = r.buf + 10 + 2 * i;

		vpdw += c[0] == NVME_MI_MT_MI && c[1] == NVEMU_MI_OPC_VPD_WRITE;
		nsm += c[0] == NVME_MI_MT_ADMIN && c[1] == nvme_admin_ns_mgmt;
	}
	assert_int_equal(vpdw, 1);
	assert_int_equal(nsm, 1);
}

/* ---- health */

static void subsys_health(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct nvme_mi_nvm_ss_health_status hs;
	struct nvme_smart_log smart;
	struct nvemu_health h;
	struct nvemu_error err;
	struct mi_resp r;

	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0, &r), 0);
	assert_int_equal(data_len(&r, 8), sizeof(hs));
	memcpy(&hs, r.buf + 8, sizeof(hs));
	nvemu_subsys_get_health(s, &h);
	assert_int_equal(hs.ctemp, h.temperature_k - 273);
	assert_int_equal(hs.sw, 0x3f);
	assert_int_equal(hs.pdlu, h.percent_used);
	assert_int_equal(hs.nss & 0x38, 0x38); /* DF, RNR, P0LA */
	assert_int_equal(le16toh(hs.ccs), 0);

	/* A temperature and critical warning set on the model show up. */
	h.temperature_k = 273 + 57; /* under the default threshold */
	h.critical_warning = NVME_SMART_CRIT_MEDIA;
	h.percent_used = 42;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 1u << 31, &r),
			 0);
	memcpy(&hs, r.buf + 8, sizeof(hs));
	assert_int_equal(hs.ctemp, 57);
	assert_int_equal(hs.pdlu, 42);
	assert_int_equal(hs.sw, ~NVME_SMART_CRIT_MEDIA & 0x3f);
	assert_int_equal(le16toh(hs.ccs),
			 NVME_MI_CCS_CTEMP | NVME_MI_CCS_PDLU | NVME_MI_CCS_CCWARN);
	/* ... and in-band, in the SMART log. */
	assert_success(tu_get_log(e->tu, NVME_LOG_LID_SMART, NVME_NSID_ALL, 0, false, &smart,
				  sizeof(smart)));
	assert_int_equal(smart.critical_warning & NVME_SMART_CRIT_MEDIA, NVME_SMART_CRIT_MEDIA);
	assert_int_equal(get16(smart.temperature), 273 + 57);
	/* CS cleared the flags after reporting them. */
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0, &r), 0);
	memcpy(&hs, r.buf + 8, sizeof(hs));
	assert_int_equal(le16toh(hs.ccs), 0);

	/* Below zero, above the ceiling, spare under threshold. */
	h.temperature_k = 273 - 23;
	h.avail_spare = 5;
	h.spare_thresh = 10;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0, &r), 0);
	memcpy(&hs, r.buf + 8, sizeof(hs));
	assert_int_equal(hs.ctemp, 0xe9);
	assert_int_equal(hs.sw & 1, 0); /* ASCBT active low */
	assert_true(le16toh(hs.ccs) & NVME_MI_CCS_SPARE);
	/* Configuration Set Health Status Change clears selected flags. */
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				NVME_MI_CONFIG_HEALTH_STATUS_CHANGE, NVME_MI_CCS_SPARE, &r),
			 0);
	assert_int_equal(nvemu_mi_ep_ccs(e->ep) & NVME_MI_CCS_SPARE, 0);
	assert_true(nvemu_mi_ep_ccs(e->ep) & NVME_MI_CCS_CTEMP);
	h.temperature_k = 273 + 200;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0, &r), 0);
	memcpy(&hs, r.buf + 8, sizeof(hs));
	assert_int_equal(hs.ctemp, 0x7f);
	/* Above the controller's threshold: TTC (bit 1) active. */
	assert_int_equal(hs.sw & NVME_SMART_CRIT_TEMPERATURE, 0);
}

static uint8_t chsp(struct mi_env *e, uint32_t dw0, uint32_t dw1, struct mi_resp *r)
{
	return mi_cmd(e, NVEMU_MI_OPC_CTRL_HEALTH_POLL, dw0, dw1, r);
}

static void ctrl_health(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct nvme_mi_ctrl_health_status chds;
	const uint32_t all = NVEMU_MI_CHSP_ALL | NVEMU_MI_CHSP_INCPF | 0xffu << 16;
	const uint32_t props = NVEMU_MI_CHSP_CSTS | NVEMU_MI_CHSP_CTEMP | NVEMU_MI_CHSP_PDLU |
			       NVEMU_MI_CHSP_SPARE | NVEMU_MI_CHSP_CWARN;
	struct nvemu_health h;
	struct nvemu_error err;
	struct mi_resp r;
	uint16_t chsc, id;

	assert_int_equal(chsp(e, all, props, &r), 0);
	assert_int_equal(r.buf[7], 1); /* RENT */
	assert_int_equal(data_len(&r, 8), 16);
	memcpy(&chds, r.buf + 8, sizeof(chds));
	nvemu_subsys_get_health(s, &h);
	assert_int_equal(le16toh(chds.ctlid), 1);
	assert_int_equal(le16toh(chds.csts) & 1, 1); /* RDY: the host enabled it */
	assert_int_equal(le16toh(chds.ctemp), h.temperature_k);
	assert_int_equal(chds.pdlu, h.percent_used);
	assert_int_equal(chds.spare, h.avail_spare);
	assert_int_equal(chds.cwarn, 0);
	/* Nothing changed: without ALL, nothing reported. */
	assert_int_equal(chsp(e, NVEMU_MI_CHSP_INCPF | 0xffu << 16, props, &r), 0);
	assert_int_equal(r.buf[7], 0);
	assert_int_equal(data_len(&r, 8), 0);

	h.temperature_k += 5;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	/* Only CWARN selected: the temperature change does not qualify. */
	assert_int_equal(chsp(e, NVEMU_MI_CHSP_INCPF | 0xffu << 16, NVEMU_MI_CHSP_CWARN, &r), 0);
	assert_int_equal(r.buf[7], 0);
	/* VFs only: none. */
	assert_int_equal(chsp(e, NVEMU_MI_CHSP_INCVF | NVEMU_MI_CHSP_ALL, props, &r), 0);
	assert_int_equal(r.buf[7], 0);
	/* CTEMP selected, CCF clears. */
	assert_int_equal(chsp(e, NVEMU_MI_CHSP_INCPF | 0xffu << 16,
			      NVEMU_MI_CHSP_CTEMP | NVEMU_MI_CHSP_CCF, &r),
			 0);
	assert_int_equal(r.buf[7], 1);
	memcpy(&chsc, r.buf + 8 + NVEMU_MI_CHDS_CHSC_OFF, 2);
	assert_int_equal(le16toh(chsc) & NVME_MI_CCS_CTEMP, NVME_MI_CCS_CTEMP);
	memcpy(&chds, r.buf + 8, sizeof(chds));
	assert_int_equal(le16toh(chds.ctemp), h.temperature_k);
	assert_int_equal(chsp(e, NVEMU_MI_CHSP_INCPF | 0xffu << 16, props, &r), 0);
	assert_int_equal(r.buf[7], 0);

	/* Start ID and MAXRENT (0's based). */
	assert_int_equal(nvemu_subsys_add_ctrl(s, s->ports[0].id, &id, &err), 0);
	assert_int_equal(nvemu_subsys_add_ctrl(s, s->ports[0].id, &id, &err), 0);
	assert_int_equal(chsp(e, all, 0, &r), 0);
	assert_int_equal(r.buf[7], 3);
	assert_int_equal(chsp(e, (all & ~(0xffu << 16)) | 2, 0, &r), 0);
	assert_int_equal(r.buf[7], 1);
	memcpy(&chds, r.buf + 8, sizeof(chds));
	assert_int_equal(le16toh(chds.ctlid), 2);
	assert_int_equal(le16toh(chds.csts) & 1, 0); /* never enabled */

	/* Disabling the controller in-band shows as RDY/CECO changes. */
	nvemu_ctrl_set_cc(e->tu->ctrl, 0);
	assert_int_equal(chsp(e, NVEMU_MI_CHSP_INCPF | 0xffu << 16, NVEMU_MI_CHSP_CSTS, &r), 0);
	assert_int_equal(r.buf[7], 1);
	memcpy(&chsc, r.buf + 8 + NVEMU_MI_CHDS_CHSC_OFF, 2);
	assert_true(le16toh(chsc) & NVME_MI_CCS_RDY);
	assert_true(le16toh(chsc) & NVME_MI_CCS_CECO);
	assert_true(nvemu_mi_ep_ccs(e->ep) & NVME_MI_CCS_CECO);
}

/* ---- configuration */

static void config(void **state)
{
	struct mi_env *e = *state;
	struct mi_resp r;

	/* SMBus frequency of the two-wire port (MI port 1). */
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get,
				1u << 24 | NVME_MI_CONFIG_SMBUS_FREQ, 0, &r),
			 0);
	assert_int_equal(r.buf[5] & 0xf, NVME_MI_CONFIG_SMBUS_FREQ_1MHz);
	assert_int_equal(
		mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
		       1u << 24 | NVME_MI_CONFIG_SMBUS_FREQ_400kHz << 8 | NVME_MI_CONFIG_SMBUS_FREQ,
		       0, &r),
		0);
	assert_int_equal(nvemu_mi_ep_smbus_freq(e->ep, e->tw_port),
			 NVME_MI_CONFIG_SMBUS_FREQ_400kHz);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get,
				1u << 24 | NVME_MI_CONFIG_SMBUS_FREQ, 0, &r),
			 0);
	assert_int_equal(r.buf[5], NVME_MI_CONFIG_SMBUS_FREQ_400kHz);
	/* Beyond the maximum, reserved, on a PCIe port, no such port. */
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				1u << 24 | 4 << 8 | NVME_MI_CONFIG_SMBUS_FREQ, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				1u << 24 | 0 << 8 | NVME_MI_CONFIG_SMBUS_FREQ, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get,
				0u << 24 | NVME_MI_CONFIG_SMBUS_FREQ, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get,
				7u << 24 | NVME_MI_CONFIG_SMBUS_FREQ, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(nvemu_mi_ep_smbus_freq(e->ep, e->tw_port),
			 NVME_MI_CONFIG_SMBUS_FREQ_400kHz);

	/* MCTP transmission unit: 64 by default, applies after the response. */
	assert_int_equal(nvemu_mi_ep_mtu(e->ep), 64);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get,
				1u << 24 | NVME_MI_CONFIG_MCTP_MTU, 0, &r),
			 0);
	assert_int_equal(get16(r.buf + 5), 64);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				1u << 24 | NVME_MI_CONFIG_MCTP_MTU, 250, &r),
			 0);
	assert_int_equal(e->mtu_seen_in_respond, 64);
	assert_int_equal(nvemu_mi_ep_mtu(e->ep), 250);
	assert_int_equal(e->mtu_cb, 250);
	assert_int_equal(e->mtu_cb_calls, 1);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get,
				1u << 24 | NVME_MI_CONFIG_MCTP_MTU, 0, &r),
			 0);
	assert_int_equal(get16(r.buf + 5), 250);
	/* Another port's MTU does not touch the endpoint's. */
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				0u << 24 | NVME_MI_CONFIG_MCTP_MTU, 4096, &r),
			 0);
	assert_int_equal(nvemu_mi_ep_mtu(e->ep), 250);
	assert_int_equal(e->mtu_cb_calls, 1);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				1u << 24 | NVME_MI_CONFIG_MCTP_MTU, 63, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set,
				1u << 24 | NVME_MI_CONFIG_MCTP_MTU, 4097, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(nvemu_mi_ep_mtu(e->ep), 250);
	/* Unknown configuration identifiers. */
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get, 0, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_set, 0x44, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
}

/* ---- VPD, Reset */

static void vpd(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	uint8_t msg[512], sum = 0;
	struct mi_resp r;
	const uint8_t *v;
	size_t n;

	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_VPD_READ, 0, NVEMU_MI_VPD_SIZE, &r), 0);
	assert_int_equal(data_len(&r, 8), NVEMU_MI_VPD_SIZE);
	v = r.buf + 8;
	/* IPMI FRU common header: version 1, zero checksum, product area. */
	assert_int_equal(v[0], 1);
	for (int i = 0; i < 8; i++)
		sum += v[i];
	assert_int_equal(sum, 0);
	assert_int_equal(v[4], 1);
	assert_non_null(memmem(v, NVEMU_MI_VPD_SIZE, s->mn, strlen(s->mn)));
	assert_non_null(memmem(v, NVEMU_MI_VPD_SIZE, s->sn, strlen(s->sn)));
	sum = 0;
	for (int i = 0; i < v[9] * 8; i++)
		sum += v[8 + i];
	assert_int_equal(sum, 0);

	/* Window beyond the area. */
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_VPD_READ, 200, 57, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_VPD_READ, 0xffff, 0xffff, &r),
			 NVME_MI_RESP_INVALID_PARAM);

	/* Write 4 bytes at 100, read them back. */
	n = mi_req(msg, NVEMU_MI_OPC_VPD_WRITE, 100, 4);
	memcpy(msg + n, "WXYZ", 4);
	assert_int_equal(xfer(e, msg, n + 4, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), 0);
	assert_memory_equal(nvemu_mi_ep_vpd(e->ep) + 100, "WXYZ", 4);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_VPD_READ, 98, 8, &r), 0);
	assert_int_equal(data_len(&r, 8), 8);
	assert_memory_equal(r.buf + 8 + 2, "WXYZ", 4);
	/* Data length mismatch, beyond the end. */
	n = mi_req(msg, NVEMU_MI_OPC_VPD_WRITE, 100, 8);
	assert_int_equal(xfer(e, msg, n + 4, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_INPUT_SIZE);
	n = mi_req(msg, NVEMU_MI_OPC_VPD_WRITE, 254, 4);
	assert_int_equal(xfer(e, msg, n + 4, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_PARAM);
	assert_memory_equal(nvemu_mi_ep_vpd(e->ep) + 100, "WXYZ", 4);
}

static void reset(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_nvm_ss_health_status hs;
	struct mi_resp r;

	assert_true(nvemu_ctrl_get_csts(e->tu->ctrl) & 1);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_RESET, 1u << 24, 0, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_true(nvemu_ctrl_get_csts(e->tu->ctrl) & 1);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_RESET, 0, 0, &r), 0);
	assert_int_equal(nvemu_ctrl_get_csts(e->tu->ctrl) & 1, 0);
	assert_int_equal(nvemu_ctrl_get_cc(e->tu->ctrl) & 1, 0);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_subsys_health_status_poll, 0, 0, &r), 0);
	memcpy(&hs, r.buf + 8, sizeof(hs));
	assert_true(le16toh(hs.ccs) & NVME_MI_CCS_NSSRO);
	assert_true(le16toh(hs.ccs) & NVME_MI_CCS_CECO);
	assert_true(le16toh(hs.ccs) & NVME_MI_CCS_RDY);
}

/* ---- Admin command tunnel */

struct admin_out {
	struct mi_resp r;
	uint8_t status; /* MI */
	uint32_t cdw0, cdw1;
	uint16_t nvme; /* CQE status (libnvme encoding) */
	const uint8_t *data;
	size_t dlen;
};

static void admin_hdr(struct nvme_mi_admin_req_hdr *h, uint16_t cntlid, uint8_t opc, uint32_t nsid)
{
	memset(h, 0, sizeof(*h));
	h->hdr.type = NVME_MI_MSGTYPE_NVME;
	h->hdr.nmp = NVME_MI_ROR_REQ << 7 | NVME_MI_MT_ADMIN << 3;
	h->opcode = opc;
	h->ctrl_id = htole16(cntlid);
	h->cdw1 = htole32(nsid);
}

static void admin(struct mi_env *e, struct nvme_mi_admin_req_hdr *h, const void *data, size_t dlen,
		  struct admin_out *o)
{
	static uint8_t msg[8192];
	uint32_t v;

	memcpy(msg, h, sizeof(*h));
	if (dlen)
		memcpy(msg + sizeof(*h), data, dlen);
	memset(o, 0, sizeof(*o));
	assert_int_equal(xfer(e, msg, sizeof(*h) + dlen, &o->r), 1);
	o->status = resp_status(&o->r, NVME_MI_MT_ADMIN);
	if (o->status) {
		assert_int_equal(o->r.len, 12);
		return;
	}
	assert_true(o->r.len >= 24);
	memcpy(&v, o->r.buf + 8, 4);
	o->cdw0 = le32toh(v);
	memcpy(&v, o->r.buf + 12, 4);
	o->cdw1 = le32toh(v);
	memcpy(&v, o->r.buf + 16, 4);
	o->nvme = le32toh(v) >> 17;
	o->data = o->r.buf + 20;
	o->dlen = o->r.len - 24;
}

/* Identify CNS cns of nsid on controller ctrl_id, all 4 KiB of it (DLEN valid). */
static void identify_hdr(struct nvme_mi_admin_req_hdr *h, uint16_t ctrl_id, uint32_t nsid,
			 uint8_t cns)
{
	admin_hdr(h, ctrl_id, nvme_admin_identify, nsid);
	h->cdw10 = htole32(cns);
	h->flags = 1;
	h->dlen = htole32(4096);
}

static void admin_identify(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_admin_req_hdr h;
	uint8_t inband[4096];
	struct admin_out o;

	assert_success(tu_identify(e->tu, NVME_IDENTIFY_CNS_CTRL, 0, 0, inband));
	identify_hdr(&h, 1, 0, NVME_IDENTIFY_CNS_CTRL);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(o.dlen, 4096);
	assert_memory_equal(o.data, inband, 4096);

	/* A window: DOFST 8, DLEN 64 (libnvme's identify_partial). */
	h.flags = 3;
	h.doff = htole32(8);
	h.dlen = htole32(64);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.dlen, 64);
	assert_memory_equal(o.data, inband + 8, 64);
	/* DOFST without DOFSTV is not an offset; DLEN without DLENV not a length. */
	h.flags = 1;
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.dlen, 64);
	assert_memory_equal(o.data, inband, 64);
	h.flags = 2;
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.dlen, 4096 - 8);
	assert_memory_equal(o.data, inband + 8, 4096 - 8);
	h.flags = 3;
	/* Misaligned, too long, beyond the data; each names its field (bytes 6-7). */
	h.doff = htole32(6);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), offsetof(struct nvme_mi_admin_req_hdr, doff));
	h.doff = 0;
	h.dlen = htole32(4100);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), offsetof(struct nvme_mi_admin_req_hdr, dlen));
	h.doff = htole32(4092);
	h.dlen = htole32(8);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	h.flags = 2; /* the same offset, DLEN not valid: what is left from 4092 */
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.dlen, 4);

	/* Identify Namespace 1, and an invalid NSID answered by the engine. */
	assert_success(tu_identify(e->tu, NVME_IDENTIFY_CNS_NS, 1, 0, inband));
	identify_hdr(&h, 1, 1, NVME_IDENTIFY_CNS_NS);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.nvme, 0);
	assert_memory_equal(o.data, inband, 4096);
	identify_hdr(&h, 1, 0, NVME_IDENTIFY_CNS_NS);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_status(o.nvme, NVEMU_SC_GENERIC(NVME_SC_INVALID_NS));
	assert_int_equal(o.dlen, 0);

	/* Controller 0 (nvme-cli's default) names the first controller. */
	identify_hdr(&h, 0, 0, NVME_IDENTIFY_CNS_CTRL);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(get16(o.data + offsetof(struct nvme_id_ctrl, cntlid)), 1);
	/* Unknown controller: the location is CTLID, byte 6. */
	admin_hdr(&h, 7, nvme_admin_identify, 0);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), offsetof(struct nvme_mi_admin_req_hdr, ctrl_id));
	/* Without the alias, controller 0 is as unknown as 7. */
	nvemu_mi_ep_set_ctrl0_alias(e->ep, false);
	identify_hdr(&h, 0, 0, NVME_IDENTIFY_CNS_CTRL);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), 6);
	nvemu_mi_ep_set_ctrl0_alias(e->ep, true);

	/* Out of band: works with the controller disabled. */
	nvemu_ctrl_set_cc(e->tu->ctrl, 0);
	identify_hdr(&h, 1, 0, NVME_IDENTIFY_CNS_CTRL);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(o.dlen, 4096);
}

/*
 * A suspended controller still answers a tunnelled command: Command
 * Interrupted without DNR, so the management controller retries later.
 */
static void admin_suspended(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_admin_req_hdr h;
	struct admin_out o;

	nvemu_ctrl_suspend(e->tu->ctrl, false);
	admin_hdr(&h, 1, nvme_admin_identify, 0);
	h.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	h.flags = 1;
	h.dlen = htole32(4096);
	admin(e, &h, NULL, 0, &o); /* exactly one response, at once */
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, NVEMU_SC_GENERIC(NVME_SC_CMD_INTERRUPTED));
	assert_int_equal(o.dlen, 0);
	assert_int_equal(nvemu_ctrl_inflight(e->tu->ctrl), 0);
	nvemu_ctrl_resume(e->tu->ctrl);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(o.dlen, 4096);
}

static void admin_log_features(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_admin_req_hdr h;
	struct nvme_smart_log smart;
	struct nvemu_health hl;
	struct nvemu_error err;
	struct admin_out o;
	uint32_t dw0;

	nvemu_subsys_get_health(e->tu->subsys, &hl);
	hl.temperature_k = 320;
	assert_int_equal(nvemu_subsys_set_health(e->tu->subsys, &hl, &err), 0);
	/* SMART log the way libnvme asks for it. */
	admin_hdr(&h, 1, nvme_admin_get_log_page, NVME_NSID_ALL);
	h.cdw10 = htole32((sizeof(smart) / 4 - 1) << 16 | NVME_LOG_LID_SMART);
	h.flags = 1;
	h.dlen = htole32(sizeof(smart));
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(o.dlen, sizeof(smart));
	memcpy(&smart, o.data, sizeof(smart));
	assert_int_equal(get16(smart.temperature), 320);
	assert_int_equal(smart.avail_spare, hl.avail_spare);
	/* Unknown log page: NVMe status in CQE DW3. */
	h.cdw10 = htole32((sizeof(smart) / 4 - 1) << 16 | 0x6f);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_status(o.nvme, NVEMU_SC_CMD(NVME_SC_INVALID_LOG_PAGE));
	assert_dnr(o.nvme);

	/* Set Features (temperature threshold) over MI, seen in-band. */
	admin_hdr(&h, 1, nvme_admin_set_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_TEMP_THRESH);
	h.cdw11 = htole32(350);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	assert_success(tu_get_feature(e->tu, NVME_FEAT_FID_TEMP_THRESH, 0, 0, &dw0));
	assert_int_equal(dw0 & 0xffff, 350);
	/* Get Features without DLEN (libnvme's form): result in CDW0. */
	admin_hdr(&h, 1, nvme_admin_get_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.nvme, 0);
	assert_success(tu_get_feature(e->tu, NVME_FEAT_FID_NUM_QUEUES, 0, 0, &dw0));
	assert_int_equal(o.cdw0, dw0);
	assert_int_equal(o.dlen, 0);
	/* Get Features with data (Host Identifier, 16 bytes). */
	admin_hdr(&h, 1, nvme_admin_get_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_HOST_ID);
	h.cdw11 = htole32(1); /* EXHID: 128-bit */
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	if (!o.nvme)
		assert_int_equal(o.dlen, 16);
	/* Read commands carry no request data. */
	admin_hdr(&h, 1, nvme_admin_get_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES);
	admin(e, &h, "abcd", 4, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_INPUT_SIZE);
}

static void admin_ns(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_admin_req_hdr h;
	struct nvme_ctrl_list cl;
	struct nvme_id_ns idns;
	uint32_t changed[1024];
	struct admin_out o;
	uint32_t nsid;

	/* Create. */
	memset(&idns, 0, sizeof(idns));
	idns.nsze = htole64(4096);
	idns.ncap = htole64(4096);
	idns.flbas = 0;
	admin_hdr(&h, 1, nvme_admin_ns_mgmt, 0);
	h.cdw10 = htole32(NVME_NS_MGMT_SEL_CREATE);
	h.flags = 1;
	h.dlen = htole32(sizeof(idns));
	admin(e, &h, &idns, sizeof(idns), &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	nsid = o.cdw0;
	assert_true(nsid >= 3);
	assert_non_null(nvemu_subsys_ns(e->tu->subsys, nsid));
	/* DLEN disagreeing with the data that follows. */
	h.dlen = htole32(sizeof(idns) - 4);
	admin(e, &h, &idns, sizeof(idns), &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_INPUT_SIZE);

	/* Attach to controller 1: attached for the in-band host, with the event. */
	assert_success(tu_get_log(e->tu, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, false, changed,
				  sizeof(changed)));
	memset(&cl, 0, sizeof(cl));
	cl.num = htole16(1);
	cl.identifier[0] = htole16(1);
	admin_hdr(&h, 1, nvme_admin_ns_attach, nsid);
	h.cdw10 = htole32(NVME_NS_ATTACH_SEL_CTRL_ATTACH);
	h.flags = 1;
	h.dlen = htole32(sizeof(cl));
	admin(e, &h, &cl, sizeof(cl), &o);
	assert_int_equal(o.nvme, 0);
	assert_true(nvemu_ctrl_ns_attached(e->tu->ctrl, nsid));
	memset(changed, 0, sizeof(changed));
	assert_success(tu_get_log(e->tu, NVME_LOG_LID_CHANGED_NS, NVME_NSID_ALL, 0, false, changed,
				  sizeof(changed)));
	assert_int_equal(le32toh(changed[0]), nsid);
	/* The NAC change shows in the health poll. */
	assert_true(nvemu_mi_ep_ccs(e->ep) & NVME_MI_CCS_NAC);

	/* Format NVM on it. */
	admin_hdr(&h, 1, nvme_admin_format_nvm, nsid);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	/* Format with request data is malformed. */
	admin(e, &h, "abcd", 4, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_INPUT_SIZE);

	/* Detach and delete. */
	admin_hdr(&h, 1, nvme_admin_ns_attach, nsid);
	h.cdw10 = htole32(NVME_NS_ATTACH_SEL_CTRL_DEATTACH);
	h.flags = 1;
	h.dlen = htole32(sizeof(cl));
	admin(e, &h, &cl, sizeof(cl), &o);
	assert_int_equal(o.nvme, 0);
	assert_false(nvemu_ctrl_ns_attached(e->tu->ctrl, nsid));
	admin_hdr(&h, 1, nvme_admin_ns_mgmt, nsid);
	h.cdw10 = htole32(NVME_NS_MGMT_SEL_DELETE);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.nvme, 0);
	assert_null(nvemu_subsys_ns(e->tu->subsys, nsid));
	/* Deleting it again: the engine's error status, in the CQE. */
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_true(o.nvme != 0);
	assert_dnr(o.nvme);
}

static void admin_fw(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_admin_req_hdr h;
	struct nvme_firmware_slot fw;
	uint8_t img[1024];
	struct admin_out o;

	memset(img, 0xa5, sizeof(img));
	memcpy(img, "MIFW0002", 8); /* an nvemu image starts with its revision */
	admin_hdr(&h, 1, nvme_admin_fw_download, 0);
	h.cdw10 = htole32(sizeof(img) / 4 - 1);
	h.cdw11 = 0;
	h.flags = 1;
	h.dlen = htole32(sizeof(img));
	admin(e, &h, img, sizeof(img), &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	/* Commit to slot 2, activate at the next reset: the engine says which. */
	admin_hdr(&h, 1, nvme_admin_fw_commit, 0);
	h.cdw10 = htole32(1u << 3 | 2);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_status(o.nvme, NVEMU_SC_CMD(NVME_SC_FW_NEEDS_RESET));
	assert_false(o.nvme & NVME_SC_DNR);
	/* Slot 1 is read-only: the engine refuses. */
	h.cdw10 = htole32(0u << 3 | 1);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_true(o.nvme != 0);
	assert_dnr(o.nvme);
	/* The firmware slot log, in-band, names slot 2 for the next reset. */
	assert_success(
		tu_get_log(e->tu, NVME_LOG_LID_FW_SLOT, NVME_NSID_ALL, 0, false, &fw, sizeof(fw)));
	assert_int_equal((fw.afi >> 4) & 7, 2);
	assert_memory_equal(fw.frs[1], "MIFW0002", 8);
	/* An MI NVM Subsystem Reset activates it, flagged as Firmware Activated. */
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_RESET, 0, 0, &o.r), 0);
	assert_success(nvemu_host_enable(e->tu->host));
	assert_success(
		tu_get_log(e->tu, NVME_LOG_LID_FW_SLOT, NVME_NSID_ALL, 0, false, &fw, sizeof(fw)));
	assert_int_equal(fw.afi & 7, 2);
	assert_true(nvemu_mi_ep_ccs(e->ep) & NVME_MI_CCS_FA);
}

static void admin_forbidden(void **state)
{
	struct mi_env *e = *state;
	static const uint8_t opcs[] = {
		nvme_admin_delete_sq,  nvme_admin_create_sq, nvme_admin_delete_cq,
		nvme_admin_create_cq,  nvme_admin_abort_cmd, nvme_admin_async_event,
		nvme_admin_keep_alive, nvme_admin_dbbuf,
	};
	struct nvme_mi_admin_req_hdr h;
	struct admin_out o;
	uint8_t msg[64];

	for (unsigned i = 0; i < sizeof(opcs); i++) {
		admin_hdr(&h, 1, opcs[i], 0);
		admin(e, &h, NULL, 0, &o);
		assert_int_equal(o.status, NVME_MI_RESP_INVALID_OPCODE);
	}
	/* Allowed but not implemented: the engine's Invalid Opcode in the CQE. */
	admin_hdr(&h, 1, nvme_admin_security_recv, 0);
	h.flags = 1;
	h.dlen = htole32(16);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_status(o.nvme, NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE));
	/* A command of unknown size: the window is the buffer, within bounds. */
	admin_hdr(&h, 1, 0xc2, 0);
	h.flags = 3;
	h.doff = htole32(0xfffff000);
	h.dlen = htole32(4096);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	h.doff = 0;
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_status(o.nvme, NVEMU_SC_GENERIC(NVME_SC_INVALID_OPCODE));
	/* Bidirectional opcodes cannot be carried. */
	admin_hdr(&h, 1, 0xc3, 0);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	/* Short Admin header. */
	admin_hdr(&h, 1, nvme_admin_identify, 0);
	memcpy(msg, &h, 40);
	assert_int_equal(xfer(e, msg, 40, &o.r), 1);
	assert_int_equal(resp_status(&o.r, NVME_MI_MT_ADMIN), NVME_MI_RESP_INVALID_CMD_SIZE);
	/* Huge Get Log Page length cannot be windowed. */
	admin_hdr(&h, 1, nvme_admin_get_log_page, NVME_NSID_ALL);
	h.cdw10 = htole32(0xffffu << 16 | NVME_LOG_LID_SMART);
	h.cdw11 = htole32(0xffff);
	h.flags = 1;
	h.dlen = htole32(512);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
}

/* ---- Asynchronous Event Messages (NVMe-MI 2.0, TP6035) */

struct aem_sink {
	int binds, sends;
	uint8_t msg[1024];
	size_t len;
};

static void sink_bind(void *arg)
{
	((struct aem_sink *)arg)->binds++;
}

static int sink_send(void *arg, const uint8_t *msg, size_t len)
{
	struct aem_sink *k = arg;

	assert_true(len <= sizeof(k->msg));
	memcpy(k->msg, msg, len);
	k->len = len;
	k->sends++;
	return 0;
}

static const struct nvemu_mi_aem_ops sink_ops = {.bind = sink_bind, .send = sink_send};

#define MS(x) ((uint64_t)(x)*1000000ULL)

/* Configuration Set, ID 04h, with data (an AE Enable List or nothing). */
static uint8_t aem_set(struct mi_env *e, uint32_t dw0, const uint8_t *data, size_t dlen,
		       struct mi_resp *r)
{
	uint8_t msg[256];
	size_t n = mi_req(msg, nvme_mi_mi_opcode_configuration_set, NVEMU_MI_CONFIG_AE | dw0, 0);

	if (dlen)
		memcpy(msg + n, data, dlen);
	assert_int_equal(xfer(e, msg, n + dlen, r), 1);
	return resp_status(r, NVME_MI_MT_MI);
}

/* An AE Enable List of n items: ids[i], enabled per en bit i. */
static size_t aee_list(uint8_t *p, const uint8_t *ids, unsigned n, unsigned en)
{
	size_t tl = 5 + 3 * n;

	p[0] = (uint8_t)n;
	p[1] = 0;
	p[2] = (uint8_t)tl;
	p[3] = (uint8_t)(tl >> 8);
	p[4] = 5;
	for (unsigned i = 0; i < n; i++) {
		p[5 + 3 * i] = 3;
		p[6 + 3 * i] = ids[i];
		p[7 + 3 * i] = (en >> i) & 1 ? 0x80 : 0;
	}
	return tl;
}

/* NVMe-MI 2.0 Configuration Get, Asynchronous Event: the AE Supported List. */
static void aem_supported_list(void **state)
{
	static const uint8_t ids[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0c, 0xc0};
	struct mi_env *e = *state;
	uint8_t list[64];
	struct mi_resp r;
	const uint8_t *d;

	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get, NVEMU_MI_CONFIG_AE, 0, &r),
			 0);
	d = r.buf + 8;
	assert_int_equal(d[0], sizeof(ids)); /* NUMAES */
	assert_int_equal(d[1], 0);	     /* AESLVER */
	assert_int_equal(get16(d + 2), 5 + 3 * sizeof(ids));
	assert_int_equal(d[4], 5); /* AESLHL */
	for (unsigned i = 0; i < sizeof(ids); i++) {
		assert_int_equal(d[5 + 3 * i], 3);
		assert_int_equal(get16(d + 6 + 3 * i), ids[i]); /* not enabled: bit 15 clear */
	}
	/* Enabled ones report bit 15. */
	assert_int_equal(aem_set(e, 0, list, aee_list(list, (const uint8_t[]){0x06}, 1, 1), &r), 0);
	assert_int_equal(mi_cmd(e, nvme_mi_mi_opcode_configuration_get, NVEMU_MI_CONFIG_AE, 0, &r),
			 0);
	assert_int_equal(get16(r.buf + 8 + 6 + 3 * 6), 0x8006);
	assert_int_equal(get16(r.buf + 8 + 6 + 3 * 7), 0x0007);
}

/* Malformed AE Enable Lists: Invalid Parameter at the field, nothing changed. */
static void aem_enable_list_errors(void **state)
{
	struct mi_env *e = *state;
	uint8_t l[64];
	struct mi_resp r;
	size_t n;

	n = aee_list(l, (const uint8_t[]){0x06, 0x07}, 2, 3);
	l[1] = 1; /* AEELVER */
	assert_int_equal(aem_set(e, 0, l, n, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 17);
	n = aee_list(l, (const uint8_t[]){0x06, 0x07}, 2, 3);
	l[4] = 6; /* AEELHL */
	assert_int_equal(aem_set(e, 0, l, n, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 20);
	n = aee_list(l, (const uint8_t[]){0x06, 0x07}, 2, 3);
	l[2] = 12; /* AEETL */
	assert_int_equal(aem_set(e, 0, l, n, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 18);
	n = aee_list(l, (const uint8_t[]){0x06, 0x07}, 2, 3);
	l[8] = 2; /* second item's AEEL */
	assert_int_equal(aem_set(e, 0, l, n, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 24);
	n = aee_list(l, (const uint8_t[]){0x06, 0x0a}, 2, 3); /* 0Ah unsupported */
	assert_int_equal(aem_set(e, 0, l, n, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 25);
	n = aee_list(l, (const uint8_t[]){0x06}, 1, 1);
	l[7] |= 0x01; /* AEEI reserved bit 8 */
	assert_int_equal(aem_set(e, 0, l, n, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 23);
	n = aee_list(l, (const uint8_t[]){0x06}, 1, 1);
	assert_int_equal(aem_set(e, 0, l, 3, &r), NVME_MI_RESP_INVALID_INPUT_SIZE);
	assert_int_equal(aem_set(e, 0, l, n - 1, &r),
			 NVME_MI_RESP_INVALID_INPUT_SIZE); /* TL != data */
	l[2] = (uint8_t)(n - 1);
	assert_int_equal(aem_set(e, 0, l, n - 1, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(aem_set(e, 1u << 27, NULL, 0, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(r.buf[5], 3);
	assert_int_equal(get16(r.buf + 6), 11);
	/* Other configurations still take no data. */
	{
		uint8_t msg[64];
		size_t m = mi_req(msg, nvme_mi_mi_opcode_configuration_set,
				  NVME_MI_CONFIG_HEALTH_STATUS_CHANGE, 0);

		memset(msg + m, 0, 4);
		assert_int_equal(xfer(e, msg, m + 4, &r), 1);
		assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_CMD_SIZE);
	}
	/* Nothing was enabled by any of them. */
	assert_int_equal(nvemu_mi_ep_aem_poll(e->ep, MS(1)), 0);
}

static void check_mic(const uint8_t *m, size_t len)
{
	uint32_t mic;

	assert_int_equal(len % 4, 0);
	memcpy(&mic, m + len - 4, 4);
	assert_int_equal(le32toh(mic), nvemu_crc32c(m, len - 4));
}

/*
 * The AEM (NVMe-MI 2.0 "Asynchronous Event Message"): enable, a model
 * change, the message byte by byte, retransmission every AERD until the
 * acknowledgement (a Configuration Set), none after it, and a bounded
 * number without one.
 */
static void aem_send_retransmit_ack(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct aem_sink k = {0};
	struct nvemu_health h;
	struct nvemu_error err;
	uint8_t l[64],
		want[24] = {0x84, NVEMU_MI_NMIMT_AE << 3, 0, 0, 1, 0, 17, 0, 0, 7, 1 << 3, 9, 1,
			    0,	  NVEMU_MI_AEI_CTEMP,	  0, 0, 0, 0, 0,  61};
	uint64_t sent, resent;
	struct mi_resp r;
	size_t n;

	nvemu_mi_ep_set_aem_ops(e->ep, &sink_ops, &k);
	n = aee_list(l, (const uint8_t[]){NVEMU_MI_AEI_CTEMP, NVEMU_MI_AEI_PDLU}, 2, 3);
	/* AERD 2 (200 ms), AEMD 0. */
	assert_int_equal(aem_set(e, 2u << 8, l, n, &r), 0);
	assert_int_equal(k.binds, 1);
	/* The response: an empty AE Occurrence List of generation 0. */
	assert_int_equal(data_len(&r, 8), 8);
	assert_memory_equal(r.buf + 8, ((const uint8_t[]){0, 0, 7, 0, 0, 7, 0, 0}), 8);
	assert_int_not_equal(nvemu_mi_ep_aem_poll(e->ep, MS(1000)), 0);
	assert_int_equal(k.sends, 0);

	nvemu_subsys_get_health(s, &h);
	h.temperature_k = 273 + 61;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	assert_int_equal(nvemu_mi_ep_aem_poll(e->ep, MS(1020)), MS(1220));
	assert_int_equal(k.sends, 1);
	assert_int_equal(k.len, 28);
	assert_memory_equal(k.msg, want, sizeof(want));
	check_mic(k.msg, k.len);
	/* Not yet due, then due: the same message again. */
	nvemu_mi_ep_aem_poll(e->ep, MS(1120));
	assert_int_equal(k.sends, 1);
	memset(k.msg, 0, sizeof(k.msg));
	nvemu_mi_ep_aem_poll(e->ep, MS(1220));
	assert_int_equal(k.sends, 2);
	assert_memory_equal(k.msg, want, sizeof(want));
	/* A change before the ack comes with the ack's response, not a new AEM. */
	h.percent_used = 9;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	assert_int_equal(aem_set(e, 2u << 8, NULL, 0, &r), 0);
	assert_int_equal(k.binds, 1); /* an ack does not move the destination */
	assert_int_equal(data_len(&r, 8), 20);
	assert_memory_equal(
		r.buf + 8, ((const uint8_t[]){1, 0, 17, 0, 0, 7, 1 << 3, 9, 1, 0, NVEMU_MI_AEI_PDLU,
					      0, 0, 0,	0, 0, 9, 0,	 0, 0}),
		20);
	for (int t = 1300; t < 3000; t += 100)
		nvemu_mi_ep_aem_poll(e->ep, MS(t));
	assert_int_equal(k.sends, 2);

	/* No ack: NVEMU_MI_AEM_MAX_RETRIES retransmissions, then silence. */
	h.temperature_k = 273 + 62;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	for (int t = 3000; t < 6000; t += 50)
		nvemu_mi_ep_aem_poll(e->ep, MS(t));
	assert_int_equal(k.sends, 3 + NVEMU_MI_AEM_MAX_RETRIES);
	assert_int_equal(k.msg[10], 2 << 3); /* generation 2 */
	assert_int_equal(k.msg[20], 62);
	nvemu_mi_ep_aem_stats(e->ep, &sent, &resent);
	assert_int_equal(sent, 2);
	assert_int_equal(resent, 1 + NVEMU_MI_AEM_MAX_RETRIES);

	/* Disabling everything stops the polling. */
	n = aee_list(l, (const uint8_t[]){NVEMU_MI_AEI_CTEMP, NVEMU_MI_AEI_PDLU}, 2, 0);
	assert_int_equal(aem_set(e, 0, l, n, &r), 0);
	assert_int_equal(nvemu_mi_ep_aem_poll(e->ep, MS(7000)), 0);
}

/* AEMD coalesces; controller-scoped AEs need ENCFA/EMPFA and carry the controller ID. */
static void aem_delay_and_ctrl_scope(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct aem_sink k = {0};
	struct nvemu_health h;
	struct nvemu_error err;
	uint8_t l[64];
	struct mi_resp r;
	size_t n;

	nvemu_mi_ep_set_aem_ops(e->ep, &sink_ops, &k);
	n = aee_list(l,
		     (const uint8_t[]){NVEMU_MI_AEI_SPARE, NVEMU_MI_AEI_CWARN, NVEMU_MI_AEI_RDY,
				       NVEMU_MI_AEI_CECO},
		     4, 0xf);
	/* AEMD 3 (300 ms), ENCFA. */
	assert_int_equal(aem_set(e, 3u << 16 | 1u << 24, l, n, &r), 0);
	nvemu_subsys_get_health(s, &h);
	h.avail_spare = 50;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	nvemu_mi_ep_aem_poll(e->ep, MS(100));
	assert_int_equal(k.sends, 0);
	h.critical_warning = NVME_SMART_CRIT_MEDIA;
	assert_int_equal(nvemu_subsys_set_health(s, &h, &err), 0);
	nvemu_ctrl_set_cc(e->tu->ctrl, 0); /* CC.EN 1 -> 0: CECO and RDY */
	nvemu_mi_ep_aem_poll(e->ep, MS(300));
	assert_int_equal(k.sends, 0);
	nvemu_mi_ep_aem_poll(e->ep, MS(400));
	assert_int_equal(k.sends, 1);
	check_mic(k.msg, k.len);
	assert_int_equal(k.msg[4], 4); /* NUMAEO */
	assert_int_equal(k.msg[6], 7 + 4 * 10);
	/* Subsystem-wide first (noted first), then the controller's. */
	assert_int_equal(k.msg[11 + 3], NVEMU_MI_AEI_SPARE);
	assert_int_equal(k.msg[11 + 9], 50);
	assert_int_equal(k.msg[21 + 3], NVEMU_MI_AEI_CWARN);
	assert_int_equal(k.msg[21 + 9], NVME_SMART_CRIT_MEDIA);
	assert_int_equal(k.msg[31 + 3], NVEMU_MI_AEI_RDY);
	assert_int_equal(get16(k.msg + 31 + 4), e->tu->ctrl->cntlid);
	assert_int_equal(k.msg[31 + 9] & 1, 0); /* CSTS.RDY now 0 */
	assert_int_equal(k.msg[41 + 3], NVEMU_MI_AEI_CECO);
	assert_int_equal(k.msg[41 + 9], 0);
}

/* Sanitize Failure Mode (0Ch): entering and leaving it are occurrences, with the mode as info. */
static void aem_sanitize_failure_mode(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_subsys *s = e->tu->subsys;
	struct aem_sink k = {0};
	uint8_t l[64];
	struct mi_resp r;
	size_t n;

	nvemu_mi_ep_set_aem_ops(e->ep, &sink_ops, &k);
	n = aee_list(l, (const uint8_t[]){NVEMU_MI_AEI_SANFM}, 1, 1);
	assert_int_equal(aem_set(e, 0, l, n, &r), 0);
	s->san.failed = true;
	nvemu_mi_ep_aem_poll(e->ep, MS(100));
	assert_int_equal(k.sends, 1);
	check_mic(k.msg, k.len);
	assert_int_equal(k.msg[4], 1);			       /* NUMAEO */
	assert_int_equal(k.msg[11 + 3], 0x0c);		       /* AEOI */
	assert_int_equal(get16(k.msg + 11 + 4), 0);	       /* subsystem scope */
	assert_int_equal(k.msg[11 + 9], 1);		       /* in failure mode */
	assert_int_equal(aem_set(e, 1u << 8, NULL, 0, &r), 0); /* ack generation 1 */
	s->san.failed = false;
	nvemu_mi_ep_aem_poll(e->ep, MS(200));
	assert_int_equal(k.sends, 2);
	assert_int_equal(k.msg[11 + 3], 0x0c);
	assert_int_equal(k.msg[11 + 9], 0);
}

/* ---- Management Endpoint Buffer, Shutdown, SES */
/*
 * The MEB bit on Admin commands: request data from the MEB, response data
 * into it (the response's MEB bit set, no data in the message).
 */
static void meb_admin_data(void **state)
{
	struct mi_env *e = *state;
	struct nvme_mi_admin_req_hdr h;
	uint8_t inband[4096], msg[64];
	struct admin_out o;
	struct mi_resp r;
	size_t n;

	/* Identify Controller into the MEB, then read it back with MEB Read. */
	assert_success(tu_identify(e->tu, NVME_IDENTIFY_CNS_CTRL, 0, 0, inband));
	identify_hdr(&h, 1, 0, NVME_IDENTIFY_CNS_CTRL);
	h.hdr.meb = 1;
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(o.dlen, 0);
	assert_int_equal(o.r.buf[2] & 1, 1); /* the data is in the MEB */
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 0, 4096, &r), 0);
	assert_memory_equal(r.buf + 8, inband, 4096);
	/* A window lands at the start of the buffer. */
	h.flags = 3;
	h.doff = htole32(24);
	h.dlen = htole32(40);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 0, 40, &r), 0);
	assert_memory_equal(r.buf + 8, inband + 24, 40);

	/* Set Features Host Identifier (data to the controller) from MEB offset 16. */
	n = mi_req(msg, NVEMU_MI_OPC_MEB_WRITE, 16, 8);
	memcpy(msg + n, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(xfer(e, msg, n + 8, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), 0);
	admin_hdr(&h, 1, nvme_admin_set_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_HOST_ID);
	h.hdr.meb = 1;
	h.flags = 3;
	h.doff = htole32(16);
	h.dlen = htole32(8);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.r.buf[2] & 1, 0); /* nothing came back through the MEB */
	admin_hdr(&h, 1, nvme_admin_get_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_HOST_ID);
	h.flags = 1;
	h.dlen = htole32(8);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, 0);
	assert_int_equal(o.nvme, 0);
	assert_int_equal(o.dlen, 8);
	assert_memory_equal(o.data, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);

	/* Refused: a command not in the list, data in the message too, outside the MEB. */
	admin_hdr(&h, 1, nvme_admin_format_nvm, 1);
	h.hdr.meb = 1;
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), 2);
	admin_hdr(&h, 1, nvme_admin_set_features, 0);
	h.cdw10 = htole32(NVME_FEAT_FID_HOST_ID);
	h.hdr.meb = 1;
	h.flags = 1;
	h.dlen = htole32(8);
	admin(e, &h, "12345678", 8, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_INPUT_SIZE);
	h.flags = 3;
	h.doff = htole32(4092);
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), offsetof(struct nvme_mi_admin_req_hdr, doff));
	h.flags = 0; /* a write through the MEB needs its length */
	admin(e, &h, NULL, 0, &o);
	assert_int_equal(o.status, NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(o.r.buf + 6), offsetof(struct nvme_mi_admin_req_hdr, dlen));
}

/* NVMe-MI 1.2 5.8/5.9 Management Endpoint Buffer Read/Write: DW0 offset, DW1 length. */
static void meb_read_write(void **state)
{
	struct mi_env *e = *state;
	uint8_t msg[NVEMU_MI_MEB_SIZE + 64];
	struct mi_resp r;
	size_t n;

	/* The buffer starts zeroed. */
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 0, 16, &r), 0);
	assert_int_equal(data_len(&r, 8), 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(r.buf[8 + i], 0);
	n = mi_req(msg, NVEMU_MI_OPC_MEB_WRITE, 4090, 6);
	memcpy(msg + n, "abcdef", 6);
	assert_int_equal(xfer(e, msg, n + 6, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), 0);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 4088, 8, &r), 0);
	assert_memory_equal(r.buf + 8, "\0\0abcdef", 8);
	/* The whole buffer at once, both ways. */
	n = mi_req(msg, NVEMU_MI_OPC_MEB_WRITE, 0, NVEMU_MI_MEB_SIZE);
	for (int i = 0; i < NVEMU_MI_MEB_SIZE; i++)
		msg[n + i] = (uint8_t)(i * 7);
	assert_int_equal(xfer(e, msg, n + NVEMU_MI_MEB_SIZE, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), 0);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 0, NVEMU_MI_MEB_SIZE, &r), 0);
	assert_memory_equal(r.buf + 8, msg + n, NVEMU_MI_MEB_SIZE);
	/* Out of the buffer: Invalid Parameter at the offset or the length. */
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, NVEMU_MI_MEB_SIZE, 1, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 8);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 1, NVEMU_MI_MEB_SIZE, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(get16(r.buf + 6), 12);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_MEB_READ, 0xffffffff, 2, &r),
			 NVME_MI_RESP_INVALID_PARAM);
	n = mi_req(msg, NVEMU_MI_OPC_MEB_WRITE, 4095, 2);
	memcpy(msg + n, "xy", 2);
	assert_int_equal(xfer(e, msg, n + 2, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_PARAM);
	/* Data not matching the length. */
	n = mi_req(msg, NVEMU_MI_OPC_MEB_WRITE, 0, 8);
	assert_int_equal(xfer(e, msg, n + 4, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_INPUT_SIZE);
	/* Listed in the Optionally Supported Command List. */
	assert_int_equal(mi_cmd(e, 0, nvme_mi_dtyp_opt_cmd_support << 24, 0, &r), 0);
	{
		unsigned cnt = get16(r.buf + 8), found = 0;

		for (unsigned i = 0; i < cnt; i++) {
			const uint8_t *c = r.buf + 10 + 2 * i;

			found += c[0] == NVME_MI_MT_MI &&
				 (c[1] == NVEMU_MI_OPC_MEB_READ || c[1] == NVEMU_MI_OPC_MEB_WRITE ||
				  c[1] == NVEMU_MI_OPC_SHUTDOWN);
			assert_false(c[0] == NVME_MI_MT_MI && (c[1] == NVEMU_MI_OPC_SES_RECEIVE ||
							       c[1] == NVEMU_MI_OPC_SES_SEND));
		}
		assert_int_equal(found, 3);
	}
}

/*
 * NVMe-MI 1.2 5.11 Shutdown: CC.SHN on every enabled controller through the
 * model; CSTS.SHST reaches "complete", as the in-band host reads it, and the
 * Controller Health Status Poll reports the SHST change.
 */
static void shutdown_cmd(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_ctrl *ctrl = e->tu->ctrl;
	struct mi_resp r;
	int i;

	assert_int_equal(NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)), 0);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_SHUTDOWN, 2, 0, &r), NVME_MI_RESP_INVALID_PARAM);
	assert_int_equal(r.buf[5], 1);
	assert_int_equal(get16(r.buf + 6), 8);
	assert_int_equal(NVME_CC_SHN(nvemu_ctrl_get_cc(ctrl)), 0);
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_SHUTDOWN, 0, 0, &r), 0);
	assert_int_equal(NVME_CC_SHN(nvemu_ctrl_get_cc(ctrl)), NVME_CC_SHN_NORMAL);
	for (i = 0; i < 1000 && NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)) != NVME_CSTS_SHST_CMPLT;
	     i++)
		nvemu_subsys_poll(e->tu->subsys);
	assert_int_equal(NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)), NVME_CSTS_SHST_CMPLT);
	assert_true(nvemu_mi_ep_ccs(e->ep) & NVME_MI_CCS_SHST);
	/* Already shut down: nothing more to do, still Success. */
	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_SHUTDOWN, NVEMU_MI_SHUTDOWN_ABRUPT, 0, &r), 0);
	assert_int_equal(NVME_CC_SHN(nvemu_ctrl_get_cc(ctrl)), NVME_CC_SHN_NORMAL);
	/* The host clears CC.EN and enables again; an abrupt shutdown then sets SHN 10b. */
	nvemu_ctrl_set_cc(ctrl, 0);
	assert_int_equal(NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)), 0);
}

static void shutdown_abrupt(void **state)
{
	struct mi_env *e = *state;
	struct nvemu_ctrl *ctrl = e->tu->ctrl;
	struct mi_resp r;

	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_SHUTDOWN, NVEMU_MI_SHUTDOWN_ABRUPT, 0, &r), 0);
	assert_int_equal(NVME_CC_SHN(nvemu_ctrl_get_cc(ctrl)), NVME_CC_SHN_ABRUPT);
	for (int i = 0;
	     i < 1000 && NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)) != NVME_CSTS_SHST_CMPLT; i++)
		nvemu_subsys_poll(e->tu->subsys);
	assert_int_equal(NVME_CSTS_SHST(nvemu_ctrl_get_csts(ctrl)), NVME_CSTS_SHST_CMPLT);
}

/*
 * NVMe-MI 1.2 5.9/5.10 SES Receive/Send are optional; without enclosure
 * services the endpoint answers Invalid Command Opcode (4.1.2) and does not
 * list them as supported.
 */
static void ses_unsupported(void **state)
{
	struct mi_env *e = *state;
	uint8_t msg[64];
	struct mi_resp r;
	size_t n;

	assert_int_equal(mi_cmd(e, NVEMU_MI_OPC_SES_RECEIVE, 0, 0, &r),
			 NVME_MI_RESP_INVALID_OPCODE);
	assert_int_equal(r.len, 12);
	n = mi_req(msg, NVEMU_MI_OPC_SES_SEND, 0, 4);
	memset(msg + n, 0, 4);
	assert_int_equal(xfer(e, msg, n + 4, &r), 1);
	assert_int_equal(resp_status(&r, NVME_MI_MT_MI), NVME_MI_RESP_INVALID_OPCODE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mic_vector),
		cmocka_unit_test_setup_teardown(drops, setup, teardown),
		cmocka_unit_test_setup_teardown(subsys_info_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(port_info, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_list_and_info, setup, teardown),
		cmocka_unit_test_setup_teardown(pcie_config_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(opt_cmds, setup, teardown),
		cmocka_unit_test_setup_teardown(subsys_health, setup, teardown),
		cmocka_unit_test_setup_teardown(ctrl_health, setup, teardown),
		cmocka_unit_test_setup_teardown(config, setup, teardown),
		cmocka_unit_test_setup_teardown(vpd, setup, teardown),
		cmocka_unit_test_setup_teardown(reset, setup, teardown),
		cmocka_unit_test_setup_teardown(meb_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_cmd, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_abrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(ses_unsupported, setup, teardown),
		cmocka_unit_test_setup_teardown(aem_supported_list, setup, teardown),
		cmocka_unit_test_setup_teardown(aem_enable_list_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(aem_send_retransmit_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(aem_delay_and_ctrl_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(aem_sanitize_failure_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(meb_admin_data, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_suspended, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_log_features, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_ns, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_fw, setup, teardown),
		cmocka_unit_test_setup_teardown(admin_forbidden, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
