// SPDX-License-Identifier: GPL-2.0
//! `IOMMU_TEST_CMD`: the test hooks the upstream selftests (tools/testing/selftests/iommu) drive,
//! compatible with `drivers/iommu/iommufd/iommufd_test.h` of the kernel under test. Built only
//! when that kernel has `CONFIG_IOMMUFD_TEST`, as upstream's selftest.c is.
//!
//! Implemented: ADD_RESERVED, MOCK_DOMAIN(_FLAGS), MOCK_DOMAIN_REPLACE, MD_CHECK_MAP,
//! MD_CHECK_REFS, DEV_CHECK_CACHE and SET_TEMP_MEMORY_LIMIT over the mock IOMMU of `mock.rs`.
//! Accesses, dirty tracking, nesting and PASID ops answer `EOPNOTSUPP` until they land.

use core::{
    mem::offset_of,
    sync::atomic::{
        AtomicBool,
        AtomicUsize,
        Ordering, //
    },
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::Arc, //
};

use crate::{
    device::Device,
    errno,
    gup::UserPageRef,
    ictx::Ictx,
    ioctl::Ucmd,
    mock::{
        self,
        MockDevice, //
    },
    object::{
        Object,
        Used,
        Users, //
    },
    pure::span::Span,
    uapi::test as t, //
};

/// `IOMMUFD_OBJ_SELFTEST`: a mock device bound to the context and attached, as a VFIO driver
/// would bind a real one. Destroying it detaches and unbinds.
pub(crate) struct MockIdev {
    idev: Arc<Device>,
    mdev: MockDevice,
    users: Users,
    torn_down: AtomicBool,
}

impl Used for MockIdev {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl MockIdev {
    /// Detaches and unbinds (what a driver does before it lets go of a device); the mock device
    /// itself goes when the object is dropped.
    pub(crate) fn teardown(&self, ictx: &Ictx) {
        if self.torn_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.idev.detach(Some(ictx));
        self.idev.unbind(Some(ictx));
    }
}

impl Drop for MockIdev {
    fn drop(&mut self) {
        // Normally torn down already (DESTROY, or the context closing); never leave a device
        // attached or owned when its mock device goes.
        if !self.torn_down.swap(true, Ordering::AcqRel) {
            self.idev.detach(None);
            self.idev.unbind(None);
        }
        let _ = &self.mdev;
    }
}

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
        t::IOMMU_TEST_OP_MOCK_DOMAIN => mock_domain(ucmd, cmd.id, 0),
        t::IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS => {
            // SAFETY: see above.
            let flags = unsafe { cmd.__bindgen_anon_1.mock_domain_flags.dev_flags };
            mock_domain(ucmd, cmd.id, flags)
        }
        t::IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE => {
            // SAFETY: see above.
            let pt_id = unsafe { cmd.__bindgen_anon_1.mock_domain_replace.pt_id };
            mock_domain_replace(ucmd, cmd.id, pt_id)
        }
        t::IOMMU_TEST_OP_MD_CHECK_MAP => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.check_map };
            check_map(ucmd, cmd.id, c.iova, c.length, c.uptr)
        }
        t::IOMMU_TEST_OP_DEV_CHECK_CACHE => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.check_dev_cache };
            check_dev_cache(ucmd, cmd.id, c.id, c.cache)
        }
        _ => Err(errno::eopnotsupp()),
    }
}

/// Offset of the command's union, where every op's answer goes.
const ANSWER: usize = offset_of!(t::iommu_test_cmd, __bindgen_anon_1);

