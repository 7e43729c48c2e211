// SPDX-License-Identifier: GPL-2.0
//! Bound devices and their IOMMU groups (upstream's device.c, the device half): bind claims DMA
//! ownership of a device for this context; attach points its group at a HWPT, chosen
//! automatically when the target is an IOAS; replace switches HWPTs without a blocked window;
//! detach returns the group to blocked DMA.
//!
//! The IOMMU core attaches groups, not devices: the first device of a group to attach attaches
//! the group, later ones must name the same HWPT, and the last to detach detaches it. Each
//! attached device's reserved regions (MSI windows and the like) are reserved in the HWPT's IOAS
//! while it is attached.
//!
//! Lock order: `Ioas::hwpts` before `IGroup::attach` before `Ioas::iopt`; the object table is a
//! leaf, and no HWPT is dropped under `IGroup::attach` or `Ioas::hwpts` (its drop takes
//! `Ioas::iopt`, and an automatic HWPT's last reference may go at detach).

use core::{
    ffi::c_void,
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
    bindings, new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    context::ictx::Ictx,
    context::object::{
        Object,
        Pt,
        Reserved,
        Used,
        Users, //
    },
    ffi::kbind,
    ffi::shim,
    ffi::uapi,
    hwpt::{
        Hwpt,
        HwptPaging, //
    },
    ioas::Ioas,
    pure::{
        attach::{
            self,
            MsiRegions,
            PciFacts,
            ResvKind, //
        },
        span::Span,
    },
};
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

/// An attach handle the IOMMU core keeps for the group while a domain is attached through it
/// (upstream's `struct iommufd_attach_handle`): fault groups name it, and through it the device
/// and the fault queue they go to.
#[repr(C)]
pub(crate) struct AttachHandle {
    handle: bindings::iommu_attach_handle,
    dev_id: u32,
    fault: Option<Arc<crate::eventq::fault::Fault>>,
}

type Handle = KBox<AttachHandle>;

impl AttachHandle {
    fn new(dev_id: u32, hwpt: &Hwpt) -> Result<Handle> {
        Ok(KBox::new(
            AttachHandle {
                handle: bindings::iommu_attach_handle::default(),
                dev_id,
                fault: hwpt.fault().cloned(),
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    /// Answers the faults still pending through this handle (its attachment is ending).
    fn auto_respond(&mut self) {
        if let Some(f) = &self.fault {
            f.auto_respond(&raw mut self.handle);
        }
    }
}

/// The device ID of the attachment `handle` belongs to.
pub(crate) fn handle_dev_id(handle: *mut bindings::iommu_attach_handle) -> u32 {
    // SAFETY: every handle this module gives the core is the first field of an `AttachHandle`,
    // alive while the attachment is (pending faults are answered before it goes).
    unsafe { (*handle.cast::<AttachHandle>()).dev_id }
}

/// The fault queue of the attachment `handle` belongs to.
pub(crate) fn handle_fault(
    handle: *mut bindings::iommu_attach_handle,
) -> Option<Arc<crate::eventq::fault::Fault>> {
    if handle.is_null() {
        return None;
    }
    // SAFETY: as in `handle_dev_id`.
    unsafe { (*handle.cast::<AttachHandle>()).fault.clone() }
}

/// One attachment of a group: at a PASID (`IOMMU_NO_PASID` for the whole RID), to a HWPT, asked
/// by some of the group's bound devices (upstream's `struct iommufd_attach`).
struct Attach {
    pasid: u32,
    hwpt: Hwpt,
    /// Attached devices.
    devices: Devices,
    /// The handle the core holds while `hwpt` is attached.
    handle: Handle,
}

/// Devices of an attachment: object ID and device.
type Devices = KVec<(u32, NonNull<bindings::device>)>;

/// Every attachment of a group, one per PASID in use.
struct GroupAttach {
    list: KVec<Attach>,
}

impl GroupAttach {
    fn find(&self, pasid: u32) -> Option<usize> {
        self.list.iter().position(|a| a.pasid == pasid)
    }

    /// Upstream's `iommufd_hwpt_pasid_compat()`: a RID attachment next to PASID ones, and any
    /// PASID attachment, need HWPTs allocated for PASID use.
    fn pasid_compat(&self, hwpt: &Hwpt, pasid: u32) -> Result {
        if pasid == bindings::IOMMU_NO_PASID {
            if !hwpt.pasid_compat() && self.list.iter().any(|a| a.pasid != pasid) {
                return Err(EINVAL);
            }
        } else {
            if !hwpt.pasid_compat() {
                return Err(EINVAL);
            }
            if let Some(i) = self.find(bindings::IOMMU_NO_PASID) {
                if !self.list[i].hwpt.pasid_compat() {
                    return Err(EINVAL);
                }
            }
        }
        Ok(())
    }
}

// SAFETY: the device pointers are of bound devices, which hold references to them.
unsafe impl Send for GroupAttach {}

/// One IOMMU group as this context sees it (upstream's `struct iommufd_group`), shared by the
/// bound devices of the group.
///
/// # Invariants
///
/// `group` holds a reference from `iommu_group_get()`.
#[pin_data(PinnedDrop)]
pub(crate) struct IGroup {
    group: NonNull<bindings::iommu_group>,
    #[pin]
    attach: Mutex<GroupAttach>,
}

// SAFETY: `iommu_group` is refcounted and locks inside; the attach state is under its mutex.
unsafe impl Send for IGroup {}
// SAFETY: as above.
unsafe impl Sync for IGroup {}

impl IGroup {
    pub(crate) fn group(&self) -> *mut bindings::iommu_group {
        self.group.as_ptr()
    }
}

#[pinned_drop]
impl PinnedDrop for IGroup {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: the reference the type invariant says we hold.
        unsafe { bindings::iommu_group_put(self.group.as_ptr()) };
    }
}

/// A bind's count on its group's record in the context's group index, given back when dropped
/// unless the bind succeeded ([`GroupJoin::keep`]).
struct GroupJoin<'a> {
    ictx: &'a Ictx,
    igroup: Arc<IGroup>,
    kept: bool,
}

impl<'a> GroupJoin<'a> {
    /// Finds or makes the record of `group` and takes a count on it; consumes the group
    /// reference `group` holds on every path.
    fn new(ictx: &'a Ictx, group: NonNull<bindings::iommu_group>) -> Result<Self> {
        let found = ictx.objects.lock().igroup_join(group.as_ptr());
        let igroup = match found {
            Some(g) => {
                // SAFETY: the record holds its own reference; ours is not handed on.
                unsafe { bindings::iommu_group_put(group.as_ptr()) };
                g
            }
            None => {
                let candidate = Arc::pin_init(
                    try_pin_init!(IGroup {
                        group,
                        attach <- new_mutex!(GroupAttach { list: KVec::new() }),
                    }),
                    GFP_KERNEL_ACCOUNT,
                )
                .inspect_err(|_| {
                    // SAFETY: the group reference taken by the caller, not handed on.
                    unsafe { bindings::iommu_group_put(group.as_ptr()) }
                })?;
                // (From here the candidate owns the reference: dropping it puts it.)
                let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
                let (g, unused) = ictx.objects.lock().igroup_insert(candidate, node);
                drop(unused);
                g
            }
        };
        Ok(Self {
            ictx,
            igroup,
            kept: false,
        })
    }

    /// The bind succeeded: the count stays, with the device.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for GroupJoin<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let entry = self
                .ictx
                .objects
                .lock()
                .igroup_leave(self.igroup.group(), false);
            drop(entry);
        }
    }
}

