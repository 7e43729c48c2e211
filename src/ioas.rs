// SPDX-License-Identifier: GPL-2.0
//! IOAS: an I/O address space, the object a VMM maps guest memory into, and its ioctls.
//!
//! Lock order: `Ioas::iopt` is taken after the context's object table has been released (lookups
//! return a reference and drop the table lock); user memory is read before and written after it
//! is held, never under it.

use kernel::{
    bindings, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    errno,
    ioctl::Ucmd,
    iopt::{
        Area,
        Iopt,
        Pages,
        SpanTree, //
    },
    object::{
        self,
        Object, //
    },
    pure::{
        iova,
        span::{
            Span,
            SpanSet, //
        },
    },
    uapi, //
};

#[pin_data]
pub(crate) struct Ioas {
    #[pin]
    pub(crate) iopt: Mutex<Iopt>,
}

impl Ioas {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Ioas {
                iopt <- new_mutex!(Iopt::new()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

/// `IOMMU_IOAS_ALLOC`.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_alloc = ucmd.cmd()?;
    if cmd.flags != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioas = Object::Ioas(Ioas::new()?);
    object::publish(ucmd, ioas, |id| {
        cmd.out_ioas_id = id;
        ucmd.respond(&cmd)
    })?;
    Ok(())
}

/// Byte size of one `struct iommu_iova_range` in a user array.
const RANGE_SIZE: usize = core::mem::size_of::<uapi::iommu_iova_range>();

/// `&array[index]` of a user array of `iommu_iova_range`, checked for overflow.
fn range_slot(base: u64, index: usize) -> Result<UserSlice> {
    let offset = index.checked_mul(RANGE_SIZE).ok_or(EOVERFLOW)?;
    let addr = usize::try_from(base)
        .ok()
        .and_then(|b| b.checked_add(offset))
        .ok_or(EFAULT)?;
    Ok(UserSlice::new(UserPtr::from_addr(addr), RANGE_SIZE))
}

/// `IOMMU_IOAS_IOVA_RANGES`: the usable IOVA ranges; with too small an array the caller gets the
/// count it needs and `EMSGSIZE`.
pub(crate) fn iova_ranges_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_iova_ranges = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    let capacity = usize::try_from(cmd.num_iovas).map_err(|_| EOVERFLOW)?;

    // Take a snapshot under the lock, write it out after: no user access under the lock. The
    // list is short (reserved ranges are few), and the snapshot is bounded by the caller's array.
    let mut ranges = KVec::new();
    let total = {
        let iopt = ioas.iopt.lock();
        cmd.out_iova_alignment = iopt.iova_alignment;
        let mut total = 0u32;
        for span in iova::usable_ranges(&iopt.reserved) {
            if ranges.len() < capacity {
                ranges.push(span, GFP_KERNEL)?;
            }
            total = total.checked_add(1).ok_or(EOVERFLOW)?;
        }
        total
    };
    for (i, span) in ranges.iter().enumerate() {
        let elm = uapi::iommu_iova_range {
            start: span.start,
            last: span.last,
        };
        range_slot(cmd.allowed_iovas, i)?.writer().write(&elm)?;
    }
    cmd.num_iovas = total;
    ucmd.respond(&cmd)?;
    if usize::try_from(total).map_err(|_| EOVERFLOW)? > capacity {
        return Err(EMSGSIZE);
    }
    Ok(())
}

/// `IOMMU_IOAS_ALLOW_IOVAS`: replaces the allowed list; all or nothing.
pub(crate) fn allow_iovas_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_ioas_allow_iovas = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    let count = usize::try_from(cmd.num_iovas).map_err(|_| EOVERFLOW)?;

    // Build the new tree from user memory with no lock held.
    let mut allowed = SpanTree::new();
    for i in 0..count {
        let elm: uapi::iommu_iova_range = range_slot(cmd.allowed_iovas, i)?.reader().read()?;
        // A single-byte range is refused too: upstream requires start < last.
        if elm.start >= elm.last {
            return Err(EINVAL);
        }
        // Overlap first, then the allocation: EINVAL wins over ENOMEM as upstream.
        if allowed.intersects(Span {
            start: elm.start,
            last: elm.last,
        }) {
            return Err(EINVAL);
        }
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        if !allowed.insert(elm.start, elm.last, node) {
            return Err(EINVAL);
        }
    }

    let mut iopt = ioas.iopt.lock();
    // A reserved range inside an allowed one would break the promise that IOVA_RANGES never
    // narrows below the allowed list.
    if iopt.reserved.0.iter().any(|r| allowed.intersects(r.span)) {
        return Err(errno::eaddrinuse());
    }
    // The old tree is freed after the lock is released.
    let old = core::mem::replace(&mut iopt.allowed, allowed);
    drop(iopt);
    drop(old);
    Ok(())
}

/// Largest alignment worth keeping between user memory and its IOVA: the PMD size when THP can
/// back the memory with huge pages (upstream's `HPAGE_SIZE`), so a huge page can be a huge IOPTE.
#[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
const MAX_ALIGN: u64 = 1 << 21;
#[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
const MAX_ALIGN: u64 = PAGE_SIZE as u64;

const GEOMETRY: iova::Geometry = iova::Geometry {
    page_size: PAGE_SIZE as u64,
    max_align: MAX_ALIGN,
};

