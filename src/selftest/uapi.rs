// SPDX-License-Identifier: GPL-2.0
//! `IOMMU_TEST_CMD` (`drivers/iommu/iommufd/iommufd_test.h` of the kernel under test), generated
//! by bindgen beside the uAPI (`src/ffi/generated/`).

crate::ffi::bindgen_module! {
    mod generated = "../ffi/generated/iommufd_test.rs";
}

pub(crate) use generated::*;

/// `IOMMU_TEST_CMD`: 32 above the iommufd base, clear of the real commands.
pub(crate) const IOMMU_TEST_CMD: u32 = kernel::ioctl::_IO(
    crate::ffi::uapi::IOMMUFD_TYPE,
    crate::ffi::uapi::IOMMUFD_CMD_BASE + 32,
);

// SAFETY: `repr(C)` integers and a union of integer structs: every bit pattern is valid.
// (Not `AsBytes`: the union and tail padding may hold uninitialized bytes.)
unsafe impl kernel::transmute::FromBytes for iommu_test_cmd {}
// SAFETY: two `u32`s.
unsafe impl kernel::transmute::FromBytes for iommu_hwpt_selftest {}
// SAFETY: two `u32`s.
unsafe impl kernel::transmute::FromBytes for iommu_hwpt_invalidate_selftest {}
// SAFETY: three `u32`s.
unsafe impl kernel::transmute::FromBytes for iommu_viommu_invalidate_selftest {}
// SAFETY: two `u32`s and two `u64`s, no padding.
unsafe impl kernel::transmute::FromBytes for iommu_viommu_selftest {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for iommu_viommu_selftest {}
