// SPDX-License-Identifier: GPL-2.0
//! `IOMMU_TEST_CMD`: the test hooks the upstream selftests (tools/testing/selftests/iommu) drive,
//! compatible with `drivers/iommu/iommufd/iommufd_test.h` of the kernel under test. Built only
//! when that kernel has `CONFIG_IOMMUFD_TEST`, as upstream's selftest.c is.
//!
//! Implemented: ADD_RESERVED, MOCK_DOMAIN(_FLAGS), MOCK_DOMAIN_REPLACE, MD_CHECK_MAP,
//! MD_CHECK_REFS, DEV_CHECK_CACHE and SET_TEMP_MEMORY_LIMIT over the mock IOMMU of `mock.rs`.
//! Accesses, dirty tracking, nesting and PASID ops answer `EOPNOTSUPP` until they land.

pub(crate) mod gup;
pub(crate) mod mock;
pub(crate) mod mock_viommu;
mod plugin;
pub(crate) mod uapi;

pub(crate) use plugin::Selftest;

use core::{
    cell::UnsafeCell,
    ffi::c_void,
    mem::{
        offset_of,
        MaybeUninit, //
    },
    ptr::{
        self,
        NonNull, //
    },
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_ulong, //
    },
    fs::{
        file::FileDescriptorReservation,
        File,
        LocalFile, //
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        UniqueArc, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    context::errno,
    context::extension::ExtensionObject,
    context::ictx::Ictx,
    context::ioctl::Ucmd,
    context::object::{
        InUse,
        Object,
        Pt,
        Used,
        Users, //
    },
    ffi::kbind,
    hwpt::device::Device,
    ioas::access::Access,
    pure::span::Span,
    selftest::gup::UserPageRef,
    selftest::mock::{
        MockDevice, //
    },
    selftest::uapi as t, //
    vfio::kapi::DriverAccess,
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

impl ExtensionObject for MockIdev {
    /// Detaches and unbinds (what a driver does before it lets go of a device); the mock device
    /// itself goes when the object is dropped.
    fn teardown(&self, ictx: &Ictx) {
        if self.torn_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.idev.detach_all(Some(ictx));
        // An ioctl still using the device after the wait (`EBUSY`, said in the log) frees it
        // when it ends; the mock device goes now, as upstream's selftest destroy does, so
        // `IOMMU_DESTROY` answers 0.
        let _ = self.idev.unbind(Some(ictx));
    }
}

impl Drop for MockIdev {
    fn drop(&mut self) {
        // Torn down already on every path (DESTROY, the context closing, a failed
        // MOCK_DOMAIN answer): `teardown` with the context is what takes an automatic HWPT and
        // the device object out of the table. This is only a last resort without the table:
        // never leave a device attached or owned when its mock device goes.
        if !self.torn_down.swap(true, Ordering::AcqRel) {
            self.idev.detach_all(None);
            // Without the table there is no wait.
            let _ = self.idev.unbind(None);
        }
        let _ = &self.mdev;
    }
}

/// The selftest object named `id`, in use (`ENOENT` for any other object, as upstream).
fn get_selftest(ucmd: &Ucmd<'_>, id: u32) -> Result<InUse<dyn ExtensionObject>> {
    let obj = ucmd.ictx.objects.lock().get_extension(id)?;
    if obj.downcast_ref::<MockIdev>().is_none() {
        return Err(ENOENT);
    }
    Ok(obj)
}

/// The mock device object of [`get_selftest`]'s answer.
fn mock_idev(obj: &InUse<dyn ExtensionObject>) -> Result<&MockIdev> {
    obj.downcast_ref::<MockIdev>().ok_or(ENOENT)
}

/// `IOMMU_TEST_CMD` entry point.
pub(crate) fn test_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: t::iommu_test_cmd = ucmd.cmd()?;
    if cmd.op == t::IOMMU_TEST_OP_DMABUF_GET {
        // SAFETY: see below.
        let c = unsafe { cmd.__bindgen_anon_1.dmabuf_get };
        ucmd.ret = dmabuf_get(c.length, c.open_flags)?;
        return Ok(());
    }
    test_ioctl_op(ucmd)
}

