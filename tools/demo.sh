#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: builds what is missing (cached), boots the test VM with emulated VT-d, loads our
# iommufd.ko and shows /dev/iommu answering real ioctls.
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
cat >tools/demo/build/guest.sh <<GUEST
set -e
echo "== guest: \$(uname -r), IOMMU: \$(ls /sys/class/iommu | tr '\n' ' ')"
for d in /sys/bus/pci/devices/*; do
	[ "\$(cat \$d/vendor):\$(cat \$d/device)" = 0x1234:0x11e8 ] && echo "== edu DMA device at \$(basename \$d), IOMMU group \$(basename \$(readlink \$d/iommu_group))"
done
insmod $repo/iommufd.ko
echo "== loaded: \$(grep -w iommufd /proc/modules | cut -d' ' -f1-3), /dev/iommu: \$(ls -l /dev/iommu)"
$repo/tools/demo/build/iommufd_demo
rmmod iommufd
echo "== unloaded cleanly"
GUEST
exec tools/vm/run.sh --timeout 300 -- bash tools/demo/build/guest.sh
