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
    mem::size_of,
    ptr,
    sync::atomic::{
        AtomicU32,
        Ordering, //
    },
};
use kernel::{
    bindings,
    device::Device as KDevice,
    fs::File,
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::iommu::{
        attach::{
            AttachData,
            AttachHandle,
            Attached,
            HandleBox, //
        },
        device::{
            dev_ptr,
            DmaOwner,
            IommuDevice,
            ResvType, //
        },
        group::{
            allow_unsafe_interrupts,
            Group, //
        },
        iopf::IopfGroup,
    },
    abstractions::iommufd_c::{
        CDevice,
        CGroup, //
    },
    context::ictx::Ictx,
    context::object::{
        Object,
        Pt,
        Reserved,
        Used,
        Users, //
    },
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

/// What this module's attach handles carry (upstream's `struct iommufd_attach_handle`): fault
/// groups name the handle, and through it the device and the fault queue they go to.
pub(crate) struct HandleInfo {
    dev_id: u32,
    fault: Option<Arc<crate::eventq::fault::Fault>>,
}

impl HandleInfo {
    /// The device ID of the attachment.
    pub(crate) fn dev_id(&self) -> u32 {
        self.dev_id
    }
}

// SAFETY: `deliver` queues groups in the handle's fault queue only, and `release` (run once the
// core no longer reports through the handle: its attachment has ended) answers every group of
// that queue that came through the handle, queued or read.
unsafe impl AttachData for HandleInfo {
    fn accepts_faults(&self) -> bool {
        self.fault.is_some()
    }

    fn deliver(&self, group: IopfGroup<Self>) {
        if let Some(f) = &self.fault {
            f.deliver(group);
        }
    }

    /// Answers the faults still pending through this handle.
    fn release(handle: &AttachHandle<Self>) {
        if let Some(f) = &handle.data().fault {
            f.auto_respond(handle);
        }
    }
}

type Handle = HandleBox<HandleInfo>;

/// A new attach handle for `dev` attaching to `hwpt`; it names the device's C part, as
/// upstream's handle does (the software MSI path reads it). `dev` ends the attachment before
/// that part goes (it detaches everything before it is dropped).
fn new_handle(dev: &Device, hwpt: &Hwpt) -> Result<Handle> {
    AttachHandle::new(
        HandleInfo {
            dev_id: dev.id(),
            fault: hwpt.fault().cloned(),
        },
        dev.c.as_raw().cast(),
        GFP_KERNEL_ACCOUNT,
    )
}

/// One attachment of a group: at a PASID (`IOMMU_NO_PASID` for the whole RID), to a HWPT, asked
/// by some of the group's bound devices (upstream's `struct iommufd_attach`).
struct Attach {
    pasid: u32,
    hwpt: Hwpt,
    /// Attached devices.
    devices: Devices,
    /// `hwpt`'s domain attached through the handle the core holds.
    attached: Attached<HandleInfo>,
}

/// Devices of an attachment: object ID and device.
type Devices = KVec<(u32, ARef<KDevice>)>;

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

/// One IOMMU group as this context sees it (upstream's `struct iommufd_group`), shared by the
/// bound devices of the group.
#[pin_data]
pub(crate) struct IGroup {
    group: ARef<Group>,
    #[pin]
    attach: Mutex<GroupAttach>,
    /// The C part, which the software MSI path reads (`abstractions::iommufd_c`); its window
    /// and pages change under `attach`.
    c: CGroup,
}

impl IGroup {
    /// The C group (the key of the context's group index).
    pub(crate) fn group(&self) -> *mut bindings::iommu_group {
        self.group.as_raw()
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
    /// Finds or makes the record of `group` and takes a count on it.
    fn new(ictx: &'a Ictx, group: ARef<Group>) -> Result<Self> {
        let found = ictx.objects.lock().igroup_join(group.as_raw());
        let igroup = match found {
            // The record holds its own reference; ours goes.
            Some(g) => g,
            None => {
                let c = CGroup::new(&ictx.c, &group)?;
                let candidate = Arc::pin_init(
                    try_pin_init!(IGroup {
                        group,
                        attach <- new_mutex!(GroupAttach { list: KVec::new() }),
                        c,
                    }),
                    GFP_KERNEL_ACCOUNT,
                )?;
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

/// `Device::vdev` once the device is unbinding.
const VDEV_GONE: u32 = u32::MAX;

/// `IOMMUFD_OBJ_DEVICE`: a device bound to this context, DMA owned by it.
pub(crate) struct Device {
    /// The context the device is bound to; the binding usually holds a reference on
    /// its file (not so for a device its driver binds from an object of the context: see
    /// `hwpt/driver.rs`).
    ctx: *const Ictx,
    /// The reference on the context's file (real devices).
    _ctx_file: Option<ARef<File>>,
    /// DMA ownership claimed for the context (until unbind), and the device.
    owner: DmaOwner,
    pub(crate) igroup: Arc<IGroup>,
    users: Users,
    id: AtomicU32,
    /// Object ID of the device's vDEVICE, 0 without one; `u32::MAX` once unbinding (no new
    /// vDEVICE then).
    vdev: AtomicU32,
    /// The C part, which attach handles name (`abstractions::iommufd_c`); after `igroup`, whose
    /// C part it names.
    c: CDevice,
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
    pub(crate) fn bind(ictx: &Ictx, dev: &KDevice) -> Result<Arc<Device>> {
        // Our reference, for as long as the device object lives.
        let dev = ARef::from(dev);
        let raw = dev_ptr(&dev);
        if !dev.iommu_capable(bindings::iommu_cap_IOMMU_CAP_CACHE_COHERENCY) {
            return Err(EINVAL);
        }
        let group = Group::get(&dev).ok_or(ENODEV)?;
        let joined = GroupJoin::new(ictx, group)?;
        let igroup = joined.igroup.clone();
        // The owner cookie is this context; released by `unbind` or `Drop`.
        let owner = DmaOwner::claim(dev, ictx)?;
        // For historical compatibility with VFIO, a platform that cannot isolate MSIs (a DMA
        // write that could raise interrupts outside this context) needs the admin's consent.
        let traits = crate::hwpt::driver::bind_traits(raw);
        if !traits.msi_safe && !igroup.group.has_isolated_msi() {
            if !allow_unsafe_interrupts() {
                // (Dropping `owner` gives the claim back.)
                return Err(EPERM);
            }
            kernel::pr_warn!(
                "iommufd: MSI interrupts of a device bound to iommufd are not isolated by the platform (allow_unsafe_interrupts)\n"
            );
        }
        let ctx_file = if !traits.holds_ctx {
            None
        } else {
            // Dropped with the device.
            Some(ARef::from(ictx.file_ref()))
        };
        let c = CDevice::new(&igroup.c, raw)?;
        let idev = Arc::new(
            Device {
                ctx: ptr::from_ref(ictx),
                _ctx_file: ctx_file,
                owner,
                igroup,
                users: Users::default(),
                id: AtomicU32::new(0),
                vdev: AtomicU32::new(0),
                c,
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
        self.owner.release();
    }

    /// The C device, for the C interfaces that take one.
    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        dev_ptr(self.kdev())
    }

    /// The `struct device`, as the kernel crate and `abstractions/` speak of it.
    #[inline]
    pub(crate) fn kdev(&self) -> &KDevice {
        self.owner.device()
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
        self.kdev().iommu_instance()
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

    /// The C device (upstream's layout), for the C objects that name it.
    pub(crate) fn c(&self) -> &CDevice {
        &self.c
    }

    /// The context the device is bound to.
    pub(crate) fn ctx(&self) -> &Ictx {
        // SAFETY: a bound device's context lives while it does: its file is held (real
        // devices) or the device is bound from one of its objects (`hwpt/driver.rs`).
        unsafe { &*self.ctx }
    }

    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
        self.c.set_id(id);
    }

    pub(crate) fn id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }

    /// The IOMMU driver's ops for this device (`dev_iommu_ops()`).
    pub(crate) fn iommu_ops(&self) -> Result<*const bindings::iommu_ops> {
        self.kdev().iommu_ops().map(ptr::from_ref)
    }

    /// Whether the device's IOMMU has capability `cap` (`device_iommu_capable()`).
    pub(crate) fn capable(&self, cap: bindings::iommu_cap) -> bool {
        self.kdev().iommu_capable(cap)
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
        self.kdev().pci_pri_facts().map(|f| PciFacts {
            is_virtfn: f.is_virtfn,
            pri_supported: f.pri_supported,
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
    fn core_attach(&self, pasid: u32, hwpt: &Hwpt, handle: Handle) -> Result<Attached<HandleInfo>> {
        self.check_compatible(hwpt)?;
        if pasid == bindings::IOMMU_NO_PASID {
            Attached::group(&self.igroup.group, hwpt.domain(), handle)
        } else {
            Attached::pasid(self.kdev(), pasid, hwpt.domain(), handle)
        }
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
        let dev: ARef<KDevice> = self.kdev().into();
        if rid {
            enforce_resv_regions(&hwpt.paging().ioas, &self.igroup, self.kdev(), true)?;
        }
        let undo_resv = || {
            if rid {
                remove_resv(&hwpt.paging().ioas, self.kdev());
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
                    Ok((new_handle(self, hwpt)?, devices))
                })();
                // The group's first attachment at its RID: the MSI pages its devices were given
                // through earlier domains go into this one first (upstream's
                // `iommufd_group_setup_msi()`).
                let prepared = prepared.and_then(|p| {
                    if rid {
                        self.igroup.c.setup_msi(hwpt.c())?;
                    }
                    Ok(p)
                });
                let (handle, devices) = match prepared {
                    Ok(p) => p,
                    Err(e) => {
                        undo_resv();
                        return Err(e);
                    }
                };
                let attached = match self.core_attach(pasid, hwpt, handle) {
                    Ok(attached) => attached,
                    Err(e) => {
                        undo_resv();
                        return Err(e);
                    }
                };
                // Capacity reserved above.
                let _ = a.list.push(
                    Attach {
                        pasid,
                        hwpt: hwpt.clone(),
                        devices,
                        attached,
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
            if let Ok(Attach {
                attached,
                hwpt: last,
                ..
            }) = a.list.remove(i)
            {
                gone = Some((attached.detach(), last));
            }
        }
        if pasid == bindings::IOMMU_NO_PASID {
            remove_resv(&hwpt.paging().ioas, self.kdev());
        }
        hwpt.users().release(1);
        drop(a);
        // The core no longer delivers through the handle: dropping it answers what it left
        // pending (`HandleInfo::release`); the HWPT goes after the lock.
        drop(gone);
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
                if let Err(e) = enforce_resv_regions(&hwpt.paging().ioas, &self.igroup, dev, false)
                {
                    for (_, done) in a.list[i].devices.iter().take(n) {
                        remove_resv(&hwpt.paging().ioas, done);
                    }
                    return Err(e);
                }
            }
        }
        let undo = |at: &Attach| {
            if move_resv {
                for (_, dev) in at.devices.iter() {
                    remove_resv(&hwpt.paging().ioas, dev);
                }
            }
        };
        // The MSI pages the group's devices use go into the new domain before it takes over.
        let handle = match self
            .check_compatible(hwpt)
            .and_then(|()| {
                if rid {
                    self.igroup.c.setup_msi(hwpt.c())
                } else {
                    Ok(())
                }
            })
            .and_then(|()| new_handle(self, hwpt))
        {
            Ok(h) => h,
            Err(e) => {
                undo(&a.list[i]);
                return Err(e);
            }
        };
        // On success the core drops its use of the old handle.
        let old_handle = match a.list[i].attached.replace(hwpt.domain(), handle) {
            Ok(h) => h,
            Err(e) => {
                undo(&a.list[i]);
                return Err(e);
            }
        };
        let at = &mut a.list[i];
        if move_resv {
            for (_, dev) in at.devices.iter() {
                remove_resv(&old.paging().ioas, dev);
            }
        }
        let n = u32::try_from(at.devices.len()).unwrap_or(u32::MAX);
        hwpt.users().hold(n);
        old.users().release(n);
        at.hwpt = hwpt.clone();
        drop(a);
        // Answers what the old handle left pending (`HandleInfo::release`).
        drop(old_handle);
        Ok(Some(old))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // DMA ownership goes back before the reference on the context's file (`_ctx_file`,
        // dropped after this).
        self.release_owner();
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
///
/// The software MSI window a region names becomes the group's (`igroup`), where the MSI pages
/// of its devices go (`abstractions::iommufd_c`).
fn enforce_resv_regions(ioas: &Ioas, igroup: &IGroup, dev: &KDevice, check_msi: bool) -> Result {
    if crate::context::fail_point::should_fail() {
        return Err(EINVAL);
    }
    let owner = resv_owner(dev);
    dev.with_resv_regions(|regions| {
        let mut rc = Ok(());
        let mut msi = MsiRegions::default();
        let mut sw_msi = None;
        let mut iopt = ioas.iopt.lock();
        for region in regions {
            if region.kind == ResvType::DirectRelaxable {
                continue;
            }
            if region.kind == ResvType::SwMsi {
                sw_msi = Some(region.start);
            }
            msi.count(match region.kind {
                ResvType::Msi => ResvKind::Msi,
                ResvType::SwMsi => ResvKind::SwMsi,
                _ => ResvKind::Other,
            });
            let Some(span) = u64::try_from(region.length)
                .ok()
                .and_then(|length| Span::from_len(region.start, length))
            else {
                continue;
            };
            if let Err(e) = iopt.reserve(span, owner) {
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
            iopt.reserved.remove_owner(owner);
        } else if let Some(start) = sw_msi {
            igroup.c.set_sw_msi(start);
        }
        rc
    })
}

/// The owner key of `dev`'s reservations in an IOAS: the device's address.
fn resv_owner(dev: &KDevice) -> usize {
    dev_ptr(dev) as usize
}

fn remove_resv(ioas: &Ioas, dev: &KDevice) {
    ioas.iopt.lock().reserved.remove_owner(resv_owner(dev));
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
    let mut kind: bindings::iommu_hw_info_type = in_data_type(&cmd)?;
    let data = idev.kdev().hw_info(&mut kind)?;
    let data_len = data.len();
    if data.has_data() && kind == uapi::IOMMU_HW_INFO_TYPE_NONE {
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
    let max_pasids = idev.kdev().max_pasids();
    if max_pasids != 0 {
        cmd.out_max_pasid_log2 = (31 - max_pasids.leading_zeros()) as u8;
        if let Some(ctrl) = idev.kdev().pci_pasid_status() {
            if ctrl & bindings::PCI_PASID_CTRL_EXEC != 0 {
                cmd.out_capabilities |= u64::from(uapi::IOMMU_HW_CAP_PCI_PASID_EXEC);
            }
            if ctrl & bindings::PCI_PASID_CTRL_PRIV != 0 {
                cmd.out_capabilities |= u64::from(uapi::IOMMU_HW_CAP_PCI_PASID_PRIV);
            }
        }
    }
    // The copies to user space come last: one may block for as long as the user likes (a
    // userfaultfd page), and an unbind gives up waiting for us after a while
    // (`Users::wait_unused`), so nothing of the device is read after them.
    let bytes = data.as_bytes();
    let copy = user_len.min(have).min(bytes.len());
    if copy != 0 {
        UserSlice::new(UserPtr::from_addr(base), copy)
            .writer()
            .write_slice(&bytes[..copy])?;
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

/// The type the caller asks the driver for (`in_data_type`, the input member of the union it
/// shares with `out_data_type`), read from the command's bytes.
fn in_data_type(cmd: &uapi::iommu_hw_info) -> Result<u32> {
    let at = core::mem::offset_of!(uapi::iommu_hw_info, __bindgen_anon_1);
    let bytes = cmd
        .as_bytes()
        .get(at..at + size_of::<u32>())
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(EINVAL)?;
    Ok(u32::from_ne_bytes(bytes))
}
