// SPDX-License-Identifier: GPL-2.0
//! Dirty tracking of IOMMU domains (`struct iommu_dirty_ops`): starting and stopping it, and
//! reading (and clearing) the dirty bits the IOPTEs recorded into a user bitmap walked by the
//! kernel's `iova_bitmap` (which pins the user pages of the bitmap a window at a time).
//!
//! A read goes through a [`DirtyGather`]: the driver's cursor into the bitmap
//! (`struct iommu_dirty_bitmap`) and the IOTLB gather it queues flushes on, synced once at the
//! end (`iommu_iotlb_sync()`).

use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_ulong, //
    },
    prelude::*,
};

use super::domain::Domain;
use crate::context::errno;

/// `IOMMU_DIRTY_NO_CLEAR`: the driver reads without clearing.
const DIRTY_NO_CLEAR: c_ulong = bindings::IOMMU_DIRTY_NO_CLEAR as c_ulong;

impl Domain {
    /// Whether the driver can start and stop dirty tracking (`set_dirty_tracking`).
    pub(crate) fn can_track_dirty(&self) -> bool {
        self.dirty_ops()
            .and_then(|o| o.set_dirty_tracking)
            .is_some()
    }

    /// Whether the driver can read the domain's dirty bits (`read_and_clear_dirty`).
    pub(crate) fn can_read_dirty(&self) -> bool {
        self.dirty_ops()
            .and_then(|o| o.read_and_clear_dirty)
            .is_some()
    }

    /// Starts or stops dirty tracking (`set_dirty_tracking()`): `EOPNOTSUPP` if the domain has
    /// no dirty ops.
    pub(crate) fn set_dirty_tracking(&self, enable: bool) -> Result {
        let set = self
            .dirty_ops()
            .and_then(|o| o.set_dirty_tracking)
            .ok_or(errno::eopnotsupp())?;
        // SAFETY: the driver contract: a live domain (`Domain`'s invariant) with dirty ops.
        kernel::error::to_result(unsafe { set(self.as_raw(), enable) })
    }
}

/// The driver's cursor and IOTLB gather (`struct iommu_dirty_bitmap`, `iommu_iotlb_gather`):
/// boxed, because the gather's free list points at itself.
struct DirtyState {
    dirty: bindings::iommu_dirty_bitmap,
    gather: bindings::iommu_iotlb_gather,
}

/// The driver's `read_and_clear_dirty` op.
type ReadDirty = unsafe extern "C" fn(
    *mut bindings::iommu_domain,
    c_ulong,
    usize,
    c_ulong,
    *mut bindings::iommu_dirty_bitmap,
) -> c_int;

/// A dirty read in progress on one domain: it records into a user bitmap, or, without one,
/// only clears.
///
/// # Invariants
///
/// `state` was initialized by `iommu_dirty_bitmap_init()` with the bitmap of `'a` (or none),
/// and `read` is the domain's `read_and_clear_dirty` op.
pub(crate) struct DirtyGather<'a> {
    domain: &'a Domain,
    read: Option<ReadDirty>,
    flags: c_ulong,
    state: KBox<MaybeUninit<DirtyState>>,
    _bitmap: PhantomData<&'a IovaBitmap>,
}

impl<'a> DirtyGather<'a> {
    /// A read of `domain` into `bitmap` (`None`: clear only), clearing what it reads unless
    /// `clear` is false.
    fn new(domain: &'a Domain, bitmap: *mut bindings::iova_bitmap, clear: bool) -> Result<Self> {
        let read = domain.dirty_ops().and_then(|o| o.read_and_clear_dirty);
        let mut state = KBox::<DirtyState>::new_uninit(GFP_KERNEL)?;
        let p = state.as_mut_ptr();
        // SAFETY: `p` points at our allocation; the helper initializes both fields in place.
        unsafe {
            crate::ffi::shim::iommufd_rs_dirty_bitmap_init(
                &raw mut (*p).dirty,
                bitmap,
                &raw mut (*p).gather,
            )
        };
        // INVARIANT: initialized above, with the op of `domain`.
        Ok(Self {
            domain,
            read,
            flags: if clear { 0 } else { DIRTY_NO_CLEAR },
            state,
            _bitmap: PhantomData,
        })
    }

    /// Clears the dirty bits of `domain` without recording them (before tracking starts, for a
    /// clean slate); [`Self::sync`] flushes what was cleared.
    pub(crate) fn clear_only(domain: &'a Domain) -> Result<Self> {
        Self::new(domain, core::ptr::null_mut(), true)
    }

