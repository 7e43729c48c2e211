# SPDX-License-Identifier: GPL-2.0
# Sourced in the guest (guest-tests.sh, try.sh): QEMU's edu devices and vfio-pci.

# The edu devices (1234:11e8), by PCI address: the one on the root bus, then the two behind the
# bridge (one IOMMU group).
edu_devices() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] && basename "$d"
	done
}

# Hands edu device $1 to vfio-pci; its VFIO cdev on stdout.
edu_to_vfio() {
	local bdf=$1 d=/sys/bus/pci/devices/$1
	modprobe vfio-pci || return 1
	# vfio's softdep (post: vfio_iommu_type1), which kmod's modprobe honours and busybox's (the
	# arm64 guest) does not; a kernel without VFIO's container has no such module.
	modprobe -q vfio_iommu_type1 2>/dev/null || true
	# A platform that cannot isolate MSIs (the x86 guest with a virtio-iommu) needs VFIO's escape
	# hatch for its type1 container too.
	[ "${UNSAFE_INTERRUPTS:-0}" != 1 ] || [ ! -w /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts ] ||
		echo Y >/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
	echo vfio-pci >"$d/driver_override"
	[ -e "$d/driver" ] && echo "$bdf" >"$d/driver/unbind"
	echo "$bdf" >/sys/bus/pci/drivers_probe
	for _ in $(seq 50); do
		[ -d "$d/vfio-dev" ] && break
		sleep 0.1
	done
	local name
	name=$(ls "$d/vfio-dev" 2>/dev/null | head -1)
	[ -n "$name" ] || return 1
	echo "/dev/vfio/devices/$name"
}

edu_release() {
	local bdf d
	for bdf in $(edu_devices); do
		d=/sys/bus/pci/devices/$bdf
		[ -e "$d/driver" ] && echo "$bdf" >"$d/driver/unbind"
		echo >"$d/driver_override"
	done
}
