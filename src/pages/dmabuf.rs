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

use core::ptr::NonNull;
use kernel::{
    bindings, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    ffi::shim, //
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

/// A pinned dynamic attachment to a dma-buf and the physical range it gave us.
///
/// # Invariants
///
/// `attach` is an attachment of `dmabuf`, pinned, whose importer data is a reference on `state`;
/// we hold a reference on `dmabuf`.
pub(crate) struct DmaBufSrc {
    dmabuf: NonNull<bindings::dma_buf>,
    attach: NonNull<bindings::dma_buf_attachment>,
    paddr: u64,
    state: Arc<DmaBufState>,
}

// SAFETY: the dma-buf API is callable from any thread; the state is under its mutex.
unsafe impl Send for DmaBufSrc {}
// SAFETY: as above.
unsafe impl Sync for DmaBufSrc {}

/// `dma_buf_attach_ops::invalidate_mappings`: the exporter revokes the range.
///
/// # Safety
///
/// Called by the dma-buf core with the reservation lock held, on an attachment `attach()` made.
unsafe extern "C" fn revoke(attach: *mut bindings::dma_buf_attachment) {
    // SAFETY: the importer data is the `DmaBufState` reference the attachment holds.
    let state = unsafe { &*(*attach).importer_priv.cast::<DmaBufState>() };
    let mut inner = state.inner.lock();
    if inner.revoked {
        return;
    }
    for (d, iova, len) in inner.tracked.iter() {
        d.unmap(*iova, *len);
    }
    inner.tracked.clear();
    inner.revoked = true;
}

static ATTACH_OPS: bindings::dma_buf_attach_ops = bindings::dma_buf_attach_ops {
    allow_peer2peer: true,
    invalidate_mappings: Some(revoke),
};

/// The physical range the exporter of `attach` hands iommufd (its `*_iommufd_map` hook).
fn exporter_range(attach: *mut bindings::dma_buf_attachment) -> Result<(u64, u64)> {
    if let Some(r) = crate::pages::exporter::phys_range(attach) {
        return r;
    }
    let (mut paddr, mut len) = (0u64, 0u64);
    // SAFETY: a live attachment, under its dma-buf's reservation lock (the caller's), as
    // `vfio_pci_dma_buf_iommufd_map()` requires; the outputs are ours to write.
    let rc = unsafe { shim::iommufd_rs_vfio_dmabuf_range(attach, &mut paddr, &mut len) };
    if rc != 0 {
        return Err(Error::from_errno(rc));
    }
    Ok((paddr, len))
}

impl DmaBufSrc {
    /// Attaches to `dmabuf` (whose reference the caller hands over) for bytes `[start, start +
    /// length)`.
    ///
    /// # Safety
    ///
    /// `dmabuf` must be a dma-buf reference the caller gives us.
    pub(crate) unsafe fn attach(
        dmabuf: *mut bindings::dma_buf,
        start: u64,
        length: u64,
    ) -> Result<Self> {
        // The caller's reference, put on every error path from here.
        let guard = DmaBufRef(NonNull::new(dmabuf).ok_or(EINVAL)?);
        // SAFETY: `dmabuf` is referenced.
        let size = unsafe { (*dmabuf).size } as u64;
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
        let dev = crate::vfio::kapi::IOMMU_DEV.load(core::sync::atomic::Ordering::Acquire);
        if dev.is_null() {
            return Err(ENODEV);
        }
        let priv_ = Arc::into_raw(state.clone()).cast_mut().cast();
        // SAFETY: a referenced dma-buf, our misc device as the importing device, static ops; the
        // importer data is a state reference, given back after detach.
        let attach = unsafe { bindings::dma_buf_dynamic_attach(dmabuf, dev, &ATTACH_OPS, priv_) };
        let attach = match kernel::error::from_err_ptr(attach) {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: not handed over.
                drop(unsafe { Arc::from_raw(priv_.cast::<DmaBufState>()) });
                return Err(e);
            }
        };
        // SAFETY: `dmabuf` is referenced; its reservation object lives with it.
        let resv = unsafe { (*dmabuf).resv };
        // SAFETY: locking without an acquire context cannot fail with EDEADLK.
        unsafe { shim::iommufd_rs_dma_resv_lock(resv) };
        // SAFETY: the reservation lock is held, as `dma_buf_pin()` and the hook require.
        let rc = unsafe { bindings::dma_buf_pin(attach) };
        let range = if rc == 0 {
            exporter_range(attach).inspect_err(|_| {
                // SAFETY: pinned just above, under the lock.
                unsafe { bindings::dma_buf_unpin(attach) }
            })
        } else {
            Err(Error::from_errno(rc))
        };
        // SAFETY: locked above.
        unsafe { shim::iommufd_rs_dma_resv_unlock(resv) };
        let (paddr, _len) = match range {
            Ok(r) => r,
            Err(e) => {
                // SAFETY: our attachment, unused; then its state reference goes back.
                unsafe {
                    bindings::dma_buf_detach(dmabuf, attach);
                    drop(Arc::from_raw(priv_.cast::<DmaBufState>()));
                }
                return Err(e);
            }
        };
        let dmabuf = guard.into_raw();
        // INVARIANT: attached and pinned above; the reference is ours.
        Ok(Self {
            dmabuf,
            attach: NonNull::new(attach).ok_or(EINVAL)?,
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

impl Drop for DmaBufSrc {
    fn drop(&mut self) {
        let dmabuf = self.dmabuf.as_ptr();
        let attach = self.attach.as_ptr();
        // SAFETY: the type invariants: our pinned attachment of our referenced dma-buf. Unpin
        // under the reservation lock, detach, give back the importer data and the reference.
        unsafe {
            let priv_ = (*attach).importer_priv;
            let resv = (*dmabuf).resv;
            shim::iommufd_rs_dma_resv_lock(resv);
            bindings::dma_buf_unpin(attach);
            shim::iommufd_rs_dma_resv_unlock(resv);
            bindings::dma_buf_detach(dmabuf, attach);
            drop(Arc::from_raw(priv_.cast::<DmaBufState>()));
            bindings::dma_buf_put(dmabuf);
        }
    }
}

/// A dma-buf reference, put on drop unless handed on.
struct DmaBufRef(NonNull<bindings::dma_buf>);

impl DmaBufRef {
    fn into_raw(self) -> NonNull<bindings::dma_buf> {
        let p = self.0;
        core::mem::forget(self);
        p
    }
}

impl Drop for DmaBufRef {
    fn drop(&mut self) {
        // SAFETY: the reference this guard holds.
        unsafe { bindings::dma_buf_put(self.0.as_ptr()) };
    }
}
