#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# A real VMM on the loaded iommufd: the host's QEMU, visible in the guest, started with
# `-object iommufd -device vfio-pci,iommufd=` on the edu device's VFIO cdev, paused (-S), asked
# for its PCI devices through the monitor, then told to quit. It must realize the device with no
# error: QEMU opens /dev/iommu, binds the cdev, allocates an IOAS, maps all of guest RAM into it
# and attaches, exactly what it does to run a VM.
#
# Usage: qemu_vfio_pci.sh /dev/vfio/devices/vfioN. Prints TAP.
set -uo pipefail
cdev=$1
name=$(basename "$cdev")
qemu=${QEMU:-qemu-system-x86_64}
echo "TAP version 13"
echo "1..1"
bdf=$(basename "$(readlink -f "/sys/class/vfio-dev/$name/device")")
# The arm64 guest's root is a busybox initramfs (tools/vm/run-arm64.sh): the host's QEMU is an
# x86 program, and Debian's arm64 QEMU needs an arm64 Debian root (some forty shared libraries).
if [ "${IOMMUFD_RS_ARCH:-}" = arm64 ]; then
	echo "ok 1 qemu_vfio_pci # SKIP no arm64 QEMU in the arm64 guest's busybox root"
	exit 0
fi
if ! command -v "$qemu" >/dev/null; then
	echo "not ok 1 qemu_vfio_pci # no $qemu in the guest"
	exit 1
fi
out=$(mktemp)
err=$(mktemp)
printf 'info pci\nquit\n' | timeout 120 "$qemu" -nodefaults -no-user-config -display none \
	-machine q35 -accel tcg -m 128 -S -monitor stdio \
	-object iommufd,id=iommufd0 \
	-device vfio-pci,host="$bdf",iommufd=iommufd0,id=edu0 >"$out" 2>"$err"
rc=$?
sed 's/^/# qemu: /' "$err"
if [ "$rc" -ne 0 ]; then
	echo "not ok 1 qemu_vfio_pci # qemu exited with $rc"
	exit 1
fi
if grep -qi 'error' "$err"; then
	echo "not ok 1 qemu_vfio_pci # qemu reported an error"
	exit 1
fi
if ! grep -q '1234:11e8' "$out"; then
	sed 's/^/# monitor: /' "$out"
	echo "not ok 1 qemu_vfio_pci # the vfio-pci device is not on the guest's bus"
	exit 1
fi
echo "ok 1 qemu_vfio_pci"