/// `IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS)`: creates a mock device, binds it and attaches it to
/// `pt_id` (an IOAS, for an automatic HWPT, or a HWPT). Answers the selftest object, HWPT and
/// device IDs. The selftest object's ID is taken first, as upstream's order of IDs is.
fn mock_domain(ucmd: &Ucmd<'_>, pt_id: u32, dev_flags: u32) -> Result {
    let ictx = ucmd.ictx;
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let reserved = ictx.objects.lock().reserve(node)?;
    let built = (|| -> Result<(Arc<MockIdev>, u32)> {
        let mdev = MockDevice::new(dev_flags)?;
        // SAFETY: `mdev` is registered and outlives the binding (the object drops it last).
        let idev = unsafe { Device::bind(ictx, mdev.as_raw()) }?;
        let hwpt_id = match idev.attach(ictx, pt_id) {
            Ok(id) => id,
            Err(e) => {
                idev.unbind(Some(ictx));
                return Err(e);
            }
        };
        let st = Arc::new(
            MockIdev {
                idev,
                mdev,
                users: Users::default(),
                torn_down: AtomicBool::new(false),
            },
            GFP_KERNEL_ACCOUNT,
        );
        match st {
            Ok(st) => Ok((st, hwpt_id)),
            // The value was dropped, and its Drop detached and unbound.
            Err(e) => Err(e.into()),
        }
    })();
    let (st, hwpt_id) = match built {
        Ok(b) => b,
        Err(e) => {
            ictx.objects.lock().abort(reserved);
            return Err(e);
        }
    };
    let answer = [reserved.id, hwpt_id, st.idev.id()];
    if let Err(e) = ucmd.respond_field(ANSWER, &answer) {
        st.teardown(ictx);
        drop(st);
        ictx.objects.lock().abort(reserved);
        return Err(e);
    }
    ictx.objects.lock().finalize(reserved, Object::Selftest(st));
    Ok(())
}

/// `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`: moves a mock device to another IOAS or HWPT.
fn mock_domain_replace(ucmd: &Ucmd<'_>, stdev_id: u32, pt_id: u32) -> Result {
    let st = ucmd.ictx.objects.lock().get_selftest(stdev_id)?;
    let id = st.idev.replace(ucmd.ictx, pt_id)?;
    ucmd.respond_field(ANSWER, &id)
}

/// `IOMMU_TEST_OP_MD_CHECK_MAP`: every mock page of `[iova, iova + length)` in the HWPT's
/// domain maps the physical page under the same offset of the user buffer.
fn check_map(ucmd: &Ucmd<'_>, hwpt_id: u32, iova: u64, length: u64, uptr: u64) -> Result {
    let hwpt = ucmd.ictx.objects.lock().get_hwpt_paging(hwpt_id)?;
    let domain = hwpt.domain();
    if !mock::is_mock_domain(domain) {
        return Err(EINVAL);
    }
    // SAFETY: `hwpt` owns the domain and is in use.
    let bitmap = unsafe { (*domain).pgsize_bitmap } as u64;
    let page_size = 1u64 << bitmap.trailing_zeros().min(63);
    let misaligned = |x: u64| x.checked_rem(page_size) != Some(0);
    if misaligned(iova) || misaligned(length) || misaligned(uptr) || uptr.checked_add(length).is_none() {
        return Err(EINVAL);
    }
    let page = PAGE_SIZE as u64;
    let (mut iova, mut uptr, mut left) = (iova, uptr, length);
    while left != 0 {
        let user_page = UserPageRef::get(usize::try_from(uptr & !(page - 1)).map_err(|_| EFAULT)?)?;
        let want = user_page.pfn() * page + uptr % page;
        if mock::iova_to_phys(domain, iova) != want {
            return Err(EINVAL);
        }
        iova = iova.wrapping_add(page_size);
        uptr += page_size;
        left -= page_size;
    }
    Ok(())
}

/// `IOMMU_TEST_OP_DEV_CHECK_CACHE`: a mock device's cache entry has the value given.
fn check_dev_cache(ucmd: &Ucmd<'_>, idev_id: u32, cache_id: u32, value: u32) -> Result {
    let idev = ucmd.ictx.get_device(idev_id)?;
    let dev = idev.as_raw();
    if !mock::is_mock(dev) {
        return Err(EINVAL);
    }
    // SAFETY: a mock device, alive while bound.
    let mdev = unsafe { &*mock::to_mock(dev) };
    let entry = usize::try_from(cache_id).ok().and_then(|i| mdev.cache.get(i));
    match entry {
        Some(c) if c.load(Ordering::Relaxed) == value => Ok(()),
        _ => Err(EINVAL),
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
