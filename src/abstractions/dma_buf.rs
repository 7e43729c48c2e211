// SPDX-License-Identifier: GPL-2.0
//! dma-bufs (`include/linux/dma-buf.h`) as an importer sees them: a reference on a dma-buf, and a
//! dynamic attachment to it, pinned, whose exporter may invalidate it, with the importer's
//! `invalidate_mappings` callback behind the [`Importer`] trait.
//!
//! Also the physical range vfio-pci exports a device BAR's dma-buf as, for a pinned attachment.

use core::{
    marker::PhantomData,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    device::Device,
    prelude::*,
    sync::Arc, //
};

use crate::ffi::shim;

/// A reference on a dma-buf.
///
/// # Invariants
///
/// `0` is a dma-buf we hold a reference on (`dma_buf_get()`), put on drop.
pub(crate) struct DmaBuf(NonNull<bindings::dma_buf>);

// SAFETY: the dma-buf API is callable from any thread; a reference may be put from any.
unsafe impl Send for DmaBuf {}
// SAFETY: as above; shared use only reads fields fixed at export.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// The dma-buf of fd `fd`, referenced; an error if `fd` is not one.
    pub(crate) fn get(fd: i32) -> Result<Self> {
        // SAFETY: `dma_buf_get()` takes any fd number and returns an error pointer or a
        // reference.
        let p = kernel::error::from_err_ptr(unsafe { bindings::dma_buf_get(fd) })?;
        // INVARIANT: a reference `dma_buf_get()` took for us.
        NonNull::new(p).map(Self).ok_or(EINVAL)
    }

    /// Its size in bytes.
    #[inline]
    pub(crate) fn size(&self) -> usize {
        // SAFETY: referenced (type invariant); `size` is fixed at export.
        unsafe { (*self.0.as_ptr()).size }
    }

    fn as_raw(&self) -> *mut bindings::dma_buf {
        self.0.as_ptr()
    }

    /// Runs `f` under the dma-buf's reservation lock.
    fn with_resv_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: referenced (type invariant); its reservation object lives with it.
        let resv = unsafe { (*self.as_raw()).resv };
        // SAFETY: locking without an acquire context cannot fail with EDEADLK.
        unsafe { shim::iommufd_rs_dma_resv_lock(resv) };
        let r = f();
        // SAFETY: locked above, by this thread.
        unsafe { shim::iommufd_rs_dma_resv_unlock(resv) };
        r
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: the reference the type invariant says we hold.
        unsafe { bindings::dma_buf_put(self.0.as_ptr()) };
    }
}

/// The importer side of a dynamic attachment (`struct dma_buf_attach_ops`).
pub(crate) trait Importer: Send + Sync {
    /// Whether the importer can take peer-to-peer memory (another device's BAR).
    const ALLOW_PEER2PEER: bool;

    /// `invalidate_mappings`: the exporter moves or revokes the buffer. Called by the dma-buf
    /// core with the dma-buf's reservation lock held.
    fn invalidate_mappings(&self);
}

/// The `dma_buf_attach_ops` of importer `T`.
struct Adapter<T: Importer>(PhantomData<T>);

impl<T: Importer> Adapter<T> {
    const OPS: bindings::dma_buf_attach_ops = bindings::dma_buf_attach_ops {
        allow_peer2peer: T::ALLOW_PEER2PEER,
        invalidate_mappings: Some(Self::invalidate_mappings),
    };

    /// # Safety
    ///
    /// Called by the dma-buf core on an attachment [`PinnedAttachment::new`] made for `T`.
    unsafe extern "C" fn invalidate_mappings(attach: *mut bindings::dma_buf_attachment) {
        // SAFETY: the attachment is live while the core calls its ops; its importer data is the
        // `Arc<T>` reference `PinnedAttachment::new` handed over, given back only after detach.
        let importer = unsafe { &*(*attach).importer_priv.cast::<T>() };
        importer.invalidate_mappings();
    }
}

/// A pinned attachment under its dma-buf's reservation lock: what an exporter's range lookup
/// takes.
///
/// # Invariants
///
/// `attach` is a live, pinned attachment whose dma-buf's reservation lock is held for `'a`.
pub(crate) struct LockedAttachment<'a> {
    attach: *mut bindings::dma_buf_attachment,
    _lock: PhantomData<&'a ()>,
}

impl LockedAttachment<'_> {
    /// The C attachment, for exporter hooks that take one.
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::dma_buf_attachment {
        self.attach
    }

    /// The physical range (address, length) vfio-pci exports the attachment's dma-buf as (a
    /// device BAR, `VFIO_DEVICE_FEATURE_DMA_BUF`); `EOPNOTSUPP` when vfio-pci is not loaded, has
    /// no dma-buf export, or did not export this dma-buf.
    pub(crate) fn vfio_pci_range(&self) -> Result<(u64, u64)> {
        let (mut paddr, mut len) = (0u64, 0u64);
        // SAFETY: a live attachment under its dma-buf's reservation lock (type invariant), as
        // `vfio_pci_dma_buf_iommufd_map()` requires; the outputs are ours to write.
        let rc = unsafe { shim::iommufd_rs_vfio_dmabuf_range(self.attach, &mut paddr, &mut len) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        Ok((paddr, len))
    }
}