fn test_ioctl_op(ucmd: &mut Ucmd<'_>) -> Result {
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
        t::IOMMU_TEST_OP_MD_CHECK_IOTLB => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.check_iotlb };
            let hwpt = match ucmd.ictx.objects.lock().get_pt(cmd.id) {
                Ok(Pt::Nested(h)) => h,
                _ => return Err(ENOENT),
            };
            match mock::nested_iotlb(hwpt.domain().as_raw(), c.id) {
                Some(v) if v == c.iotlb => Ok(()),
                _ => Err(EINVAL),
            }
        }
        t::IOMMU_TEST_OP_DIRTY => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.dirty };
            let hwpt = ucmd.ictx.objects.lock().get_hwpt_paging(cmd.id)?;
            let n = mock::mark_dirty(
                hwpt.domain().as_raw(),
                c.iova,
                c.length,
                c.page_size,
                c.uptr,
            )?;
            ucmd.respond_field(
                ANSWER + offset_of!(t::iommu_test_cmd__bindgen_ty_1__bindgen_ty_13, out_nr_dirty),
                &n,
            )
        }
        t::IOMMU_TEST_OP_PASID_ATTACH => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.pasid_attach };
            let obj = get_selftest(ucmd, cmd.id)?;
            let st = mock_idev(&obj)?;
            let id = st.idev.attach(ucmd.ictx, c.pasid, c.pt_id)?;
            let off = ANSWER + offset_of!(t::iommu_test_cmd__bindgen_ty_1__bindgen_ty_18, pt_id);
            ucmd.respond_field(off, &id)
                .inspect_err(|_| st.idev.detach(Some(ucmd.ictx), c.pasid))
        }
        t::IOMMU_TEST_OP_PASID_REPLACE => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.pasid_replace };
            let obj = get_selftest(ucmd, cmd.id)?;
            let st = mock_idev(&obj)?;
            let id = st.idev.replace(ucmd.ictx, c.pasid, c.pt_id)?;
            let off = ANSWER + offset_of!(t::iommu_test_cmd__bindgen_ty_1__bindgen_ty_19, pt_id);
            ucmd.respond_field(off, &id)
        }
        t::IOMMU_TEST_OP_PASID_DETACH => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.pasid_detach };
            let obj = get_selftest(ucmd, cmd.id)?;
            let st = mock_idev(&obj)?;
            st.idev.detach(Some(ucmd.ictx), c.pasid);
            Ok(())
        }
        t::IOMMU_TEST_OP_PASID_CHECK_HWPT => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.pasid_check };
            let obj = get_selftest(ucmd, cmd.id)?;
            let st = mock_idev(&obj)?;
            let attached = st.idev.attached_domain(c.pasid);
            if c.hwpt_id == 0 {
                return if attached.is_some() {
                    Err(EINVAL)
                } else {
                    Ok(())
                };
            }
            let want = match ucmd.ictx.objects.lock().get_pt(c.hwpt_id)? {
                Pt::Hwpt(h) => h.domain().as_raw(),
                Pt::Nested(h) => h.domain().as_raw(),
                Pt::Ioas(_) => return Err(EINVAL),
            };
            if attached != Some(want) {
                return Err(EINVAL);
            }
            Ok(())
        }
        t::IOMMU_TEST_OP_DMABUF_REVOKE => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.dmabuf_revoke };
            dmabuf_revoke(c.dmabuf_fd, c.revoked != 0)
        }
        t::IOMMU_TEST_OP_TRIGGER_IOPF => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.trigger_iopf };
            let idev = ucmd.ictx.get_device(c.dev_id)?;
            mock::trigger_iopf(idev.as_raw(), c.pasid, c.grpid, c.perm, c.addr)
        }
        t::IOMMU_TEST_OP_TRIGGER_VEVENT => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.trigger_vevent };
            trigger_vevent(ucmd, c.dev_id)
        }
        t::IOMMU_TEST_OP_DEV_CHECK_CACHE => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.check_dev_cache };
            check_dev_cache(ucmd, cmd.id, c.id, c.cache)
        }
        t::IOMMU_TEST_OP_CREATE_ACCESS => {
            // SAFETY: see above.
            let flags = unsafe { cmd.__bindgen_anon_1.create_access.flags };
            create_access(ucmd, cmd.id, flags)
        }
        t::IOMMU_TEST_OP_ACCESS_PAGES => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.access_pages };
            access_pages(ucmd, cmd.id, c)
        }
        t::IOMMU_TEST_OP_DESTROY_ACCESS_PAGES => {
            // SAFETY: see above.
            let item = unsafe { cmd.__bindgen_anon_1.destroy_access_pages.access_pages_id };
            destroy_access_pages(cmd.id, item)
        }
        t::IOMMU_TEST_OP_ACCESS_RW => {
            // SAFETY: see above.
            let c = unsafe { cmd.__bindgen_anon_1.access_rw };
            access_rw(cmd.id, c)
        }
        t::IOMMU_TEST_OP_ACCESS_REPLACE_IOAS => {
            // SAFETY: see above.
            let ioas_id = unsafe { cmd.__bindgen_anon_1.access_replace_ioas.ioas_id };
            access_replace_ioas(ucmd, cmd.id, ioas_id)
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
        // The object's memory comes first: once the device is bound and attached nothing may
        // fail before the object exists, as only its teardown with the context undoes both (an
        // automatic HWPT leaves the table, the device object too). Its `Drop` alone cannot.
        let slot = UniqueArc::<MockIdev>::new_uninit(GFP_KERNEL_ACCOUNT)?;
        let mdev = MockDevice::new(dev_flags)?;
        // SAFETY: `mdev` is registered and outlives the borrow (the object drops it last).
        let idev = Device::bind(ictx, unsafe {
            kernel::device::Device::from_raw(mdev.as_raw())
        })?;
        let hwpt_id = match idev.attach(ictx, bindings::IOMMU_NO_PASID, pt_id) {
            Ok(id) => id,
            Err(e) => {
                // The attach's error is the answer; an `EBUSY` of the unbind only says that
                // an ioctl which found the device by ID frees it when it ends.
                let _ = idev.unbind(Some(ictx));
                return Err(e);
            }
        };
        let st = slot.write(MockIdev {
            idev,
            mdev,
            users: Users::default(),
            torn_down: AtomicBool::new(false),
        });
        Ok((st.into(), hwpt_id))
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
    ictx.objects
        .lock()
        .finalize(reserved, Object::Extension(st));
    Ok(())
}

