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

use kernel::prelude::*;

use crate::{
    abstractions::iommu::dirty::{
        DirtyGather,
        IovaBitmap, //
    },
    context::errno,
    context::ioctl::Ucmd,
    ffi::uapi, //
    hwpt::HwptPaging,
    ioas::iopt::Iopt,
    pure::{
        span::Span,
        ulong::Ulong, //
    },
};

/// Reads and clears the dirty bits of every area in `[start, last]`; `EINVAL` at a gap.
fn read_and_clear_areas(
    iopt: &Iopt,
    gather: &mut DirtyGather<'_>,
    start: u64,
    last: u64,
) -> Result {
    iopt.for_each_contig_ref(start, last, |first, end| {
        // The driver's `unsigned long` IOVA and `size_t` length.
        let (c_iova, c_len) = Ulong::NATIVE.narrow::<usize>(first, end - first + 1)?;
        gather.read_and_clear(c_iova, c_len)
    })
    .map_err(|e| if e == ENOENT { EINVAL } else { e })
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
    let domain = hwpt.domain();
    if !domain.can_track_dirty() {
        return Err(errno::eopnotsupp());
    }
    let iopt = hwpt.ioas.iopt.lock();
    if enable {
        // Clear what the IOPTEs recorded before, for a clean snapshot.
        let mut gather = DirtyGather::clear_only(domain)?;
        let mut rc = Ok(());
        for (&iova, area) in iopt.areas.0.iter() {
            rc = read_and_clear_areas(&iopt, &mut gather, iova, area.last);
            if rc.is_err() {
                break;
            }
        }
        gather.sync();
        rc?;
    }
    domain.set_dirty_tracking(enable)
}

/// `IOMMU_HWPT_GET_DIRTY_BITMAP`: the dirty bits of `[iova, iova + length)` into the user bitmap
/// at `data`, one bit per `page_size`.
pub(crate) fn get_dirty_bitmap_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_hwpt_get_dirty_bitmap = ucmd.cmd()?;
    if cmd.flags & !uapi::IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR != 0 || cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let hwpt = ucmd.ictx.objects.lock().get_hwpt_paging(cmd.hwpt_id)?;
    let domain = hwpt.domain();
    let iopt = hwpt.ioas.iopt.lock();
    // Upstream's `iommufd_check_iova_range()`, with its bound at `ULONG_MAX`.
    Ulong::NATIVE.dirty_range(cmd.iova, cmd.length, iopt.iova_alignment, cmd.page_size)?;
    // What `iova_bitmap_alloc()` takes: `unsigned long` IOVA and page size, `size_t` length, a
    // user pointer. The range is inside the bound; the page size and pointer may not be.
    let c_iova = usize::try_from(cmd.iova).map_err(|_| EOVERFLOW)?;
    let c_length = usize::try_from(cmd.length).map_err(|_| EOVERFLOW)?;
    let c_page_size = usize::try_from(cmd.page_size).map_err(|_| EOVERFLOW)?;
    let c_data = usize::try_from(cmd.data).map_err(|_| EFAULT)?;
    if !domain.can_read_dirty() {
        return Err(errno::eopnotsupp());
    }
    let mut bitmap = IovaBitmap::new(c_iova, c_length, c_page_size, c_data)?;
    let clear = cmd.flags & uapi::IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR == 0;
    // Stricter than upstream, which drops this: a window that failed (a gap in the IOVA range,
    // the driver, pinning the user bitmap) left its bits unreported, and a VMM that took that
    // for "clean" would lose dirty pages in a migration.
    bitmap.walk(domain, clear, |gather, iova, length| {
        let span = Span::from_len(iova, length).ok_or(EINVAL)?;
        read_and_clear_areas(&iopt, gather, span.start, span.last)
    })
}