/// A reference to a `struct device`.
///
/// # Invariants
///
/// `self.0` holds a reference from `get_device()`.
struct DevRef(NonNull<bindings::device>);

// SAFETY: device references may be taken and dropped from any thread.
unsafe impl Send for DevRef {}
// SAFETY: as above; shared use only passes the pointer to the kernel.
unsafe impl Sync for DevRef {}

impl DevRef {
    /// # Safety
    ///
    /// `dev` must be a live device.
    unsafe fn get(dev: *mut bindings::device) -> Result<Self> {
        // SAFETY: the caller's guarantee; returns `dev` with a reference taken.
        let dev = unsafe { bindings::get_device(dev) };
        // INVARIANT: the reference just taken.
        NonNull::new(dev).map(Self).ok_or(ENODEV)
    }
}

impl Drop for DevRef {
    fn drop(&mut self) {
        // SAFETY: the reference the type invariant says we hold.
        unsafe { bindings::put_device(self.0.as_ptr()) };
    }
}

/// `Device::vdev` once the device is unbinding.
const VDEV_GONE: u32 = u32::MAX;

/// `IOMMUFD_OBJ_DEVICE`: a device bound to this context, DMA owned by it.
pub(crate) struct Device {
    /// The context the device is bound to; the binding usually holds a reference on
    /// its file (not so for a device its driver binds from an object of the context: see
    /// `hwpt/driver.rs`).
    ctx: *const Ictx,
    holds_ctx: bool,
    dev: DevRef,
    pub(crate) igroup: Arc<IGroup>,
    users: Users,
    id: AtomicU32,
    /// DMA ownership is claimed for the context (until unbind).
    claimed: AtomicBool,
    /// Object ID of the device's vDEVICE, 0 without one; `u32::MAX` once unbinding (no new
    /// vDEVICE then).
    vdev: AtomicU32,
}

// SAFETY: `ctx` is only read (see `ctx()`); the other fields are thread-safe.
unsafe impl Send for Device {}
// SAFETY: as above.
unsafe impl Sync for Device {}