/// `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`: moves a mock device to another IOAS or HWPT.
fn mock_domain_replace(ucmd: &Ucmd<'_>, stdev_id: u32, pt_id: u32) -> Result {
    let obj = get_selftest(ucmd, stdev_id)?;
    let id = mock_idev(&obj)?
        .idev
        .replace(ucmd.ictx, bindings::IOMMU_NO_PASID, pt_id)?;
    ucmd.respond_field(ANSWER, &id)
}

/// `IOMMU_TEST_OP_MD_CHECK_MAP`: every mock page of `[iova, iova + length)` in the HWPT's
/// domain maps the physical page under the same offset of the user buffer.
fn check_map(ucmd: &Ucmd<'_>, hwpt_id: u32, iova: u64, length: u64, uptr: u64) -> Result {
    let hwpt = ucmd.ictx.objects.lock().get_hwpt_paging(hwpt_id)?;
    let domain = hwpt.domain().as_raw();
    if !mock::is_mock_domain(domain) {
        return Err(EINVAL);
    }
    // SAFETY: `hwpt` owns the domain and is in use.
    let bitmap = unsafe { (*domain).pgsize_bitmap } as u64;
    let page_size = 1u64 << bitmap.trailing_zeros().min(63);
    let misaligned = |x: u64| x.checked_rem(page_size) != Some(0);
    if misaligned(iova)
        || misaligned(length)
        || misaligned(uptr)
        || uptr.checked_add(length).is_none()
    {
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

/// `IOMMU_TEST_OP_TRIGGER_VEVENT`: the mock device, attached to a nested HWPT of a vIOMMU that
/// knows it, reports an event carrying its virtual ID, as hardware would; `ENOENT` otherwise.
fn trigger_vevent(ucmd: &Ucmd<'_>, dev_id: u32) -> Result {
    let idev = ucmd.ictx.get_device(dev_id)?;
    // A device with virtual ID 0 counts as having none, as upstream's mock has it.
    let viommu = idev.attached_viommu().ok_or(ENOENT)?;
    let virt_id = viommu
        .vdev_id_of(idev.as_raw())
        .filter(|&v| v != 0)
        .ok_or(ENOENT)?;
    let event = t::iommu_viommu_event_selftest {
        virt_id: u32::try_from(virt_id).map_err(|_| EINVAL)?,
    };
    viommu.report_event(t::IOMMU_VEVENTQ_TYPE_SELFTEST, &event.virt_id.to_ne_bytes())
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
    let entry = usize::try_from(cache_id)
        .ok()
        .and_then(|i| mdev.cache.get(i));
    match entry {
        Some(c) if c.load(Ordering::Relaxed) == value => Ok(()),
        _ => Err(EINVAL),
    }
}

/// `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`: the bytes the pin batching may use for its temporary
/// arrays; the selftests shrink it to force many small batches.
fn set_temp_memory_limit(limit: u32) -> Result {
    crate::pages::batch_limit::set(usize::try_from(limit).map_err(|_| EINVAL)?)
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

/// One pin an access fd holds (`IOMMU_TEST_OP_ACCESS_PAGES`).
struct Item {
    iova: u64,
    length: u64,
    id: u32,
}

/// What the access fd's lock guards: the access (set once created) and its pins.
struct Items {
    access: Option<DriverAccess>,
    list: KVec<Item>,
    next_id: u32,
}

/// The selftest's access fd (`IOMMU_TEST_OP_CREATE_ACCESS`): an emulated-access driver whose
/// pins live until userspace drops them, an unmap asks for them, or the fd closes.
#[pin_data]
struct StAccess {
    #[pin]
    items: Mutex<Items>,
}

impl StAccess {
    /// Drops every pin intersecting `[iova, iova + length)`: the driver's answer to an unmap.
    fn unmap(&self, iova: u64, length: u64) {
        let last = iova.saturating_add(length.saturating_sub(1));
        let mut items = self.items.lock();
        let Some(access) = items.access.as_ref().map(|a| a.access().clone()) else {
            return;
        };
        items.list.retain(|item| {
            let item_last = item.iova + (item.length - 1);
            if iova > item_last || last < item.iova {
                return true;
            }
            access.unpin_pages(item.iova, item.length);
            false
        });
    }
}

/// `iommufd_access_ops::unmap` of the access fd.
///
/// # Safety
///
/// `data` must be the `StAccess` the access was created with.
unsafe extern "C" fn staccess_unmap(data: *mut c_void, iova: c_ulong, length: c_ulong) {
    // SAFETY: `data` is the `StAccess` given at creation, alive until the access is destroyed
    // (its file's release destroys the access first).
    let st = unsafe { &*data.cast::<StAccess>() };
    let (Ok(iova), Ok(length)) = (u64::try_from(iova), u64::try_from(length)) else {
        return;
    };
    st.unmap(iova, length);
}

/// `release` of the access fd.
///
/// # Safety
///
/// Called by the VFS once, with an access fd `create_access()` made.
unsafe extern "C" fn staccess_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` is the `Arc<StAccess>` reference the file was created with, given
    // back here once.
    let st = unsafe { Arc::<StAccess>::from_raw((*file).private_data.cast()) };
    let access = st.items.lock().access.take();
    if let Some(access) = access {
        // Unpin everything, then the access goes (and with it, maybe, the context).
        let mut items = st.items.lock();
        for item in items.list.iter() {
            access.access().unpin_pages(item.iova, item.length);
        }
        items.list.clear();
        drop(items);
        drop(access);
    }
    0
}

/// Statics the kernel keeps pointers to: the access fd's file operations and access ops.
struct AccessStatics {
    fops: bindings::file_operations,
    ops: kbind::iommufd_access_ops,
    ops_pin: kbind::iommufd_access_ops,
}

struct AccessGlobal(UnsafeCell<MaybeUninit<AccessStatics>>);

// SAFETY: written once by `init_statics()` at module init, before any access fd exists; read-only
// after.
unsafe impl Sync for AccessGlobal {}

static ACCESS: AccessGlobal = AccessGlobal(UnsafeCell::new(MaybeUninit::zeroed()));

fn access_statics() -> *mut AccessStatics {
    ACCESS.0.get().cast()
}

/// Fills in the statics; called once from module init (the fops pin the module while an access
/// fd is open).
pub(crate) fn init_statics(module: &'static ThisModule) {
    init_dmabuf_ops(module);
    let s = access_statics();
    // SAFETY: module init, before anything can reach the statics.
    unsafe {
        (*s).fops.owner = module.as_ptr();
        (*s).fops.release = Some(staccess_release);
        (*s).ops.unmap = Some(staccess_unmap);
        (*s).ops_pin.unmap = Some(staccess_unmap);
        (*s).ops_pin.set_needs_pin_pages(1);
    }
}

/// The access fd `fd`, held while the returned file reference lives.
fn staccess_get(fd: u32) -> Result<(ARef<LocalFile>, Arc<Access>, *const StAccess)> {
    let file = LocalFile::fget(fd).map_err(|_| errno::ebadfd())?;
    let raw = file.as_ptr();
    // SAFETY: a live file; `f_op` and `private_data` are set at creation and never change.
    let (fop, data) = unsafe { ((*raw).f_op, (*raw).private_data) };
    // SAFETY: the statics are initialized at module init.
    if !ptr::eq(fop, unsafe { &raw const (*access_statics()).fops }) {
        return Err(errno::ebadfd());
    }
    let st = data.cast::<StAccess>().cast_const();
    // SAFETY: our file: `private_data` is its `StAccess`, alive while the file is.
    let access = unsafe {
        (*st)
            .items
            .lock()
            .access
            .as_ref()
            .map(|a| a.access().clone())
    }
    .ok_or(errno::ebadfd())?;
    Ok((file, access, st))
}

/// A flag of `IOMMU_TEST_OP_CREATE_ACCESS` that only this test build knows (upstream's selftest
/// answers `EOPNOTSUPP` to it): call `iommufd_access_create()` without an ops table, as a broken
/// driver would, to prove the in-kernel API refuses it (`EINVAL`) instead of dereferencing it.
/// `tests/selftests/access.c` names the same bit.
const MOCK_FLAGS_ACCESS_CREATE_NULL_OPS: u32 = 1 << 31;

/// `IOMMU_TEST_OP_CREATE_ACCESS`: an access fd attached to IOAS `ioas_id`.
fn create_access(ucmd: &Ucmd<'_>, ioas_id: u32, flags: u32) -> Result {
    if flags & !(t::MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES | MOCK_FLAGS_ACCESS_CREATE_NULL_OPS)
        != 0
    {
        return Err(errno::eopnotsupp());
    }
    if flags & MOCK_FLAGS_ACCESS_CREATE_NULL_OPS != 0 {
        // SAFETY: no ops and no data: nothing the access could call or keep; the ioctl holds
        // the context. An access made anyway is destroyed at once, and the call "succeeds" for
        // the test to see.
        let access = unsafe { DriverAccess::create(ucmd.ictx, ptr::null(), ptr::null_mut()) }?;
        drop(access);
        return Ok(());
    }
    let st = Arc::pin_init(
        try_pin_init!(StAccess {
            items <- new_mutex!(Items {
                access: None,
                list: KVec::new(),
                next_id: 0,
            }),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let data = Arc::into_raw(st);
    let s = access_statics();
    // SAFETY: the fops are static; the file takes over our `StAccess` reference and gives it
    // back in `staccess_release()`.
    let raw = unsafe {
        kbind::anon_inode_getfile(
            c"[iommufd_test_staccess]".as_char_ptr(),
            &raw const (*s).fops,
            data.cast_mut().cast(),
            bindings::O_RDWR as c_int,
        )
    };
    let raw = match kernel::error::from_err_ptr(raw) {
        Ok(f) => f,
        Err(e) => {
            // SAFETY: the reference was not handed over.
            drop(unsafe { Arc::from_raw(data) });
            return Err(e);
        }
    };
    // SAFETY: `anon_inode_getfile()` returned a new file with one reference, now ours; dropping
    // it releases the `StAccess`.
    let file: ARef<File> = unsafe { ARef::from_raw(NonNull::new_unchecked(raw.cast())) };
    let fd = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let ops = if flags & t::MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES != 0 {
        // SAFETY: static.
        unsafe { &raw const (*s).ops_pin }
    } else {
        // SAFETY: static.
        unsafe { &raw const (*s).ops }
    };
    // Through the in-kernel API, as a driver would (and upstream's selftest does).
    // SAFETY: the ops are static; `data` lives until the file's release, which destroys the
    // access first; the ioctl holds the context.
    let access = unsafe { DriverAccess::create(ucmd.ictx, ops, data.cast_mut().cast()) }?;
    // A failure below destroys the access with `access`.
    access.attach(ioas_id)?;
    let out = fd.reserved_fd();
    ucmd.respond_field(ANSWER, &out)?;
    // SAFETY: `data` is alive: the file holds it.
    unsafe { (*data).items.lock().access = Some(access) };
    fd.fd_install(file);
    Ok(())
}

/// `IOMMU_TEST_OP_ACCESS_PAGES`: pins `[iova, iova + length)` through the access fd and checks
/// the pages are those under `uptr` (unless 0); answers the pin's ID.
fn access_pages(
    ucmd: &Ucmd<'_>,
    fd: u32,
    c: t::iommu_test_cmd__bindgen_ty_1__bindgen_ty_9,
) -> Result {
    if c.length > 16 * 1024 * 1024 {
        return Err(ENOMEM);
    }
    if c.flags & !t::MOCK_FLAGS_ACCESS_WRITE != 0 {
        return Err(errno::eopnotsupp());
    }
    let (_file, access, st) = staccess_get(fd)?;
    if access.iova_alignment != PAGE_SIZE as u64 {
        return Err(errno::eopnotsupp());
    }
    let page = PAGE_SIZE as u64;
    let end = c.iova.checked_add(c.length).ok_or(EOVERFLOW)?;
    let npages = end.div_ceil(page) - c.iova / page;
    let n = usize::try_from(npages).map_err(|_| ENOMEM)?;
    let mut pages: KVVec<*mut bindings::page> =
        KVVec::from_elem(ptr::null_mut(), n, GFP_KERNEL_ACCOUNT)?;
    // SAFETY: `_file` keeps the `StAccess` alive.
    let st = unsafe { &*st };
    let mut items = st.items.lock();
    items.list.reserve(1, GFP_KERNEL_ACCOUNT)?;
    access.pin_pages(
        c.iova,
        c.length,
        &mut pages,
        c.flags & t::MOCK_FLAGS_ACCESS_WRITE,
    )?;
    let checked = if c.uptr != 0 {
        check_pages(c.uptr - c.iova % page, &pages)
    } else {
        Ok(())
    };
    let id = items.next_id;
    let answered = checked.and_then(|()| {
        ucmd.respond_field(
            ANSWER
                + offset_of!(
                    t::iommu_test_cmd__bindgen_ty_1__bindgen_ty_9,
                    out_access_pages_id
                ),
            &id,
        )
    });
    if let Err(e) = answered {
        access.unpin_pages(c.iova, c.length);
        return Err(e);
    }
    items.next_id = id.wrapping_add(1);
    // Capacity reserved above.
    items.list.push(
        Item {
            iova: c.iova,
            length: c.length,
            id,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    Ok(())
}

/// Every page of `pages` is the one mapped at the same place of the user buffer `uptr`.
fn check_pages(uptr: u64, pages: &[*mut bindings::page]) -> Result {
    let mut addr = uptr;
    for page in pages {
        let user_page = UserPageRef::get(usize::try_from(addr).map_err(|_| EFAULT)?)?;
        if !ptr::eq(user_page.as_ptr(), *page) {
            return Err(errno::ebade());
        }
        addr = addr.checked_add(PAGE_SIZE as u64).ok_or(EFAULT)?;
    }
    Ok(())
}

/// `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`: drops one pin of an access fd.
fn destroy_access_pages(fd: u32, item_id: u32) -> Result {
    let (_file, access, st) = staccess_get(fd)?;
    // SAFETY: `_file` keeps the `StAccess` alive.
    let st = unsafe { &*st };
    let mut items = st.items.lock();
    let i = items
        .list
        .iter()
        .position(|it| it.id == item_id)
        .ok_or(ENOENT)?;
    let item = items.list.remove(i).map_err(|_| ENOENT)?;
    access.unpin_pages(item.iova, item.length);
    Ok(())
}

/// `IOMMU_TEST_OP_ACCESS_RW`: copies between a user buffer and IOVA through the access fd.
fn access_rw(fd: u32, c: t::iommu_test_cmd__bindgen_ty_1__bindgen_ty_10) -> Result {
    if c.length > 16 * 1024 * 1024 {
        return Err(ENOMEM);
    }
    if c.flags & !(t::MOCK_ACCESS_RW_WRITE | t::MOCK_ACCESS_RW_SLOW_PATH) != 0 {
        return Err(errno::eopnotsupp());
    }
    let (_file, access, _st) = staccess_get(fd)?;
    let n = usize::try_from(c.length).map_err(|_| ENOMEM)?;
    let mut tmp: KVVec<u8> = KVVec::from_elem(0, n, GFP_KERNEL_ACCOUNT)?;
    let user = UserSlice::new(
        UserPtr::from_addr(usize::try_from(c.uptr).map_err(|_| EFAULT)?),
        n,
    );
    let write = c.flags & t::MOCK_ACCESS_RW_WRITE != 0;
    if write {
        user.reader().read_slice(&mut tmp)?;
    }
    access.rw(c.iova, &mut tmp, c.flags)?;
    if !write {
        UserSlice::new(
            UserPtr::from_addr(usize::try_from(c.uptr).map_err(|_| EFAULT)?),
            n,
        )
        .writer()
        .write_slice(&tmp)?;
    }
    Ok(())
}

/// `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`: moves the access fd's access to another IOAS.
fn access_replace_ioas(ucmd: &Ucmd<'_>, fd: u32, ioas_id: u32) -> Result {
    let (_file, access, _st) = staccess_get(fd)?;
    access.replace(ucmd.ictx, ioas_id)
}

/// The selftest's dma-buf: a physically contiguous kernel buffer whose exporter hands iommufd its
/// physical range, and which userspace can revoke and restore.
struct TestDmaBuf {
    memory: KVec<u8>,
    revoked: AtomicBool,
}

/// Exporter ops: attachments are fine, scatterlists are not offered (iommufd uses the range).
struct DmaBufOps(UnsafeCell<MaybeUninit<bindings::dma_buf_ops>>);

// SAFETY: written once by `init_statics()` at module init; read-only after.
unsafe impl Sync for DmaBufOps {}

static DMABUF_OPS: DmaBufOps = DmaBufOps(UnsafeCell::new(MaybeUninit::zeroed()));

fn dmabuf_ops() -> *mut bindings::dma_buf_ops {
    DMABUF_OPS.0.get().cast()
}

/// `dma_buf_ops::attach`/`detach`: nothing to do.
///
/// # Safety
///
/// Called by the dma-buf core.
unsafe extern "C" fn tdb_attach(
    _b: *mut bindings::dma_buf,
    _a: *mut bindings::dma_buf_attachment,
) -> c_int {
    0
}

/// # Safety
///
/// Called by the dma-buf core.
unsafe extern "C" fn tdb_detach(_b: *mut bindings::dma_buf, _a: *mut bindings::dma_buf_attachment) {
}

/// `dma_buf_ops::map_dma_buf`: no scatterlist importers.
///
/// # Safety
///
/// Called by the dma-buf core.
unsafe extern "C" fn tdb_map(
    _a: *mut bindings::dma_buf_attachment,
    _dir: bindings::dma_data_direction,
) -> *mut bindings::sg_table {
    (errno::eopnotsupp().to_errno() as isize) as *mut bindings::sg_table
}

/// # Safety
///
/// Called by the dma-buf core.
unsafe extern "C" fn tdb_unmap(
    _a: *mut bindings::dma_buf_attachment,
    _sgt: *mut bindings::sg_table,
    _dir: bindings::dma_data_direction,
) {
}

/// `dma_buf_ops::release`: the buffer goes.
///
/// # Safety
///
/// Called by the dma-buf core once, for a dma-buf `dmabuf_get()` exported.
unsafe extern "C" fn tdb_release(b: *mut bindings::dma_buf) {
    // SAFETY: `priv` is the box `dmabuf_get()` gave the dma-buf.
    drop(unsafe { KBox::from_raw((*b).priv_.cast::<TestDmaBuf>()) });
}

fn init_dmabuf_ops(module: &'static ThisModule) {
    let o = dmabuf_ops();
    // SAFETY: module init, before any test dma-buf exists.
    unsafe {
        let _ = module;
        (*o).attach = Some(tdb_attach);
        (*o).detach = Some(tdb_detach);
        (*o).map_dma_buf = Some(tdb_map);
        (*o).unmap_dma_buf = Some(tdb_unmap);
        (*o).release = Some(tdb_release);
    }
}

/// The physical range of a selftest dma-buf for iommufd (upstream's
/// `iommufd_test_dma_buf_iommufd_map()`): `None` for other exporters, `ENODEV` while revoked.
fn test_dmabuf_range(attach: *mut bindings::dma_buf_attachment) -> Option<Result<(u64, u64)>> {
    // SAFETY: a live attachment of a live dma-buf, under its reservation lock (the caller's).
    let (ops, priv_) = unsafe { ((*(*attach).dmabuf).ops, (*(*attach).dmabuf).priv_) };
    if !ptr::eq(ops, dmabuf_ops()) {
        return None;
    }
    // SAFETY: ours: `priv` is a `TestDmaBuf`, alive with the dma-buf.
    let buf = unsafe { &*priv_.cast::<TestDmaBuf>() };
    if buf.revoked.load(Ordering::Acquire) {
        return Some(Err(ENODEV));
    }
    // SAFETY: a kmalloc buffer of ours, directly mapped.
    let paddr =
        unsafe { crate::ffi::shim::iommufd_rs_virt_to_phys(buf.memory.as_ptr().cast_mut().cast()) };
    Some(Ok((paddr, buf.memory.len() as u64)))
}

/// `IOMMU_TEST_OP_DMABUF_GET`: a new selftest dma-buf of `length` bytes (rounded up to pages, at
/// most 512 pages); returns its fd.
fn dmabuf_get(length: u32, open_flags: u32) -> Result<isize> {
    let page = PAGE_SIZE;
    let len = usize::try_from(length)
        .map_err(|_| EINVAL)?
        .next_multiple_of(page);
    if len == 0 || len > page * 512 {
        return Err(EINVAL);
    }
    let buf = KBox::new(
        TestDmaBuf {
            memory: KVec::from_elem(0u8, len, GFP_KERNEL)?,
            revoked: AtomicBool::new(false),
        },
        GFP_KERNEL,
    )?;
    let raw = KBox::into_raw(buf);
    let info = bindings::dma_buf_export_info {
        exp_name: c"iommufd".as_char_ptr(),
        ops: dmabuf_ops(),
        size: len,
        flags: open_flags as c_int,
        priv_: raw.cast(),
        ..Default::default()
    };
    // SAFETY: valid export info with static ops; on success the dma-buf owns `raw` (freed in
    // `tdb_release`).
    let dmabuf = unsafe { bindings::dma_buf_export(&info) };
    let dmabuf = match kernel::error::from_err_ptr(dmabuf) {
        Ok(d) => d,
        Err(e) => {
            // SAFETY: not handed over.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(e);
        }
    };
    // SAFETY: a new dma-buf whose reference the fd takes over (or which is put on failure).
    let fd = unsafe { bindings::dma_buf_fd(dmabuf, open_flags as c_int) };
    if fd < 0 {
        // SAFETY: our reference; releasing it frees the buffer.
        unsafe { bindings::dma_buf_put(dmabuf) };
        return Err(Error::from_errno(fd));
    }
    Ok(fd as isize)
}

/// `IOMMU_TEST_OP_DMABUF_REVOKE`: revokes (or restores) a selftest dma-buf; importers are told.
fn dmabuf_revoke(fd: i32, revoked: bool) -> Result {
    // SAFETY: any fd number; an error pointer or a reference.
    let dmabuf = kernel::error::from_err_ptr(unsafe { bindings::dma_buf_get(fd) })?;
    // SAFETY: referenced.
    let (ops, priv_, resv) = unsafe { ((*dmabuf).ops, (*dmabuf).priv_, (*dmabuf).resv) };
    let rc = if ptr::eq(ops, dmabuf_ops()) {
        // SAFETY: ours: `priv` is a `TestDmaBuf`.
        let buf = unsafe { &*priv_.cast::<TestDmaBuf>() };
        // SAFETY: the dma-buf's reservation lock, as `dma_buf_invalidate_mappings()` requires.
        unsafe {
            crate::ffi::shim::iommufd_rs_dma_resv_lock(resv);
            buf.revoked.store(revoked, Ordering::Release);
            bindings::dma_buf_invalidate_mappings(dmabuf);
            crate::ffi::shim::iommufd_rs_dma_resv_unlock(resv);
        }
        Ok(())
    } else {
        Err(errno::eopnotsupp())
    };
    // SAFETY: the reference taken above.
    unsafe { bindings::dma_buf_put(dmabuf) };
    rc
}