/// A dynamic attachment to a dma-buf, pinned, with importer `T`.
///
/// # Invariants
///
/// `attach` is a pinned attachment of `dmabuf` made with `Adapter::<T>::OPS`, whose importer
/// data is an `Arc<T>` reference we hold.
pub(crate) struct PinnedAttachment<T: Importer> {
    dmabuf: DmaBuf,
    attach: NonNull<bindings::dma_buf_attachment>,
    _importer: PhantomData<Arc<T>>,
}

// SAFETY: the dma-buf API is callable from any thread; `T` is `Send + Sync`.
unsafe impl<T: Importer> Send for PinnedAttachment<T> {}
// SAFETY: as above; shared use touches nothing.
unsafe impl<T: Importer> Sync for PinnedAttachment<T> {}

impl<T: Importer> PinnedAttachment<T> {
    /// Attaches `dev` to `dmabuf` dynamically with `importer` (`dma_buf_dynamic_attach()`), pins
    /// the attachment (`dma_buf_pin()`) and runs `f` on it, all under the reservation lock; on
    /// any failure the attachment goes again. The reference on `dmabuf` is the attachment's
    /// (or put on failure).
    pub(crate) fn new<R>(
        dmabuf: DmaBuf,
        dev: &Device,
        importer: Arc<T>,
        f: impl FnOnce(&LockedAttachment<'_>) -> Result<R>,
    ) -> Result<(Self, R)> {
        let dev = core::ptr::from_ref(dev)
            .cast_mut()
            .cast::<bindings::device>();
        let priv_ = Arc::into_raw(importer).cast_mut().cast();
        // SAFETY: a referenced dma-buf, a live device (`Device` is a transparent wrapper of the
        // C struct), static ops for `T`; the importer data is a `T` reference, given back after
        // detach.
        let attach = unsafe {
            bindings::dma_buf_dynamic_attach(dmabuf.as_raw(), dev, &Adapter::<T>::OPS, priv_)
        };
        let attach =
            kernel::error::from_err_ptr(attach).and_then(|a| NonNull::new(a).ok_or(EINVAL));
        let attach = match attach {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: not handed over.
                drop(unsafe { Arc::from_raw(priv_.cast::<T>()) });
                return Err(e);
            }
        };
        let r = dmabuf.with_resv_lock(|| {
            // SAFETY: the reservation lock is held, as `dma_buf_pin()` requires.
            let rc = unsafe { bindings::dma_buf_pin(attach.as_ptr()) };
            if rc != 0 {
                return Err(Error::from_errno(rc));
            }
            // INVARIANT: pinned, and the lock is held while `f` runs.
            let locked = LockedAttachment {
                attach: attach.as_ptr(),
                _lock: PhantomData,
            };
            f(&locked).inspect_err(|_| {
                // SAFETY: pinned just above, under the lock.
                unsafe { bindings::dma_buf_unpin(attach.as_ptr()) }
            })
        });
        match r {
            // INVARIANT: attached with `T`'s ops and pinned above; the importer reference and
            // the dma-buf reference are ours.
            Ok(r) => Ok((
                Self {
                    dmabuf,
                    attach,
                    _importer: PhantomData,
                },
                r,
            )),
            Err(e) => {
                // SAFETY: our attachment, unpinned and unused; then its importer reference goes
                // back. The dma-buf reference is put as `dmabuf` drops.
                unsafe {
                    bindings::dma_buf_detach(dmabuf.as_raw(), attach.as_ptr());
                    drop(Arc::from_raw(priv_.cast::<T>()));
                }
                Err(e)
            }
        }
    }
}

impl<T: Importer> Drop for PinnedAttachment<T> {
    fn drop(&mut self) {
        let attach = self.attach.as_ptr();
        self.dmabuf.with_resv_lock(|| {
            // SAFETY: our pinned attachment (type invariant), unpinned under the reservation
            // lock.
            unsafe { bindings::dma_buf_unpin(attach) }
        });
        // SAFETY: the type invariants: our attachment of our dma-buf, unpinned above; after the
        // detach no callback runs, so the importer reference can go back. The dma-buf reference
        // is put as `self.dmabuf` drops, after this.
        unsafe {
            let priv_ = (*attach).importer_priv;
            bindings::dma_buf_detach(self.dmabuf.as_raw(), attach);
            drop(Arc::from_raw(priv_.cast::<T>()));
        }
    }
}
