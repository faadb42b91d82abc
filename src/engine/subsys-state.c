/* SPDX-License-Identifier: MIT */
/*
 * The subsystem's non-volatile state, kept in its state_file when it has
 * one, so that an nvemud restart is the power cycle a real subsystem goes
 * through: the Sanitize Status log (81h) and sanitize failure mode persist,
 * and a sanitize that was running continues (NVMe Base 2.0, 8.21: once
 * started, a sanitize operation continues across resets and power cycles).
 * It restarts from the beginning when the subsystem next gets a controller,
 * by which time its namespaces are back. The file:
 *
 *   nvemu-subsys 1
 *   sanitize <running 0|1> <failed 0|1> <sstat> <scdw10> <ovrpat> <passes>
 *
 * (the last four in lower-case hex). Saved like the PTPL state (nv-file.h);
 * read back strictly (tests/fuzz/fuzz-subsys-state.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nv-file.h"

#define STATE_MAX_FILE 256

static int parse_line(void *arg, const char *s, unsigned lineno)
{
	struct nvemu_sanitize *san = arg;
	uint64_t running, failed, sstat, scdw10, ovrpat, passes;

	if (lineno == 0)
		return strcmp(s, "nvemu-subsys 1") ? -EINVAL : 0;
	if (strncmp(s, "sanitize ", 9))
		return -EINVAL;
	s += 9;
	if (nvemu_nvfile_u64(&s, 10, 1, &running) || nvemu_nvfile_expect(&s, ' ') ||
	    nvemu_nvfile_u64(&s, 10, 1, &failed) || nvemu_nvfile_expect(&s, ' ') ||
	    nvemu_nvfile_u64(&s, 16, UINT16_MAX, &sstat) || nvemu_nvfile_expect(&s, ' ') ||
	    nvemu_nvfile_u64(&s, 16, UINT32_MAX, &scdw10) || nvemu_nvfile_expect(&s, ' ') ||
	    nvemu_nvfile_u64(&s, 16, UINT32_MAX, &ovrpat) || nvemu_nvfile_expect(&s, ' ') ||
	    nvemu_nvfile_u64(&s, 16, 0x1f, &passes) || *s)
		return -EINVAL;
	/* Only what a sanitize can leave behind: a running one has a start action. */
	if (running && (failed || (sstat & NVME_SANITIZE_SSTAT_STATUS_MASK) !=
					  NVME_SANITIZE_SSTAT_STATUS_IN_PROGESS))
		return -EINVAL;
	if (running) {
		uint8_t act = scdw10 & 7;

		if (act != NVME_SANITIZE_SANACT_START_BLOCK_ERASE &&
		    act != NVME_SANITIZE_SANACT_START_OVERWRITE &&
		    act != NVME_SANITIZE_SANACT_START_CRYPTO_ERASE)
			return -EINVAL;
	}
	san->resume = running;
	san->failed = failed;
	san->sstat = (uint16_t)sstat;
	san->scdw10 = (uint32_t)scdw10;
	san->ovrpat = (uint32_t)ovrpat;
	san->passes = (uint8_t)passes;
	return 0;
}

int nvemu_subsys_state_parse(struct nvemu_sanitize *san, const char *text, size_t len)
{
	struct nvemu_sanitize loaded = {0};
	int ret;

	if (!len)
		return -EINVAL;
	ret = nvemu_nvfile_lines(text, len, 128, parse_line, &loaded);
	if (ret)
		return ret;
	*san = loaded;
	return 0;
}

int nvemu_subsys_state_format(const struct nvemu_sanitize *san, char *buf, size_t size)
{
	bool running = san->running || san->resume;
	int n = snprintf(buf, size, "nvemu-subsys 1\nsanitize %d %d %x %x %x %x\n", running,
			 san->failed, san->sstat, san->scdw10, san->ovrpat, san->passes);

	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

int nvemu_subsys_state_save(struct nvemu_subsys *s)
{
	char buf[STATE_MAX_FILE];
	int n;

	if (!s->state_file)
		return 0;
	n = nvemu_subsys_state_format(&s->san, buf, sizeof(buf));
	if (n < 0)
		return n;
	return nvemu_nvfile_write(s->state_file, buf, (size_t)n);
}

int nvemu_subsys_set_state_file(struct nvemu_subsys *s, const char *path, struct nvemu_error *err)
{
	struct nvemu_sanitize loaded = {0};
	char *text = NULL, *copy;
	size_t n = 0;
	int ret;

	if (s->san.running)
		return nvemu_error_set(err, -EBUSY,
				       "state_file: cannot change while a sanitize is running");
	if (!path) {
		free(s->state_file);
		s->state_file = NULL;
		return 0;
	}
	if (!*path || strlen(path) > 4000)
		return nvemu_error_set(err, -EINVAL, "state_file: must be a path of 1..4000 bytes");
	ret = nvemu_nvfile_read(path, STATE_MAX_FILE, &text, &n);
	if (ret && ret != -ENOENT)
		return nvemu_error_set(err, -EINVAL, "state_file: cannot use %s: %s", path,
				       nvemu_nvfile_strerror(ret));
	if (n && nvemu_subsys_state_parse(&loaded, text, n)) {
		free(text);
		return nvemu_error_set(err, -EINVAL,
				       "state_file: %s is not a saved subsystem state", path);
	}
	free(text);
	copy = strdup(path);
	if (!copy)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	free(s->state_file);
	s->state_file = copy;
	if (n) {
		loaded.job = NULL;
		loaded.running = false;
		s->san = loaded;
		if (loaded.resume)
			s->san.sprog = 0;
	}
	/* The file exists from now on, so what is in it is what a restart finds. */
	ret = nvemu_subsys_state_save(s);
	if (ret)
		return nvemu_error_set(err, ret, "state_file: cannot write %s: %s", path,
				       strerror(-ret));
	return 0;
}

const char *nvemu_subsys_state_file(const struct nvemu_subsys *s)
{
	return s->state_file;
}
