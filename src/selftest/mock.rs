// SPDX-License-Identifier: GPL-2.0
//! The selftest's mock IOMMU (test builds): a driver registered with the real IOMMU core on a bus
//! of its own, and mock devices on that bus, so `IOMMU_TEST_OP_MOCK_DOMAIN` exercises the same
//! bind, attach and domain paths a real device does. Compatible with what upstream's selftest.c
//! provides to `tools/testing/selftests/iommu`:
//!
//! - paging domains are the kernel's generic page table in its `amdv1_mock` format (2 KiB
//!   pages), with the aperture `[MOCK_APERTURE_START, MOCK_APERTURE_LAST]`, or huge-page only
//!   (`MOCK_IOMMUPT_HUGE`) when the HWPT data asks;
//! - the blocking domain is static and also the default domain;
//! - devices may be PASID capable (`MOCK_FLAGS_DEVICE_PASID`: 20 bits).
//!
//! The driver's statics are written once, before registration, and read-only after; the IOMMU
//! core calls the callbacks below with its own locking.

use core::{
    cell::UnsafeCell,
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
        AtomicU32,
        Ordering, //
    },
};
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_void, //
    },
    page::PAGE_SIZE,
    prelude::*,
    types::Opaque,
};

use crate::{
    context::ioctl,
    ffi::kbind,
    selftest::uapi as t, //
};

/// The driver's registration objects, which the core keeps pointers to.
struct Statics {
    bus: bindings::bus_type,
    nb: bindings::notifier_block,
    iommu: bindings::iommu_device,
    ops: bindings::iommu_ops,
    blocking_ops: bindings::iommu_domain_ops,
    blocking: bindings::iommu_domain,
    domain_ops: bindings::iommu_domain_ops,
    nested_ops: bindings::iommu_domain_ops,
    dirty_ops: bindings::iommu_dirty_ops,
    /// Where mock devices' I/O page faults are queued while a fault-capable domain is attached.
    iopf_queue: *mut bindings::iopf_queue,
}

/// Storage the kernel writes through pointers; Rust code only writes it before registration.
struct Global(UnsafeCell<MaybeUninit<Statics>>);

// SAFETY: written only by `MockIommu::register()` before anything else can see it (module init,
// single-threaded), then only touched by the kernel under its own locks.
unsafe impl Sync for Global {}

static MOCK: Global = Global(UnsafeCell::new(MaybeUninit::zeroed()));

fn statics() -> *mut Statics {
    MOCK.0.get().cast()
}

/// A mock device: a `struct device` on the mock bus plus the state the selftest reads.
#[repr(C)]
pub(crate) struct MockDev {
    dev: Opaque<bindings::device>,
    pub(crate) flags: u32,
    /// Per-device cache entries (`IOMMU_TEST_OP_DEV_CHECK_CACHE`).
    pub(crate) cache: [AtomicU32; t::MOCK_DEV_CACHE_NUM as usize],
    /// Set by the first attach of PASID 1024, so the next one fails (replace error path test).
    pasid_1024_fake_error: AtomicBool,
    /// Attached domains that deliver I/O page faults (the device is on the IOPF queue while
    /// any is); changed under the group mutex.
    iopf_refcount: AtomicU32,
}

/// Names of mock devices; a counter is enough, names only need to differ.
static NEXT_DEV: AtomicU32 = AtomicU32::new(0);

const PASID_WIDTH: u32 = 20;

/// `MockDev` of a device on the mock bus.
///
/// # Safety
///
/// `dev` must be the `dev` of a live `MockDev`.
pub(crate) unsafe fn to_mock(dev: *mut bindings::device) -> *mut MockDev {
    // `dev` is the first field of the `repr(C)` struct.
    dev.cast::<MockDev>()
}

/// `release` of mock devices.
///
/// # Safety
///
/// Called by the device core, once, with a device `MockDevice::new()` created.
unsafe extern "C" fn mock_dev_release(dev: *mut bindings::device) {
    // SAFETY: the device core calls this once, when the last reference to a device we created
    // goes; it was allocated by `KBox` in `MockDevice::new()`.
    drop(unsafe { KBox::from_raw(to_mock(dev)) });
}

/// A registered mock device, unregistered on drop.
///
/// # Invariants
///
/// `self.0` is a device added to the mock bus by [`MockDevice::new`].
pub(crate) struct MockDevice(NonNull<MockDev>);

// SAFETY: the device core refcounts and locks the device; our fields are atomics or immutable.
unsafe impl Send for MockDevice {}
// SAFETY: as above.
unsafe impl Sync for MockDevice {}

