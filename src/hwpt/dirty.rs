// SPDX-License-Identifier: GPL-2.0
//! Dirty tracking (upstream's `iopt_set_dirty_tracking()` and `iopt_read_and_clear_dirty_data()`):
//! a HWPT allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING` records device writes in its IOPTEs;
//! `IOMMU_HWPT_GET_DIRTY_BITMAP` reads (and by default clears) them into a user bitmap, one bit
//! per `page_size` from `iova`, for live migration.
//!
//! The user bitmap is walked by the kernel's `iova_bitmap` (it pins the user pages of the bitmap
//! a window at a time); for each window the driver's `read_and_clear_dirty()` walks the areas
//! under it. Everything happens under the IOAS lock, so the areas cannot change meanwhile. A
//! window that fails fails the ioctl, where upstream answers success (Documentation/design.rst,
//! "Where we are stricter than upstream").

use core::{
    ffi::c_void,
    mem::MaybeUninit, //
};
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_ulong, //
    },
    prelude::*,
};

use crate::{
    context::errno,
    context::ioctl::Ucmd,
    ffi::shim,
    ffi::uapi, //
    hwpt::HwptPaging,
    ioas::iopt::Iopt,
    pure::{
        span::Span,
        ulong::Ulong, //
    },
};

/// `IOMMU_DIRTY_NO_CLEAR`: the driver reads without clearing (same bit as the uAPI flag).
const DIRTY_NO_CLEAR: c_ulong = 1;

/// A dirty bitmap cursor and its IOTLB gather (`struct iommu_dirty_bitmap`): boxed, because the
/// gather's free list points at itself.
struct DirtyState {
    dirty: bindings::iommu_dirty_bitmap,
    gather: bindings::iommu_iotlb_gather,
}

impl DirtyState {
    fn new(bitmap: *mut bindings::iova_bitmap) -> Result<KBox<MaybeUninit<DirtyState>>> {
        let mut st = KBox::<DirtyState>::new_uninit(GFP_KERNEL)?;
        let p = st.as_mut_ptr();
        // SAFETY: `p` points at our allocation; the helper initializes both fields in place.
        unsafe {
            shim::iommufd_rs_dirty_bitmap_init(&raw mut (*p).dirty, bitmap, &raw mut (*p).gather)
        };
        Ok(st)
    }
}

/// Reads and clears the dirty bits of every area in `[start, last]`; `EINVAL` at a gap.
fn read_and_clear_areas(
    iopt: &Iopt,
    domain: *mut bindings::iommu_domain,
    start: u64,
    last: u64,
    flags: c_ulong,
    dirty: *mut bindings::iommu_dirty_bitmap,
) -> Result {
    // SAFETY: the HWPT holds the domain; its dirty ops are static.
    let read = unsafe { (*domain).dirty_ops.as_ref() }
        .and_then(|o| o.read_and_clear_dirty)
        .ok_or(errno::eopnotsupp())?;
    iopt.for_each_contig_ref(start, last, |first, end| {
        // The driver's `unsigned long` IOVA and `size_t` length.
        let (c_iova, c_len) = Ulong::NATIVE.narrow::<usize>(first, end - first + 1)?;
        // SAFETY: the driver contract: a live domain with dirty tracking, a range it maps, and
        // a bitmap cursor (or NULL bitmap) the caller initialized.
        let rc = unsafe { read(domain, c_iova, c_len, flags, dirty) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        Ok(())
    })
    .map_err(|e| if e == ENOENT { EINVAL } else { e })
}

/// What the `iova_bitmap` walk hands each window.
struct WalkArg<'a> {
    iopt: &'a Iopt,
    domain: *mut bindings::iommu_domain,
    flags: c_ulong,
    dirty: *mut bindings::iommu_dirty_bitmap,
}

