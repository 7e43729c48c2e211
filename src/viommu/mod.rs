// SPDX-License-Identifier: GPL-2.0
//! vIOMMU objects (upstream's viommu.c): a vIOMMU is the slice of a physical IOMMU a VMM gives
//! one guest. It holds the nesting-parent paging HWPT (the stage-2 the guest's tables sit on),
//! names the guest's devices by their virtual IDs (vDEVICEs), owns nested HWPTs made on it, takes
//! cache invalidations in the guest's format, reports events to the guest through vEVENTQs
//! (`veventq.rs`) and may hand the guest hardware queues (HW queues) that read guest memory.
//!
//! The driver half sits behind [`ViommuOps`]. Real drivers (SMMUv3, AMD, Tegra CMDQV) implement
//! upstream's `struct iommufd_viommu_ops` over a `struct iommufd_viommu` they embed and reach
//! through the built-in helpers of `drivers/iommu/iommufd/driver.c`, which read the C layouts of
//! the vIOMMU, its vDEVICEs and vEVENTQs, and the devices: `kernel_driver.rs` gives them those
//! (the VT-d driver has no vIOMMU). Drivers written in this module (the mock IOMMU's) implement
//! [`ViommuOps`] in Rust and register in `driver.rs`.
//!
//! Lock order: `Viommu::vdevs` is a leaf (the IOMMU core's group mutex may be held around it: a
//! driver's attach may look up virtual IDs under it). `Viommu::veventqs` comes before the
//! context's object table lock and the C vIOMMU's `veventqs_rwsem` (`eventq/veventq.rs`). A driver's
//! own vIOMMU locks (its HW queue list) come before the IOAS's `iopt` lock.

pub(crate) mod driver;
pub(crate) mod kernel_driver;

use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use kernel::{
    bindings,
    mm::virt::VmaNew,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    abstractions::iommu::domain::{
        phys_mmap,
        UserData, //
    },
    abstractions::iommufd_c::{
        CVdevice,
        CViommu, //
    },
    context::errno,
    context::ictx::Ictx,
    context::ioctl::Ucmd,
    context::object::{
        self,
        Hold,
        Object,
        Used,
        Users, //
    },
    ffi::uapi,
    hwpt::device::Device,
    hwpt::HwptPaging,
    ioas::Ioas,
    pure::span::Span,
};

const PAGE: u64 = kernel::page::PAGE_SIZE as u64;

/// A physical range a vIOMMU lets userspace mmap through `/dev/iommu` (upstream's
/// `iommufd_viommu_alloc_mmap()`); the offset is unique in the context and never reused.
#[derive(Clone, Copy)]
pub(crate) struct MmapRegion {
    pub(crate) offset: u64,
    pub(crate) length: u64,
    pub(crate) phys: u64,
}

/// The object table's index entry of a region handed out while a vIOMMU is built: dropped with
/// this unless the vIOMMU was published (which names the entry), so that a failed
/// `IOMMU_VIOMMU_ALLOC` leaves no entry behind.
struct MmapIndexed<'a> {
    ictx: &'a Ictx,
    offset: u64,
}

impl Drop for MmapIndexed<'_> {
    fn drop(&mut self) {
        self.ictx.objects.lock().forget_mmap(self.offset);
    }
}

/// Hands a driver an mmap offset for a physical range during [`ViommuOps`] set-up.
pub(crate) type MmapAlloc<'a> = dyn FnMut(u64, u64) -> Result<u64> + 'a;

/// Builds a HW queue once the driver has checked it; gets the object ID of the queue it depends
/// on (`EIO` if that one is gone meanwhile).
pub(crate) type HwQueueMake<'a> = dyn FnMut(Option<u32>) -> Result<Arc<HwQueue>> + 'a;

