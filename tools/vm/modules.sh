# SPDX-License-Identifier: GPL-2.0
# Sourced in the guest (guest-tests.sh, tests/install/guest.sh): which iommufd answers, and
# taking vfio's modules and iommufd out again.

# Which iommufd answers /dev/iommu: rust (ours: the C shim's iommufd_rs_* functions are in the
# kernel's symbols, loaded or built in), c, or none.
iommufd_impl() {
	[ -c /dev/iommu ] || { echo none; return; }
	if grep -q ' iommufd_rs_' /proc/kallsyms; then echo rust; else echo c; fi
}

# Unloads vfio's modules and iommufd, users first (vfio pins iommufd through its symbol imports);
# with KEEP_IOMMUFD=1 iommufd stays (built in). Stops at the first rmmod that fails.
unload_iommufd_stack() {
	local m mods="vfio_pci vfio_pci_core vfio_iommu_type1 vfio iommufd"
	[ "${KEEP_IOMMUFD:-0}" = 1 ] && mods=${mods% iommufd}
	for m in $mods; do
		if grep -q "^$m " /proc/modules; then
			rmmod "$m" || return 1
		fi
	done
}
