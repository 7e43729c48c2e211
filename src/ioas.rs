// SPDX-License-Identifier: GPL-2.0
//! IOAS: an I/O address space, the object a VMM maps guest memory into, and its ioctls.
//!
//! Lock order: `Ioas::iopt` is taken after the context's object table has been released (lookups
//! return a reference and drop the table lock); user memory is read before and written after it
//! is held, never under it.

use kernel::{
    new_mutex,
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
    iopt::{
        Iopt,
        SpanTree, //
    },
    ioctl::Ucmd,
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
            GFP_KERNEL,
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
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        if !allowed.insert(
            Span {
                start: elm.start,
                last: elm.last,
            },
            node,
        ) {
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

/// `IOMMU_OPTION` with `IOMMU_OPTION_HUGE_PAGES`, on an IOAS.
pub(crate) fn option_huge_pages(ioas: &Ioas, cmd: &mut uapi::iommu_option) -> Result {
    let mut iopt = ioas.iopt.lock();
    match u32::from(cmd.op) {
        uapi::IOMMU_OPTION_OP_GET => {
            cmd.val64 = u64::from(!iopt.disable_large_pages);
            Ok(())
        }
        uapi::IOMMU_OPTION_OP_SET => {
            iopt.disable_large_pages = match cmd.val64 {
                0 => true,
                1 => false,
                _ => return Err(EINVAL),
            };
            // No areas or domains exist yet that a stricter alignment could invalidate.
            iopt.iova_alignment = iopt.required_alignment();
            Ok(())
        }
        _ => Err(errno::eopnotsupp()),
    }
}
