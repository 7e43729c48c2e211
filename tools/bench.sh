#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: one VM boot, the C module and ours alternated ROUNDS times (A B A B ...), then the
# median per benchmark and implementation and the ratio Rust/C: results/bench.tsv, results/bench.svg.
# Absolute times under TCG mean little; the ratio within one run is the figure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
export VM_QEMU_EXTRA
[ "$(id -u)" = 0 ] && tools/setup.sh >/dev/null
tools/kernel/build.sh --profile "${KPROFILE:-default}"
kdir=$(tools/kernel/build.sh --profile "${KPROFILE:-default}" --dir)
make -s module KDIR="$kdir"
mkdir -p tools/bench/build results/raw
ksrc=$(tools/kernel/build.sh --src)
cc -Wall -O2 -isystem "$kdir/usr/include" -I"$ksrc/drivers/iommu/iommufd" \
	-o tools/bench/build/iommufd_bench tools/bench/iommufd_bench.c
# Instruction-counted TCG (-icount shift=0): guest time advances one ns per instruction, so a
# run is repeatable to well under 1% and a 10% difference cannot hide in timer noise.
VM_QEMU_EXTRA=${VM_QEMU_EXTRA:--icount shift=0,sleep=off} \
tools/vm/run.sh --timeout "${VM_TIMEOUT:-2400}" --log results/raw/bench-console.log --rwdir results/raw -- \
	env OUT="$repo/results/raw" REPO="$repo" ROUNDS="${ROUNDS:-5}" SMALL_MB="${SMALL_MB:-64}" \
	tools/bench/guest-bench.sh | grep --line-buffered '^\[guest\]' || true
python3 tools/bench_report.py results/raw/bench.raw results/bench.tsv results/bench.svg