impl Used for Device {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Device {
    /// Binds `dev` to `ictx` (upstream's `iommufd_device_bind()`): the device must have an
    /// IOMMU that keeps DMA cache coherent, and its DMA ownership is claimed for `ictx` (which
    /// fails while a kernel driver uses the group). The device object is published; the binder
    /// holds it until [`Device::unbind`].
    ///
    /// # Safety
    ///
    /// `dev` must be a live device.
    pub(crate) unsafe fn bind(ictx: &Ictx, dev: *mut bindings::device) -> Result<Arc<Device>> {
        // SAFETY: the caller guarantees `dev` is live; this takes our reference.
        let dev = unsafe { DevRef::get(dev) }?;
        let raw = dev.0.as_ptr();
        // SAFETY: `raw` is live (we hold a reference).
        if !unsafe {
            bindings::device_iommu_capable(raw, bindings::iommu_cap_IOMMU_CAP_CACHE_COHERENCY)
        } {
            return Err(EINVAL);
        }
        // SAFETY: as above; takes a group reference, or NULL without a group.
        let group = NonNull::new(unsafe { bindings::iommu_group_get(raw) }).ok_or(ENODEV)?;
        let joined = GroupJoin::new(ictx, group)?;
        let igroup = joined.igroup.clone();
        // SAFETY: `raw` is live; the owner cookie is this context, released in `Drop`.
        let rc = unsafe {
            bindings::iommu_device_claim_dma_owner(raw, ptr::from_ref(ictx).cast_mut().cast())
        };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // For historical compatibility with VFIO, a platform that cannot isolate MSIs (a DMA
        // write that could raise interrupts outside this context) needs the admin's consent.
        let traits = crate::hwpt::driver::bind_traits(raw);
        // SAFETY: the group is referenced by `igroup`.
        if !traits.msi_safe && !unsafe { bindings::iommu_group_has_isolated_msi(igroup.group()) } {
            // SAFETY: reads a module parameter.
            if !unsafe { crate::ffi::shim::iommufd_rs_allow_unsafe_interrupts() } {
                // SAFETY: the claim above, not handed on.
                unsafe { bindings::iommu_device_release_dma_owner(raw) };
                return Err(EPERM);
            }
            kernel::pr_warn!(
                "iommufd: MSI interrupts of a device bound to iommufd are not isolated by the platform (allow_unsafe_interrupts)\n"
            );
        }
        if traits.holds_ctx {
            // SAFETY: the context's file is live (the caller holds the context); released in
            // `Drop`.
            unsafe { bindings::get_file(ictx.file()) };
        }
        let idev = Arc::new(
            Device {
                ctx: ptr::from_ref(ictx),
                holds_ctx: traits.holds_ctx,
                dev,
                igroup,
                users: Users::default(),
                id: AtomicU32::new(0),
                claimed: AtomicBool::new(true),
                vdev: AtomicU32::new(0),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        // (Had that allocation failed, dropping the value would have released the claim.)
        // The binder is a user until it unbinds.
        idev.users.hold(1);
        let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut objects = ictx.objects.lock();
        let reserved = objects.reserve(node)?;
        objects.finalize(reserved, Object::Device(idev.clone()));
        // The group count now belongs to the published device; `unbind` gives it back.
        objects.igroup_published(joined.igroup.group());
        joined.keep();
        Ok(idev)
    }

    /// Ends the binding (the device must be detached): DMA ownership goes back at once, while
    /// the device surely still exists, and the device object leaves the table (`ictx`; without
    /// one, the table is being dropped anyway).
    ///
    /// `EBUSY` if an ioctl still used the device (or its vDEVICE) when the wait for it gave up
    /// (`Users::wait_unused`): the binding has ended all the same (nothing of it is left to
    /// undo), and that ioctl's reference frees the object once it finishes. The caller should
    /// know that the ioctl may still be reading the device.
    pub(crate) fn unbind(&self, ictx: Option<&Ictx>) -> Result {
        let mut rc = Ok(());
        // The vDEVICE goes first; its ID stays taken (a tombstone) so that a VMM's later
        // `DESTROY` of it answers ENOENT rather than hitting a new object.
        let vdev = self.vdev.swap(VDEV_GONE, Ordering::AcqRel);
        if let Some(ictx) = ictx {
            if vdev != 0 && vdev != VDEV_GONE {
                let obj = ictx.objects.lock().tombstone_vdevice(vdev);
                // As for the device below: what uses the vDEVICE finishes first.
                if let Some(obj) = &obj {
                    rc = obj.users().wait_unused();
                }
                drop(obj);
            }
        }
        if let Some(ictx) = ictx {
            let (obj, group) = {
                let mut objects = ictx.objects.lock();
                let obj = objects.remove_device(self.id());
                // The count `bind` took on the group record, if the device was published.
                let group = obj
                    .as_ref()
                    .and_then(|_| objects.igroup_leave(self.igroup.group(), true));
                (obj, group)
            };
            drop(group);
            drop(obj);
            // Ioctls that looked the device up by ID finish before it goes: the caller frees
            // the device (and `dev->iommu` with it) once this returns.
            rc = rc.and(self.users.wait_unused());
        }
        self.release_owner();
        self.users.release(1);
        rc
    }

    fn release_owner(&self) {
        if self.claimed.swap(false, Ordering::AcqRel) {
            // SAFETY: the claim `bind` made, given back once; the device is referenced.
            unsafe { bindings::iommu_device_release_dma_owner(self.as_raw()) };
        }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        self.dev.0.as_ptr()
    }

    /// The `struct device`, as the kernel crate and `abstractions/` speak of it.
    #[allow(dead_code)]
    pub(crate) fn kdev(&self) -> &kernel::device::Device {
        // SAFETY: `self.dev` holds a reference on the device for as long as `self` lives.
        unsafe { kernel::device::Device::from_raw(self.as_raw()) }
    }

    /// Takes the device's one vDEVICE slot for object `id`: `EEXIST` if taken, `ENOENT` while
    /// unbinding.
    pub(crate) fn claim_vdev(&self, id: u32) -> Result {
        match self
            .vdev
            .compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(VDEV_GONE) => Err(ENOENT),
            Err(_) => Err(EEXIST),
        }
    }

    /// Whether vDEVICE `id` holds the device's slot (the device is not unbinding).
    pub(crate) fn holds_vdev(&self, id: u32) -> bool {
        self.vdev.load(Ordering::Acquire) == id
    }

    /// Frees the vDEVICE slot if vDEVICE `id` holds it.
    pub(crate) fn clear_vdev(&self, id: u32) {
        let _ = self
            .vdev
            .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The physical IOMMU instance the device sits behind (`__iommu_get_iommu_dev()`), as a
    /// number for comparisons; 0 for none.
    pub(crate) fn iommu_dev(&self) -> usize {
        // SAFETY: the device is live and probed; `dev->iommu` stays while it is bound.
        unsafe {
            let iommu = (*self.as_raw()).iommu;
            if iommu.is_null() {
                0
            } else {
                (*iommu).iommu_dev as usize
            }
        }
    }

    /// The vIOMMU of the nested HWPT the whole device is attached to, if it is.
    pub(crate) fn attached_viommu(&self) -> Option<Arc<crate::viommu::Viommu>> {
        let a = self.igroup.attach.lock();
        let i = a.find(bindings::IOMMU_NO_PASID)?;
        match &a.list[i].hwpt {
            Hwpt::Nested(n) => n.viommu.as_ref().map(|v| v.arc().clone()),
            Hwpt::Paging(_) => None,
        }
    }

    /// The context the device is bound to.
    pub(crate) fn ctx(&self) -> &Ictx {
        // SAFETY: a bound device's context lives while it does: its file is held (real
        // devices) or the device is bound from one of its objects (`hwpt/driver.rs`).
        unsafe { &*self.ctx }
    }

    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
    }

    pub(crate) fn id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }

