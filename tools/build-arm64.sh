#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Everything the arm64 guest runs, cross-built beside the x86 builds (tools/vm/run-arm64.sh binds
# them over the x86 paths in the guest): the arm64 kernel (cached, tools/kernel/build.sh --profile
# arm64) with upstream's iommu selftests, iommufd-arm64.ko (built in build/arm64/module), our
# selftests and clients (static, OUT=build-arm64), the fuzzer and the rust-vmm client
# (target aarch64-unknown-linux-gnu, static). Extra arguments go to `make module` (CLIPPY=1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
tools/kernel/build.sh --profile arm64
kdir=$(tools/kernel/build.sh --profile arm64 --dir)
ksrc=$(tools/kernel/build.sh --src)
sysroot=$(tools/vm/arm64-root.sh)/sysroot

tools/build-copy.sh arm64 "$repo/build/arm64/module" "$@"
cp "$repo/build/arm64/module/iommufd.ko" "$repo/iommufd-arm64.ko"

common=(CC=aarch64-linux-gnu-gcc KSRC="$ksrc" KDIR="$kdir")
make -s -C tests/selftests "${common[@]}" OUT="$PWD/tests/selftests/build-arm64" \
	LDLIBS="-static -L$sysroot/usr/lib/aarch64-linux-gnu -lcap -lpthread" EXTRA_CFLAGS="-I$sysroot/usr/include"
# The clients' rule links with CFLAGS alone.
make -s -C tests/clients "${common[@]}" OUT="$PWD/tests/clients/build-arm64" EXTRA_CFLAGS=-static

# Rust user programs: static glibc binaries, linked by the cross gcc.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
for crate in tools/fuzz tests/clients/rustvmm; do
	(cd "$crate" && cargo build -q --release --target aarch64-unknown-linux-gnu)
done
echo "[arm64] built: iommufd-arm64.ko, tests/{selftests,clients}/build-arm64, target/aarch64-unknown-linux-gnu" >&2
