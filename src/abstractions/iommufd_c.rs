// SPDX-License-Identifier: GPL-2.0
//! The C-visible parts of this module's objects: upstream's `struct iommufd_ctx`,
//! `struct iommufd_group`, `struct iommufd_device` and `struct iommufd_hw_pagetable`, laid out by
//! the tree under build (`src/ffi/c_objects.c` compiles against its `iommufd_private.h`), for the
//! code built into the kernel that reads them from whichever iommufd is loaded. Each Rust object
//! owns its C part through one of the types here and frees it after everything C could reach it
//! from is gone.
//!
//! The first reader is the software-managed MSI path (`iommufd_sw_msi()`, called by
//! `iommu_dma_prepare_msi()` for a domain whose cookie is `IOMMU_COOKIE_IOMMUFD`): on arm64 with
//! an SMMUv3 and a GICv3 ITS, a device's MSI doorbell is mapped into the domain it is attached to
//! at an IOVA of its `IOMMU_RESV_SW_MSI` window, and [`CGroup::setup_msi`] carries those pages
//! into every domain the group attaches to afterwards. The others are the IOMMU drivers'
//! vIOMMUs ([`CViommu`], [`CVdevice`], [`CVeventq`]): the driver embeds the C vIOMMU and finds
//! devices, virtual IDs and event queues through the kernel's built-in helpers.

use core::ptr::NonNull;
use kernel::{
    bindings,
    device::Device as KDevice,
    error::{from_err_ptr, to_result},
    prelude::*,
    sync::Arc,
};

use crate::{
    abstractions::file::poll::PollTable,
    abstractions::iommu::{device::dev_ptr, domain::Domain, group::Group},
    ffi::shim::{
        self, CIommufdCtx, CIommufdDevice, CIommufdGroup, CIommufdHwpt, CIommufdVdevice,
        CIommufdVeventq, CIommufdViommu,
    },
};

/// The C context (`struct iommufd_ctx`): the software MSI pages of the context, their lock and
/// their list.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cctx_alloc()` and is freed only by `Drop`.
pub(crate) struct CCtx {
    ptr: NonNull<CIommufdCtx>,
}

// SAFETY: the C context is only read and written by C code under its own `sw_msi_lock`.
unsafe impl Send for CCtx {}
// SAFETY: as above.
unsafe impl Sync for CCtx {}

impl CCtx {
    /// A new C context, shared with the C groups made from it.
    pub(crate) fn new() -> Result<Arc<Self>> {
        // SAFETY: no preconditions.
        let ptr = NonNull::new(unsafe { shim::iommufd_rs_cctx_alloc() }).ok_or(ENOMEM)?;
        // INVARIANT: just allocated. (Had the Arc failed, the value's Drop would free it.)
        Ok(Arc::new(Self { ptr }, GFP_KERNEL_ACCOUNT)?)
    }
}

impl Drop for CCtx {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); the C groups made from it hold this value, so none is
        // left, and with them no device, HWPT or MSI path that could reach it.
        unsafe { shim::iommufd_rs_cctx_free(self.ptr.as_ptr()) };
    }
}

/// The C group (`struct iommufd_group`): its context, its `IOMMU_RESV_SW_MSI` window and the MSI
/// pages its devices require.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cgroup_alloc()` with the context of `ctx`, which it names, and is
/// freed only by `Drop`.
pub(crate) struct CGroup {
    ptr: NonNull<CIommufdGroup>,
    /// Keeps the C context the C group names; dropped after the C group is freed.
    ctx: Arc<CCtx>,
}

// SAFETY: the C group's fields are single words written and read once each (`WRITE_ONCE`,
// `READ_ONCE`) or under the context's `sw_msi_lock`.
unsafe impl Send for CGroup {}
// SAFETY: as above.
unsafe impl Sync for CGroup {}

