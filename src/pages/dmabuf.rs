// SPDX-License-Identifier: GPL-2.0
//! dma-buf mappings (upstream's `IOPT_ADDRESS_DMABUF`): `IOMMU_IOAS_MAP_FILE` on a dma-buf fd maps
//! the exporter's physical range (device memory for peer-to-peer DMA, typically). We attach to the
//! dma-buf dynamically and pin the attachment; the exporter tells us its physical range through
//! its iommufd hook (one registered in `exporter.rs`, or vfio-pci's for a device BAR, which needs
//! a kernel with `CONFIG_VFIO_PCI_DMABUF`), and may revoke it:
//! then every domain mapping of it goes at once, later fills map nothing, and new maps of the
//! dma-buf fail with `ENODEV` until the exporter restores it.
//!
//! Lock order: the dma-buf's reservation lock before `DmaBufState::inner` (the revoke callback
//! runs under the former); `Ioas::iopt` and `Pages::pins` before `DmaBufState::inner`, which is
//! the last lock taken (the IOMMU's own page table locks aside): domain mappings are made and
//! recorded under it, and a revoke removes them under it. Taking `Pages::pins` under it instead
//! would close a cycle through the mmap lock (GUP takes it under `Pages::pins` for user memory;
//! some exporters take the reservation lock under it in their fault handlers).

use kernel::{
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    abstractions::dma_buf::{
        DmaBuf,
        Importer,
        LockedAttachment,
        PinnedAttachment, //
    },
    ioas::iopt::DomainRef,
};

const PAGE: u64 = PAGE_SIZE as u64;

/// Where the domains map a dma-buf's range, so a revoke can take it all back.
struct Inner {
    revoked: bool,
    /// Mappings: domain, IOVA, length.
    tracked: KVec<(DomainRef, u64, u64)>,
}

/// Revoke state, shared with the attachment (its importer data).
#[pin_data]
pub(crate) struct DmaBufState {
    #[pin]
    inner: Mutex<Inner>,
}

impl Importer for DmaBufState {
    const ALLOW_PEER2PEER: bool = true;

    /// The exporter revokes the range (called under the reservation lock).
    fn invalidate_mappings(&self) {
        let mut inner = self.inner.lock();
        if inner.revoked {
            return;
        }
        for (d, iova, len) in inner.tracked.iter() {
            d.unmap(*iova, *len);
        }
        inner.tracked.clear();
        inner.revoked = true;
    }
}

/// A pinned dynamic attachment to a dma-buf and the physical range it gave us.
pub(crate) struct DmaBufSrc {
    _attach: PinnedAttachment<DmaBufState>,
    paddr: u64,
    state: Arc<DmaBufState>,
}

/// The physical range the exporter of `attach` hands iommufd (its `*_iommufd_map` hook).
fn exporter_range(locked: &LockedAttachment<'_>) -> Result<(u64, u64)> {
    if let Some(r) = crate::pages::exporter::phys_range(locked.as_raw()) {
        return r;
    }
    locked.vfio_pci_range()
}

impl DmaBufSrc {
    /// Attaches to `dmabuf` (whose reference it takes over) for bytes `[start, start +
    /// length)`.
    pub(crate) fn attach(dmabuf: DmaBuf, start: u64, length: u64) -> Result<Self> {
        let size = dmabuf.size() as u64;
        let last = start
            .checked_add(length.checked_sub(1).ok_or(EINVAL)?)
            .ok_or(EOVERFLOW)?;
        if size <= last {
            return Err(EINVAL);
        }
        let state = Arc::pin_init(
            try_pin_init!(DmaBufState {
                inner <- new_mutex!(Inner {
                    revoked: false,
                    tracked: KVec::new(),
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let dev = crate::context::miscdev::IOMMU_DEV.load(core::sync::atomic::Ordering::Acquire);
        if dev.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: cannot live in the layer, which does not know where our device comes from:
        // `IOMMU_DEV` is the `/dev/iommu` misc device's `this_device`, set at the first open and
        // registered until the module unloads, which no attachment outlives.
        let dev = unsafe { kernel::device::Device::from_raw(dev) };
        let (attach, (paddr, _len)) =
            PinnedAttachment::new(dmabuf, dev, state.clone(), exporter_range)?;
        Ok(Self {
            _attach: attach,
            paddr,
            state,
        })
    }

    /// PFNs of pages `idx..idx + want` of the range from byte `base`: nothing is pinned. Fills
    /// all `want`.
    pub(crate) fn pfns(
        &self,
        base: u64,
        idx: u64,
        want: usize,
        pfns: &mut crate::pages::pfns::PfnTable,
    ) -> Result<usize> {
        let first = (self.paddr + base) / PAGE + idx;
        for i in 0..want as u64 {
            pfns.set(idx + i, first + i)?;
        }
        Ok(want)
    }

    /// Maps `len` bytes at `iova` of domain `d` with `map` and records the mapping for a revoke,
    /// both under the revoke lock (as upstream, under `pages->mutex`): a revoke runs before,
    /// and then nothing is mapped (the range is gone), or after, and then takes the mapping
    /// back; never in between, which would leave a mapping of revoked memory that nothing
    /// removes. All or nothing.
    pub(crate) fn map_tracked(
        &self,
        d: DomainRef,
        iova: u64,
        len: u64,
        map: impl FnOnce() -> Result,
    ) -> Result {
        let mut inner = self.state.inner.lock();
        if inner.revoked {
            return Ok(());
        }
        inner.tracked.push((d, iova, len), GFP_KERNEL_ACCOUNT)?;
        // A test can force a revoke into this window (a pause point, `fail_point.rs`).
        crate::context::fail_point::pause_at_dmabuf_map();
        if let Err(e) = map() {
            // The lock was held throughout: the last entry is the one pushed above.
            let _ = inner.tracked.pop();
            return Err(e);
        }
        Ok(())
    }

    /// Undoes [`Self::map_tracked`] for `d` at `iova`: forgets the mapping and, unless a revoke
    /// took it already, unmaps it with `unmap`, under the revoke lock, so that a revoke never
    /// returns while the mapping is still there.
    pub(crate) fn unmap_tracked(&self, d: DomainRef, iova: u64, unmap: impl FnOnce()) {
        let mut inner = self.state.inner.lock();
        if let Some(i) = inner
            .tracked
            .iter()
            .position(|(t, at, _)| *t == d && *at == iova)
        {
            let _ = inner.tracked.remove(i);
        }
        if !inner.revoked {
            unmap();
        }
    }
}
