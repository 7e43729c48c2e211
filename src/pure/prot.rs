// SPDX-License-Identifier: GPL-2.0
//! The IOMMU protection bits of a mapping: an area's, from the MAP/MAP_FILE/COPY flags
//! (upstream's `conv_iommu_prot()`), and the ones a domain maps each run of it with.

use super::batch::Kind;

/// `IOMMU_READ`, `IOMMU_WRITE`, `IOMMU_CACHE` and `IOMMU_MMIO` of include/linux/iommu.h (the
/// module checks them against the kernel's at build time).
pub(crate) const IOMMU_READ: u32 = 1 << 0;
pub(crate) const IOMMU_WRITE: u32 = 1 << 1;
pub(crate) const IOMMU_CACHE: u32 = 1 << 2;
pub(crate) const IOMMU_MMIO: u32 = 1 << 4;

/// An area's bits: read and/or write, and `IOMMU_CACHE` (iommufd offers no non-coherent DMA, so
/// binding requires a coherent IOMMU). `None` for neither read nor write.
pub(crate) fn area_prot(readable: bool, writeable: bool) -> Option<u32> {
    let mut prot = 0;
    if readable {
        prot |= IOMMU_READ;
    }
    if writeable {
        prot |= IOMMU_WRITE;
    }
    (prot != 0).then_some(prot | IOMMU_CACHE)
}

/// The bits a domain maps a run of `kind` memory of an area with (upstream's
/// `batch_to_domain()`): MMIO, a dma-buf's range, is mapped `IOMMU_MMIO` and never
/// `IOMMU_CACHE`, whichever ioctl made the area (MAP_FILE of the dma-buf, or a COPY of that
/// area, whose flags know nothing of MMIO).
pub(crate) fn domain_prot(area_prot: u32, kind: Kind) -> u32 {
    match kind {
        Kind::CpuMemory => area_prot,
        Kind::Mmio => (area_prot & !IOMMU_CACHE) | IOMMU_MMIO,
    }
}