impl MockDevice {
    /// Creates and adds a mock device with `MOCK_FLAGS_DEVICE_*` `flags`; the IOMMU core probes
    /// it on the way in.
    pub(crate) fn new(flags: u32) -> Result<Self> {
        if flags & !(t::MOCK_FLAGS_DEVICE_NO_DIRTY | t::MOCK_FLAGS_DEVICE_PASID) != 0 {
            return Err(EINVAL);
        }
        let mdev = KBox::new(
            MockDev {
                dev: Opaque::zeroed(),
                flags,
                cache: [const { AtomicU32::new(t::IOMMU_TEST_DEV_CACHE_DEFAULT) };
                    t::MOCK_DEV_CACHE_NUM as usize],
                pasid_1024_fake_error: AtomicBool::new(false),
                iopf_refcount: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )?;
        let raw = KBox::into_raw(mdev);
        // SAFETY: `raw` is a valid new `MockDev`.
        let dev = unsafe { (*raw).dev.get() };
        // SAFETY: a zeroed device, initialized once; from here on it is freed by
        // `mock_dev_release()` when its last reference goes.
        unsafe {
            bindings::device_initialize(dev);
            (*dev).release = Some(mock_dev_release);
            (*dev).bus = &raw const (*statics()).bus;
        }
        // SAFETY: `dev` is initialized; on failure the reference from `device_initialize()` is
        // dropped, which frees it.
        let put = || unsafe { bindings::put_device(dev) };
        let id = NEXT_DEV.fetch_add(1, Ordering::Relaxed);
        // SAFETY: a printf format with one unsigned argument.
        let rc =
            unsafe { bindings::dev_set_name(dev, c"iommufd_mock%u".as_char_ptr(), id as c_uint) };
        if rc != 0 {
            put();
            return Err(Error::from_errno(rc));
        }
        let bits = if flags & t::MOCK_FLAGS_DEVICE_PASID != 0 {
            PASID_WIDTH
        } else {
            0
        };
        let mut props = [
            bindings::property_entry::default(),
            bindings::property_entry::default(),
        ];
        props[0].name = c"pasid-num-bits".as_char_ptr();
        props[0].length = core::mem::size_of::<u32>();
        props[0].is_inline = true;
        props[0].type_ = bindings::dev_prop_type_DEV_PROP_U32;
        // SAFETY: plain integer union member.
        unsafe { props[0].__bindgen_anon_1.value.u32_data[0] = bits };
        // SAFETY: `dev` is initialized; the properties are copied (the terminator is zeroed).
        let rc = unsafe {
            bindings::device_create_managed_software_node(dev, props.as_ptr(), ptr::null())
        };
        if rc != 0 {
            put();
            return Err(Error::from_errno(rc));
        }
        // SAFETY: `dev` is initialized and named; the mock IOMMU is registered while the module
        // lives.
        let rc = unsafe { kbind::iommu_mock_device_add(dev, &raw mut (*statics()).iommu) };
        if rc != 0 {
            put();
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: added above.
        Ok(Self(NonNull::new(raw).ok_or(EINVAL)?))
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        // SAFETY: by the type invariant the device is live.
        unsafe { (*self.0.as_ptr()).dev.get() }
    }
}

impl Drop for MockDevice {
    fn drop(&mut self) {
        // SAFETY: added by `new()` (type invariant); this drops the device core's reference.
        unsafe { bindings::device_unregister(self.as_raw()) };
    }
}

/// Whether `dev` is a mock device.
pub(crate) fn is_mock(dev: *mut bindings::device) -> bool {
    // SAFETY: `dev` is a live device the core passed us.
    unsafe { ptr::eq((*dev).bus, &raw const (*statics()).bus) }
}

/// `iommu_ops::probe_device`.
///
/// # Safety
///
/// Called by the IOMMU core with a live device.
unsafe extern "C" fn mock_probe_device(dev: *mut bindings::device) -> *mut bindings::iommu_device {
    if !is_mock(dev) {
        return err_ptr(ENODEV);
    }
    // SAFETY: the registered IOMMU, live while the module is.
    unsafe { &raw mut (*statics()).iommu }
}

fn err_ptr<T>(e: Error) -> *mut T {
    (e.to_errno() as isize) as *mut T
}

/// `iommu_ops::capable`.
///
/// # Safety
///
/// Called by the IOMMU core with a device this driver probed.
unsafe extern "C" fn mock_capable(dev: *mut bindings::device, cap: bindings::iommu_cap) -> bool {
    // SAFETY: the core only asks about devices this driver probed: mock devices.
    let flags = unsafe { (*to_mock(dev)).flags };
    match cap {
        bindings::iommu_cap_IOMMU_CAP_CACHE_COHERENCY => true,
        bindings::iommu_cap_IOMMU_CAP_DIRTY_TRACKING => flags & t::MOCK_FLAGS_DEVICE_NO_DIRTY == 0,
        _ => false,
    }
}

/// `iommu_ops::hw_info`.
///
/// # Safety
///
/// Called by iommufd with a probed device and valid out-pointers.
unsafe extern "C" fn mock_hw_info(
    _dev: *mut bindings::device,
    length: *mut u32,
    kind: *mut bindings::iommu_hw_info_type,
) -> *mut c_void {
    // SAFETY: the core passes valid out-pointers.
    let want = unsafe { *kind };
    if want != bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT
        && want != t::IOMMU_HW_INFO_TYPE_SELFTEST
    {
        return err_ptr(crate::context::errno::eopnotsupp());
    }
    let info = KBox::new(
        t::iommu_test_hw_info {
            flags: 0,
            test_reg: t::IOMMU_HW_INFO_SELFTEST_REGVAL,
        },
        GFP_KERNEL,
    );
    match info {
        Ok(info) => {
            // SAFETY: as above.
            unsafe {
                *length = core::mem::size_of::<t::iommu_test_hw_info>() as u32;
                *kind = t::IOMMU_HW_INFO_TYPE_SELFTEST;
            }
            // The core frees it with kfree(), which matches KBox's allocator.
            KBox::into_raw(info).cast()
        }
        Err(_) => err_ptr(ENOMEM),
    }
}

/// Puts the device on the IOPF queue for `domain` if it delivers faults (upstream's
/// `mock_dev_enable_iopf()`).
///
/// # Safety
///
/// `dev` must be a mock device, `domain` NULL or live; the group mutex is held.
unsafe fn enable_iopf(dev: *mut bindings::device, domain: *mut bindings::iommu_domain) -> Result {
    // SAFETY: the caller's guarantee.
    if domain.is_null() || unsafe { (*domain).iopf_handler }.is_none() {
        return Ok(());
    }
    // SAFETY: as above.
    let mdev = unsafe { &*to_mock(dev) };
    // SAFETY: set at registration, freed at unregistration.
    let queue = unsafe { (*statics()).iopf_queue };
    if queue.is_null() {
        return Err(ENODEV);
    }
    if mdev.iopf_refcount.load(Ordering::Relaxed) == 0 {
        // SAFETY: a live device and the live queue.
        let rc = unsafe { bindings::iopf_queue_add_device(queue, dev) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
    }
    mdev.iopf_refcount.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Undoes [`enable_iopf`] for `domain`.
///
/// # Safety
///
/// As for [`enable_iopf`].
unsafe fn disable_iopf(dev: *mut bindings::device, domain: *mut bindings::iommu_domain) {
    // SAFETY: the caller's guarantee.
    if domain.is_null() || unsafe { (*domain).iopf_handler }.is_none() {
        return;
    }
    // SAFETY: as above.
    let mdev = unsafe { &*to_mock(dev) };
    if mdev.iopf_refcount.fetch_sub(1, Ordering::Relaxed) == 1 {
        // SAFETY: the device was added to the queue by `enable_iopf`.
        unsafe { bindings::iopf_queue_remove_device((*statics()).iopf_queue, dev) };
    }
}

/// `iommu_domain_ops::attach_dev`: nothing to program in a mock, but a dirty-tracking domain
/// refuses a device without dirty tracking, and fault delivery follows the domain.
///
/// # Safety
///
/// Called by the IOMMU core with the group mutex held, a live domain and a mock device.
unsafe extern "C" fn mock_attach_dev(
    domain: *mut bindings::iommu_domain,
    dev: *mut bindings::device,
    old: *mut bindings::iommu_domain,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let (dirty, flags) = unsafe { (!(*domain).dirty_ops.is_null(), (*to_mock(dev)).flags) };
    if dirty && flags & t::MOCK_FLAGS_DEVICE_NO_DIRTY != 0 {
        return EINVAL.to_errno();
    }
    // A nested domain of a vIOMMU translates for the guest's devices only: the device needs a
    // vDEVICE there first.
    // SAFETY: the caller's guarantee: a live domain.
    if let Some(viommu) = unsafe { nested_viommu(domain) } {
        if viommu.vdev_id_of(dev).is_none() {
            return ENOENT.to_errno();
        }
    }
    // SAFETY: the caller's guarantee.
    if let Err(e) = unsafe { enable_iopf(dev, domain) } {
        return e.to_errno();
    }
    // SAFETY: as above.
    unsafe { disable_iopf(dev, old) };
    0
}

/// `iommu_ops::page_response`: a mock device needs no answer. The core calls it from
/// `iopf_group_response()` under a mutex, so no caller may answer where sleeping is not allowed;
/// the mock says so when one does (a kernel without `CONFIG_DEBUG_ATOMIC_SLEEP` would not), and
/// tests/selftests/fault_queue.c looks for that in the kernel log.
///
/// # Safety
///
/// Called by the IOMMU core; nothing is dereferenced.
unsafe extern "C" fn mock_page_response(
    _dev: *mut bindings::device,
    _evt: *mut bindings::iopf_fault,
    _msg: *mut bindings::iommu_page_response,
) {
    // SAFETY: reads the preemption and interrupt state of this CPU.
    if unsafe { iommufd_rs_cannot_sleep() } {
        kernel::pr_err!("mock: page response where sleeping is not allowed\n");
        kernel::warn_on!(true);
    }
}

/// `iommu_dirty_ops::set_dirty_tracking`.
///
/// # Safety
///
/// Called by iommufd with one of our paging domains.
unsafe extern "C" fn mock_set_dirty_tracking(
    domain: *mut bindings::iommu_domain,
    enable: bool,
) -> c_int {
    // SAFETY: the caller's guarantee.
    if enable && unsafe { (*domain).dirty_ops }.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: our paging domains are `MockDomain`s.
    let mock = unsafe { &*domain.cast::<MockDomain>() };
    mock.dirty_tracking.store(enable, Ordering::Relaxed);
    0
}

/// `iommu_domain_ops::set_dev_pasid`.
///
/// # Safety
///
/// Called by the IOMMU core with a live domain and a device this driver probed.
unsafe extern "C" fn mock_set_dev_pasid(
    domain: *mut bindings::iommu_domain,
    dev: *mut bindings::device,
    pasid: bindings::ioasid_t,
    old: *mut bindings::iommu_domain,
) -> c_int {
    // PASID 1024: the first attach arms a failure, the second fails (and disarms), so the core's
    // rollback on a failed replace can be tested; attaching the blocking domain disarms.
    if pasid == t::IOMMU_TEST_PASID_RESERVED {
        // SAFETY: a mock device (see `mock_capable`); `domain` is live.
        let (mdev, blocked) = unsafe {
            (
                &*to_mock(dev),
                (*domain).type_ == bindings::IOMMU_DOMAIN_BLOCKED,
            )
        };
        if blocked {
            mdev.pasid_1024_fake_error.store(false, Ordering::Relaxed);
        } else if mdev.pasid_1024_fake_error.swap(false, Ordering::Relaxed) {
            return ENOMEM.to_errno();
        } else {
            mdev.pasid_1024_fake_error.store(true, Ordering::Relaxed);
        }
    }
    // SAFETY: the caller's guarantee.
    if let Err(e) = unsafe { enable_iopf(dev, domain) } {
        return e.to_errno();
    }
    // SAFETY: as above.
    unsafe { disable_iopf(dev, old) };
    0
}

/// A paging domain: the generic page table with the core's domain at its start.
#[repr(C)]
struct MockDomain {
    pt: kbind::pt_iommu_amdv1,
    /// `set_dirty_tracking()` state.
    dirty_tracking: AtomicBool,
}

/// `iommu_domain_ops::free` of paging domains.
///
/// # Safety
///
/// Called by the IOMMU core once per domain `alloc_paging()` made.
unsafe extern "C" fn mock_domain_free(domain: *mut bindings::iommu_domain) {
    let mock = domain.cast::<MockDomain>();
    // SAFETY: our paging domains are `MockDomain`s from `KBox` (domain at offset 0); the core
    // frees each once. `deinit` is set only once the table was initialized.
    unsafe {
        let table = &raw mut (*mock).pt.iommu;
        let ops = (*table).ops;
        if !ops.is_null() {
            if let Some(deinit) = (*ops).deinit {
                deinit(table);
            }
        }
        drop(KBox::from_raw(mock));
    }
}

/// `iommu_domain_ops::iotlb_sync`: frees the table pages an unmap released.
///
/// # Safety
///
/// Called by the IOMMU core with a valid gather.
unsafe extern "C" fn mock_iotlb_sync(
    _domain: *mut bindings::iommu_domain,
    gather: *mut bindings::iommu_iotlb_gather,
) {
    // SAFETY: the gather the core passes; table pages freed by the unmap wait here.
    unsafe { kbind::iommu_put_pages_list(&raw mut (*gather).freelist) };
}

/// `iommu_ops::domain_alloc_paging_flags`.
///
/// # Safety
///
/// Called by the IOMMU core or iommufd with a probed device and NULL or valid user data.
unsafe extern "C" fn mock_domain_alloc_paging_flags(
    dev: *mut bindings::device,
    flags: u32,
    user_data: *const bindings::iommu_user_data,
) -> *mut bindings::iommu_domain {
    // SAFETY: the core passes a probed (mock) device and NULL or valid user data.
    match unsafe { alloc_paging(dev, flags, user_data.as_ref()) } {
        Ok(d) => d,
        Err(e) => err_ptr(e),
    }
}

/// # Safety
///
/// `dev` must be a live mock device.
unsafe fn alloc_paging(
    dev: *mut bindings::device,
    flags: u32,
    user_data: Option<&bindings::iommu_user_data>,
) -> Result<*mut bindings::iommu_domain> {
    const PAGING_FLAGS: u32 = crate::ffi::uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING
        | crate::ffi::uapi::IOMMU_HWPT_ALLOC_NEST_PARENT
        | crate::ffi::uapi::IOMMU_HWPT_ALLOC_PASID;
    // SAFETY: the caller's guarantee.
    let mdev_flags = unsafe { (*to_mock(dev)).flags };
    let dirty = flags & crate::ffi::uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0;
    if flags & !PAGING_FLAGS != 0 || (dirty && mdev_flags & t::MOCK_FLAGS_DEVICE_NO_DIRTY != 0) {
        return Err(crate::context::errno::eopnotsupp());
    }
    let mut cfg_user = t::iommu_hwpt_selftest::default();
    if let Some(data) = user_data {
        if data.type_ != t::IOMMU_HWPT_DATA_SELFTEST
            && data.type_ != crate::ffi::uapi::IOMMU_HWPT_DATA_NONE
        {
            return Err(crate::context::errno::eopnotsupp());
        }
        cfg_user = ioctl::copy_struct_from_user(
            data,
            t::IOMMU_HWPT_DATA_SELFTEST,
            offset_of!(t::iommu_hwpt_selftest, iotlb) + core::mem::size_of::<u32>(),
        )?;
    }
    let huge = match cfg_user.pagetable_type {
        t::MOCK_IOMMUPT_DEFAULT => false,
        t::MOCK_IOMMUPT_HUGE => true,
        _ => return Err(crate::context::errno::eopnotsupp()),
    };
    let mut mock = KBox::new(
        MockDomain {
            pt: kbind::pt_iommu_amdv1::default(),
            dirty_tracking: AtomicBool::new(false),
        },
        GFP_KERNEL,
    )?;
    mock.pt.iommu.domain.type_ = bindings::IOMMU_DOMAIN_UNMANAGED;
    // SAFETY: the statics are initialized before registration.
    mock.pt.iommu.domain.ops = unsafe { &raw const (*statics()).domain_ops };
    mock.pt.iommu.nid = bindings::NUMA_NO_NODE;
    let mut cfg = kbind::pt_iommu_amdv1_cfg::default();
    // The mock format has 2 KiB pages.
    cfg.common.hw_max_vasz_lg2 = 56;
    cfg.common.hw_max_oasz_lg2 = 51;
    cfg.starting_level = 2;
    // SAFETY: `mock.pt` is zeroed apart from the fields above, as the library expects.
    let rc = unsafe { kbind::pt_iommu_amdv1_mock_init(&mut mock.pt, &cfg, bindings::GFP_KERNEL) };
    if rc != 0 {
        return Err(Error::from_errno(rc));
    }
    let domain = &mut mock.pt.iommu.domain;
    if dirty {
        // SAFETY: the statics are initialized before registration.
        domain.dirty_ops = unsafe { &raw const (*statics()).dirty_ops };
    }
    if huge {
        // Userspace provides only huge pages; PAGE_SIZE must be there for iommufd to accept it.
        domain.pgsize_bitmap = t::MOCK_HUGE_PAGE_SIZE as usize | PAGE_SIZE;
    } else {
        // The selftests expect the mock aperture, not the format's.
        domain.geometry.aperture_start = u64::from(t::MOCK_APERTURE_START);
        domain.geometry.aperture_end = u64::from(t::MOCK_APERTURE_LAST);
    }
    // Freed by `mock_domain_free()`.
    Ok(KBox::into_raw(mock).cast())
}

/// A nested domain: a mock IOTLB the selftest invalidates and checks (no real stage-1 table).
#[repr(C)]
struct MockNested {
    domain: bindings::iommu_domain,
    iotlb: [AtomicU32; t::MOCK_NESTED_DOMAIN_IOTLB_NUM as usize],
    /// The vIOMMU the domain was made on (null for one made on a bare parent HWPT); it outlives
    /// the domain (the nested HWPT holds both).
    viommu: *const crate::viommu::Viommu,
}

/// `iommu_ops::domain_alloc_nested`.
///
/// # Safety
///
/// Called by iommufd with a probed device, NULL or a live parent domain, and NULL or valid user
/// data.
unsafe extern "C" fn mock_domain_alloc_nested(
    _dev: *mut bindings::device,
    parent: *mut bindings::iommu_domain,
    flags: u32,
    user_data: *const bindings::iommu_user_data,
) -> *mut bindings::iommu_domain {
    // SAFETY: the caller's guarantee.
    match unsafe { alloc_nested(parent, flags, user_data.as_ref(), ptr::null()) } {
        Ok(d) => d,
        Err(e) => err_ptr(e),
    }
}

/// A nested domain on a mock vIOMMU (its `alloc_domain_nested`).
pub(crate) fn alloc_nested_on_viommu(
    viommu: &crate::viommu::Viommu,
    flags: u32,
    data: &bindings::iommu_user_data,
) -> Result<*mut bindings::iommu_domain> {
    if flags & !crate::ffi::uapi::IOMMU_HWPT_ALLOC_PASID != 0 {
        return Err(crate::context::errno::eopnotsupp());
    }
    let parent = viommu.parent.domain().as_raw();
    // SAFETY: the parent HWPT (held by the vIOMMU) owns a live domain.
    unsafe { alloc_nested(parent, flags, Some(data), viommu) }
}

/// # Safety
///
/// `parent` must be NULL or a live domain.
unsafe fn alloc_nested(
    parent: *mut bindings::iommu_domain,
    flags: u32,
    user_data: Option<&bindings::iommu_user_data>,
    viommu: *const crate::viommu::Viommu,
) -> Result<*mut bindings::iommu_domain> {
    if flags & !crate::ffi::uapi::IOMMU_HWPT_ALLOC_PASID != 0 {
        return Err(crate::context::errno::eopnotsupp());
    }
    // SAFETY: the caller's guarantee.
    if parent.is_null() || unsafe { (*parent).type_ } & bindings::__IOMMU_DOMAIN_PAGING == 0 {
        return Err(EINVAL);
    }
    let data = user_data.ok_or(EINVAL)?;
    if data.type_ != t::IOMMU_HWPT_DATA_SELFTEST {
        return Err(crate::context::errno::eopnotsupp());
    }
    let cfg: t::iommu_hwpt_selftest = ioctl::copy_struct_from_user(
        data,
        t::IOMMU_HWPT_DATA_SELFTEST,
        offset_of!(t::iommu_hwpt_selftest, iotlb) + core::mem::size_of::<u32>(),
    )?;
    let mut nested = KBox::new(
        MockNested {
            domain: bindings::iommu_domain::default(),
            iotlb: [const { AtomicU32::new(0) }; t::MOCK_NESTED_DOMAIN_IOTLB_NUM as usize],
            viommu,
        },
        GFP_KERNEL,
    )?;
    for e in nested.iotlb.iter() {
        e.store(cfg.iotlb, Ordering::Relaxed);
    }
    nested.domain.type_ = bindings::IOMMU_DOMAIN_NESTED;
    // SAFETY: the statics are initialized before registration.
    nested.domain.ops = unsafe { &raw const (*statics()).nested_ops };
    // Freed by `mock_nested_free()`.
    Ok(KBox::into_raw(nested).cast())
}

/// `iommu_domain_ops::free` of nested domains.
///
/// # Safety
///
/// Called by the IOMMU core once per domain `alloc_nested()` made.
unsafe extern "C" fn mock_nested_free(domain: *mut bindings::iommu_domain) {
    // SAFETY: nested domains are `MockNested`s from `KBox` (domain at offset 0).
    drop(unsafe { KBox::from_raw(domain.cast::<MockNested>()) });
}

/// `iommu_domain_ops::cache_invalidate_user` of nested domains: each request clears one mock
/// IOTLB entry or all of them; `entry_num` comes back as the count handled.
///
/// # Safety
///
/// Called by iommufd with a live nested domain of ours and a valid array.
unsafe extern "C" fn mock_cache_invalidate_user(
    domain: *mut bindings::iommu_domain,
    array: *mut bindings::iommu_user_data_array,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let (nested, array) = unsafe { (&*domain.cast::<MockNested>(), &mut *array) };
    let mut done = 0u32;
    let rc = (|| -> Result {
        if array.type_ != t::IOMMU_HWPT_INVALIDATE_DATA_SELFTEST {
            return Err(EINVAL);
        }
        let min =
            offset_of!(t::iommu_hwpt_invalidate_selftest, iotlb_id) + core::mem::size_of::<u32>();
        for i in 0..array.entry_num {
            let entry = bindings::iommu_user_data {
                type_: array.type_,
                uptr: (array.uptr as usize)
                    .checked_add(array.entry_len.checked_mul(i as usize).ok_or(EINVAL)?)
                    .ok_or(EFAULT)? as *mut c_void,
                len: array.entry_len,
            };
            let inv: t::iommu_hwpt_invalidate_selftest =
                ioctl::copy_struct_from_user(&entry, t::IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, min)?;
            if inv.flags & !t::IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
                return Err(crate::context::errno::eopnotsupp());
            }
            if inv.iotlb_id > t::MOCK_NESTED_DOMAIN_IOTLB_ID_MAX {
                return Err(EINVAL);
            }
            if inv.flags & t::IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
                for e in nested.iotlb.iter() {
                    e.store(0, Ordering::Relaxed);
                }
            } else if let Some(e) = nested.iotlb.get(inv.iotlb_id as usize) {
                e.store(0, Ordering::Relaxed);
            }
            done += 1;
        }
        Ok(())
    })();
    array.entry_num = done;
    match rc {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The vIOMMU a nested mock domain was made on.
///
/// # Safety
///
/// `domain` must be live; the answer is valid while it is.
unsafe fn nested_viommu<'a>(
    domain: *mut bindings::iommu_domain,
) -> Option<&'a crate::viommu::Viommu> {
    // SAFETY: the caller's guarantee.
    let ours = unsafe {
        (*domain).type_ == bindings::IOMMU_DOMAIN_NESTED
            && ptr::eq((*domain).ops, &raw const (*statics()).nested_ops)
    };
    if !ours {
        return None;
    }
    // SAFETY: one of our `MockNested`s; its vIOMMU outlives it.
    unsafe { (*domain.cast::<MockNested>()).viommu.as_ref() }
}

/// Entry `id` of a nested mock domain's IOTLB (`IOMMU_TEST_OP_MD_CHECK_IOTLB`); `None` if the
/// domain is not a nested mock domain or the entry does not exist.
pub(crate) fn nested_iotlb(domain: *mut bindings::iommu_domain, id: u32) -> Option<u32> {
    // SAFETY: the caller holds the HWPT that owns `domain`.
    let ours = unsafe {
        (*domain).type_ == bindings::IOMMU_DOMAIN_NESTED
            && ptr::eq((*domain).ops, &raw const (*statics()).nested_ops)
    };
    if !ours {
        return None;
    }
    // SAFETY: checked above: one of our `MockNested`s, alive while its HWPT is.
    let nested = unsafe { &*domain.cast::<MockNested>() };
    nested
        .iotlb
        .get(usize::try_from(id).ok()?)
        .map(|e| e.load(Ordering::Relaxed))
}

extern "C" {
    /// Whether the caller is where sleeping is not allowed (`shim.c`, test builds).
    fn iommufd_rs_cannot_sleep() -> bool;
}

/// The mock IOMMU's registration; unregisters on drop.
pub(crate) struct MockIommu(());

impl MockIommu {
    /// Fills in the driver statics and registers the bus and the IOMMU. Called once, from
    /// module init.
    pub(crate) fn register(module: &'static ThisModule) -> Result<Self> {
        let s = statics();
        // SAFETY: module init runs once and before anything can reach the statics; the fields
        // written are plain data the kernel reads after registration.
        unsafe {
            (*s).bus.name = c"iommufd_mock".as_char_ptr();

            (*s).blocking_ops.attach_dev = Some(mock_attach_dev);
            (*s).blocking_ops.set_dev_pasid = Some(mock_set_dev_pasid);
            (*s).blocking.type_ = bindings::IOMMU_DOMAIN_BLOCKED;
            (*s).blocking.ops = &raw const (*s).blocking_ops;

            (*s).domain_ops.iova_to_phys = Some(kbind::pt_iommu_amdv1_mock_iova_to_phys);
            (*s).domain_ops.free = Some(mock_domain_free);
            (*s).domain_ops.attach_dev = Some(mock_attach_dev);
            (*s).domain_ops.set_dev_pasid = Some(mock_set_dev_pasid);
            (*s).domain_ops.iotlb_sync = Some(mock_iotlb_sync);

            (*s).dirty_ops.read_and_clear_dirty =
                Some(kbind::pt_iommu_amdv1_mock_read_and_clear_dirty);
            (*s).dirty_ops.set_dirty_tracking = Some(mock_set_dirty_tracking);

            (*s).nested_ops.free = Some(mock_nested_free);
            (*s).nested_ops.attach_dev = Some(mock_attach_dev);
            (*s).nested_ops.set_dev_pasid = Some(mock_set_dev_pasid);
            (*s).nested_ops.cache_invalidate_user = Some(mock_cache_invalidate_user);

            let ops = &mut (*s).ops;
            // IOMMU_DOMAIN_BLOCKED cannot come from def_domain_type() (it is 0): name it.
            ops.default_domain = &raw mut (*s).blocking;
            ops.blocked_domain = &raw mut (*s).blocking;
            ops.owner = module.as_ptr();
            ops.hw_info = Some(mock_hw_info);
            ops.domain_alloc_paging_flags = Some(mock_domain_alloc_paging_flags);
            ops.domain_alloc_nested = Some(mock_domain_alloc_nested);
            ops.capable = Some(mock_capable);
            ops.device_group = Some(bindings::generic_device_group);
            ops.probe_device = Some(mock_probe_device);
            ops.page_response = Some(mock_page_response);
            ops.set_user_pasid_table(1);

            // Devices get min(this, their own "pasid-num-bits").
            (*s).iommu.max_pasids = 1 << PASID_WIDTH;

            // Without a queue, fault-capable domains refuse to attach (ENODEV).
            (*s).iopf_queue = bindings::iopf_queue_alloc(c"mock-iopfq".as_char_ptr());
        }
        // SAFETY: the bus struct is static and filled in.
        let rc = unsafe { bindings::bus_register(&raw mut (*s).bus) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // SAFETY: a static IOMMU device; sysfs gives it the device the core links members to.
        let rc = unsafe {
            bindings::iommu_device_sysfs_add(
                &raw mut (*s).iommu,
                ptr::null_mut(),
                ptr::null_mut(),
                c"%s".as_char_ptr(),
                c"iommufd_mock_iommu".as_char_ptr(),
            )
        };
        if rc != 0 {
            // SAFETY: registered above.
            unsafe {
                bindings::bus_unregister(&raw mut (*s).bus);
                free_iopf_queue(s);
            }
            return Err(Error::from_errno(rc));
        }
        // SAFETY: all statics are set up; the notifier block is static too.
        let rc = unsafe {
            kbind::iommu_device_register_bus(
                &raw mut (*s).iommu,
                &raw const (*s).ops,
                &raw const (*s).bus,
                &raw mut (*s).nb,
            )
        };
        if rc != 0 {
            // SAFETY: undoing the two registrations above.
            unsafe {
                bindings::iommu_device_sysfs_remove(&raw mut (*s).iommu);
                bindings::bus_unregister(&raw mut (*s).bus);
                free_iopf_queue(s);
            }
            return Err(Error::from_errno(rc));
        }
        Ok(Self(()))
    }
}

impl Drop for MockIommu {
    fn drop(&mut self) {
        let s = statics();
        // SAFETY: registered by `register()`; no mock device is left (each belongs to an object
        // of an open file, and the module cannot unload while a file is open).
        unsafe {
            kbind::iommu_device_unregister_bus(
                &raw mut (*s).iommu,
                &raw const (*s).bus,
                &raw mut (*s).nb,
            );
            bindings::iommu_device_sysfs_remove(&raw mut (*s).iommu);
            bindings::bus_unregister(&raw mut (*s).bus);
            free_iopf_queue(s);
        }
    }
}

/// Frees the IOPF queue, if there is one.
///
/// # Safety
///
/// No mock device is on the queue any more.
unsafe fn free_iopf_queue(s: *mut Statics) {
    // SAFETY: the caller's guarantee; the pointer is cleared so it is freed once.
    unsafe {
        if !(*s).iopf_queue.is_null() {
            bindings::iopf_queue_free((*s).iopf_queue);
            (*s).iopf_queue = ptr::null_mut();
        }
    }
}

/// `IOMMU_TEST_OP_TRIGGER_IOPF`: the mock device raises a page request, as hardware would.
pub(crate) fn trigger_iopf(
    dev: *mut bindings::device,
    pasid: u32,
    grpid: u32,
    perm: u32,
    addr: u64,
) -> Result {
    if !is_mock(dev) {
        return Err(EINVAL);
    }
    let mut event = bindings::iopf_fault::default();
    event.fault.type_ = bindings::iommu_fault_type_IOMMU_FAULT_PAGE_REQ;
    event.fault.prm.flags = bindings::IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
    if pasid != bindings::IOMMU_NO_PASID {
        event.fault.prm.flags |= bindings::IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
    }
    event.fault.prm.addr = addr;
    event.fault.prm.pasid = pasid;
    event.fault.prm.grpid = grpid;
    event.fault.prm.perm = perm;
    // SAFETY: a live mock device (bound, so registered); the event is copied by the core. A
    // fault nobody handles is answered by the core itself; as upstream, not an error here.
    let _ = unsafe { bindings::iommu_report_device_fault(dev, &mut event) };
    Ok(())
}

/// Clears entry `cache_id` of a mock device's cache, or all of them (`None`): what a vIOMMU
/// invalidation does to the device's ATC.
pub(crate) fn invalidate_dev_cache(dev: *mut bindings::device, cache_id: Option<u32>) {
    if !is_mock(dev) {
        return;
    }
    // SAFETY: a live mock device (the caller holds the vIOMMU's device lock).
    let mdev = unsafe { &*to_mock(dev) };
    match cache_id {
        None => mdev
            .cache
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed)),
        Some(id) => {
            if let Some(c) = usize::try_from(id).ok().and_then(|i| mdev.cache.get(i)) {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The physical address a mock domain maps `iova` to, 0 if none (`IOMMU_TEST_OP_MD_CHECK_MAP`).
pub(crate) fn iova_to_phys(domain: *mut bindings::iommu_domain, iova: u64) -> u64 {
    // SAFETY: the caller holds the HWPT that owns `domain`.
    unsafe { bindings::iommu_iova_to_phys(domain, iova) }
}

/// `IOMMU_TEST_OP_DIRTY`: marks dirty, in a dirty-tracking mock domain, every `page_size` page
/// of `[iova, iova + length)` whose bit is set in the user bitmap at `uptr`, as a device writing
/// there would. Returns how many it marked.
pub(crate) fn mark_dirty(
    domain: *mut bindings::iommu_domain,
    iova: u64,
    length: u64,
    page_size: u64,
    uptr: u64,
) -> Result<u64> {
    if page_size == 0
        || length == 0
        || iova % page_size != 0
        || length % page_size != 0
        || uptr == 0
    {
        return Err(EINVAL);
    }
    let max = length / page_size;
    if max > (16 << 20) * 8 {
        return Err(EOVERFLOW);
    }
    // Upstream computes `iova + i * page_size` unchecked and marks wrapped IOVAs; the range must
    // not pass the top of the space here (`i * page_size < length`, so no product overflows).
    iova.checked_add(length - 1).ok_or(EOVERFLOW)?;
    if !is_mock_domain(domain) {
        return Err(EINVAL);
    }
    // SAFETY: one of our paging domains (checked above), held by the caller's HWPT.
    let mock = unsafe { &mut *domain.cast::<MockDomain>() };
    // SAFETY: `ops` is set by the table's init and static.
    let set_dirty = unsafe { mock.pt.iommu.ops.as_ref() }.and_then(|o| o.set_dirty);
    let Some(set_dirty) = set_dirty.filter(|_| mock.dirty_tracking.load(Ordering::Relaxed)) else {
        return Err(EINVAL);
    };
    let nbytes = usize::try_from(max.div_ceil(8)).map_err(|_| EOVERFLOW)?;
    let mut bits = KVVec::from_elem(0u8, nbytes, GFP_KERNEL_ACCOUNT)?;
    let user = usize::try_from(uptr).map_err(|_| EFAULT)?;
    kernel::uaccess::UserSlice::new(kernel::uaccess::UserPtr::from_addr(user), nbytes)
        .reader()
        .read_slice(&mut bits)?;
    let mut count = 0u64;
    for i in 0..max {
        let byte = bits[(i / 8) as usize];
        if byte & (1 << (i % 8)) == 0 {
            continue;
        }
        // Within `[iova, iova + length)`, checked above.
        let at = i
            .checked_mul(page_size)
            .and_then(|off| iova.checked_add(off))
            .ok_or(EOVERFLOW)?;
        // SAFETY: the table is live (the domain is); it checks `at` against its range.
        unsafe { set_dirty(&raw mut mock.pt.iommu, at) };
        count += 1;
    }
    Ok(count)
}

/// Whether `domain` is one of ours (a paging domain of the mock driver).
pub(crate) fn is_mock_domain(domain: *mut bindings::iommu_domain) -> bool {
    // SAFETY: the caller holds the HWPT that owns `domain`.
    unsafe { ptr::eq((*domain).ops, &raw const (*statics()).domain_ops) }
}
