#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# One quick guest for a developer's loop: boots the test kernel (tools/vm/run.sh), loads one
# implementation, runs the given command with /dev/iommu present, shows the dmesg lines the run
# added and unloads. Not part of `make check`, which boots through tools/check.sh.
#
#   try.sh c|rust COMMAND [ARGS...]      e.g. try.sh rust tests/selftests/build/uapi_basic
#
# TRY_VFIO=1 first hands every edu device to vfio-pci and exports their cdevs as VFIO_CDEVS
# (the lone device first, then the two of the shared group), for commands like
# tests/clients/build/edu_dma "$VFIO_CDEV".
#
# The Rust module is ./iommufd.ko of this checkout (make module first); the C one is the test
# kernel's. Exit status: the command's. Callers that share a machine serialise boots themselves
# (flock).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: try.sh c|rust COMMAND [ARGS...]" >&2; exit 2; }
impl=$1
shift
case $impl in c | rust) ;; *) echo "try.sh: c or rust" >&2; exit 2 ;; esac
if [ "${IOMMUFD_RS_IN_GUEST:-}" = 1 ]; then
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	ulimit -l unlimited 2>/dev/null || true
	case $impl in
	c) modprobe iommufd ;;
	rust) insmod "$repo/iommufd.ko" ;;
	esac
	for _ in $(seq 50); do [ -c /dev/iommu ] && break; sleep 0.1; done
	# No interrupt remapping behind a virtio-iommu: nothing binds without the escape hatch.
	if [ "${VM_IOMMU:-}" = virtio ]; then
		export UNSAFE_INTERRUPTS=1
		echo Y >/sys/module/iommufd/parameters/allow_unsafe_interrupts
	fi
	if [ "${TRY_VFIO:-0}" = 1 ]; then
		. "$here/edu.sh"
		VFIO_CDEVS=
		for bdf in $(edu_devices); do VFIO_CDEVS+="$(edu_to_vfio "$bdf") "; done
		export VFIO_CDEVS VFIO_CDEV=${VFIO_CDEVS%% *}
		echo "[try] VFIO_CDEVS=$VFIO_CDEVS"
	fi
	dmesg -c >/dev/null
	export IOMMUFD_IMPL=$impl
	rc=0
	"$@" || rc=$?
	echo "[try] exit $rc"
	echo "[try] dmesg:"
	dmesg | sed 's/^/[try]   /'
	[ "${TRY_VFIO:-0}" = 1 ] && edu_release
	for m in vfio_pci vfio_pci_core vfio_iommu_type1 vfio iommufd; do
		grep -q "^$m " /proc/modules && { rmmod "$m" || echo "[try] rmmod $m failed"; }
	done
	exit $rc
fi
exec "$here/run.sh" --timeout "${VM_TIMEOUT:-900}" -- env IOMMUFD_RS_IN_GUEST=1 TRY_VFIO="${TRY_VFIO:-0}" VM_IOMMU="${VM_IOMMU:-vtd}" \
	"$here/try.sh" "$impl" "$@"