impl CGroup {
    /// A C group for `group` in the context `ctx`.
    pub(crate) fn new(ctx: &Arc<CCtx>, group: &Group) -> Result<Self> {
        // SAFETY: the context is live (held below); the group pointer is only stored.
        let ptr = unsafe { shim::iommufd_rs_cgroup_alloc(ctx.ptr.as_ptr(), group.as_raw()) };
        // INVARIANT: just allocated, naming `ctx`'s C context.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            ctx: ctx.clone(),
        })
    }

    /// Records the group's software MSI window, as a device's reserved regions report it.
    pub(crate) fn set_sw_msi(&self, start: u64) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cgroup_set_sw_msi(self.ptr.as_ptr(), start) };
    }

    /// Maps every MSI page the group's devices were given into `hwpt`'s domain (before the
    /// group's RID attaches to it or is replaced by it): the driver's error if one map fails.
    pub(crate) fn setup_msi(&self, hwpt: &CHwpt) -> Result {
        // SAFETY: both are ours and live (borrowed); the C code locks the context.
        to_result(unsafe {
            shim::iommufd_rs_cgroup_setup_msi(self.ptr.as_ptr(), hwpt.ptr.as_ptr())
        })
    }
}

impl Drop for CGroup {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); its devices' C parts, which name it, went with them.
        unsafe { shim::iommufd_rs_cgroup_free(self.ptr.as_ptr()) };
    }
}

/// The C device (`struct iommufd_device`): its context, its group and its `struct device`, as
/// `iommufd_sw_msi()` reads them through the attach handle.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cdev_alloc()` and is freed only by `Drop`. The owner keeps the
/// [`CGroup`] it was made with alive at least as long (a bound device holds its group), and ends
/// every attachment whose handle names it first.
pub(crate) struct CDevice {
    ptr: NonNull<CIommufdDevice>,
}

// SAFETY: the C device is written once (its ID, `WRITE_ONCE`) after it is made; C only reads it.
unsafe impl Send for CDevice {}
// SAFETY: as above.
unsafe impl Sync for CDevice {}

impl CDevice {
    /// A C device for `dev` in `group`.
    pub(crate) fn new(group: &CGroup, dev: *mut bindings::device) -> Result<Self> {
        // SAFETY: the group and its context are live (borrowed); the device pointer is only
        // stored, and read by C while the device is bound (the owner's promise).
        let ptr =
            unsafe { shim::iommufd_rs_cdev_alloc(group.ctx.ptr.as_ptr(), group.ptr.as_ptr(), dev) };
        // INVARIANT: just allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Records the device's object ID.
    pub(crate) fn set_id(&self, id: u32) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cdev_set_id(self.ptr.as_ptr(), id) };
    }

    /// The pointer an attach handle carries (upstream's `iommufd_attach_handle::idev`).
    pub(crate) fn as_raw(&self) -> *mut CIommufdDevice {
        self.ptr.as_ptr()
    }
}

impl Drop for CDevice {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); no attach handle names it any more.
        unsafe { shim::iommufd_rs_cdev_free(self.ptr.as_ptr()) };
    }
}

/// The C HWPT (`struct iommufd_hwpt_paging` or `struct iommufd_hwpt_nested`), named by its
/// domain's cookie (`IOMMU_COOKIE_IOMMUFD`), with the MSI pages mapped into the domain.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_chwpt_alloc()` and is freed only by `Drop`. The owner frees the
/// domain first (it declares this value after the domain), and a nested one holds its parent,
/// whose C HWPT it names, at least as long.
pub(crate) struct CHwpt {
    ptr: NonNull<CIommufdHwpt>,
}

// SAFETY: C writes the MSI bitmap under the context's `sw_msi_lock`; the rest is written once.
unsafe impl Send for CHwpt {}
// SAFETY: as above.
unsafe impl Sync for CHwpt {}

impl CHwpt {
    /// The C HWPT of `domain`: a paging one, or a nested one over `parent`'s. The domain's
    /// cookie names it unless the driver set a cookie of its own.
    pub(crate) fn new(domain: &Domain, parent: Option<&CHwpt>) -> Result<Self> {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.ptr.as_ptr());
        // SAFETY: the domain is live and not yet attached anywhere (a new HWPT's), so nothing
        // reads its cookie meanwhile; the parent, if any, is live (borrowed).
        let ptr = unsafe { shim::iommufd_rs_chwpt_alloc(domain.as_raw(), parent) };
        // INVARIANT: just allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Records the HWPT's object ID.
    pub(crate) fn set_id(&self, id: u32) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_chwpt_set_id(self.ptr.as_ptr(), id) };
    }
}