/// `iova_bitmap_fn_t`: one window of the user bitmap.
///
/// # Safety
///
/// Called by `iova_bitmap_for_each()` with the `WalkArg` given to it.
unsafe extern "C" fn walk_window(
    _bitmap: *mut bindings::iova_bitmap,
    iova: c_ulong,
    length: usize,
    opaque: *mut c_void,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let arg = unsafe { &*opaque.cast::<WalkArg<'_>>() };
    let (Ok(iova), Ok(length)) = (u64::try_from(iova), u64::try_from(length)) else {
        return EOVERFLOW.to_errno();
    };
    let Some(span) = Span::from_len(iova, length) else {
        return EINVAL.to_errno();
    };
    match read_and_clear_areas(
        arg.iopt, arg.domain, span.start, span.last, arg.flags, arg.dirty,
    ) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `IOMMU_HWPT_SET_DIRTY_TRACKING`: starts (from a clean slate) or stops dirty tracking.
pub(crate) fn set_dirty_tracking_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_hwpt_set_dirty_tracking = ucmd.cmd()?;
    if cmd.flags & !uapi::IOMMU_HWPT_DIRTY_TRACKING_ENABLE != 0 {
        return Err(errno::eopnotsupp());
    }
    let hwpt = ucmd.ictx.objects.lock().get_hwpt_paging(cmd.hwpt_id)?;
    let enable = cmd.flags & uapi::IOMMU_HWPT_DIRTY_TRACKING_ENABLE != 0;
    set_dirty_tracking(&hwpt, enable)
}

fn set_dirty_tracking(hwpt: &HwptPaging, enable: bool) -> Result {
    let domain = hwpt.domain().as_raw();
    // SAFETY: the HWPT holds the domain; its dirty ops are static.
    let Some(ops) = (unsafe { (*domain).dirty_ops.as_ref() }) else {
        return Err(errno::eopnotsupp());
    };
    let set = ops.set_dirty_tracking.ok_or(errno::eopnotsupp())?;
    let iopt = hwpt.ioas.iopt.lock();
    if enable {
        // Clear what the IOPTEs recorded before, for a clean snapshot.
        let mut st = DirtyState::new(core::ptr::null_mut())?;
        let p = st.as_mut_ptr();
        let mut rc = Ok(());
        for (&iova, area) in iopt.areas.0.iter() {
            // SAFETY: initialized by `DirtyState::new`.
            let dirty = unsafe { &raw mut (*p).dirty };
            rc = read_and_clear_areas(&iopt, domain, iova, area.last, 0, dirty);
            if rc.is_err() {
                break;
            }
        }
        // SAFETY: the gather was initialized by `DirtyState::new` and filled by the driver.
        unsafe { shim::iommufd_rs_iotlb_sync(domain, &raw mut (*p).gather) };
        rc?;
    }
    // SAFETY: the driver contract: a live domain with dirty ops.
    let rc = unsafe { set(domain, enable) };
    if rc != 0 {
        return Err(Error::from_errno(rc));
    }
    Ok(())
}

/// `IOMMU_HWPT_GET_DIRTY_BITMAP`: the dirty bits of `[iova, iova + length)` into the user bitmap
/// at `data`, one bit per `page_size`.
pub(crate) fn get_dirty_bitmap_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_hwpt_get_dirty_bitmap = ucmd.cmd()?;
    if cmd.flags & !uapi::IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR != 0 || cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let hwpt = ucmd.ictx.objects.lock().get_hwpt_paging(cmd.hwpt_id)?;
    let domain = hwpt.domain().as_raw();
    let iopt = hwpt.ioas.iopt.lock();
    // Upstream's `iommufd_check_iova_range()`, with its bound at `ULONG_MAX`.
    Ulong::NATIVE.dirty_range(cmd.iova, cmd.length, iopt.iova_alignment, cmd.page_size)?;
    // What `iova_bitmap_alloc()` takes: `unsigned long` IOVA and page size, `size_t` length, a
    // user pointer. The range is inside the bound; the page size and pointer may not be.
    let c_iova = c_ulong::try_from(cmd.iova).map_err(|_| EOVERFLOW)?;
    let c_length = usize::try_from(cmd.length).map_err(|_| EOVERFLOW)?;
    let c_page_size = c_ulong::try_from(cmd.page_size).map_err(|_| EOVERFLOW)?;
    let c_data = usize::try_from(cmd.data).map_err(|_| EFAULT)?;
    // SAFETY: the HWPT holds the domain; its dirty ops are static.
    if unsafe { (*domain).dirty_ops.as_ref() }
        .and_then(|o| o.read_and_clear_dirty)
        .is_none()
    {
        return Err(errno::eopnotsupp());
    }
    // SAFETY: `iova_bitmap_alloc()` validates and pins the user bitmap itself.
    let bitmap = unsafe {
        bindings::iova_bitmap_alloc(
            c_iova,
            c_length,
            c_page_size,
            kernel::uaccess::UserPtr::from_addr(c_data)
                .as_mut_ptr()
                .cast(),
        )
    };
    let bitmap = kernel::error::from_err_ptr(bitmap).map_err(|_| ENOMEM)?;
    let mut st = match DirtyState::new(bitmap) {
        Ok(st) => st,
        Err(e) => {
            // SAFETY: allocated above, not used since.
            unsafe { bindings::iova_bitmap_free(bitmap) };
            return Err(e);
        }
    };
    let p = st.as_mut_ptr();
    let flags = if cmd.flags & uapi::IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR != 0 {
        DIRTY_NO_CLEAR
    } else {
        0
    };
    let arg = WalkArg {
        iopt: &iopt,
        domain,
        flags,
        // SAFETY: initialized by `DirtyState::new`.
        dirty: unsafe { &raw mut (*p).dirty },
    };
    // SAFETY: `bitmap` is live; `arg` outlives the walk.
    let rc = unsafe {
        bindings::iova_bitmap_for_each(
            bitmap,
            (&raw const arg).cast_mut().cast(),
            Some(walk_window),
        )
    };
    if flags & DIRTY_NO_CLEAR == 0 {
        // What was cleared before a failure is flushed all the same.
        // SAFETY: the gather was initialized by `DirtyState::new` and filled by the driver.
        unsafe { shim::iommufd_rs_iotlb_sync(domain, &raw mut (*p).gather) };
    }
    // SAFETY: allocated above; the walk is over.
    unsafe { bindings::iova_bitmap_free(bitmap) };
    // Stricter than upstream, which drops this: a window that failed (a gap in the IOVA range,
    // the driver, pinning the user bitmap) left its bits unreported, and a VMM that took that
    // for "clean" would lose dirty pages in a migration.
    if rc != 0 {
        return Err(Error::from_errno(rc));
    }
    Ok(())
}