/// `IOMMU_IOAS_MAP`: maps user memory at a fixed or kernel-chosen IOVA.
pub(crate) fn map_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_map = ucmd.cmd()?;
    let known = uapi::IOMMU_IOAS_MAP_FIXED_IOVA
        | uapi::IOMMU_IOAS_MAP_WRITEABLE
        | uapi::IOMMU_IOAS_MAP_READABLE;
    if cmd.flags & !known != 0 || cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    if cmd.iova == u64::MAX || cmd.length == u64::MAX {
        return Err(EOVERFLOW);
    }
    let mut prot = 0;
    if cmd.flags & uapi::IOMMU_IOAS_MAP_READABLE != 0 {
        prot |= bindings::IOMMU_READ;
    }
    if cmd.flags & uapi::IOMMU_IOAS_MAP_WRITEABLE != 0 {
        prot |= bindings::IOMMU_WRITE;
    }
    if prot == 0 {
        return Err(EINVAL);
    }
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;

    // The pages object: user memory from the page holding `user_va`.
    let uptr = usize::try_from(cmd.user_va).map_err(|_| EOVERFLOW)?;
    let length = usize::try_from(cmd.length).map_err(|_| EOVERFLOW)?;
    uptr.checked_add(length).ok_or(EOVERFLOW)?;
    if length == 0 || length > usize::MAX - PAGE_SIZE {
        return Err(EINVAL);
    }
    let start_byte = uptr % PAGE_SIZE;
    let pages = Arc::new(
        Pages {
            base: uptr - start_byte,
            length: cmd.length + start_byte as u64,
            writable: prot & bindings::IOMMU_WRITE != 0,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;

    let mut iopt = ioas.iopt.lock();
    let iova = insert_area(
        &mut iopt,
        (cmd.flags & uapi::IOMMU_IOAS_MAP_FIXED_IOVA == 0).then_some(cmd.user_va),
        cmd.iova,
        cmd.length,
        Area {
            last: 0,
            pages,
            start_byte: start_byte as u64,
            prot,
        },
        node,
    )?;
    drop(iopt);

    // As upstream, a mapping made stays made even if the answer cannot be written back.
    cmd.iova = iova;
    ucmd.respond(&cmd)
}

/// Places `area` at a kernel-chosen IOVA (`alloc_hint` = the memory's address) or at `iova`,
/// after upstream's `iopt_alloc_area_pages()` + `iopt_insert_area()` checks. Returns the IOVA.
fn insert_area(
    iopt: &mut Iopt,
    alloc_hint: Option<u64>,
    iova: u64,
    length: u64,
    mut area: Area,
    node: RBTreeNodeReservation<u64, Area>,
) -> Result<u64> {
    if length == 0 || length % iopt.iova_alignment != 0 {
        return Err(EINVAL);
    }
    let space = iova::IovaSpace {
        allowed: &iopt.allowed,
        reserved: &iopt.reserved,
        areas: &iopt.areas,
        iova_alignment: iopt.iova_alignment,
    };
    let span = match alloc_hint {
        Some(addr) => {
            let start = space.alloc(GEOMETRY, addr, length).map_err(iova_errno)?;
            Span::from_len(start, length).ok_or(EOVERFLOW)?
        }
        None => space.check_fixed(iova, length).map_err(iova_errno)?,
    };
    if area.prot & bindings::IOMMU_WRITE != 0 && !area.pages.writable {
        return Err(EPERM);
    }
    if (area.start_byte % PAGE_SIZE as u64) % iopt.iova_alignment != 0 {
        return Err(EINVAL);
    }
    area.start_byte.checked_add(length - 1).ok_or(EOVERFLOW)?;
    area.last = span.last;
    if !iopt.areas.insert(span.start, area, node) {
        // The checks above found the span free; a clash here is a bookkeeping bug.
        return Err(EEXIST);
    }
    Ok(span.start)
}

fn iova_errno(e: iova::IovaError) -> Error {
    match e {
        iova::IovaError::Inval => EINVAL,
        iova::IovaError::Overflow => EOVERFLOW,
        iova::IovaError::NoSpace => ENOSPC,
        iova::IovaError::Exists => EEXIST,
    }
}

/// `IOMMU_IOAS_UNMAP`: removes whole areas; `iova` 0 with `length` U64_MAX removes all.
pub(crate) fn unmap_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_unmap = ucmd.cmd()?;
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    let all = cmd.iova == 0 && cmd.length == u64::MAX;
    let range = if all {
        Span {
            start: 0,
            last: u64::MAX,
        }
    } else {
        if cmd.iova == u64::MAX || cmd.length == u64::MAX {
            return Err(EOVERFLOW);
        }
        if cmd.length == 0 {
            return Err(EINVAL);
        }
        Span::from_len(cmd.iova, cmd.length).ok_or(EOVERFLOW)?
    };
    let mut dead = KVec::new();
    let result = ioas.iopt.lock().unmap_range(range, &mut dead);
    // Whatever was removed is freed here, with the lock dropped.
    drop(dead);
    let unmapped = result?;
    if unmapped == 0 && !all {
        return Err(ENOENT);
    }
    cmd.length = unmapped;
    ucmd.respond(&cmd)
}

/// `IOMMU_OPTION` with `IOMMU_OPTION_HUGE_PAGES`, on an IOAS.
pub(crate) fn option_huge_pages(ioas: &Ioas, cmd: &mut uapi::iommu_option) -> Result {
    let mut iopt = ioas.iopt.lock();
    match u32::from(cmd.op) {
        uapi::IOMMU_OPTION_OP_GET => {
            cmd.val64 = u64::from(!iopt.disable_large_pages);
            Ok(())
        }
        uapi::IOMMU_OPTION_OP_SET => {
            let disable = match cmd.val64 {
                0 => true,
                1 => false,
                _ => return Err(EINVAL),
            };
            let was = core::mem::replace(&mut iopt.disable_large_pages, disable);
            iopt.update_alignment()
                .inspect_err(|_| iopt.disable_large_pages = was)
        }
        _ => Err(errno::eopnotsupp()),
    }
}