    /// The IOMMU driver's ops for this device (`dev_iommu_ops()`).
    pub(crate) fn iommu_ops(&self) -> Result<*const bindings::iommu_ops> {
        // SAFETY: the device is live and probed by an IOMMU (it has a group); `dev->iommu` and
        // its `iommu_dev` stay while it is.
        unsafe {
            let iommu = (*self.as_raw()).iommu;
            if iommu.is_null() || (*iommu).iommu_dev.is_null() {
                return Err(ENODEV);
            }
            Ok((*(*iommu).iommu_dev).ops)
        }
    }

    pub(crate) fn capable(&self, cap: bindings::iommu_cap) -> bool {
        // SAFETY: the device is live.
        unsafe { bindings::device_iommu_capable(self.as_raw(), cap) }
    }

    /// Attaches `pasid` (`IOMMU_NO_PASID`: the whole device) to `pt_id`, an IOAS (a
    /// compatible automatic HWPT is found or made) or a HWPT; returns the HWPT ID (upstream's
    /// `iommufd_device_attach()`).
    pub(crate) fn attach(&self, ictx: &Ictx, pasid: u32, pt_id: u32) -> Result<u32> {
        let pt = ictx.objects.lock().get_pt(pt_id)?;
        match pt {
            Pt::Hwpt(hwpt) => {
                self.do_attach(pasid, &Hwpt::Paging(hwpt.arc().clone()))?;
                Ok(pt_id)
            }
            Pt::Nested(hwpt) => {
                self.do_attach(pasid, &Hwpt::Nested(hwpt.arc().clone()))?;
                Ok(pt_id)
            }
            Pt::Ioas(ioas) => self.auto_attach(ictx, pasid, ioas.arc()),
        }
    }

    /// Moves `pasid` to `pt_id` without passing through blocked DMA (upstream's
    /// `iommufd_device_replace()`); returns the HWPT ID.
    pub(crate) fn replace(&self, ictx: &Ictx, pasid: u32, pt_id: u32) -> Result<u32> {
        let pt = ictx.objects.lock().get_pt(pt_id)?;
        let (old, id) = match pt {
            Pt::Hwpt(hwpt) => (
                self.do_replace(pasid, &Hwpt::Paging(hwpt.arc().clone()))?,
                pt_id,
            ),
            Pt::Nested(hwpt) => (
                self.do_replace(pasid, &Hwpt::Nested(hwpt.arc().clone()))?,
                pt_id,
            ),
            Pt::Ioas(ioas) => {
                let ioas = ioas.arc().clone();
                self.auto_replace(ictx, pasid, &ioas)?
            }
        };
        if let Some(old) = old {
            put_hwpt(ictx, old);
        }
        Ok(id)
    }

    /// Detaches `pasid` (upstream's `iommufd_device_detach()`); an automatic HWPT left without
    /// devices goes away. Detaching what is not attached does nothing.
    pub(crate) fn detach(&self, ictx: Option<&Ictx>, pasid: u32) {
        let Some(hwpt) = self.do_detach(pasid) else {
            return;
        };
        match ictx {
            Some(ictx) => put_hwpt(ictx, hwpt),
            None => drop(hwpt),
        }
    }

    /// Detaches every PASID and then the RID (before unbind).
    pub(crate) fn detach_all(&self, ictx: Option<&Ictx>) {
        loop {
            let pasid = {
                let a = self.igroup.attach.lock();
                a.list
                    .iter()
                    .find(|at| {
                        at.pasid != bindings::IOMMU_NO_PASID
                            && at.devices.iter().any(|(id, _)| *id == self.id())
                    })
                    .map(|at| at.pasid)
            };
            match pasid {
                Some(p) => self.detach(ictx, p),
                None => break,
            }
        }
        self.detach(ictx, bindings::IOMMU_NO_PASID);
    }

    /// The domain attached at `pasid`, if any (for checks of what is attached).
    pub(crate) fn attached_domain(&self, pasid: u32) -> Option<*mut bindings::iommu_domain> {
        let a = self.igroup.attach.lock();
        a.find(pasid).map(|i| a.list[i].hwpt.domain().as_raw())
    }

