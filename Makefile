# Thin wrapper around meson/ninja. `make run` builds and starts nvemud with
# its embedded default configuration; `make check` runs every test suite.
BUILD ?= build

.PHONY: all deps build run check test install clean format

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

install: build
	meson install -C $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
