#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: set-up (idempotent), cached kernel build, module build, host tests, then for each
# implementation in $IMPL ("both", "rust" or "c") one VM boot that runs every suite against it, and
# the report. The last line is `N passed, N failed, N skipped` over the gated tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

case ${IMPL:-both} in
both) impls="c rust" ;;
c | rust) impls=$IMPL ;;
*) echo "check.sh: IMPL is both, rust or c" >&2; exit 2 ;;
esac
t0=$(date +%s)
stamp() { printf '[check %4ss] %s\n' $(( $(date +%s) - t0 )) "$*"; }

if [ "$(id -u)" = 0 ]; then
	stamp "set-up"
	tools/setup.sh | grep -v '^\[setup\] done' || true
fi
stamp "kernel"
tools/kernel/build.sh --profile "${KPROFILE:-default}"
kdir=$(tools/kernel/build.sh --profile "${KPROFILE:-default}" --dir)
ksrc=$(tools/kernel/build.sh --src)
stamp "module"
# Clippy runs as part of the build: a lint is a build error (-D warnings). Other warnings
# (objtool's, modpost's) do not stop the build; they fail the style.build_warnings row.
mkdir -p results/raw
make -s module KDIR="$kdir" CLIPPY=1 2>&1 | tee results/module-build.txt
[ "${PIPESTATUS[0]}" = 0 ] || { echo "check.sh: the module did not build" >&2; exit 1; }
# On a debug kernel our suites and clients get the longer per-test harness timeout upstream's do (a
# fail-nth test of ours ran past the default 30 s under KASAN). Always rebuilt (-B, seconds): the
# same binaries serve both kinds of kernel.
harness_cflags=
[ "${KPROFILE:-default}" = default ] || harness_cflags="-include $repo/tools/kernel/slow-harness.h"
make -s -B -C tests/selftests KSRC="$ksrc" KDIR="$kdir" OUT="$repo/tests/selftests/build" \
	EXTRA_CFLAGS="$harness_cflags"
make -s -B -C tests/clients KSRC="$ksrc" KDIR="$kdir" OUT="$repo/tests/clients/build" \
	EXTRA_CFLAGS="$harness_cflags"
if [ -f tests/clients/rustvmm/Cargo.toml ]; then
	(cd tests/clients/rustvmm && cargo build --release --locked --quiet)
fi
(cd tools/fuzz && cargo build --release --quiet)

results=$repo/results
rm -rf "$results/raw"
mkdir -p "$results/raw"

stamp "style"
{
	echo "TAP version 13"
	if grep -qiE 'warning|error' "$results/module-build.txt"; then
		echo "not ok 2 style.build_warnings # $(grep -m1 -iE 'warning|error' "$results/module-build.txt")"
	else
		echo "ok 2 style.build_warnings"
	fi
	if rustfmt --edition 2021 --config-path "$ksrc/.rustfmt.toml" --check src/iommufd_rs.rs tests/host/src/lib.rs >"$results/raw/rustfmt.txt" 2>&1; then
		echo "ok 1 style.rustfmt"
	else
		echo "not ok 1 style.rustfmt # run: make fmt"
	fi
} >"$results/raw/style.tap"

stamp "host tests"
(cd tests/host && timeout 900 cargo test --quiet -- --test-threads=2 --format=pretty 2>&1) >"$results/raw/host-tests.txt" || true
grep -E '^test result:' "$results/raw/host-tests.txt" | head -3 || true

# Limits per kernel profile. A debug kernel under TCG is 5-50 times slower than the default one;
# there the fuzzer gets its full call count (FUZZ_CALLS) instead of the one-minute cap.
if [ "${KPROFILE:-default}" = default ]; then
	vm_timeout=${VM_TIMEOUT:-3000} suite_timeout=${SUITE_TIMEOUT:-600} stuck_grace=60
	fuzz_calls=${FUZZ_CALLS:-200000} fuzz_secs=${FUZZ_SECS:-60}
else
	vm_timeout=${VM_TIMEOUT:-14400} suite_timeout=${SUITE_TIMEOUT:-2400} stuck_grace=900
	# A million calls: 3808 s under KASAN and TCG (263 calls/s; 2026-11-22, tree dfc1500), well inside the cap.
	fuzz_calls=${FUZZ_CALLS:-1000000} fuzz_secs=${FUZZ_SECS:-6600}
