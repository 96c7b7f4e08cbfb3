# Lifeboat. `make demo` and `make test` each do their own set-up on a fresh Debian machine.

SHELL := /bin/bash
TARGET := x86_64-unknown-linux-musl
RELEASE := target/$(TARGET)/release
BUILD := build
export CC_x86_64_unknown_linux_musl := musl-gcc

.PHONY: all setup build kernel signed test unit-test root-test qemu-test lint fmt bench demo dist clean

all: build

# Everything a fresh Debian machine needs: apt packages, the musl target. Idempotent.
setup:
	@bash scripts/setup.sh

# Static binaries: lifeboat first, then lifeboat-init.
build: setup
	cargo build --release --locked --target $(TARGET) -p lifeboat -p lifeboat-init
	@file $(RELEASE)/lifeboat $(RELEASE)/lifeboat-init | sed 's/, BuildID[^,]*//'

# Debian's current cloud kernel and its modules, unpacked (never installed) under build/kernel;
# the generic one (real-hardware NIC, USB and storage drivers) under build/kernel-generic, for the
# disaster story's image on an e1000e NIC with its key on a USB stick. Each fetched once.
kernel: setup
	@bash scripts/fetch-kernel.sh $(BUILD)/kernel
	@bash scripts/fetch-kernel.sh --generic $(BUILD)/kernel-generic

# Debian's signed shim, MokManager and GRUB (gcdx64, grubnetx64), unpacked (never installed)
# under build/signed for `mkrescue --secure-boot` and its tests.
signed: setup
	@bash scripts/fetch-signed.sh $(BUILD)/signed

# Every shell file: the tests, their libraries, the scripts, CI's entry point.
SHELL_FILES = $(shell find tests scripts dist -name '*.sh' -o -name '*.bash' | LC_ALL=C sort) \
	scripts/host/initramfs-init .ci/run

lint: setup
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	shellcheck -x $(SHELL_FILES)

# The kernel and the signed boot loaders too: the module-tree, whole-image and Secure Boot tests
# need them (under CI=true a test whose tool or kernel is missing fails instead of skipping).
unit-test: setup kernel signed
	cargo test --locked --workspace

# Root tests on loop devices and images; QEMU boots under TCG.
root-test: build
	bash tests/run-root-tests.sh

qemu-test: build kernel signed
	bash tests/run-qemu-tests.sh

test: lint unit-test root-test qemu-test

# Packages: build/dist/lifeboat_VERSION-1_amd64.deb and lifeboat-VERSION-1.x86_64.rpm (static
# binaries, systemd units, config example, man pages, completions; dist/build.sh).
dist: build
	bash dist/build.sh $(RELEASE) $(BUILD)/dist

bench: build
	bash scripts/bench.sh

demo: build kernel
	bash scripts/demo.sh

clean:
	cargo clean
	rm -rf $(BUILD)
