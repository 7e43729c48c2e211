#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The `clients` suite: every client of the whole stack on one VFIO cdev, as one TAP stream with
# the tests edu_dma, edu_dma_after_unmap, edu_msi* (tests/clients/edu_dma.c), huge_unbacked_attach_fails_fast,
# huge_over_memlock_attach_fails_fast (huge_attach.c), qemu_vfio_pci
# (qemu_vfio_pci.sh), qemu_dma_lands and qemu_dma_unmapped_faults (qemu_dma.py: QEMU's own
# mappings, driven over qtest) and rust_vmm_vfio (rustvmm/, the rust-vmm crates). A client that is missing
# counts as failed, with the reason.
#
# The PASID attachments through VFIO (edu_pasid.c: pasid.*, group_shares_pasid_slot).
#
# Nested translation on an SMMUv3 (smmu_nested.c: nested.*): this program as the guest's SMMU
# driver over a vIOMMU; skipped without an SMMUv3 behind the cdev, or on one without S2FWB (a
# QEMU without tools/qemu/smmuv3-fwb.patch), where no iommufd gets a vIOMMU.
#
# With two more cdevs of devices sharing an IOMMU group, also group_dma_ownership and
# group_shares_attachment (group_owner.c), and edu_p2p_dmabuf (edu_p2p.c; skipped on a kernel
# whose vfio-pci exports no dma-bufs).
#
# Usage: run.sh /dev/vfio/devices/vfioN [cdevA cdevB]
set -uo pipefail
cdev=$1
here=$(cd "$(dirname "$0")" && pwd)
n=0
results=()

# Collects the ok/not ok lines of one client's TAP (its diagnostics pass through as comments).
collect() { # name-of-client, command...
	local client=$1 line rest
	shift
	local out
	out=$("$@" 2>&1)
	local seen=0
	while IFS= read -r line; do
		case $line in
		"ok "* | "not ok "*)
			seen=1
			rest=${line#*ok }
			rest=${rest#* }          # drop the number
			rest=${rest#global.}     # kselftest's prefix for TEST()
			if [[ $line == "not ok "* ]]; then
				results+=("not ok|$rest")
			else
				results+=("ok|$rest")
			fi
			;;
		*) echo "# $client: $line" ;;
		esac
	done <<<"$out"
	[ "$seen" = 1 ] || results+=("not ok|$client # produced no result")
}

collect edu_dma "$here/build/edu_dma" "$cdev"
collect huge_attach "$here/build/huge_attach" "$cdev"
# What the IOMMU driver tells and allocates (hw_info.c: dev.hw_info_names_the_driver,
# dev.nest_parent_and_viommu).
collect hw_info "$here/build/hw_info" "$cdev"
collect smmu_nested "$here/build/smmu_nested" "$cdev"
# PASID slots through VFIO (edu_pasid.c), with the group pair when there is one.
collect edu_pasid "$here/build/edu_pasid" "$cdev" "${@:2:2}"
collect qemu_vfio_pci "$here/qemu_vfio_pci.sh" "$cdev"
if command -v python3 >/dev/null; then
	collect qemu_dma "$here/qemu_dma.py" "$cdev"
else
	# The arm64 guest's busybox root has no Python (nor a QEMU for it to drive).
	results+=("ok|qemu_dma_lands # SKIP no python3 or QEMU in this guest" "ok|qemu_dma_unmapped_faults # SKIP no python3 or QEMU in this guest")
fi
if [ $# -ge 3 ]; then
	collect group_owner "$here/build/group_owner" "$2" "$3"
else
	results+=("not ok|group_dma_ownership # no two devices in one IOMMU group")
fi
# Peer to peer: the root-bus edu's BAR0 as a vfio-pci dma-buf, DMA into it from a bridged one.
if [ $# -ge 2 ]; then
	collect edu_p2p "$here/build/edu_p2p" "$cdev" "$2"
fi
if [ -x "$here/rustvmm/target/release/rust-vmm-vfio" ]; then
	collect rust_vmm_vfio "$here/rustvmm/target/release/rust-vmm-vfio" "$cdev"
else
	results+=("not ok|rust_vmm_vfio # not built")
fi

echo "TAP version 13"
echo "1..${#results[@]}"
fail=0
for r in "${results[@]}"; do
	n=$((n + 1))
	echo "${r%%|*} $n ${r#*|}"
	[[ $r == "not ok|"* ]] && fail=1
done
exit $fail