impl Drop for CHwpt {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); its domain is gone.
        unsafe { shim::iommufd_rs_chwpt_free(self.ptr.as_ptr()) };
    }
}

/// The C vIOMMU of an IOMMU driver's vIOMMU type (`struct iommufd_viommu`, embedded in the
/// driver's own struct of the size its `get_viommu_size()` asks for): the driver's
/// `viommu_init()` filled it in, and its ops serve the vIOMMU from then on. The driver's helpers
/// (`iommufd_viommu_find_dev()`, `iommufd_viommu_report_event()`, ...) read its vDEVICE xarray
/// and its vEVENTQ list, which [`CVdevice`] and [`CVeventq`] fill.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cviommu_alloc()` with `ctx`'s C context, which the value holds;
/// the owner (the vIOMMU object) holds the nesting parent whose C HWPT it names at least as long.
/// Freed only by `Drop`, after every [`CVdevice`] and [`CVeventq`] made on it and every nested
/// domain the driver made from it (their owners, vDEVICE, vEVENTQ and nested HWPT objects, hold
/// the vIOMMU object).
pub(crate) struct CViommu {
    ptr: NonNull<CIommufdViommu>,
    _ctx: Arc<CCtx>,
}

// SAFETY: the driver's ops are called from any thread (upstream calls them from ioctls of any
// task); the C fields the helpers share are under the xarray's lock and the list's rwsem.
unsafe impl Send for CViommu {}
// SAFETY: as above.
unsafe impl Sync for CViommu {}

impl CViommu {
    /// Whether `dev`'s IOMMU driver has vIOMMUs of `viommu_type` (`get_viommu_size()` not 0).
    pub(crate) fn supported(dev: &KDevice, viommu_type: u32) -> bool {
        // SAFETY: a live device behind an IOMMU (borrowed; bound devices have their IOMMU ops).
        unsafe { shim::iommufd_rs_cviommu_supported(dev_ptr(dev), viommu_type) }
    }

    /// The driver's vIOMMU of `viommu_type` for `dev`, over the nesting parent `parent` (its C
    /// HWPT and domain), from the user's `data`. The caller keeps `parent` as long as the value.
    pub(crate) fn new(
        ctx: &Arc<CCtx>,
        dev: &KDevice,
        viommu_type: u32,
        parent: &CHwpt,
        data: Option<&bindings::iommu_user_data>,
    ) -> Result<Self> {
        let data = data.map_or(core::ptr::null(), core::ptr::from_ref);
        // SAFETY: the context, the device and the parent's C HWPT are live (borrowed); `data`
        // is NULL or a valid user-data descriptor for the call.
        let ptr = from_err_ptr(unsafe {
            shim::iommufd_rs_cviommu_alloc(
                ctx.ptr.as_ptr(),
                dev_ptr(dev),
                viommu_type,
                parent.ptr.as_ptr(),
                data,
            )
        })?;
        // INVARIANT: just allocated, naming `ctx`'s C context, which the value holds.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            _ctx: ctx.clone(),
        })
    }

    /// Records the vIOMMU's object ID.
    pub(crate) fn set_id(&self, id: u32) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cviommu_set_id(self.ptr.as_ptr(), id) };
    }

    /// The driver's nested domain for the guest's `data` (`alloc_domain_nested`); the caller
    /// owns it.
    pub(crate) fn alloc_domain_nested(
        &self,
        flags: u32,
        data: &bindings::iommu_user_data,
    ) -> Result<*mut bindings::iommu_domain> {
        // SAFETY: ours (type invariant); `data` is valid for the call.
        from_err_ptr(unsafe {
            shim::iommufd_rs_cviommu_alloc_domain_nested(self.ptr.as_ptr(), flags, data)
        })
    }

    /// The guest's cache invalidations (`cache_invalidate`); `array.entry_num` comes back as
    /// the count handled.
    pub(crate) fn cache_invalidate(&self, array: &mut bindings::iommu_user_data_array) -> Result {
        // SAFETY: ours (type invariant); `array` is valid and exclusively ours for the call.
        to_result(unsafe { shim::iommufd_rs_cviommu_cache_invalidate(self.ptr.as_ptr(), array) })
    }
}

