// SPDX-License-Identifier: GPL-2.0
//! VFIO type1 compatibility (upstream's vfio_compat.c): `/dev/iommu` answers the VFIO container
//! ioctls (`VFIO_SET_IOMMU`, `VFIO_IOMMU_MAP_DMA`, ...) on one IOAS of the context, the compat
//! IOAS, so a VMM written for `/dev/vfio/vfio` works unchanged when handed `/dev/iommu`.
//! `IOMMU_VFIO_IOAS` names that IOAS; VFIO's container code creates one when a group attaches.
//!
//! Type1 (v1) may unmap part of a mapping: it runs with huge pages off, and the unmap cuts the
//! areas at its ends first.

use core::mem::size_of;
use kernel::{
    bindings,
    ioctl::_IO,
    page::PAGE_SIZE,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::file::{
        capable,
        Capability, //
    },
    context::errno,
    context::ictx::Ictx,
    context::ioctl::Ucmd,
    context::object::InUse,
    ffi::uapi::{
        self,
        vfio as v, //
    },
    ioas::Ioas,
    pages::Source,
    pure::{
        iova,
        ulong::Ulong, //
    },
};

const fn vfio_io(nr: u32) -> u32 {
    _IO(v::VFIO_TYPE as u32, v::VFIO_BASE + nr)
}

const VFIO_GET_API_VERSION: u32 = vfio_io(0);
const VFIO_CHECK_EXTENSION: u32 = vfio_io(1);
const VFIO_SET_IOMMU: u32 = vfio_io(2);
const VFIO_IOMMU_GET_INFO: u32 = vfio_io(12);
const VFIO_IOMMU_MAP_DMA: u32 = vfio_io(13);
const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_io(14);

/// The compat IOAS, in use; `ENODEV` without one (VFIO: no group attached).
fn compat_ioas(ictx: &Ictx) -> Result<InUse<Ioas>> {
    let objects = ictx.objects.lock();
    let id = objects.vfio_ioas.ok_or(ENODEV)?;
    objects.get_ioas(id).map_err(|_| ENODEV)
}

/// `IOMMU_VFIO_IOAS`: get, set or clear the compat IOAS.
pub(crate) fn vfio_ioas_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_vfio_ioas = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    match u32::from(cmd.op) {
        uapi::IOMMU_VFIO_IOAS_GET => {
            let id = {
                let objects = ucmd.ictx.objects.lock();
                let id = objects.vfio_ioas.ok_or(ENODEV)?;
                objects.get_ioas(id).map_err(|_| ENODEV)?;
                id
            };
            cmd.ioas_id = id;
            ucmd.respond(&cmd)
        }
        uapi::IOMMU_VFIO_IOAS_SET => {
            let _ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
            ucmd.ictx.objects.lock().vfio_ioas = Some(cmd.ioas_id);
            Ok(())
        }
        uapi::IOMMU_VFIO_IOAS_CLEAR => {
            ucmd.ictx.objects.lock().vfio_ioas = None;
            Ok(())
        }
        _ => Err(errno::eopnotsupp()),
    }
}

/// The VFIO container ioctls, for command numbers outside the iommufd range.
pub(crate) fn ioctl(ictx: &Ictx, cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        VFIO_GET_API_VERSION => Ok(v::VFIO_API_VERSION as isize),
        VFIO_SET_IOMMU => set_iommu(ictx, arg).map(|()| 0),
        VFIO_CHECK_EXTENSION => Ok(check_extension(ictx, arg)),
        VFIO_IOMMU_GET_INFO => get_info(ictx, arg).map(|()| 0),
        VFIO_IOMMU_MAP_DMA => map_dma(ictx, UserPtr::from_addr(arg)).map(|()| 0),
        VFIO_IOMMU_UNMAP_DMA => unmap_dma(ictx, UserPtr::from_addr(arg)).map(|()| 0),
        _ => Err(ENOTTY),
    }
}

/// Reads the first `min` bytes of a VFIO struct (the rest reads as zero).
fn read_min<T: FromBytes + AsBytes + Default>(arg: UserPtr, min: usize) -> Result<T> {
    let mut v = T::default();
    let bytes = v.as_bytes_mut();
    UserSlice::new(arg, min)
        .reader()
        .read_slice(&mut bytes[..min])?;
    Ok(v)
}