fi
# One boot per implementation, each with its own console log: a guest that dies (a crash, or the
# emulator's stall, see Documentation/testing.rst) takes only that implementation's results.
# X86=0 leaves these out (make check-nested).
columns=$impls
[ "${X86:-1}" = 1 ] || columns=
for impl in $columns; do
	stamp "VM: $impl (kernel profile ${KPROFILE:-default})"
	tools/vm/run.sh --timeout "$vm_timeout" --log "$results/raw/console-$impl.log" --rwdir "$results/raw" -- \
		env IMPLS="$impl" OUT="$results/raw" KDIR="$kdir" REPO="$repo" SUITE_TIMEOUT="$suite_timeout" \
		STUCK_GRACE="$stuck_grace" FUZZ_CALLS="$fuzz_calls" FUZZ_SECS="$fuzz_secs" tools/vm/guest-tests.sh \
		| grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
done

# The kernel without VFIO's own container (tools/kernel/nocontainer.config): /dev/vfio/vfio comes
# from the loaded iommufd, so the clients' type1 paths run through each module's compat layer with
# no vfio_iommu_type1 anywhere. One boot per implementation, the clients only; our module is built
# for that kernel in a copy of the tree (results/raw/nocontainer-build), which leaves ./iommufd.ko
# alone. The kernel starts from the default build's objects (a few minutes, not a cold build).
# NOCONTAINER=0 leaves this out.
labels=
if [ "${KPROFILE:-default}" = default ] && [ "${NOCONTAINER:-1}" = 1 ]; then
	stamp "kernel: nocontainer profile"
	tools/kernel/build.sh --profile nocontainer
	nc_kdir=$(tools/kernel/build.sh --profile nocontainer --dir)
	nc_tree=$results/raw/nocontainer-build
	tools/build-production.sh "$nc_tree" CLIPPY=1 >"$results/raw/module-build-nocontainer.txt" 2>&1 ||
		{ echo "check.sh: the module did not build for the nocontainer kernel" >&2; tail -20 "$results/raw/module-build-nocontainer.txt" >&2; }
	# That kernel has no CONFIG_IOMMUFD_TEST, so the module built for it is a production build: it
	# must carry none of the selftest (no mock IOMMU, no IOMMU_TEST_CMD), neither in its symbols
	# nor in its strings. The same search must find them in the test build's ./iommufd.ko, or it
	# proves nothing.
	selftest_marks='selftest|mock|iommufd_test|test_ioctl'
	marks() { { nm "$1"; strings -a "$1"; } 2>/dev/null | grep -iE "$selftest_marks" | sort -u || true; }
	nc_ko=$nc_tree/iommufd.ko
	{
		echo "TAP version 13"
		if [ ! -f "$nc_ko" ]; then
			echo "not ok 1 production.no_selftest # the module did not build for the nocontainer kernel"
		elif grep -q '^CONFIG_IOMMUFD_TEST=' "$nc_kdir/.config"; then
			echo "not ok 1 production.no_selftest # the nocontainer kernel has CONFIG_IOMMUFD_TEST"
		elif [ -z "$(marks iommufd.ko)" ]; then
			echo "not ok 1 production.no_selftest # '$selftest_marks' finds nothing in the test build's iommufd.ko either"
		else
			hits=$(marks "$nc_ko" | sed -n '1,3p' | tr '\n' ' ')
			if [ -n "$hits" ]; then
				echo "not ok 1 production.no_selftest # $hits"
			else
				echo "ok 1 production.no_selftest"
			fi
		fi
	} >"$results/raw/production.tap"
	grep -E '^(not )?ok' "$results/raw/production.tap" || true
	for impl in $impls; do
		stamp "VM: $impl (kernel profile nocontainer, clients)"
		KPROFILE=nocontainer KDIR="$nc_kdir" tools/vm/run.sh --timeout "$vm_timeout" \
			--log "$results/raw/console-$impl-nocontainer.log" --rwdir "$results/raw" -- \
			env IMPLS="$impl" LABEL=nocontainer SUITES=clients OUT="$results/raw" KDIR="$nc_kdir" \
			REPO="$repo" RUST_KO="$nc_tree/iommufd.ko" IOMMUFD_PROVIDES_VFIO_CONTAINER=1 \
			SUITE_TIMEOUT="$suite_timeout" STUCK_GRACE="$stuck_grace" tools/vm/guest-tests.sh \
			| grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
		labels+=" $impl-nocontainer"
	done
