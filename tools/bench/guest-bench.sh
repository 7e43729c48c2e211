#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest for `make bench`: ROUNDS times, the C module then ours (A B A B ...), each
# loaded fresh, the benchmark program run once: without a domain, on the mock domain, and on a
# VT-d domain through QEMU's edu device bound to vfio-pci. Appends `<impl> <round> <bench>
# <domain> <value> <unit>` lines to $OUT/bench.raw. RUST_KO: another build of ours to load (an
# older commit's, to compare two of ours against the same C module).
set -euo pipefail
: "${OUT:?}" "${REPO:?}" "${ROUNDS:=5}" "${SMALL_MB:=64}"
bin=$REPO/tools/bench/build/iommufd_bench
: >"$OUT/bench.raw"
# 2 MiB pages for the hugetlb rows: twice the area, for the copy.
echo $(( SMALL_MB / 2 * 2 + 8 )) >/proc/sys/vm/nr_hugepages || true

# The first edu device (1234:11e8), handed to vfio-pci; its cdev on stdout (nothing if none).
edu_cdev() {
	local d bdf name
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] && break
		d=
	done
	[ -n "$d" ] || return 0
	bdf=$(basename "$d")
	modprobe vfio-pci || return 0
	echo vfio-pci >"$d/driver_override"
	[ -e "$d/driver" ] && echo "$bdf" >"$d/driver/unbind"
	echo "$bdf" >/sys/bus/pci/drivers_probe
	for _ in $(seq 50); do [ -d "$d/vfio-dev" ] && break; sleep 0.1; done
	name=$(ls "$d/vfio-dev" 2>/dev/null | head -1)
	[ -n "$name" ] && echo "/dev/vfio/devices/$name"
}

unload() {
	local m
	for m in vfio_pci vfio_pci_core vfio_iommu_type1 vfio iommufd; do
		grep -q "^$m " /proc/modules && rmmod "$m"
	done
	return 0
}

for round in $(seq "$ROUNDS"); do
	for impl in c rust; do
		case $impl in
		c) modprobe iommufd ;;
		rust) insmod "${RUST_KO:-$REPO/iommufd.ko}" ;;
		esac
		for _ in $(seq 50); do [ -c /dev/iommu ] && break; sleep 0.1; done
		cdev=$(edu_cdev)
		[ -n "$cdev" ] || echo "[guest] no edu device for vfio-pci: VT-d rows skipped"
		"$bin" "$SMALL_MB" $cdev | sed "s/^/$impl $round /" >>"$OUT/bench.raw"
		unload
		echo "[guest] round $round $impl done"
	done
done
