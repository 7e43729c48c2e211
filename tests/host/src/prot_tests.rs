// SPDX-License-Identifier: GPL-2.0
//! Tests of `pure::prot`: the bits a domain maps an area with, as upstream's `conv_iommu_prot()`
//! and `batch_to_domain()` give them. A dma-buf's range is MMIO: mapped with `IOMMU_MMIO` and
//! without `IOMMU_CACHE`, however the area was made (MAP_FILE of the dma-buf or a COPY of that
//! area, which has only the COPY flags).

use crate::pure::{
    batch::Kind,
    prot::*, //
};

const FLAGS: [(bool, bool); 3] = [(true, false), (false, true), (true, true)];

fn rw(readable: bool, writeable: bool) -> u32 {
    (if readable { IOMMU_READ } else { 0 }) | (if writeable { IOMMU_WRITE } else { 0 })
}

#[test]
fn neither_read_nor_write_is_refused() {
    assert_eq!(area_prot(false, false), None);
}

#[test]
fn cpu_memory_is_mapped_cache_coherent() {
    for (r, w) in FLAGS {
        let area = area_prot(r, w).unwrap();
        assert_eq!(area, rw(r, w) | IOMMU_CACHE);
        assert_eq!(domain_prot(area, Kind::CpuMemory), rw(r, w) | IOMMU_CACHE);
    }
}

#[test]
fn mmio_is_mapped_mmio_and_not_cache() {
    for (r, w) in FLAGS {
        // The area of MAP_FILE on a dma-buf and the area of a COPY of it have the same bits: the
        // MMIO rule follows the memory, not the ioctl that made the area.
        let area = area_prot(r, w).unwrap();
        assert_eq!(domain_prot(area, Kind::Mmio), rw(r, w) | IOMMU_MMIO);
    }
}