/// The driver half of a vIOMMU (upstream's `struct iommufd_viommu_ops`).
pub(crate) trait ViommuOps: Send + Sync {
    /// A nested domain whose stage-1 the guest owns (`alloc_domain_nested`).
    fn alloc_domain_nested(
        &self,
        viommu: &Viommu,
        flags: u32,
        data: &bindings::iommu_user_data,
    ) -> Result<*mut bindings::iommu_domain>;

    /// Handles guest cache invalidation requests; `array.entry_num` comes back as the count
    /// handled (`cache_invalidate`).
    fn cache_invalidate(
        &self,
        viommu: &Viommu,
        array: &mut bindings::iommu_user_data_array,
    ) -> Result;

    /// Whether HW queues of `queue_type` exist (`get_hw_queue_size` not 0).
    fn hw_queue_supported(&self, queue_type: u32) -> bool;

    /// Checks and registers queue `index` whose guest memory starts at `base_iova` (stage-2
    /// IOVA) and physical `base_pa`; `make` builds the core object with the queue it depends on
    /// (`hw_queue_init_phys`).
    fn hw_queue_init(
        &self,
        viommu: &Viommu,
        index: u32,
        base_iova: u64,
        base_pa: u64,
        make: &mut HwQueueMake<'_>,
    ) -> Result<Arc<HwQueue>>;

    /// Queue `index`, object `id`, is going away (its `destroy`).
    fn hw_queue_destroy(&self, index: u32, id: u32);

    /// The vIOMMU got object ID `id`.
    fn set_id(&self, _id: u32) {}

    /// The driver's part of a new vDEVICE: `dev` is `virt_id` to the guest (upstream's
    /// `vdevice_size` and `vdevice_init`). `EEXIST` if the driver already has that virtual ID.
    fn vdevice_init(&self, _dev: &Device, _virt_id: u64) -> Result<Option<CVdevice>> {
        Ok(None)
    }

    /// The C vIOMMU, for a driver that reads C layouts (its vEVENTQs are C ones too).
    fn c_viommu(&self) -> Option<&CViommu> {
        None
    }
}

/// One guest device of a vIOMMU: its device and the vDEVICE object that named it.
struct VdevEntry {
    dev: *mut bindings::device,
    vdev: *const Vdevice,
}

// SAFETY: the pointers are only compared or used under `Viommu::vdevs`; a vDEVICE removes its
// entry (under that lock) before it goes, and holds its device until then.
unsafe impl Send for VdevEntry {}

/// A vEVENTQ of a vIOMMU, as its list knows it.
pub(crate) struct VeventqRef(pub(crate) *const crate::eventq::veventq::Veventq);

// SAFETY: a vEVENTQ removes itself from the list (under `Viommu::veventqs`) before it goes.
unsafe impl Send for VeventqRef {}

/// `IOMMUFD_OBJ_VIOMMU`.
#[pin_data]
pub(crate) struct Viommu {
    ops: KBox<dyn ViommuOps>,
    /// The nesting parent; held (its `DESTROY` answers `EBUSY`) while the vIOMMU lives.
    pub(crate) parent: Hold<HwptPaging>,
    /// The physical IOMMU instance, for "same IOMMU" checks only.
    iommu_dev: usize,
    /// The guest's devices by virtual ID.
    #[pin]
    vdevs: Mutex<RBTree<u64, VdevEntry>>,
    /// Event queues, at most one per type.
    #[pin]
    pub(crate) veventqs: Mutex<KVec<VeventqRef>>,
    pub(crate) mmap: Option<MmapRegion>,
    users: Users,
}

impl Used for Viommu {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Viommu {
    /// The driver half.
    pub(crate) fn ops(&self) -> &dyn ViommuOps {
        &*self.ops
    }

    /// Whether `dev` sits behind this vIOMMU's physical IOMMU.
    pub(crate) fn same_iommu(&self, dev: &Device) -> bool {
        dev.iommu_dev() == self.iommu_dev
    }

