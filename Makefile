# Thin wrapper around meson/ninja. `make run` builds and starts nvemud with
# its embedded default configuration; `make check` runs every test suite;
# `make fuzz-long` runs every fuzz target for FUZZ_SECONDS each.
BUILD ?= build
FUZZ_SECONDS ?= 300

.PHONY: all deps build run check check-tsan test install clean format fuzz-build fuzz-long

all: build

deps:
	./tools/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/src/daemon/nvemud

check: deps
	./tests/run-all.sh

test: check

# The libFuzzer build tests/run-all.sh uses (clang, ASan+UBSan, instrumented library).
build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all' \
		-Dc_link_args=-fsanitize=fuzzer-no-link

fuzz-build: deps build-fuzz/build.ninja
	ninja -C build-fuzz

# A longer campaign (docs/fuzzing.md): every target, FUZZ_SECONDS each.
fuzz-long: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/fuzz/fuzz-long.sh build-fuzz

install: build
	meson install -C $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# ThreadSanitizer on the reactor threads (tests/run-all.sh runs the same).
build-tsan/build.ninja:
	CC=clang meson setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false

check-tsan: deps build-tsan/build.ninja
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 meson test -C build-tsan \
		--timeout-multiplier 3 --suite tcp-reactors

clean:
	rm -rf build build-asan build-fuzz build-tsan