    /// The automatic path: any automatic HWPT of `ioas` the device can join, else a new one.
    fn auto_attach(&self, ictx: &Ictx, pasid: u32, ioas: &Arc<Ioas>) -> Result<u32> {
        let mut hwpts = ioas.hwpts.lock();
        if let Some(id) =
            self.try_existing_auto(ictx, ioas, &mut hwpts, |h| self.do_attach(pasid, h))?
        {
            return Ok(id);
        }
        let ((), id) = self.new_auto_hwpt(ictx, ioas, hwpts, |h| self.do_attach(pasid, h))?;
        Ok(id)
    }

    /// Replace onto an IOAS: like [`Self::auto_attach`] with replace semantics. Returns the HWPT
    /// left behind and the new HWPT's ID.
    fn auto_replace(
        &self,
        ictx: &Ictx,
        pasid: u32,
        ioas: &Arc<Ioas>,
    ) -> Result<(Option<Hwpt>, u32)> {
        let mut hwpts = ioas.hwpts.lock();
        let mut old = None;
        if let Some(id) = self.try_existing_auto(ictx, ioas, &mut hwpts, |h| {
            old = self.do_replace(pasid, h)?;
            Ok(())
        })? {
            return Ok((old, id));
        }
        self.new_auto_hwpt(ictx, ioas, hwpts, |h| self.do_replace(pasid, h))
    }

    /// Makes a new automatic HWPT of `ioas` for this device, joins it with `join` (attach or
    /// replace) and publishes it. Room in the IOAS's list and an ID come first, so nothing can
    /// fail once the device has joined (putting it back could); the HWPT becomes visible under
    /// the ID only then: nobody can look it up half made.
    fn new_auto_hwpt<R>(
        &self,
        ictx: &Ictx,
        ioas: &Arc<Ioas>,
        mut hwpts: kernel::sync::MutexGuard<'_, KVec<u32>>,
        join: impl FnOnce(&Hwpt) -> Result<R>,
    ) -> Result<(R, u32)> {
        hwpts.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let reserved = reserve_id(ictx)?;
        let paging = match HwptPaging::new(ioas, self, 0, None, true, None) {
            Ok(paging) => paging,
            Err(e) => {
                ictx.objects.lock().abort(reserved);
                return Err(e);
            }
        };
        let joined = match join(&Hwpt::Paging(paging.clone())) {
            Ok(joined) => joined,
            Err(e) => {
                ictx.objects.lock().abort(reserved);
                // The HWPT goes after the lock (see the lock order above).
                drop(hwpts);
                return Err(e);
            }
        };
        let id = reserved.id;
        ictx.objects
            .lock()
            .finalize(reserved, Object::HwptPaging(paging));
        // Capacity reserved above.
        hwpts.push(id, GFP_KERNEL_ACCOUNT)?;
        Ok((joined, id))
    }

