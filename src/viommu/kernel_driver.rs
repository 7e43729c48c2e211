// SPDX-License-Identifier: GPL-2.0
//! vIOMMUs of the kernel's IOMMU drivers (arm-smmu-v3's `arm_vsmmu`, AMD's, Tegra CMDQV's): the
//! driver's `iommu_ops` offer `get_viommu_size()` and `viommu_init()`, the driver embeds the C
//! `struct iommufd_viommu` in a struct of its own and serves the vIOMMU through the ops its init
//! installed (`struct iommufd_viommu_ops`). The vIOMMU's C part is a
//! [`crate::abstractions::iommufd_c::CViommu`]; its vDEVICEs and vEVENTQs get C parts too, in the
//! layouts the driver's helpers read (`iommufd_viommu_find_dev()`,
//! `iommufd_viommu_report_event()`).
//!
//! What the C ops have that this does not serve yet: HW queues (`get_hw_queue_size`,
//! `hw_queue_init_phys`: Tegra CMDQV) answer `EOPNOTSUPP`, and mmap ranges a driver registers
//! with `_iommufd_alloc_mmap()` are kept in the C context but not mapped by `/dev/iommu`'s mmap.

use kernel::{
    bindings,
    prelude::*,
    sync::Arc, //
};

use crate::{
    abstractions::iommu::device::IommuDevice,
    abstractions::iommufd_c::{
        CVdevice,
        CViommu, //
    },
    context::errno,
    hwpt::device::Device,
    hwpt::HwptPaging,
    viommu::{
        driver::ViommuDriver,
        HwQueue,
        HwQueueMake,
        MmapAlloc,
        Viommu,
        ViommuOps, //
    },
};

/// The driver half of every device whose IOMMU driver has vIOMMUs of its own.
pub(crate) struct KernelDriver;

/// The one instance; [`super::driver::find`] falls back on it.
pub(crate) static KERNEL_DRIVER: KernelDriver = KernelDriver;

impl ViommuDriver for KernelDriver {
    fn drives(&self, dev: &Device) -> bool {
        dev.kdev()
            .iommu_ops()
            .is_ok_and(|ops| ops.get_viommu_size.is_some() && ops.viommu_init.is_some())
    }

    fn supports(&self, dev: &Device, viommu_type: u32) -> bool {
        CViommu::supported(dev.kdev(), viommu_type)
    }

    fn init(
        &self,
        dev: &Device,
        viommu_type: u32,
        parent: &HwptPaging,
        data: Option<&bindings::iommu_user_data>,
        _mmap: &mut MmapAlloc<'_>,
    ) -> Result<KBox<dyn ViommuOps>> {
        let c = CViommu::new(&dev.ctx().c, dev.kdev(), viommu_type, &parent.c, data)?;
        Ok(KBox::new(KernelViommu { c }, GFP_KERNEL_ACCOUNT)?)
    }
}

/// A vIOMMU a kernel driver serves.
struct KernelViommu {
    c: CViommu,
}

impl ViommuOps for KernelViommu {
    fn alloc_domain_nested(
        &self,
        _viommu: &Viommu,
        flags: u32,
        data: &bindings::iommu_user_data,
    ) -> Result<*mut bindings::iommu_domain> {
        self.c.alloc_domain_nested(flags, data)
    }

    fn cache_invalidate(
        &self,
        _viommu: &Viommu,
        array: &mut bindings::iommu_user_data_array,
    ) -> Result {
        self.c.cache_invalidate(array)
    }

    fn hw_queue_supported(&self, _queue_type: u32) -> bool {
        false
    }

    fn hw_queue_init(
        &self,
        _viommu: &Viommu,
        _index: u32,
        _base_iova: u64,
        _base_pa: u64,
        _make: &mut HwQueueMake<'_>,
    ) -> Result<Arc<HwQueue>> {
        Err(errno::eopnotsupp())
    }

    fn hw_queue_destroy(&self, _index: u32, _id: u32) {}

    fn set_id(&self, id: u32) {
        self.c.set_id(id);
    }

    fn vdevice_init(&self, dev: &Device, virt_id: u64) -> Result<Option<CVdevice>> {
        CVdevice::new(&self.c, dev.c(), virt_id).map(Some)
    }

    fn c_viommu(&self) -> Option<&CViommu> {
        Some(&self.c)
    }
}
