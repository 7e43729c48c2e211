#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boots the arm64 test kernel (tools/kernel/build.sh --profile arm64) under QEMU's virt machine
# with an emulated SMMUv3 and a GICv3 ITS, the edu DMA device on the root bus and two more that
# share an IOMMU group, runs one command in the guest and returns its exit status.
# Same interface as tools/vm/run.sh, which hands KPROFILE=arm64 runs here:
#
#   run-arm64.sh [--timeout SECONDS] [--log FILE] [--rwdir DIR]... -- COMMAND [ARGS...]
#
# The guest's root is the busybox initramfs of tools/vm/arm64-root.sh; the repo and the cache
# (the kernel build tree, its modules and its selftests) come in read-only over 9p at the host's
# paths, each --rwdir read-write. The repo's arm64 builds sit beside the x86 ones (OUT=build-arm64,
# target/aarch64-unknown-linux-gnu) and are bound over the x86 paths in the guest before the
# command runs, so guest scripts name the same paths on both architectures.
#
# VM_QEMU_EXTRA adds QEMU options; ARM64_IOMMU=smmuv3 (default) or virtio (-device
# virtio-iommu-pci instead of the SMMU) picks the IOMMU; QEMU_AARCH64 names another
# qemu-system-aarch64 (the nesting rig's, tools/qemu/build.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${IOMMUFD_RS_CACHE:-$HOME/.cache/iommufd-rs}
kdir=${KDIR:-$("$repo/tools/kernel/build.sh" --profile arm64 --dir)}
timeout=${VM_TIMEOUT:-600}
log=
rwdirs=()
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--rwdir) rwdirs+=("$(cd "$2" && pwd)"); shift 2 ;;
	--) shift; break ;;
	*) echo "run-arm64.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ $# -gt 0 ] || { echo "run-arm64.sh: no command" >&2; exit 2; }
image=$kdir/arch/arm64/boot/Image
[ -f "$image" ] || { echo "run-arm64.sh: no arm64 kernel in $kdir (make kernel-arm64)" >&2; exit 2; }
[ -n "$log" ] || log=$(mktemp /tmp/iommufd-rs-vm-arm64.XXXXXX.log)
initramfs=$("$here/arm64-root.sh")/initramfs.cpio.gz

run=$(mktemp -d /tmp/iommufd-rs-arm64-run.XXXXXX)
trap 'rm -rf "$run"' EXIT
# The command, as the guest's init runs it: the x86 builds' paths bound to the arm64 ones, then
# the command itself in the repo.
{
	echo "set -u"
	echo "export IOMMUFD_RS_ARCH=arm64 PATH=/usr/sbin:/usr/bin:/sbin:/bin"
	for pair in tests/selftests/build:tests/selftests/build-arm64 tests/clients/build:tests/clients/build-arm64 \
		tools/fuzz/target/release:tools/fuzz/target/aarch64-unknown-linux-gnu/release \
		tests/clients/rustvmm/target/release:tests/clients/rustvmm/target/aarch64-unknown-linux-gnu/release; do
		x86=$repo/${pair%%:*} arm=$repo/${pair#*:}
		printf '[ -d %q ] && [ -d %q ] && mount --bind %q %q\n' "$arm" "$x86" "$arm" "$x86"
	done
	[ -f "$repo/iommufd-arm64.ko" ] && printf 'mount --bind %q %q 2>/dev/null || true\n' "$repo/iommufd-arm64.ko" "$repo/iommufd.ko"
	printf 'cd %q\n' "$repo"
	printf '%q ' "$@"
	echo
} >"$run/cmd"

shares=("repo:$repo" "cache:$cache" "run-rw:/run/iommufd-rs")
virtfs=(-virtfs "local,path=$repo,mount_tag=repo,security_model=none,readonly=on"
	-virtfs "local,path=$cache,mount_tag=cache,security_model=none,readonly=on"
	-virtfs "local,path=$run,mount_tag=run-rw,security_model=none")
i=0
for d in "${rwdirs[@]}"; do
	i=$((i + 1))
	shares+=("rw$i-rw:$d")
	virtfs+=(-virtfs "local,path=$d,mount_tag=rw$i-rw,security_model=none")
done
append="console=ttyAMA0 panic=-1 oops=panic iommu.strict=1 log_buf_len=32M"
append+=" hung_task_panic=1 sysctl.kernel.softlockup_panic=1 watchdog_thresh=60"
append+=" iommufd_rs.modules=$kdir/modroot/lib/modules iommufd_rs.cwd=$repo"
for s in "${shares[@]}"; do append+=" iommufd_rs.share=$s"; done
append+=" ${VM_APPEND:-}"

machine="virt,gic-version=3"
# The group pair: two functions of one slot, a multifunction device without ACS, so one IOMMU
# group. (Behind a conventional PCI bridge, as on x86, their requester IDs alias to the bridge's,
# which the SMMUv3 driver does not support: "Aliasing StreamID ... unsupported".)
devices=(-device edu -device edu,addr=07.0,multifunction=on -device edu,addr=07.1)
case ${ARM64_IOMMU:-smmuv3} in
smmuv3) machine+=",iommu=smmuv3" ;;
virtio) devices=(-device virtio-iommu-pci "${devices[@]}") ;;
*) echo "run-arm64.sh: ARM64_IOMMU is smmuv3 or virtio" >&2; exit 2 ;;
esac

# Lines of the boot itself (kernel console), kept out of the terminal but in the log.
boot_noise='^\[ *[0-9]+\.[0-9]+\]|^\s*$'
start=$(date +%s)
set +e
# shellcheck disable=SC2086 # VM_QEMU_EXTRA is a list of options
timeout --kill-after=15 "$timeout" "${QEMU_AARCH64:-qemu-system-aarch64}" -M "$machine" -cpu max,pauth-impdef=on,sve=off \
	-accel tcg,thread=multi -smp 2 -m 3G -nographic -no-reboot -nodefaults -serial stdio \
	-kernel "$image" -initrd "$initramfs" -append "$append" "${virtfs[@]}" "${devices[@]}" \
	${VM_QEMU_EXTRA:-} </dev/null 2>&1 | tr -d '\r' | tee "$log" | grep --line-buffered -v -E "$boot_noise"
qrc=${PIPESTATUS[0]}
set -e
took=$(( $(date +%s) - start ))
rc=255
[ -f "$run/rc" ] && rc=$(cat "$run/rc")

if grep -qE 'Kernel panic - not syncing|Unable to handle kernel|Internal error: Oops|BUG: ' "$log"; then
	echo "[vm] FAIL: arm64 guest kernel crashed after ${took}s:" >&2
	grep -E -m5 'Kernel panic - not syncing|Unable to handle|Internal error|BUG:|pc : ' "$log" | sed 's/^/[vm]   /' >&2
	[ "$rc" = 0 ] && rc=70
elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	echo "[vm] FAIL: arm64 guest did not finish within ${timeout}s and was killed (hang); last output:" >&2
	tail -n 5 "$log" | sed 's/^/[vm]   /' >&2
	rc=124
elif [ ! -f "$run/rc" ]; then
	echo "[vm] FAIL: arm64 guest ended without the command's exit status after ${took}s; last output:" >&2
	tail -n 5 "$log" | sed 's/^/[vm]   /' >&2
fi
exit "$rc"
