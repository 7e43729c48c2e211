// SPDX-License-Identifier: GPL-2.0
//! vIOMMU drivers: who builds the driver half ([`ViommuOps`]) of a vIOMMU for a device. A driver
//! written in this module registers here at module init, saying which devices it drives and
//! which vIOMMU types it has; the core finds it by the device a `IOMMU_VIOMMU_ALLOC` names. A
//! device no registered driver takes goes to its IOMMU driver's own vIOMMUs, when its
//! `iommu_ops` have `get_viommu_size()` and `viommu_init()` (`kernel_driver.rs`, as upstream
//! asks them); else it has no vIOMMU types (`EOPNOTSUPP`).

use kernel::{
    bindings,
    prelude::*, //
};

use crate::{
    context::registry::Registry,
    hwpt::device::Device,
    hwpt::HwptPaging,
    viommu::{
        MmapAlloc,
        ViommuOps, //
    },
};

/// A vIOMMU driver, registered in [`DRIVERS`].
pub(crate) trait ViommuDriver: Sync {
    /// Whether `dev` is behind an IOMMU of this driver.
    fn drives(&self, dev: &Device) -> bool;

    /// Whether the driver has vIOMMUs of `viommu_type` for `dev`.
    fn supports(&self, dev: &Device, viommu_type: u32) -> bool;

    /// Builds the driver half of a vIOMMU of `viommu_type` for `dev` over the nesting parent
    /// `parent`, from the user's `data`; `mmap` hands out mmap offsets for the physical ranges
    /// the guest may map (upstream's `viommu_init()`).
    fn init(
        &self,
        dev: &Device,
        viommu_type: u32,
        parent: &HwptPaging,
        data: Option<&bindings::iommu_user_data>,
        mmap: &mut MmapAlloc<'_>,
    ) -> Result<KBox<dyn ViommuOps>>;
}

/// How many vIOMMU drivers may register.
const MAX_DRIVERS: usize = 4;

/// The registered drivers: `DRIVERS.register(&driver)` at module init.
pub(crate) static DRIVERS: Registry<dyn ViommuDriver, MAX_DRIVERS> = Registry::new();

/// The vIOMMU driver of `dev`: a registered one, else its IOMMU driver's own, if it has any.
pub(crate) fn find(dev: &Device) -> Option<&'static dyn ViommuDriver> {
    let kernel: &'static dyn ViommuDriver = &super::kernel_driver::KERNEL_DRIVER;
    DRIVERS
        .find(|d| d.drives(dev))
        .or_else(|| kernel.drives(dev).then_some(kernel))
}