fi

# The other IOMMUs QEMU emulates on x86 (tools/vm/run.sh VM_IOMMU): VT-d with first-stage page
# tables (another path of the VT-d driver) and a virtio-iommu (paging domains only; no interrupt
# remapping, so both modules and VFIO's type1 get allow_unsafe_interrupts there). One boot per
# implementation, the clients only, on the default kernel. X86_MATRIX=0 leaves this out.
if [ "${KPROFILE:-default}" = default ] && [ "${X86_MATRIX:-1}" = 1 ]; then
	for iommu in vtd-fl virtio; do
		label=${iommu//-/}
		unsafe=0
		[ "$iommu" != virtio ] || unsafe=1
		for impl in $impls; do
			stamp "VM: $impl ($iommu, clients)"
			VM_IOMMU=$iommu tools/vm/run.sh --timeout "$vm_timeout" \
				--log "$results/raw/console-$impl-$label.log" --rwdir "$results/raw" -- \
				env IMPLS="$impl" LABEL="$label" SUITES=clients OUT="$results/raw" KDIR="$kdir" \
				UNSAFE_INTERRUPTS="$unsafe" REPO="$repo" SUITE_TIMEOUT="$suite_timeout" STUCK_GRACE="$stuck_grace" tools/vm/guest-tests.sh \
				| grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
			labels+=" $impl-$label"
		done
	done
fi

# Ours in tree (tools/intree.sh): the pinned tree with ours as CONFIG_IOMMUFD's implementation,
# built as a module and built in, each booted for every suite (tests/intree/run.sh; the first
# build is a cold one, about as long as the default kernel's, the second starts from its objects).
# INTREE=0 leaves this out.
if [ "${KPROFILE:-default}" = default ] && [ "${INTREE:-1}" = 1 ]; then
	stamp "in tree: ours as CONFIG_IOMMUFD=m and =y"
	tests/intree/run.sh "$results/raw" || true
	labels+=" rust-intree rust-builtin"
fi

# arm64: QEMU's virt machine with an SMMUv3 and a GICv3 ITS (tools/vm/run-arm64.sh), every suite
# against each implementation, the arm64 kernel, module and user programs cross-built
# (tools/build-arm64.sh; the kernel cached like the x86 one). Columns c-smmuv3 and rust-smmuv3.
# ARM64=0 leaves this out.
if [ "${KPROFILE:-default}" = default ] && [ "${ARM64:-1}" = 1 ]; then
	stamp "arm64: kernel, module and user programs (cross-built)"
	if tools/build-arm64.sh CLIPPY=1 >"$results/raw/build-arm64.txt" 2>&1; then
		a_kdir=$(tools/kernel/build.sh --profile arm64 --dir)
		# ARM64_PLAIN=0 leaves out the SMMUv3 and virtio-iommu boots on Debian's QEMU (make
		# check-nested).
		plain=$impls
		[ "${ARM64_PLAIN:-1}" = 1 ] || plain=
		for impl in $plain; do
			stamp "VM: $impl (arm64, SMMUv3)"
			KPROFILE=arm64 tools/vm/run.sh --timeout "$vm_timeout" \
				--log "$results/raw/console-$impl-smmuv3.log" --rwdir "$results/raw" -- \
				env IMPLS="$impl" LABEL=smmuv3 OUT="$results/raw" KDIR="$a_kdir" REPO="$repo" \
				RUST_KO="$repo/iommufd-arm64.ko" SUITE_TIMEOUT="$suite_timeout" STUCK_GRACE="$stuck_grace" \
				FUZZ_CALLS="$fuzz_calls" FUZZ_SECS="$fuzz_secs" tools/vm/guest-tests.sh \
				| grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
			labels+=" $impl-smmuv3"
		done
		# The same guest with a virtio-iommu instead of the SMMUv3 (paging domains only): the
		# clients, columns c-armvirtio and rust-armvirtio.
		for impl in $plain; do
			stamp "VM: $impl (arm64, virtio-iommu, clients)"
			ARM64_IOMMU=virtio KPROFILE=arm64 tools/vm/run.sh --timeout "$vm_timeout" \
				--log "$results/raw/console-$impl-armvirtio.log" --rwdir "$results/raw" -- \
				env IMPLS="$impl" LABEL=armvirtio SUITES=clients OUT="$results/raw" KDIR="$a_kdir" \
				REPO="$repo" RUST_KO="$repo/iommufd-arm64.ko" SUITE_TIMEOUT="$suite_timeout" \
				STUCK_GRACE="$stuck_grace" tools/vm/guest-tests.sh \
				| grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
			labels+=" $impl-armvirtio"
		done
		# The nesting rig: the same guest on a QEMU that advertises SMMUv3 FWB
		# (tools/qemu/build.sh, built once and cached), where the 7.2 driver offers its vIOMMU.
		# The clients (smmu_nested plays the guest's SMMU driver through both stages), our viommu
		# suite and upstream's iommufd (its vIOMMU tests among them). Columns c-nested and
		# rust-nested. NESTED=0 leaves this out.
		if [ "${NESTED:-1}" = 1 ]; then
			stamp "arm64 nesting rig: QEMU with SMMUv3 FWB (tools/qemu/build.sh)"
			if tools/qemu/build.sh >"$results/raw/build-qemu.txt" 2>&1; then
				rig=$(tools/qemu/build.sh --path)
				for impl in $impls; do
					stamp "VM: $impl (arm64, SMMUv3 with FWB: nesting)"
					QEMU_AARCH64=$rig KPROFILE=arm64 tools/vm/run.sh --timeout "$vm_timeout" \
						--log "$results/raw/console-$impl-nested.log" --rwdir "$results/raw" -- \
						env IMPLS="$impl" LABEL=nested SUITES="clients viommu iommufd" OUT="$results/raw" \
						KDIR="$a_kdir" REPO="$repo" RUST_KO="$repo/iommufd-arm64.ko" \
						SUITE_TIMEOUT="$suite_timeout" STUCK_GRACE="$stuck_grace" tools/vm/guest-tests.sh \
						| grep --line-buffered -E '^\[guest\]|^\[vm\]' || true
					labels+=" $impl-nested"
				done
			else
				echo "check.sh: the nesting rig's QEMU did not build:" >&2
				tail -20 "$results/raw/build-qemu.txt" >&2
				for impl in $impls; do labels+=" $impl-nested"; done
			fi
		fi
	else
		echo "check.sh: the arm64 build failed:" >&2
		tail -20 "$results/raw/build-arm64.txt" >&2
		for impl in $plain; do labels+=" $impl-smmuv3 $impl-armvirtio"; done
		if [ "${NESTED:-1}" = 1 ]; then
			for impl in $impls; do labels+=" $impl-nested"; done
		fi
	fi
fi

# The install paths (make install/uninstall, DKMS) on the default kernel: tests/install/run.sh.
# INSTALL_TESTS=0 leaves this out.
if [ "${KPROFILE:-default}" = default ] && [ "${INSTALL_TESTS:-1}" = 1 ]; then
	stamp "install paths: make install, DKMS (one boot)"
	tests/install/run.sh "$results/raw" "$kdir" || true
fi

# The runner's self-test is about the runner, not the kernel: on a debug profile it boots the
# default kernel when that one is built (three slow debug boots would add most of an hour).
stamp "VM runner self-test (panic, hang, exit status)"
runner_profile=${KPROFILE:-default}
[ -f "$(tools/kernel/build.sh --profile default --dir)/.iommufd-rs-built" ] && runner_profile=default
KPROFILE=$runner_profile KDIR= tools/vm/runner-selftest.sh "$results/raw/runner" >"$results/raw/runner.tap" 2>&1 || true
grep -E '^(not )?ok' "$results/raw/runner.tap" || true

stamp "report"
set +e
python3 tools/report.py "$results/raw" "$repo" "$(echo $columns$labels)" | tee "$results/raw/report.txt" | sed '$d'
rc=${PIPESTATUS[0]}
set -e
stamp "done in $(( $(date +%s) - t0 ))s"
tail -n 1 "$results/raw/report.txt"
exit "$rc"