    /// Tries `join` on each live automatic HWPT of the IOAS (pruning IDs that went away):
    /// `EINVAL` means incompatible, try the next; any other error is the answer.
    fn try_existing_auto(
        &self,
        ictx: &Ictx,
        ioas: &Ioas,
        hwpts: &mut KVec<u32>,
        mut join: impl FnMut(&Hwpt) -> Result,
    ) -> Result<Option<u32>> {
        let mut i = 0;
        while i < hwpts.len() {
            let id = hwpts[i];
            let found = ictx.objects.lock().get_auto_hwpt(id, ioas);
            let hwpt = match found {
                Some(h) => h,
                None => {
                    let _ = hwpts.remove(i);
                    continue;
                }
            };
            match join(&Hwpt::Paging(hwpt.arc().clone())) {
                Ok(()) => return Ok(Some(id)),
                Err(e) if e == EINVAL => i += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// What the fault-capable attach rule reads of a PCI device; `None` if it is not one.
    fn pci_facts(&self) -> Option<PciFacts> {
        let mut is_virtfn = false;
        let mut pri_supported = false;
        // SAFETY: the device is bound to us, so live; the helper only reads it and writes the
        // two flags it is given.
        let is_pci = unsafe {
            shim::iommufd_rs_pci_pri_facts(self.as_raw(), &mut is_virtfn, &mut pri_supported)
        };
        is_pci.then_some(PciFacts {
            is_virtfn,
            pri_supported,
        })
    }

    /// `EINVAL` if this device may not use `hwpt` (upstream's
    /// `iommufd_hwpt_compatible_device()`: no PCI VF with PRI on a fault-capable HWPT).
    fn check_compatible(&self, hwpt: &Hwpt) -> Result {
        if !attach::hwpt_compatible_device(hwpt.fault().is_some(), self.pci_facts()) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Attaches `hwpt`'s domain at `pasid` through `handle` (the core's attach calls), after
    /// [`Self::check_compatible`] as upstream's `iommufd_hwpt_attach_device()`.
    fn core_attach(&self, pasid: u32, hwpt: &Hwpt, handle: &mut AttachHandle) -> Result {
        self.check_compatible(hwpt)?;
        // SAFETY: the domain is live (held by `hwpt`); the group and device are referenced; the
        // handle stays allocated until the matching detach or replace gives it back.
        let rc = unsafe {
            if pasid == bindings::IOMMU_NO_PASID {
                kbind::iommu_attach_group_handle(
                    hwpt.domain().as_raw(),
                    self.igroup.group(),
                    &mut handle.handle,
                )
            } else {
                bindings::iommu_attach_device_pasid(
                    hwpt.domain().as_raw(),
                    self.as_raw(),
                    pasid,
                    &mut handle.handle,
                )
            }
        };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        Ok(())
    }

    /// Joins the group's attachment at `pasid` to `hwpt` (upstream's
    /// `iommufd_hw_pagetable_attach()`).
    fn do_attach(&self, pasid: u32, hwpt: &Hwpt) -> Result {
        let rid = pasid == bindings::IOMMU_NO_PASID;
        let mut a = self.igroup.attach.lock();
        a.pasid_compat(hwpt, pasid)?;
        let found = a.find(pasid);
        if let Some(i) = found {
            let at = &a.list[i];
            if at.devices.iter().any(|(id, _)| *id == self.id()) {
                return Err(EBUSY);
            }
            if !at.hwpt.ptr_eq(hwpt) {
                return Err(EINVAL);
            }
        }
        let dev = NonNull::new(self.as_raw()).ok_or(EINVAL)?;
        if rid {
            enforce_resv_regions(&hwpt.paging().ioas, self.as_raw(), true)?;
        }
        let undo_resv = || {
            if rid {
                remove_resv(&hwpt.paging().ioas, self.as_raw());
            }
        };
        match found {
            Some(i) => {
                // Later devices of the group follow the first one's attachment.
                if let Err(e) = a.list[i].devices.push((self.id(), dev), GFP_KERNEL_ACCOUNT) {
                    undo_resv();
                    return Err(e.into());
                }
            }
            None => {
                let prepared = (|| -> Result<(Handle, Devices)> {
                    a.list.reserve(1, GFP_KERNEL_ACCOUNT)?;
                    let mut devices = KVec::new();
                    devices.push((self.id(), dev), GFP_KERNEL_ACCOUNT)?;
                    Ok((AttachHandle::new(self.id(), hwpt)?, devices))
                })();
                let (mut handle, devices) = match prepared {
                    Ok(p) => p,
                    Err(e) => {
                        undo_resv();
                        return Err(e);
                    }
                };
                if let Err(e) = self.core_attach(pasid, hwpt, &mut handle) {
                    undo_resv();
                    return Err(e);
                }
                // Capacity reserved above.
                let _ = a.list.push(
                    Attach {
                        pasid,
                        hwpt: hwpt.clone(),
                        devices,
                        handle,
                    },
                    GFP_KERNEL_ACCOUNT,
                );
            }
        }
        hwpt.users().hold(1);
        Ok(())
    }

    /// Leaves the attachment at `pasid`; returns its HWPT for the caller to drop outside the
    /// locks.
    fn do_detach(&self, pasid: u32) -> Option<Hwpt> {
        let mut a = self.igroup.attach.lock();
        let i = a.find(pasid)?;
        let d = a.list[i]
            .devices
            .iter()
            .position(|(id, _)| *id == self.id())?;
        let _ = a.list[i].devices.remove(d);
        let hwpt = a.list[i].hwpt.clone();
        let mut gone = None;
        if a.list[i].devices.is_empty() {
            // SAFETY: the domain is attached at `pasid` through the handle we keep.
            unsafe {
                if pasid == bindings::IOMMU_NO_PASID {
                    kbind::iommu_detach_group_handle(hwpt.domain().as_raw(), self.igroup.group());
                } else {
                    bindings::iommu_detach_device_pasid(
                        hwpt.domain().as_raw(),
                        self.as_raw(),
                        pasid,
                    );
                }
            }
            gone = a.list.remove(i).ok();
        }
        if pasid == bindings::IOMMU_NO_PASID {
            remove_resv(&hwpt.paging().ioas, self.as_raw());
        }
        hwpt.users().release(1);
        drop(a);
        if let Some(mut at) = gone {
            // The core no longer delivers through the handle; answer what it left pending.
            at.handle.auto_respond();
        }
        Some(hwpt)
    }

    /// Switches the attachment at `pasid` to `hwpt` (upstream's `iommufd_device_do_replace()`);
    /// returns the previous HWPT, or `None` if it was already there.
    fn do_replace(&self, pasid: u32, hwpt: &Hwpt) -> Result<Option<Hwpt>> {
        let rid = pasid == bindings::IOMMU_NO_PASID;
        let mut a = self.igroup.attach.lock();
        let i = a.find(pasid).ok_or(EINVAL)?;
        if !a.list[i].devices.iter().any(|(id, _)| *id == self.id()) {
            return Err(EINVAL);
        }
        let old = a.list[i].hwpt.clone();
        if old.ptr_eq(hwpt) {
            return Ok(None);
        }
        a.pasid_compat(hwpt, pasid)?;
        let move_resv = rid && !Arc::ptr_eq(old.paging().ioas.arc(), hwpt.paging().ioas.arc());
        if move_resv {
            for (n, (_, dev)) in a.list[i].devices.iter().enumerate() {
                if let Err(e) = enforce_resv_regions(&hwpt.paging().ioas, dev.as_ptr(), false) {
                    for (_, done) in a.list[i].devices.iter().take(n) {
                        remove_resv(&hwpt.paging().ioas, done.as_ptr());
                    }
                    return Err(e);
                }
            }
        }
        let undo = |at: &Attach| {
            if move_resv {
                for (_, dev) in at.devices.iter() {
                    remove_resv(&hwpt.paging().ioas, dev.as_ptr());
                }
            }
        };
        let mut handle = match self
            .check_compatible(hwpt)
            .and_then(|()| AttachHandle::new(self.id(), hwpt))
        {
            Ok(h) => h,
            Err(e) => {
                undo(&a.list[i]);
                return Err(e);
            }
        };
        // SAFETY: as in `core_attach`; on success the core drops its use of the old handle.
        let rc = unsafe {
            if rid {
                kbind::iommu_replace_group_handle(
                    self.igroup.group(),
                    hwpt.domain().as_raw(),
                    &mut handle.handle,
                )
            } else {
                kbind::iommu_replace_device_pasid(
                    hwpt.domain().as_raw(),
                    self.as_raw(),
                    pasid,
                    &mut handle.handle,
                )
            }
        };
        if rc != 0 {
            undo(&a.list[i]);
            return Err(Error::from_errno(rc));
        }
        let at = &mut a.list[i];
        if move_resv {
            for (_, dev) in at.devices.iter() {
                remove_resv(&old.paging().ioas, dev.as_ptr());
            }
        }
        let n = u32::try_from(at.devices.len()).unwrap_or(u32::MAX);
        hwpt.users().hold(n);
        old.users().release(n);
        at.hwpt = hwpt.clone();
        let mut old_handle = core::mem::replace(&mut at.handle, handle);
        drop(a);
        old_handle.auto_respond();
        Ok(Some(old))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.release_owner();
        if self.holds_ctx {
            // SAFETY: the reference `bind` took on the context's file.
            unsafe { bindings::fput((*self.ctx).file()) };
        }
    }
}

/// Reserves an ID for a new automatic HWPT (finalized once it is attached).
fn reserve_id(ictx: &Ictx) -> Result<Reserved> {
    let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    ictx.objects.lock().reserve(node)
}

/// Lets go of a HWPT a device left: an automatic one nobody else holds leaves the table.
fn put_hwpt(ictx: &Ictx, hwpt: Hwpt) {
    if let Hwpt::Paging(paging) = &hwpt {
        if paging.auto_domain && !paging.users().held() {
            let obj = ictx.objects.lock().remove_unused_hwpt(paging.id(), paging);
            drop(obj);
        }
    }
    drop(hwpt);
}

/// Reserves `dev`'s reserved regions in `ioas` (upstream's
/// `iopt_table_enforce_dev_resv_regions()`): all or none. With `check_msi` (an attach, not a
/// replace, as upstream) the driver's MSI regions must be a sane combination, else `EINVAL`.
fn enforce_resv_regions(ioas: &Ioas, dev: *mut bindings::device, check_msi: bool) -> Result {
    if crate::context::fail_point::should_fail() {
        return Err(EINVAL);
    }
    let mut list = bindings::list_head::default();
    let head: *mut bindings::list_head = &mut list;
    // SAFETY: an empty list points at itself.
    unsafe {
        (*head).next = head;
        (*head).prev = head;
    }
    // SAFETY: `dev` is a live bound device; the driver fills `list` with regions we free below.
    unsafe { bindings::iommu_get_resv_regions(dev, head) };
    let mut rc = Ok(());
    let mut msi = MsiRegions::default();
    {
        let mut iopt = ioas.iopt.lock();
        // SAFETY: walking the list the driver just built; `list` is the first member of
        // `iommu_resv_region`, so each node is its region.
        let mut pos = unsafe { (*head).next };
        while pos != head {
            let region = pos.cast::<bindings::iommu_resv_region>();
            // SAFETY: see above.
            let (start, length, kind) =
                unsafe { ((*region).start, (*region).length, (*region).type_) };
            // SAFETY: see above.
            pos = unsafe { (*pos).next };
            if kind == bindings::iommu_resv_type_IOMMU_RESV_DIRECT_RELAXABLE {
                continue;
            }
            msi.count(match kind {
                bindings::iommu_resv_type_IOMMU_RESV_MSI => ResvKind::Msi,
                bindings::iommu_resv_type_IOMMU_RESV_SW_MSI => ResvKind::SwMsi,
                _ => ResvKind::Other,
            });
            let Some(span) = u64::try_from(length)
                .ok()
                .and_then(|length| Span::from_len(start, length))
            else {
                continue;
            };
            if let Err(e) = iopt.reserve(span, dev as usize) {
                rc = Err(e);
                break;
            }
        }
        if rc.is_ok() && check_msi && !msi.sane() {
            // Upstream WARNs: the driver offers MSI translation both ways, or two windows.
            kernel::pr_warn_once!("iommufd: a device reports mixed or multiple MSI regions\n");
            rc = Err(EINVAL);
        }
        if rc.is_err() {
            iopt.reserved.remove_owner(dev as usize);
        }
    }
    // SAFETY: gives back what `iommu_get_resv_regions()` allocated.
    unsafe { bindings::iommu_put_resv_regions(dev, head) };
    rc
}

fn remove_resv(ioas: &Ioas, dev: *mut bindings::device) {
    ioas.iopt.lock().reserved.remove_owner(dev as usize);
}

/// `IOMMU_GET_HW_INFO`: the IOMMU driver's description of the hardware behind a bound device
/// (its registers as the driver chooses to expose them), its capabilities and PASID width.
pub(crate) fn get_hw_info_ioctl(ucmd: &mut crate::context::ioctl::Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_hw_info = ucmd.cmd()?;
    if cmd.flags & !uapi::IOMMU_HW_INFO_FLAG_INPUT_TYPE != 0 || cmd.__reserved != [0; 3] {
        return Err(crate::context::errno::eopnotsupp());
    }
    // A driver is not asked for a type the caller did not name.
    if cmd.flags & uapi::IOMMU_HW_INFO_FLAG_INPUT_TYPE == 0 {
        cmd.__bindgen_anon_1.in_data_type = uapi::IOMMU_HW_INFO_TYPE_DEFAULT;
    }
    let idev = ucmd.ictx.get_device(cmd.dev_id)?;
    let ops = idev.iommu_ops()?;
    let mut kind: bindings::iommu_hw_info_type =
        // SAFETY: both union members are the same `u32`.
        unsafe { cmd.__bindgen_anon_1.in_data_type };
    let mut data_len: u32 = 0;
    // SAFETY: `ops` are the live driver ops of a bound device.
    let data = match unsafe { (*ops).hw_info } {
        Some(hw_info) => {
            // SAFETY: the driver contract: a live device and two out-pointers.
            let d = unsafe { hw_info(idev.as_raw(), &mut data_len, &mut kind) };
            let d = kernel::error::from_err_ptr(d)?;
            KmallocData(d)
        }
        None => {
            kind = uapi::IOMMU_HW_INFO_TYPE_NONE;
            KmallocData(ptr::null_mut())
        }
    };
    if !data.0.is_null() && kind == uapi::IOMMU_HW_INFO_TYPE_NONE {
        return Err(crate::context::errno::eopnotsupp());
    }
    let user_len = usize::try_from(cmd.data_len).map_err(|_| EINVAL)?;
    let have = usize::try_from(data_len).map_err(|_| EINVAL)?;
    let base = usize::try_from(cmd.data_uptr).map_err(|_| EFAULT)?;
    // The length the kernel has, which may exceed the caller's buffer.
    cmd.data_len = data_len;
    cmd.__bindgen_anon_1.out_data_type = kind;
    cmd.out_capabilities = 0;
    if idev.capable(bindings::iommu_cap_IOMMU_CAP_DIRTY_TRACKING) {
        cmd.out_capabilities |= u64::from(uapi::IOMMU_HW_CAP_DIRTY_TRACKING);
    }
    if !idev.capable(bindings::iommu_cap_IOMMU_CAP_PCI_ATS_SUPPORTED) {
        cmd.out_capabilities |= u64::from(uapi::IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
    }
    cmd.out_max_pasid_log2 = 0;
    let dev = idev.as_raw();
    // SAFETY: a bound device has `dev->iommu` while probed.
    let max_pasids = unsafe { (*(*dev).iommu).max_pasids };
    if max_pasids != 0 {
        cmd.out_max_pasid_log2 = (31 - max_pasids.leading_zeros()) as u8;
        // SAFETY: `pci_bus_type` is a kernel static; `dev` is live.
        if ptr::eq(unsafe { (*dev).bus }, &raw const bindings::pci_bus_type) {
            // SAFETY: a device on the PCI bus is the `dev` of a `pci_dev`.
            let pdev = unsafe {
                dev.cast::<u8>()
                    .sub(core::mem::offset_of!(bindings::pci_dev, dev))
                    .cast::<bindings::pci_dev>()
            };
            // SAFETY: a live PCI device.
            let ctrl = unsafe { kbind::pci_pasid_status(pdev) };
            if ctrl > 0 {
                let ctrl = ctrl as u32;
                if ctrl & bindings::PCI_PASID_CTRL_EXEC != 0 {
                    cmd.out_capabilities |= u64::from(uapi::IOMMU_HW_CAP_PCI_PASID_EXEC);
                }
                if ctrl & bindings::PCI_PASID_CTRL_PRIV != 0 {
                    cmd.out_capabilities |= u64::from(uapi::IOMMU_HW_CAP_PCI_PASID_PRIV);
                }
            }
        }
    }
    // The copies to user space come last: one may block for as long as the user likes (a
    // userfaultfd page), and an unbind gives up waiting for us after a while
    // (`Users::wait_unused`), so nothing of the device is read after them.
    let copy = user_len.min(have);
    if copy != 0 {
        // SAFETY: the driver returned `data_len` bytes at `data`.
        let bytes = unsafe { core::slice::from_raw_parts(data.0.cast::<u8>(), copy) };
        UserSlice::new(UserPtr::from_addr(base), copy)
            .writer()
            .write_slice(bytes)?;
    }
    // Zero the rest of a bigger user buffer.
    if copy < user_len {
        let mut w = UserSlice::new(
            UserPtr::from_addr(base.checked_add(copy).ok_or(EFAULT)?),
            user_len - copy,
        )
        .writer();
        let zeros = [0u8; 64];
        while !w.is_empty() {
            let n = w.len().min(zeros.len());
            w.write_slice(&zeros[..n])?;
        }
    }
    ucmd.respond(&cmd)
}

/// Memory a driver allocated with kmalloc for us, freed with `kfree()`.
struct KmallocData(*mut c_void);

impl Drop for KmallocData {
    fn drop(&mut self) {
        // SAFETY: NULL or a kmalloc allocation handed to us (`hw_info()` contract).
        unsafe { bindings::kfree(self.0) };
    }
}