impl Drop for CViommu {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); no vDEVICE, vEVENTQ or nested HWPT of the vIOMMU is
        // left (each held it), so the driver's destroy op is the last thing to touch it.
        unsafe { shim::iommufd_rs_cviommu_free(self.ptr.as_ptr()) };
    }
}

/// The C vDEVICE of a driver's vIOMMU (`struct iommufd_vdevice`, embedded in the driver's struct
/// of its `vdevice_size`): the device is `virt_id` to the guest, found by the driver through the
/// vIOMMU's xarray (`iommufd_viommu_find_dev()`, `iommufd_viommu_get_vdev_id()`).
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cvdevice_alloc()` and is freed only by `Drop`. The owner keeps
/// the [`CViommu`] and the [`CDevice`] it names alive at least as long.
pub(crate) struct CVdevice {
    ptr: NonNull<CIommufdVdevice>,
}

// SAFETY: written when made (its ID once more, `WRITE_ONCE`), then only read by the driver (under
// the xarray's lock).
unsafe impl Send for CVdevice {}
// SAFETY: as above.
unsafe impl Sync for CVdevice {}

impl CVdevice {
    /// A vDEVICE of `viommu` for `idev` at `virt_id`, accepted by the driver's `vdevice_init()`:
    /// `EEXIST` if the virtual ID is taken.
    pub(crate) fn new(viommu: &CViommu, idev: &CDevice, virt_id: u64) -> Result<Self> {
        // SAFETY: both are live (borrowed; the owner keeps them so, type invariant).
        let ptr = from_err_ptr(unsafe {
            shim::iommufd_rs_cvdevice_alloc(viommu.ptr.as_ptr(), idev.ptr.as_ptr(), virt_id)
        })?;
        // INVARIANT: just allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Records the vDEVICE's object ID.
    pub(crate) fn set_id(&self, id: u32) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cvdevice_set_id(self.ptr.as_ptr(), id) };
    }
}

impl Drop for CVdevice {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); its vIOMMU and device are still alive.
        unsafe { shim::iommufd_rs_cvdevice_free(self.ptr.as_ptr()) };
    }
}

/// The C vEVENTQ of a driver's vIOMMU (`struct iommufd_veventq`), on the vIOMMU's list, where
/// the driver's reports (`iommufd_viommu_report_event()`) queue events, count them against the
/// depth, number them and wake [`CVeventq::wait_head`].
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cveventq_alloc()` and is freed only by `Drop`. The owner keeps
/// the [`CViommu`] it is listed on alive at least as long.
pub(crate) struct CVeventq {
    ptr: NonNull<CIommufdVeventq>,
}

// SAFETY: the queue is shared with reporters under its own spinlock (the C functions take it).
unsafe impl Send for CVeventq {}
// SAFETY: as above.
unsafe impl Sync for CVeventq {}

impl CVeventq {
    /// A queue for `viommu`'s events of `queue_type`, at most `depth` held; not listed yet
    /// ([`CVeventq::list`]).
    pub(crate) fn new(viommu: &CViommu, queue_type: u32, depth: u32) -> Result<Self> {
        // SAFETY: the vIOMMU is live (borrowed; the owner keeps it so, type invariant).
        let ptr =
            unsafe { shim::iommufd_rs_cveventq_alloc(viommu.ptr.as_ptr(), queue_type, depth) };
        // INVARIANT: just allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Lists the queue where the driver's reports look. The caller holds the lock of its own
    /// list of the vIOMMU's queues and has checked that none of the type is listed.
    pub(crate) fn list(&self) {
        // SAFETY: ours (type invariant); its vIOMMU is alive (the owner's promise).
        unsafe { shim::iommufd_rs_cveventq_list(self.ptr.as_ptr()) };
    }

    /// Takes the queue off the vIOMMU's list if it is on it: no report reaches it afterwards.
    pub(crate) fn unlist(&self) {
        // SAFETY: as in `list`.
        unsafe { shim::iommufd_rs_cveventq_unlist(self.ptr.as_ptr()) };
    }

    /// The wait queue reports wake; it lives as long as the value.
    pub(crate) fn wait_head(&self) -> *mut bindings::wait_queue_head {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cveventq_wait(self.ptr.as_ptr()) }
    }

