# SPDX-License-Identifier: GPL-2.0
# iommufd-rs. The two commands a user needs:
#   make demo    boot the test VM, load our iommufd.ko, show /dev/iommu answering ioctls
#   make check   build everything (cached) and run every test; last line `N passed, N failed`
#
# Other targets: bench (C vs Rust timings, results/bench.tsv), setup (install the toolchain; root), kernel (build/reuse the test kernel),
# module (build iommufd.ko against KDIR; CLIPPY=1 to lint), module-production (the same for the
# kernel without CONFIG_IOMMUFD_TEST, in results/raw/nocontainer-build; build both before a commit), fmt (rustfmt), host-test (cargo test),
# install and uninstall (into the module tree, for modprobe: see below), check-nested (the arm64
# nesting rig alone: QEMU with SMMUv3 FWB, tools/qemu/build.sh), clean.
# IMPL=both|rust|c selects the implementation(s) check runs against.

export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib
# KPROFILE=debug selects the hardening kernel (tools/kernel/debug.config).
KPROFILE ?= default
export KPROFILE
KDIR ?= $(shell tools/kernel/build.sh --profile $(KPROFILE) --dir)
# The source tree behind KDIR: the pinned one for the test kernel, else KDIR's `source` link (an
# O= build) or KDIR itself.
KSRC ?= $(if $(filter file,$(origin KDIR)),$(shell tools/kernel/build.sh --src),$(if $(wildcard $(KDIR)/source/Makefile),$(KDIR)/source,$(KDIR)))
IMPL ?= both

all: module

setup:
	tools/setup.sh

kernel:
	tools/kernel/build.sh --profile $(KPROFILE)

module:
	@test -f $(KDIR)/Module.symvers || { echo "no kernel at $(KDIR): run 'make kernel'"; exit 1; }
	tools/gen-bindings.sh $(KDIR) $(KSRC)
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(shell tools/kernel/build.sh --profile $(KPROFILE) --make-vars) modules

module-production:
	tools/build-production.sh $(CURDIR)/results/raw/nocontainer-build $(if $(CLIPPY),CLIPPY=$(CLIPPY))

fmt:
	rustfmt --edition 2021 --config-path $(KSRC)/.rustfmt.toml src/iommufd_rs.rs tests/host/src/lib.rs

host-test:
	cd tests/host && cargo test

check:
	IMPL=$(IMPL) tools/check.sh

# make install / make uninstall: ours into (out of) updates/ of the kernel's module tree, where
# depmod prefers it to the in-tree C module, so `modprobe iommufd` (and `modprobe vfio-pci`, which
# needs it) load ours. The kernel is the running one (its build link) unless KDIR is given; build
# the module for it first (`make module KDIR=...`). INSTALL_MOD_PATH installs under another root.
INSTALL_KDIR = $(if $(filter file,$(origin KDIR)),/lib/modules/$(shell uname -r)/build,$(KDIR))

install:
	tools/install.sh install "$(INSTALL_KDIR)" "$(INSTALL_MOD_PATH)"

uninstall:
	tools/install.sh uninstall "$(INSTALL_KDIR)" "$(INSTALL_MOD_PATH)"

demo:
	tools/demo.sh

bench:
	tools/bench.sh

# The whole suite on a debug kernel; any splat in dmesg, or kmemleak report after an unload, fails
# it. Default: KASAN, lockdep, kmemleak, atomic-sleep checks, Rust debug assertions, failslab
# (tools/kernel/debug.config, clang build); a run of ours took 6545 s under TCG (2026-11-22, tree dfc1500).
# HARD_PROFILE=lockdep leaves KASAN out (gcc build) and takes about a third of that.
# Against ours only (HARD_IMPL=both adds the C module, doubling the time).
HARD_PROFILE ?= debug
HARD_IMPL ?= rust
# The arm64 nesting rig alone (tools/qemu/build.sh: QEMU with SMMUv3 FWB): what make check's
# arm64 block ends with, without the other platforms.
check-nested:
	IMPL=$(IMPL) X86=0 X86_MATRIX=0 NOCONTAINER=0 INTREE=0 INSTALL_TESTS=0 ARM64_PLAIN=0 tools/check.sh

check-hard:
	$(MAKE) check KPROFILE=$(HARD_PROFILE) IMPL=$(HARD_IMPL)

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf src/ffi/generated tests/selftests/build results

.PHONY: all setup kernel module module-production fmt host-test check check-nested check-hard demo bench install uninstall clean