fn map_dma(ictx: &Ictx, arg: UserPtr) -> Result {
    let min = size_of::<v::vfio_iommu_type1_dma_map>();
    let map: v::vfio_iommu_type1_dma_map = read_min(arg, min)?;
    let supported = v::VFIO_DMA_MAP_FLAG_READ | v::VFIO_DMA_MAP_FLAG_WRITE;
    if (map.argsz as usize) < min || map.flags & !supported != 0 {
        return Err(EINVAL);
    }
    let mut prot = bindings::IOMMU_CACHE;
    if map.flags & v::VFIO_DMA_MAP_FLAG_READ != 0 {
        prot |= bindings::IOMMU_READ;
    }
    if map.flags & v::VFIO_DMA_MAP_FLAG_WRITE != 0 {
        prot |= bindings::IOMMU_WRITE;
    }
    let ioas = compat_ioas(ictx)?;
    // `EOVERFLOW` for a range that wraps, `EINVAL` for none or one with no room for its page
    // count, as the MAP of the same memory.
    crate::ioas::check_user_range(map.vaddr, map.size)?;
    let account_mm = ictx.objects.lock().account_mm;
    // Fixed IOVA, as type1.
    crate::ioas::map_pages(
        &ioas,
        Source::User,
        account_mm,
        map.vaddr,
        map.size,
        uapi::IOMMU_IOAS_MAP_FIXED_IOVA,
        map.iova,
        prot,
    )
    .map(|_| ())
}

fn unmap_dma(ictx: &Ictx, arg: UserPtr) -> Result {
    // The struct ends in a flexible array: its size is the mandatory part.
    let min = size_of::<v::vfio_iommu_type1_dma_unmap>();
    let mut unmap: v::vfio_iommu_type1_dma_unmap = read_min(arg, min)?;
    if (unmap.argsz as usize) < min || unmap.flags & !v::VFIO_DMA_UNMAP_FLAG_ALL != 0 {
        return Err(EINVAL);
    }
    let ioas = compat_ioas(ictx)?;
    let unmapped = if unmap.flags & v::VFIO_DMA_UNMAP_FLAG_ALL != 0 {
        if unmap.iova != 0 || unmap.size != 0 {
            return Err(EINVAL);
        }
        ioas.unmap(Ulong::NATIVE.whole())?
    } else {
        if unmap.size == 0 {
            return Err(EINVAL);
        }
        // Upstream takes both as `unsigned long`: `EOVERFLOW` past `ULONG_MAX`.
        let range = Ulong::NATIVE.span(unmap.iova, unmap.size)?;
        {
            let mut iopt = ioas.iopt.lock();
            if iopt.disable_large_pages {
                // Type1 unmaps inside mappings: cut the areas at both ends first.
                iopt.cut_after(range.last)?;
                if let Some(before) = range.start.checked_sub(1) {
                    iopt.cut_after(before)?;
                }
            }
        }
        ioas.unmap(range)?
    };
    unmap.size = unmapped;
    UserSlice::new(arg, min).writer().write(&unmap)
}

fn check_extension(ictx: &Ictx, kind: usize) -> isize {
    let no_iommu = ictx.objects.lock().no_iommu_mode;
    match u32::try_from(kind) {
        Ok(v::VFIO_TYPE1_IOMMU | v::VFIO_TYPE1v2_IOMMU | v::VFIO_UNMAP_ALL) => {
            isize::from(!no_iommu)
        }
        Ok(v::VFIO_NOIOMMU_IOMMU) => isize::from(cfg!(CONFIG_VFIO_NOIOMMU)),
        // Whether DMA through the compat IOAS keeps caches coherent whatever the device asks:
        // only if every domain on it enforces that (none enforce it without a device whose
        // IOMMU can).
        Ok(v::VFIO_DMA_CC_IOMMU) => match compat_ioas(ictx) {
            Ok(ioas) => isize::from(ictx.objects.lock().all_paging_on(&ioas, |h| h.enforce_cc)),
            Err(e) => e.to_errno() as isize,
        },
        _ => 0,
    }
}

fn set_iommu(ictx: &Ictx, kind: usize) -> Result {
    let no_iommu = ictx.objects.lock().no_iommu_mode;
    let kind = u32::try_from(kind).map_err(|_| EINVAL)?;
    if cfg!(CONFIG_VFIO_NOIOMMU) && kind == v::VFIO_NOIOMMU_IOMMU && no_iommu {
        if !capable(Capability::SysRawio) {
            return Err(EPERM);
        }
        return Ok(());
    }
    if (kind != v::VFIO_TYPE1_IOMMU && kind != v::VFIO_TYPE1v2_IOMMU) || no_iommu {
        return Err(EINVAL);
    }
    let ioas = compat_ioas(ictx)?;
    // Type1 (v1) may unmap inside a mapping, which a huge IOPTE could not honour.
    if kind == v::VFIO_TYPE1_IOMMU {
        ioas.iopt.lock().disable_huge_pages()?;
    }
    Ok(())
}