    /// Whether a record is queued.
    pub(crate) fn readable(&self) -> bool {
        // SAFETY: ours (type invariant); the C side locks.
        unsafe { shim::iommufd_rs_cveventq_readable(self.ptr.as_ptr()) }
    }

    /// Takes the oldest record off the queue; `None` if it is empty. The record goes back to
    /// the head of the queue when dropped, unless [`CVevent::done`] is called.
    pub(crate) fn fetch(&self) -> Option<CVevent<'_>> {
        let mut rec = shim::CVeventRecord {
            flags: 0,
            sequence: 0,
            record: core::ptr::null_mut(),
            data: core::ptr::null(),
            data_len: 0,
        };
        // SAFETY: ours (type invariant); `rec` is written by the call.
        if !unsafe { shim::iommufd_rs_cveventq_fetch(self.ptr.as_ptr(), &mut rec) } {
            // Nothing taken: no `CVevent`, whose drop would give a record back.
            return None;
        }
        // INVARIANT: the record was just taken off the queue, for this reader alone.
        Some(CVevent { q: self, rec })
    }
}

impl Drop for CVeventq {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); its vIOMMU is alive; no reader holds a record (each
        // borrows the value).
        unsafe { shim::iommufd_rs_cveventq_free(self.ptr.as_ptr()) };
    }
}

/// A record a reader took off a [`CVeventq`].
///
/// # Invariants
///
/// `rec` was filled by `iommufd_rs_cveventq_fetch()` on `q` and is neither restored nor done
/// yet: its data (if any) is the reader's alone until then.
pub(crate) struct CVevent<'a> {
    q: &'a CVeventq,
    rec: shim::CVeventRecord,
}

impl CVevent<'_> {
    /// The record's header flags (`IOMMU_VEVENTQ_FLAG_LOST_EVENTS` for the lost-events record).
    pub(crate) fn flags(&self) -> u32 {
        self.rec.flags
    }

    /// The record's sequence number.
    pub(crate) fn sequence(&self) -> u32 {
        self.rec.sequence
    }

    /// The event's data; empty for the lost-events record.
    pub(crate) fn data(&self) -> &[u8] {
        let len = usize::try_from(self.rec.data_len).unwrap_or(0);
        if self.rec.data.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: the record's data, `len` bytes of the report's allocation, is the reader's
        // until the record is restored or done (type invariant), which needs `self`.
        unsafe { core::slice::from_raw_parts(self.rec.data, len) }
    }

    /// The reader delivered the record: it leaves the queue for good.
    pub(crate) fn done(self) {
        let mut me = core::mem::ManuallyDrop::new(self);
        // SAFETY: a fetched record of `q`, neither restored nor done (type invariant); `me` is
        // not dropped, so it is not restored after this.
        unsafe { shim::iommufd_rs_cveventq_done(me.q.ptr.as_ptr(), &mut me.rec) };
    }
}

impl Drop for CVevent<'_> {
    /// Undelivered: the record goes back to the head of the queue.
    fn drop(&mut self) {
        // SAFETY: a fetched record of `q`, neither restored nor done (type invariant).
        unsafe { shim::iommufd_rs_cveventq_restore(self.q.ptr.as_ptr(), &mut self.rec) };
    }
}

impl CVeventq {
    /// Registers `poll()` on the queue's wait queue, which reports wake.
    pub(crate) fn register_poll<'a>(&'a self, table: &PollTable<'a>) {
        // SAFETY: the C queue's wait queue head is initialised and lives as long as the value,
        // borrowed for `'a`, the file's private data's lifetime (as `PollTable::register`).
        unsafe { table.register_raw(self.wait_head()) };
    }
}