    /// The virtual ID of `dev` in this vIOMMU (upstream's `iommufd_viommu_get_vdev_id()`).
    pub(crate) fn vdev_id_of(&self, dev: *mut bindings::device) -> Option<u64> {
        self.vdevs
            .lock()
            .iter()
            .find(|(_, e)| core::ptr::eq(e.dev, dev))
            .map(|(&id, _)| id)
    }

    /// Calls `f` with the device named `virt_id`, under the vDEVICE lock (upstream's
    /// `iommufd_viommu_find_dev()` under `xa_lock`): the device cannot leave meanwhile.
    pub(crate) fn with_dev<R>(
        &self,
        virt_id: u64,
        f: impl FnOnce(*mut bindings::device) -> R,
    ) -> Option<R> {
        let vdevs = self.vdevs.lock();
        vdevs.get(&virt_id).map(|e| f(e.dev))
    }

    /// Queues an event for the guest in the vEVENTQ of `queue_type` (upstream's
    /// `iommufd_viommu_report_event()`): `EOPNOTSUPP` without one; a full queue records a lost
    /// event instead.
    pub(crate) fn report_event(&self, queue_type: u32, data: &[u8]) -> Result {
        if data.is_empty() {
            return Err(EINVAL);
        }
        let queues = self.veventqs.lock();
        let q = queues
            .iter()
            // SAFETY: listed vEVENTQs are alive (they unlist themselves under this lock). Not in
            // `abstractions/`: this is the lifetime of an iommufd object, not of a C one.
            .map(|r| unsafe { &*r.0 })
            .find(|q| q.queue_type == queue_type)
            .ok_or(errno::eopnotsupp())?;
        q.report(data)
    }
}

/// Whether the driver of `dev` has vIOMMUs of `viommu_type` here (upstream asks the driver's
/// `get_viommu_size()`).
fn type_supported(dev: &Device, viommu_type: u32) -> bool {
    driver::find(dev).is_some_and(|d| d.supports(dev, viommu_type))
}

/// The driver half for `dev` (upstream's `viommu_init()`).
fn driver_init(
    dev: &Device,
    viommu_type: u32,
    parent: &HwptPaging,
    data: Option<&bindings::iommu_user_data>,
    mmap: &mut MmapAlloc<'_>,
) -> Result<KBox<dyn ViommuOps>> {
    match driver::find(dev) {
        Some(d) => d.init(dev, viommu_type, parent, data, mmap),
        None => Err(errno::eopnotsupp()),
    }
}

/// `IOMMU_VIOMMU_ALLOC`.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_viommu_alloc = ucmd.cmd()?;
    if cmd.flags != 0 || cmd.type_ == uapi::IOMMU_VIOMMU_TYPE_DEFAULT {
        return Err(errno::eopnotsupp());
    }
    let idev = ucmd.ictx.get_device(cmd.dev_id)?;
    if !type_supported(&idev, cmd.type_) {
        return Err(errno::eopnotsupp());
    }
    let parent = ucmd.ictx.objects.lock().get_hwpt_paging(cmd.hwpt_id)?;
    if !parent.nest_parent {
        return Err(EINVAL);
    }
    let data = UserData::new(cmd.type_, cmd.data_uptr, cmd.data_len.into())?;
    let mut region = None;
    let mut indexed = None;
    let ops = driver_init(
        &idev,
        cmd.type_,
        &parent,
        (data.len() != 0).then_some(data.as_raw()),
        &mut |phys, length| {
            if phys % PAGE != 0 || length == 0 || length % PAGE != 0 {
                return Err(EINVAL);
            }
            let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
            let offset = ucmd.ictx.objects.lock().alloc_mmap_offset(length, node)?;
            indexed = Some(MmapIndexed {
                ictx: ucmd.ictx,
                offset,
            });
            region = Some(MmapRegion {
                offset,
                length,
                phys,
            });
            Ok(offset)
        },
    )?;
    let parent_hwpt = Hold::new(parent.arc().clone());
    let iommu_dev = idev.iommu_dev();
    let viommu = Arc::pin_init(
        try_pin_init!(Viommu {
            ops,
            parent: parent_hwpt,
            iommu_dev,
            vdevs <- new_mutex!(RBTree::new()),
            veventqs <- new_mutex!(KVec::new()),
            mmap: region,
            users: Users::default(),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    object::publish(ucmd, Object::Viommu(viommu.clone()), |id| {
        viommu.ops().set_id(id);
        cmd.out_viommu_id = id;
        ucmd.respond(&cmd)
    })?;
    Ok(())
}

/// A device's one vDEVICE slot, taken for vDEVICE `id` (upstream's `idev->vdev`); freed when
/// dropped.
struct VdevClaim {
    idev: Arc<Device>,
    id: u32,
}

impl VdevClaim {
    /// `EEXIST` if the device has a vDEVICE, `ENOENT` while it unbinds.
    fn new(idev: &Arc<Device>, id: u32) -> Result<Self> {
        idev.claim_vdev(id)?;
        Ok(Self {
            idev: idev.clone(),
            id,
        })
    }
}

impl Drop for VdevClaim {
    fn drop(&mut self) {
        self.idev.clear_vdev(self.id);
    }
}

/// `IOMMUFD_OBJ_VDEVICE`: a device is `virt_id` to the guest behind `viommu`.
pub(crate) struct Vdevice {
    /// The driver's part, for a driver that reads C layouts; dropped first (it names the
    /// device and the vIOMMU the fields below hold).
    _c: Option<CVdevice>,
    _claim: VdevClaim,
    viommu: Hold<Viommu>,
    virt_id: u64,
    users: Users,
}

impl Used for Vdevice {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Drop for Vdevice {
    /// Unlists the vDEVICE if it was listed; then the fields give back the device's vDEVICE slot
    /// and the hold on the vIOMMU.
    fn drop(&mut self) {
        let mut vdevs = self.viommu.vdevs.lock();
        if vdevs
            .get(&self.virt_id)
            .is_some_and(|e| core::ptr::eq(e.vdev, self))
        {
            vdevs.remove(&self.virt_id);
        }
    }
}

/// `IOMMU_VDEVICE_ALLOC`.
pub(crate) fn vdevice_alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_vdevice_alloc = ucmd.cmd()?;
    // Virtual IDs index a table of `unsigned long` keys upstream.
    if usize::try_from(cmd.virt_id).is_err() {
        return Err(EINVAL);
    }
    let viommu = ucmd.ictx.objects.lock().get_viommu(cmd.viommu_id)?;
    let idev = ucmd.ictx.get_device(cmd.dev_id)?;
    if !viommu.same_iommu(&idev) {
        return Err(EINVAL);
    }
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let entry = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let reserved = ucmd.ictx.objects.lock().reserve(node)?;
    let id = reserved.id;
    let built = (|| -> Result<Arc<Vdevice>> {
        // One vDEVICE per device; none for a device on its way out. The claim and the hold are
        // fields: whatever fails from here gives them back once, with them.
        let claim = VdevClaim::new(idev.arc(), id)?;
        // The driver's part before the vDEVICE lock (a leaf): the driver may take its own locks
        // and allocate. A virtual ID the driver has taken answers EEXIST there.
        let c = viommu.ops().vdevice_init(&idev, cmd.virt_id)?;
        if let Some(c) = &c {
            c.set_id(id);
        }
        let vdev = Arc::new(
            Vdevice {
                _c: c,
                _claim: claim,
                viommu: Hold::new(viommu.arc().clone()),
                virt_id: cmd.virt_id,
                users: Users::default(),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        let mut vdevs = viommu.vdevs.lock();
        if vdevs.get(&cmd.virt_id).is_some() {
            return Err(EEXIST);
        }
        vdevs.insert(entry.into_node(
            cmd.virt_id,
            VdevEntry {
                dev: idev.as_raw(),
                vdev: &raw const *vdev,
            },
        ));
        Ok(vdev)
    })();
    let vdev = match built {
        Ok(v) => v,
        Err(e) => {
            ucmd.ictx.objects.lock().abort(reserved);
            return Err(e);
        }
    };
    cmd.out_vdevice_id = id;
    if let Err(e) = ucmd.respond(&cmd) {
        ucmd.ictx.objects.lock().abort(reserved);
        drop(vdev);
        return Err(e);
    }
    // The device's unbind may have begun since the claim: it takes the vDEVICE out of the table
    // only once published, so one published after its look would keep the device for good.
    // Checked and published under the table lock, which the unbind takes to look.
    let mut objects = ucmd.ictx.objects.lock();
    if !idev.holds_vdev(id) {
        objects.abort(reserved);
        drop(objects);
        drop(vdev);
        return Err(ENOENT);
    }
    objects.finalize(reserved, Object::Vdevice(vdev));
    Ok(())
}

/// A stage-2 range a HW queue keeps pinned and locked: `IOMMU_IOAS_UNMAP` of it answers
/// `EBUSY` until the queue goes (upstream's internal access with `lock_area`).
struct LockedRange {
    ioas: Arc<Ioas>,
    span: Span,
}

impl LockedRange {
    /// Pins `[iova, iova + length)` (widened to pages) in `ioas`; answers the physical address
    /// of `iova`, `EFAULT` unless the pages are physically contiguous.
    fn new(ioas: &Arc<Ioas>, iova: u64, length: u64) -> Result<(Self, u64)> {
        let offset = iova % PAGE;
        let start = iova - offset;
        let len = offset
            .checked_add(length)
            .and_then(|l| l.checked_add(PAGE - 1))
            .ok_or(ERANGE)?
            / PAGE
            * PAGE;
        let span = Span::from_len(start, len).ok_or(ERANGE)?;
        let npages = usize::try_from(len / PAGE).map_err(|_| ERANGE)?;
        let mut pfns = KVVec::from_elem(0u64, npages, GFP_KERNEL | __GFP_NOWARN)?;
        let mut iopt = ioas.iopt.lock();
        iopt.lock_pin(span.start, span.last, &mut pfns)?;
        let locked = Self {
            ioas: ioas.clone(),
            span,
        };
        let contiguous = pfns.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
        drop(iopt);
        if !contiguous {
            return Err(EFAULT);
        }
        let first = pfns.first().copied().ok_or(EINVAL)?;
        let pa = first
            .checked_mul(PAGE)
            .and_then(|p| p.checked_add(offset))
            .ok_or(ERANGE)?;
        Ok((locked, pa))
    }
}

impl Drop for LockedRange {
    fn drop(&mut self) {
        self.ioas
            .iopt
            .lock()
            .lock_unpin(self.span.start, self.span.last);
    }
}

/// `IOMMUFD_OBJ_HW_QUEUE`: a guest queue the hardware reads from guest memory directly.
pub(crate) struct HwQueue {
    viommu: Hold<Viommu>,
    index: u32,
    id: u32,
    /// The queue this one depends on; held while this one lives (its `DESTROY` answers
    /// `EBUSY`).
    _prev: Option<Hold<HwQueue>>,
    /// The driver knows the queue (it tells the driver when it goes).
    registered: AtomicBool,
    _locked: LockedRange,
    users: Users,
}

impl Used for HwQueue {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Drop for HwQueue {
    /// Tells the driver; then the fields give back the holds and the locked range.
    fn drop(&mut self) {
        if self.registered.load(Ordering::Acquire) {
            self.viommu.ops().hw_queue_destroy(self.index, self.id);
        }
    }
}

impl HwQueue {
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The driver has it on its list.
    pub(crate) fn set_registered(&self) {
        self.registered.store(true, Ordering::Release);
    }
}

/// `IOMMU_HW_QUEUE_ALLOC`.
pub(crate) fn hw_queue_alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_hw_queue_alloc = ucmd.cmd()?;
    if cmd.flags != 0 || cmd.type_ == uapi::IOMMU_HW_QUEUE_TYPE_DEFAULT {
        return Err(errno::eopnotsupp());
    }
    if cmd.length == 0 {
        return Err(EINVAL);
    }
    if cmd
        .nesting_parent_iova
        .checked_add(cmd.length - 1)
        .is_none()
    {
        return Err(EOVERFLOW);
    }
    let viommu = ucmd.ictx.objects.lock().get_viommu(cmd.viommu_id)?;
    if !viommu.ops().hw_queue_supported(cmd.type_) {
        return Err(errno::eopnotsupp());
    }
    let (locked, base_pa) = LockedRange::new(
        viommu.parent.ioas.arc(),
        cmd.nesting_parent_iova,
        cmd.length,
    )?;
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let reserved = ucmd.ictx.objects.lock().reserve(node)?;
    let id = reserved.id;
    let mut locked = Some(locked);
    let made = viommu.ops().hw_queue_init(
        &viommu,
        cmd.index,
        cmd.nesting_parent_iova,
        base_pa,
        &mut |prev_id| {
            let prev = match prev_id {
                None => None,
                Some(p) => Some(Hold::new(
                    ucmd.ictx
                        .objects
                        .lock()
                        .get_hw_queue(p)
                        .map_err(|_| EIO)?
                        .arc()
                        .clone(),
                )),
            };
            let locked = locked.take().ok_or(EINVAL)?;
            Ok(Arc::new(
                HwQueue {
                    viommu: Hold::new(viommu.arc().clone()),
                    index: cmd.index,
                    id,
                    _prev: prev,
                    registered: AtomicBool::new(false),
                    _locked: locked,
                    users: Users::default(),
                },
                GFP_KERNEL_ACCOUNT,
            )?)
        },
    );
    let queue = match made {
        Ok(q) => q,
        Err(e) => {
            ucmd.ictx.objects.lock().abort(reserved);
            return Err(e);
        }
    };
    cmd.out_hw_queue_id = id;
    if let Err(e) = ucmd.respond(&cmd) {
        ucmd.ictx.objects.lock().abort(reserved);
        drop(queue);
        return Err(e);
    }
    ucmd.ictx
        .objects
        .lock()
        .finalize(reserved, Object::HwQueue(queue));
    Ok(())
}

/// `mmap()` of `/dev/iommu`: maps a region a vIOMMU offered, whole and shared; the vIOMMU
/// cannot be destroyed while the mapping exists.
pub(crate) fn mmap(ictx: &Ictx, vma: &VmaNew) -> Result {
    let length = u64::try_from(vma.end() - vma.start()).map_err(|_| EINVAL)?;
    if length % PAGE != 0 {
        return Err(EINVAL);
    }
    if vma.flags() & kernel::mm::virt::flags::SHARED == 0 {
        return Err(EINVAL);
    }
    if vma.flags() & kernel::mm::virt::flags::EXEC != 0 {
        return Err(EPERM);
    }
    let offset = u64::try_from(phys_mmap::pgoff(vma))
        .ok()
        .and_then(|p| p.checked_mul(PAGE))
        .ok_or(ENXIO)?;
    let viommu = ictx.objects.lock().find_mmap(offset).ok_or(ENXIO)?;
    let region = viommu.mmap.ok_or(ENXIO)?;
    if region.length != length {
        return Err(ENXIO);
    }
    // The mapping holds the vIOMMU (one hold per VMA) until its last VMA goes.
    phys_mmap::map(vma, region.phys, viommu.arc().clone())
}

impl phys_mmap::Owner for Viommu {
    fn hold(&self) {
        self.users().hold(1);
    }

    fn release(&self) {
        self.users().release(1);
    }
}