/// Page sizes every domain of the IOAS maps, at least the IOAS alignment (type1's
/// `iova_pgsizes`).
fn page_sizes(ioas: &Ioas) -> u64 {
    let iopt = ioas.iopt.lock();
    let mut bitmap = u64::MAX;
    for d in iopt.domains.iter() {
        bitmap &= d.pgsize_bitmap();
    }
    let page = PAGE_SIZE as u64;
    if bitmap & (page - 1) != 0 {
        bitmap &= !(page - 1);
        bitmap |= page;
    }
    bitmap.max(iopt.iova_alignment)
}

/// Bytes of the IOVA range capability with `n` ranges.
const fn iova_cap_size(n: usize) -> usize {
    16 + n * size_of::<v::vfio_iova_range>()
}

fn get_info(ictx: &Ictx, base: usize) -> Result {
    let arg = UserPtr::from_addr(base);
    let min = core::mem::offset_of!(v::vfio_iommu_type1_info, cap_offset);
    let mut info: v::vfio_iommu_type1_info = read_min(arg, min)?;
    let argsz = info.argsz as usize;
    if argsz < min {
        return Err(EINVAL);
    }
    let out_len = argsz.min(size_of::<v::vfio_iommu_type1_info>());
    let ioas = compat_ioas(ictx)?;
    info.flags = v::VFIO_IOMMU_INFO_PGSIZES;
    info.iova_pgsizes = page_sizes(&ioas);
    info.cap_offset = 0;

    // The usable IOVA ranges, snapshot under the lock, written after.
    let mut ranges = KVec::new();
    {
        let iopt = ioas.iopt.lock();
        for span in iova::usable_ranges(&iopt.reserved, Ulong::NATIVE) {
            ranges.push(span, GFP_KERNEL)?;
        }
    }
    let write_at = |off: usize, bytes: &[u8]| -> Result {
        let addr = base.checked_add(off).ok_or(EFAULT)?;
        UserSlice::new(UserPtr::from_addr(addr), bytes.len())
            .writer()
            .write_slice(bytes)
    };
    // Capabilities after the struct, each 8-byte aligned and chained by `next`: the DMA-avail
    // one, then the IOVA ranges. Only what fits in `argsz` is written; `argsz` comes back as the
    // size all of them need.
    let dma_off = size_of::<v::vfio_iommu_type1_info>();
    let dma = v::vfio_iommu_type1_info_dma_avail {
        header: v::vfio_info_cap_header {
            id: v::VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL as u16,
            version: 1,
            next: 0,
        },
        // iommufd's limit is the memory cgroup's; what VFIO would report, raised for s390.
        avail: u32::MAX,
    };
    let dma_size = size_of::<v::vfio_iommu_type1_info_dma_avail>();
    let iova_off = dma_off + dma_size.next_multiple_of(8);
    let iova_size = iova_cap_size(ranges.len());
    let total = iova_off + iova_size.next_multiple_of(8);
    if argsz >= dma_off + dma_size {
        let mut cap = dma;
        if argsz >= iova_off {
            cap.header.next = iova_off as u32;
        }
        write_at(dma_off, cap.as_bytes())?;
    }
    // Ranges first (each only if it fits), then the header once the whole cap fits.
    for (i, r) in ranges.iter().enumerate() {
        if argsz >= iova_off + iova_cap_size(i + 1) {
            let range = v::vfio_iova_range {
                start: r.start,
                end: r.last,
            };
            write_at(iova_off + iova_cap_size(i), range.as_bytes())?;
        }
    }
    if argsz >= iova_off + iova_size {
        let mut head = [0u8; 16];
        head[0..2].copy_from_slice(&(v::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE as u16).to_ne_bytes());
        head[2..4].copy_from_slice(&1u16.to_ne_bytes());
        head[8..12].copy_from_slice(&(ranges.len() as u32).to_ne_bytes());
        write_at(iova_off, &head)?;
    }
    if argsz >= total {
        info.cap_offset = dma_off as u32;
    }
    info.argsz = u32::try_from(total).map_err(|_| EOVERFLOW)?;
    info.flags |= v::VFIO_IOMMU_INFO_CAPS;
    write_at(0, &info.as_bytes()[..out_len])
}
