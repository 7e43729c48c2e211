// SPDX-License-Identifier: GPL-2.0
//! `IOMMU_TEST_CMD`: the test hooks the upstream selftests (tools/testing/selftests/iommu) drive,
//! compatible with `drivers/iommu/iommufd/iommufd_test.h` of the kernel under test. Built only
//! when that kernel has `CONFIG_IOMMUFD_TEST`, as upstream's selftest.c is.
//!
//! Implemented so far: ADD_RESERVED, MD_CHECK_REFS and SET_TEMP_MEMORY_LIMIT. The mock IOMMU driver, mock domains and
//! accesses follow; their ops answer `EOPNOTSUPP` until then.

use core::sync::atomic::{
    AtomicUsize,
    Ordering, //
};
use kernel::{page::PAGE_SIZE, prelude::*};

use crate::{
    errno,
    gup::UserPageRef,
    ioctl::Ucmd,
    pure::span::Span,
    uapi::test as t, //
};

/// `IOMMU_TEST_CMD` entry point.
pub(crate) fn test_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: t::iommu_test_cmd = ucmd.cmd()?;
    // SAFETY (union reads below): the union is plain integers throughout and was copied from a
    // zero-filled buffer, so every variant is fully initialized.
    match cmd.op {
        t::IOMMU_TEST_OP_ADD_RESERVED => {
            // SAFETY: see above.
            let r = unsafe { cmd.__bindgen_anon_1.add_reserved };
            add_reserved(ucmd, cmd.id, r.start, r.length)
        }
        t::IOMMU_TEST_OP_MD_CHECK_REFS => {
            // SAFETY: see above.
            let r = unsafe { cmd.__bindgen_anon_1.check_refs };
            check_refs(r.uptr, r.length, r.refs)
        }
        t::IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT => {
            // SAFETY: see above.
            let limit = unsafe { cmd.__bindgen_anon_1.memory_limit.limit };
            set_temp_memory_limit(limit)
        }
        _ => Err(errno::eopnotsupp()),
    }
}

/// Bytes the pin batching may use for its temporary arrays; the selftests shrink it to force
/// many small batches. Upstream's `iommufd_test_memory_limit`, same default.
pub(crate) static TEMP_MEMORY_LIMIT: AtomicUsize = AtomicUsize::new(65536);

fn set_temp_memory_limit(limit: u32) -> Result {
    // A batch must hold at least one element: a PFN and its count.
    let min = core::mem::size_of::<usize>() + core::mem::size_of::<u32>();
    let limit = usize::try_from(limit).map_err(|_| EINVAL)?;
    if limit < min {
        return Err(EINVAL);
    }
    TEMP_MEMORY_LIMIT.store(limit, Ordering::Relaxed);
    Ok(())
}

/// Reserves `[start, start + length - 1]` in an IOAS, as a device's reserved region would.
fn add_reserved(ucmd: &Ucmd<'_>, ioas_id: u32, start: u64, length: u64) -> Result {
    if length == 0 {
        return Err(EINVAL);
    }
    let span = Span::from_len(start, length).ok_or(EOVERFLOW)?;
    let ioas = ucmd.ictx.get_ioas(ioas_id)?;
    let mut iopt = ioas.iopt.lock();
    iopt.reserve(span, 0)
}

/// Checks that every small page of a user buffer carries `refs` pins: 0 once everything that
/// pinned it is gone, which is how the selftests find leaked pins.
fn check_refs(uptr: u64, length: u64, refs: u32) -> Result {
    let page = PAGE_SIZE as u64;
    if length % page != 0 || uptr % page != 0 || uptr.checked_add(length).is_none() {
        return Err(EINVAL);
    }
    let mut addr = uptr;
    let end = uptr + length;
    while addr < end {
        let user_page = UserPageRef::get(usize::try_from(addr).map_err(|_| EFAULT)?)?;
        if let Some(pins) = user_page.pin_count() {
            if pins != refs {
                return Err(EIO);
            }
        }
        addr += page;
    }
    Ok(())
}
