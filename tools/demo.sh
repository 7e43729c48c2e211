#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: builds what is missing (cached), boots the test VM with emulated VT-d, loads our
# iommufd.ko and shows /dev/iommu answering real ioctls; then hands QEMU's edu device to stock
# vfio-pci and has it DMA through the VT-d page tables our module built, step by step.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] && tools/setup.sh >/dev/null
tools/kernel/build.sh --profile "${KPROFILE:-default}"
kdir=$(tools/kernel/build.sh --profile "${KPROFILE:-default}" --dir)
make -s module KDIR="$kdir"
mkdir -p tools/demo/build
cc -Wall -O2 -isystem "$kdir/usr/include" -o tools/demo/build/iommufd_demo tools/demo/iommufd_demo.c
cc -Wall -O2 -isystem "$kdir/usr/include" -o tools/demo/build/edu_demo tools/demo/edu_demo.c
cat >tools/demo/build/guest.sh <<GUEST
set -e
echo "== guest: \$(uname -r), IOMMU: \$(ls /sys/class/iommu | tr '\n' ' ')"
for d in /sys/bus/pci/devices/*; do
	[ "\$(cat \$d/vendor):\$(cat \$d/device)" = 0x1234:0x11e8 ] && echo "== edu DMA device at \$(basename \$d), IOMMU group \$(basename \$(readlink \$d/iommu_group))"
done
insmod $repo/iommufd.ko
echo "== loaded: \$(grep -w iommufd /proc/modules | cut -d' ' -f1-3), /dev/iommu: \$(ls -l /dev/iommu)"
$repo/tools/demo/build/iommufd_demo
echo
echo "== act two: the edu device, through stock vfio-pci, doing DMA through our page tables"
modprobe vfio-pci
for d in /sys/bus/pci/devices/*; do
	[ "\$(cat \$d/vendor):\$(cat \$d/device)" = 0x1234:0x11e8 ] || continue
	bdf=\$(basename \$d)
	echo vfio-pci >\$d/driver_override
	[ -e \$d/driver ] && echo \$bdf >\$d/driver/unbind
	echo \$bdf >/sys/bus/pci/drivers_probe
	sleep 0.5
	cdev=/dev/vfio/devices/\$(ls \$d/vfio-dev | head -1)
	echo "== \$bdf is now driven by \$(basename \$(readlink \$d/driver)), cdev \$cdev"
	dmesg -C
	$repo/tools/demo/build/edu_demo \$cdev
	dmesg | grep -i dmar | sed 's/^/   kernel: /'
	echo \$bdf >\$d/driver/unbind
done
for m in vfio_pci vfio_pci_core vfio_iommu_type1 vfio iommufd; do
	if grep -q "^\$m " /proc/modules; then rmmod \$m; fi
done
echo "== unloaded cleanly"
GUEST
exec tools/vm/run.sh --timeout 300 -- bash tools/demo/build/guest.sh