    /// Reads (and unless told not to, clears) the dirty bits of `[iova, iova + size)`, which the
    /// domain maps, into the bitmap (`read_and_clear_dirty()`): `EOPNOTSUPP` if the domain
    /// cannot read dirty bits.
    pub(crate) fn read_and_clear(&mut self, iova: usize, size: usize) -> Result {
        let read = self.read.ok_or(errno::eopnotsupp())?;
        let p = self.state.as_mut_ptr();
        // SAFETY: the driver contract: a live domain with dirty tracking, and a cursor
        // initialized for it (the type invariant); a bitmap cursor is only used while its
        // bitmap's walk maps the window (`IovaBitmap::walk` hands it out only there).
        let rc = unsafe {
            read(
                self.domain.as_raw(),
                iova,
                size,
                self.flags,
                &raw mut (*p).dirty,
            )
        };
        kernel::error::to_result(rc)
    }

    /// Flushes the IOTLB entries of what was cleared (`iommu_iotlb_sync()`).
    pub(crate) fn sync(&mut self) {
        let p = self.state.as_mut_ptr();
        // SAFETY: the gather was initialized (the type invariant) and filled by the domain's
        // driver only.
        unsafe {
            crate::ffi::shim::iommufd_rs_iotlb_sync(self.domain.as_raw(), &raw mut (*p).gather)
        };
    }
}

/// A user bitmap of dirty bits, one per `page_size` from `iova` (`struct iova_bitmap`), freed
/// with `iova_bitmap_free()`.
///
/// # Invariants
///
/// `self.0` came from `iova_bitmap_alloc()` and is ours to free.
pub(crate) struct IovaBitmap(NonNull<bindings::iova_bitmap>);

impl IovaBitmap {
    /// The bitmap at user address `data` for `length` bytes of IOVA from `iova`
    /// (`iova_bitmap_alloc()`, which validates the user pointer): `ENOMEM` if it fails.
    pub(crate) fn new(
        iova: c_ulong,
        length: usize,
        page_size: c_ulong,
        data: usize,
    ) -> Result<Self> {
        let user = kernel::uaccess::UserPtr::from_addr(data)
            .as_mut_ptr()
            .cast();
        // SAFETY: `iova_bitmap_alloc()` validates and pins the user bitmap itself.
        let raw = unsafe { bindings::iova_bitmap_alloc(iova, length, page_size, user) };
        let raw = kernel::error::from_err_ptr(raw).map_err(|_| ENOMEM)?;
        // INVARIANT: a new bitmap, ours.
        NonNull::new(raw).map(Self).ok_or(ENOMEM)
    }

    /// Reads the dirty bits of `domain` into the bitmap a window at a time
    /// (`iova_bitmap_for_each()`): `f(gather, iova, length)` per window, which reads the pieces
    /// the domain maps there through `gather`. With `clear`, the bits read are cleared and their
    /// IOTLB entries flushed at the end (also after a failure). The first error of a window
    /// (or of pinning it) fails the walk.
    pub(crate) fn walk<F: FnMut(&mut DirtyGather<'_>, u64, u64) -> Result>(
        &mut self,
        domain: &Domain,
        clear: bool,
        f: F,
    ) -> Result {
        let mut gather = DirtyGather::new(domain, self.0.as_ptr(), clear)?;
        let mut arg = WalkArg {
            gather: &mut gather,
            f,
        };
        // SAFETY: a live bitmap (the type invariant); `arg` outlives the walk and is what the
        // callback is generic over.
        let rc = unsafe {
            bindings::iova_bitmap_for_each(
                self.0.as_ptr(),
                (&raw mut arg).cast(),
                Some(walk_window::<F>),
            )
        };
        if clear {
            // What was cleared before a failure is flushed all the same.
            gather.sync();
        }
        kernel::error::to_result(rc)
    }
}

impl Drop for IovaBitmap {
    fn drop(&mut self) {
        // SAFETY: the type invariant: ours to free; no walk is running (it borrows `self`).
        unsafe { bindings::iova_bitmap_free(self.0.as_ptr()) };
    }
}

/// What the `iova_bitmap` walk hands each window.
struct WalkArg<'g, 'a, F> {
    gather: &'g mut DirtyGather<'a>,
    f: F,
}

/// `iova_bitmap_fn_t`: one window of the user bitmap.
///
/// # Safety
///
/// Called by `iova_bitmap_for_each()` with the `WalkArg<F>` given to it, during the walk.
unsafe extern "C" fn walk_window<F: FnMut(&mut DirtyGather<'_>, u64, u64) -> Result>(
    _bitmap: *mut bindings::iova_bitmap,
    iova: c_ulong,
    length: usize,
    opaque: *mut c_void,
) -> c_int {
    // SAFETY: the caller's guarantee; the walk runs one window at a time.
    let arg = unsafe { &mut *opaque.cast::<WalkArg<'_, '_, F>>() };
    let (Ok(iova), Ok(length)) = (u64::try_from(iova), u64::try_from(length)) else {
        return EOVERFLOW.to_errno();
    };
    match (arg.f)(arg.gather, iova, length) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
