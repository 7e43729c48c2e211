// SPDX-License-Identifier: GPL-2.0
//! dma-buf exporters in this module that hand `IOMMU_IOAS_MAP_FILE` their physical range
//! directly (upstream's `iommufd_test_dma_buf_iommufd_map()` beside vfio-pci's
//! `vfio_pci_dma_buf_iommufd_map()`): one registers here at module init; the mapping path asks the
//! registered exporters before it asks the kernel's (`dmabuf.rs`).

use kernel::{
    bindings,
    prelude::*, //
};

use crate::context::registry::Registry;

/// An in-module dma-buf exporter's iommufd hook.
pub(crate) trait DmaBufExporter: Sync {
    /// The physical range (address, length) of the dma-buf of `attach` (a live attachment,
    /// under its dma-buf's reservation lock): `None` if the dma-buf is not this exporter's,
    /// `ENODEV` while it is revoked.
    fn phys_range(&self, attach: *mut bindings::dma_buf_attachment) -> Option<Result<(u64, u64)>>;
}

/// How many exporters may register.
const MAX_EXPORTERS: usize = 2;

/// The registered exporters: `EXPORTERS.register(&exporter)` at module init.
pub(crate) static EXPORTERS: Registry<dyn DmaBufExporter, MAX_EXPORTERS> = Registry::new();

/// The range an in-module exporter gives for `attach` (as [`DmaBufExporter::phys_range`]);
/// `None` if no registered exporter owns its dma-buf.
pub(crate) fn phys_range(attach: *mut bindings::dma_buf_attachment) -> Option<Result<(u64, u64)>> {
    EXPORTERS.iter().find_map(|e| e.phys_range(attach))
}
