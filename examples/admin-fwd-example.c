// SPDX-License-Identifier: MIT
/*
 * A small admin command forwarder for nvemud (docs/admin-forwarding.md).
 *
 *   admin-fwd-example SOCKET [--model-number MN] [--mode MODE]
 *
 * Listens on SOCKET; nvemud connects when a controller created with
 * admin_cmd_fwd_socket=SOCKET forwards its first command. Answers:
 *   Identify Controller (CNS 1): nvemu's own page with the Model Number
 *     replaced by MN (default "nvemu forwarded");
 *   other Identify: nvemu's own page unchanged (its error, if it had one);
 *   Set Features: success, DW0 0 (the application owns the feature);
 * and prints one line per command on stdout. MODE, for tests of nvemud's
 * side: "answer" (the default), "silent" (never answers), "garbage" (a
 * reply with a bad magic), "badlen" (an Identify reply of the wrong
 * length), "fallback" (asks nvemu to answer every command).
 */
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nvemu/admin-fwd.h>

#define OPC_IDENTIFY	 0x06
#define OPC_SET_FEATURES 0x09
#define ID_MN_OFFSET	 24 /* Identify Controller: Model Number, bytes 63:24 */
#define ID_MN_LEN	 40

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(fd, (char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int reply(int fd, uint32_t tag, uint16_t status, uint16_t flags, uint32_t dw0,
		 const void *data, uint32_t len, const char *mode)
{
	struct nvemu_fwd_hdr h = {
		.magic = htole32(NVEMU_FWD_MAGIC),
		.version = htole16(NVEMU_FWD_VERSION),
		.type = htole16(NVEMU_FWD_REPLY),
		.tag = htole32(tag),
	};
	struct nvemu_fwd_reply r = {
		.status = htole16(status),
		.flags = htole16(flags),
		.dw0 = htole32(dw0),
		.data_len = htole32(len),
	};

	if (!strcmp(mode, "garbage"))
		h.magic = htole32(0xdeadbeef);
	if (!strcmp(mode, "badlen") && len) {
		len = 100; /* an Identify reply must carry 4096 bytes */
		r.data_len = htole32(len);
	}
	h.len = htole32((uint32_t)sizeof(r) + len);
	if (write_full(fd, &h, sizeof(h)) || write_full(fd, &r, sizeof(r)))
		return -1;
	return len ? write_full(fd, data, len) : 0;
}

/* One connection: requests until nvemud closes it. */
static void serve(int fd, const char *mn, const char *mode)
{
	static uint8_t data[NVEMU_FWD_DATA_MAX];

	for (;;) {
		struct nvemu_fwd_hdr h;
		struct nvemu_fwd_request r;
		uint32_t tag, dlen, cdw10, cdw11;
		uint8_t opc;
		char name[NVEMU_FWD_CTRL_NAME + 1];
		int ret = 0;

		if (read_full(fd, &h, sizeof(h)))
			return;
		if (le32toh(h.magic) != NVEMU_FWD_MAGIC || le16toh(h.type) != NVEMU_FWD_REQUEST ||
		    le32toh(h.len) < sizeof(r) || le32toh(h.len) > sizeof(r) + NVEMU_FWD_DATA_MAX) {
			fprintf(stderr, "admin-fwd-example: not a request, closing\n");
			return;
		}
		if (read_full(fd, &r, sizeof(r)))
			return;
		dlen = le32toh(r.data_len);
		if (dlen != le32toh(h.len) - sizeof(r) || read_full(fd, data, dlen))
			return;
		tag = le32toh(h.tag);
		opc = r.sqe[0];
		memcpy(&cdw10, r.sqe + 40, 4);
		memcpy(&cdw11, r.sqe + 44, 4);
		cdw10 = le32toh(cdw10);
		cdw11 = le32toh(cdw11);
		memcpy(name, r.ctrl, NVEMU_FWD_CTRL_NAME);
		name[NVEMU_FWD_CTRL_NAME] = '\0';

		if (opc == OPC_IDENTIFY) {
			printf("identify ctrl=%s cntlid=%u cns=0x%x local_status=0x%x\n", name,
			       le16toh(r.cntlid), cdw10 & 0xff, le16toh(r.local_status));
		} else {
			printf("set-features ctrl=%s cntlid=%u fid=0x%x cdw11=0x%x data=%u\n", name,
			       le16toh(r.cntlid), cdw10 & 0xff, cdw11, dlen);
		}
		fflush(stdout);
		if (!strcmp(mode, "silent"))
			continue;
		if (!strcmp(mode, "fallback")) {
			ret = reply(fd, tag, 0, NVEMU_FWD_F_FALLBACK, 0, NULL, 0, mode);
		} else if (opc == OPC_IDENTIFY && le16toh(r.local_status)) {
			ret = reply(fd, tag, le16toh(r.local_status), 0, 0, NULL, 0, mode);
		} else if (opc == OPC_IDENTIFY && dlen == NVEMU_FWD_DATA_MAX) {
			if ((cdw10 & 0xff) == 1) {
				size_t n = strlen(mn) < ID_MN_LEN ? strlen(mn) : ID_MN_LEN;

				memset(data + ID_MN_OFFSET, ' ', ID_MN_LEN);
				memcpy(data + ID_MN_OFFSET, mn, n);
			}
			ret = reply(fd, tag, 0, 0, 0, data, NVEMU_FWD_DATA_MAX, mode);
		} else if (opc == OPC_SET_FEATURES) {
			ret = reply(fd, tag, 0, 0, 0, NULL, 0, mode);
		} else {
			ret = reply(fd, tag, 0, NVEMU_FWD_F_FALLBACK, 0, NULL, 0, mode);
		}
		if (ret)
			return;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *mn = "nvemu forwarded", *mode = "answer";
	int lfd;

	if (argc < 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: %s SOCKET [--model-number MN] [--mode answer|silent|garbage|badlen|fallback]\n",
			argv[0]);
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--model-number"))
			mn = argv[i + 1];
		else if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else {
			fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[i]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4)) {
		perror(argv[1]);
		return 1;
	}
	printf("listening on %s (mode %s)\n", argv[1], mode);
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		serve(fd, mn, mode);
		close(fd);
	}
}
