// SPDX-License-Identifier: GPL-2.0
//! The per-context object table: 32-bit IDs naming IOAS, HWPT, device... objects.
//!
//! An ID is reserved first and the object published only once it is fully built: between the two
//! the slot holds `None`, which every lookup treats as absent (upstream stores `XA_ZERO_ENTRY`).
//! IDs are the lowest free number from 1, as upstream's `xa_alloc` with `XA_FLAGS_ALLOC1` gives,
//! found in a bitmap of used IDs (`IdPool`) rather than by walking the table. Beside the slots,
//! indexes find a device's group record and a vIOMMU's mmap region without a walk either.
//!
//! Lock order: `Ictx::objects` is a leaf lock; nothing is copied to or from user space under it.

use core::sync::atomic::{
    AtomicBool,
    AtomicU32,
    Ordering, //
};
use kernel::{
    id_pool::IdPool,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::Arc,
};

use crate::{
    abstractions::file::wait,
    context::ioctl::Ucmd,
    ffi::uapi, //
    hwpt::device::{
        Device,
        IGroup, //
    },
    hwpt::HwptPaging,
    ioas::Ioas,
};

/// Who holds an object besides the table: short-term users (ioctls that looked it up and have not
/// finished with it; taken under the table lock, so `IOMMU_DESTROY` sees every one, dropped
/// anywhere) and long-term dependants (a HWPT on its IOAS, an attached device on its HWPT, the
/// binding driver on its device). Either makes `IOMMU_DESTROY` answer `EBUSY`, as upstream's
/// `users` refcount does.
#[derive(Default)]
pub(crate) struct Users {
    short: AtomicU32,
    long: AtomicU32,
    /// Someone waits for `short` to reach zero ([`Users::wait_unused`]): the last short-term user
    /// wakes it.
    waited: AtomicBool,
}

impl Users {
    /// Counts `n` long-term dependants.
    pub(crate) fn hold(&self, n: u32) {
        self.long.fetch_add(n, Ordering::AcqRel);
    }

    /// Drops `n` long-term dependants.
    pub(crate) fn release(&self, n: u32) {
        self.long.fetch_sub(n, Ordering::AcqRel);
    }

    fn busy(&self) -> bool {
        self.short.load(Ordering::Acquire) != 0 || self.long.load(Ordering::Acquire) != 0
    }

    /// Whether anything depends on the object long-term.
    pub(crate) fn held(&self) -> bool {
        self.long.load(Ordering::Acquire) != 0
    }

    /// Waits until no ioctl uses the object any more (upstream's `REMOVE_WAIT_SHORTTERM`): for
    /// the owner of an object that ends its life itself, after taking it out of the table, so
    /// that no new user can appear, and before freeing what users may touch (a device's
    /// `dev->iommu` goes with its unbind). Must not be called by a user of the object.
    ///
    /// The wait is bounded, as upstream's `iommufd_object_dec_wait()`: a user may be an ioctl
    /// that userspace keeps blocked in a copy from a userfaultfd page for as long as it likes,
    /// and the owner is often a task that must go on (VFIO closing a device). `EBUSY` once
    /// [`UNUSED_TIMEOUT_MS`] have passed with a user left: the caller goes on without it, and
    /// that user's reference keeps the object alive until it finishes.
    pub(crate) fn wait_unused(&self) -> Result {
        // Pairs with the drop of the last `InUse`: either it sees `waited` and wakes us, or the
        // wait below sees its decrement. Both sides are sequentially consistent for that.
        self.waited.store(true, Ordering::SeqCst);
        if wait::wait_for_zero(&self.short, UNUSED_TIMEOUT_MS) {
            return Ok(());
        }
        // As upstream, said at the critical level; not a WARN (upstream's caller adds one), which
        // any user could turn into a panic under `panic_on_warn`.
        kernel::pr_crit!(
            "an object being removed is still in use after {} s; going on without it\n",
            UNUSED_TIMEOUT_MS / 1000
        );
        Err(EBUSY)
    }
}

/// How long [`Users::wait_unused`] waits for the users of an object (upstream's bound).
const UNUSED_TIMEOUT_MS: u32 = 60_000;

/// Objects that count their users.
pub(crate) trait Used {
    fn users(&self) -> &Users;
}

/// A looked-up object in use by one ioctl: while it lives, `IOMMU_DESTROY` answers `EBUSY`, as
/// upstream's `users` refcount makes it.
pub(crate) struct InUse<T: Used + ?Sized>(Arc<T>);

impl<T: Used + ?Sized> InUse<T> {
    /// Counts a user; the caller holds the table lock.
    fn new(obj: Arc<T>) -> Self {
        obj.users().short.fetch_add(1, Ordering::Acquire);
        Self(obj)
    }

    /// The object itself, for a long-term reference.
    pub(crate) fn arc(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T: Used + ?Sized> core::ops::Deref for InUse<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Used + ?Sized> Drop for InUse<T> {
    fn drop(&mut self) {
        let users = self.0.users();
        if users.short.fetch_sub(1, Ordering::SeqCst) == 1 && users.waited.load(Ordering::SeqCst) {
            wait::wake_zero_waiters();
        }
    }
}

/// What an ID names. Each variant holds a reference; the table's is the one `IOMMU_DESTROY` drops.
pub(crate) enum Object {
    Ioas(Arc<Ioas>),
    HwptPaging(Arc<HwptPaging>),
    HwptNested(Arc<crate::hwpt::HwptNested>),
    Device(Arc<Device>),
    Access(Arc<crate::ioas::access::Access>),
    Fault(Arc<crate::eventq::fault::Fault>),
    Viommu(Arc<crate::viommu::Viommu>),
    Vdevice(Arc<crate::viommu::Vdevice>),
    Veventq(Arc<crate::eventq::veventq::Veventq>),
    HwQueue(Arc<crate::viommu::HwQueue>),
    /// An object of a kind the core does not know (`extension.rs`).
    Extension(Arc<dyn crate::context::extension::ExtensionObject>),
}

impl Object {
    pub(crate) fn users(&self) -> &Users {
        match self {
            Object::Ioas(ioas) => ioas.users(),
            Object::HwptPaging(hwpt) => hwpt.users(),
            Object::HwptNested(hwpt) => hwpt.users(),
            Object::Device(dev) => dev.users(),
            Object::Access(a) => a.users(),
            Object::Fault(f) => f.users(),
            Object::Viommu(v) => v.users(),
            Object::Vdevice(v) => v.users(),
            Object::Veventq(q) => q.users(),
            Object::HwQueue(q) => q.users(),
            Object::Extension(e) => e.users(),
        }
    }
}

/// What a page-table ID (`pt_id`) of an attach names.
pub(crate) enum Pt {
    Ioas(InUse<Ioas>),
    Hwpt(InUse<HwptPaging>),
    Nested(InUse<crate::hwpt::HwptNested>),
}

/// A group's record in the context's group index, with how many bindings use it: a bind takes a
/// count before it publishes its device, the unbind (or the failed bind) gives it back, and the
/// last one takes the record out. `published` counts only the bindings whose device is in the
/// table: what "a device of this group is bound here" means to VFIO.
pub(crate) struct GroupEntry {
    igroup: Arc<IGroup>,
    bindings: usize,
    published: usize,
}

/// The table proper; lives in the context's mutex.
pub(crate) struct Objects {
    slots: RBTree<u32, Option<Object>>,
    /// The group records of the bound devices by group (upstream's `ictx->groups`): one record
    /// per group, found without walking the objects, so that concurrent binds of two devices of
    /// one group share one attach state.
    groups: RBTree<usize, GroupEntry>,
    /// Which IDs are taken (published or reserved); bit 0 is always set, IDs start at 1. Its
    /// capacity stops below 2^31 (`xa_limit_31b`): IDs stay positive as a C `int`.
    ids: IdPool,
    /// `IOMMU_OPTION_RLIMIT_MODE`: account pins to the process (mm) rather than the user. Kept
    /// under the table lock because it may only change while the table is empty.
    pub(crate) account_mm: bool,
    /// The IOAS the VFIO compat ioctls work on (`IOMMU_VFIO_IOAS`), cleared when it goes.
    pub(crate) vfio_ioas: Option<u32>,
    /// A VFIO no-IOMMU device was attached: the type1 modes are off.
    pub(crate) no_iommu_mode: bool,
    /// The next mmap offset to hand out (bytes, page aligned); offsets are never reused.
    next_mmap: u64,
    /// The vIOMMU mmap regions by offset (upstream's `ictx->mt_mmap`): the ID of the vIOMMU
    /// that offered each, 0 while that vIOMMU is being built. An `mmap()` finds its region
    /// without walking the objects.
    mmaps: RBTree<u64, u32>,
}

/// A reserved, not yet visible ID: hand it to [`Objects::finalize`] or [`Objects::abort`]
/// ([`publish`] does, on every path).
#[must_use]
pub(crate) struct Reserved {
    pub(crate) id: u32,
}

impl Objects {
    pub(crate) fn new() -> Self {
        let mut ids = IdPool::new();
        // ID 0 is never handed out.
        if let Some(zero) = ids.find_unused_id(0) {
            zero.acquire();
        }
        Self {
            slots: RBTree::new(),
            groups: RBTree::new(),
            mmaps: RBTree::new(),
            ids,
            account_mm: false,
            vfio_ioas: None,
            no_iommu_mode: false,
            // The first page stays unused, so no valid offset is 0 (as upstream).
            next_mmap: kernel::page::PAGE_SIZE as u64,
        }
    }

    /// Takes the lowest free ID, growing the bitmap when it is full (allocation under the table
    /// mutex, which may sleep). A full ID space answers EBUSY, as upstream's `xa_alloc()` does.
    fn take_lowest_free_id(&mut self) -> Result<u32> {
        loop {
            if let Some(unused) = self.ids.find_unused_id(1) {
                let id = u32::try_from(unused.acquire()).map_err(|_| EBUSY)?;
                return Ok(id);
            }
            let resizer = self
                .ids
                .grow_request()
                .ok_or(EBUSY)?
                .realloc(GFP_KERNEL_ACCOUNT)?;
            self.ids.grow(resizer);
        }
    }

    /// Reserves an ID with `node` (allocated by the caller before it took the lock).
    pub(crate) fn reserve(
        &mut self,
        node: RBTreeNodeReservation<u32, Option<Object>>,
    ) -> Result<Reserved> {
        let id = self.take_lowest_free_id()?;
        self.slots.insert(node.into_node(id, None));
        Ok(Reserved { id })
    }

    /// Makes a reserved ID name `obj`.
    pub(crate) fn finalize(&mut self, reserved: Reserved, obj: Object) {
        Self::set_id(&obj, reserved.id);
        if let Some(slot) = self.slots.get_mut(&reserved.id) {
            if let Object::Viommu(v) = &obj {
                if let Some(id) = v.mmap.and_then(|m| self.mmaps.get_mut(&m.offset)) {
                    *id = reserved.id;
                }
            }
            *slot = Some(obj);
        }
    }

    /// Gives a reserved ID back; nothing was ever visible under it.
    pub(crate) fn abort(&mut self, reserved: Reserved) {
        self.slots.remove(&reserved.id);
        self.release_id(reserved.id);
    }

    fn release_id(&mut self, id: u32) {
        if self.vfio_ioas == Some(id) {
            self.vfio_ioas = None;
        }
        if let Ok(id) = usize::try_from(id) {
            self.ids.release_id(id);
        }
    }

    /// Removes a published object; `ENOENT` for an unknown or still reserved ID, `EBUSY` while
    /// an ioctl is using it.
    fn remove(&mut self, id: u32) -> Result<Object> {
        match self.slots.get(&id) {
            Some(Some(obj)) if obj.users().busy() => return Err(EBUSY),
            Some(Some(_)) => {}
            _ => return Err(ENOENT),
        }
        let obj = self.slots.remove(&id).flatten().ok_or(ENOENT)?;
        self.release_id(id);
        self.unindex(&obj);
        Ok(obj)
    }

    /// Drops what the indexes beside the slots say of `obj`, which just left the table.
    fn unindex(&mut self, obj: &Object) {
        if let Object::Viommu(v) = obj {
            if let Some(m) = v.mmap {
                self.mmaps.remove(&m.offset);
            }
        }
    }

    /// The published object named `id`, for the lookups by ID below. The test build's fault
    /// point makes it answer "nothing" (`ENOENT`), as upstream's `iommufd_get_object()` does, so
    /// fail-nth tests reach the error path after every lookup.
    fn lookup(&self, id: u32) -> Option<&Object> {
        if crate::context::fail_point::should_fail() {
            return None;
        }
        self.slots.get(&id)?.as_ref()
    }

    /// The IOAS named `id`, counted as in use; `ENOENT` for unknown or reserved IDs and for IDs
    /// of other kinds.
    pub(crate) fn get_ioas(&self, id: u32) -> Result<InUse<Ioas>> {
        match self.lookup(id) {
            Some(Object::Ioas(ioas)) => Ok(InUse::new(ioas.clone())),
            _ => Err(ENOENT),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Tells objects that want to know their ID what it is.
    fn set_id(obj: &Object, id: u32) {
        match obj {
            Object::HwptPaging(h) => h.set_id(id),
            Object::Device(d) => d.set_id(id),
            Object::Access(a) => a.set_id(id),
            _ => {}
        }
    }

    /// Whether `test` holds for every paging HWPT on `ioas`.
    pub(crate) fn all_paging_on(&self, ioas: &Ioas, test: impl Fn(&HwptPaging) -> bool) -> bool {
        self.slots.values().all(|slot| match slot {
            Some(Object::HwptPaging(h)) if core::ptr::eq(&*h.ioas, ioas) => test(h),
            _ => true,
        })
    }

    /// Every IOAS of the context, in use, lowest ID first.
    pub(crate) fn all_ioas(&self) -> Result<KVec<InUse<Ioas>>> {
        let mut out = KVec::new();
        for slot in self.slots.values() {
            if let Some(Object::Ioas(ioas)) = slot {
                out.push(InUse::new(ioas.clone()), GFP_KERNEL)?;
            }
        }
        Ok(out)
    }

    /// The HWPT named `id`, in use.
    pub(crate) fn get_hwpt_paging(&self, id: u32) -> Result<InUse<HwptPaging>> {
        match self.lookup(id) {
            Some(Object::HwptPaging(h)) => Ok(InUse::new(h.clone())),
            _ => Err(ENOENT),
        }
    }

    /// The automatic HWPT of `ioas` named `id`, in use; `None` if `id` now names anything else.
    /// The kind is checked before a user is counted: IDs are reused, and a stale ID in an IOAS's
    /// list of automatic HWPTs must not make a concurrent `IOMMU_DESTROY` of whatever now has
    /// that ID answer `EBUSY`, nor join a device to another IOAS's HWPT.
    pub(crate) fn get_auto_hwpt(&self, id: u32, ioas: &Ioas) -> Option<InUse<HwptPaging>> {
        match self.slots.get(&id) {
            Some(Some(Object::HwptPaging(h))) if h.auto_domain && core::ptr::eq(&*h.ioas, ioas) => {
                Some(InUse::new(h.clone()))
            }
            _ => None,
        }
    }

    /// The vIOMMU named `id`, in use.
    pub(crate) fn get_viommu(&self, id: u32) -> Result<InUse<crate::viommu::Viommu>> {
        match self.lookup(id) {
            Some(Object::Viommu(v)) => Ok(InUse::new(v.clone())),
            _ => Err(ENOENT),
        }
    }

    /// The HW queue named `id`, in use.
    pub(crate) fn get_hw_queue(&self, id: u32) -> Result<InUse<crate::viommu::HwQueue>> {
        match self.lookup(id) {
            Some(Object::HwQueue(q)) => Ok(InUse::new(q.clone())),
            _ => Err(ENOENT),
        }
    }

    /// Takes vDEVICE `id` out of the table for good: its ID stays taken, so `DESTROY` of it
    /// answers ENOENT until the context closes (upstream's tombstone). For the caller to drop
    /// outside the lock.
    pub(crate) fn tombstone_vdevice(&mut self, id: u32) -> Option<Object> {
        match self.slots.get_mut(&id) {
            Some(slot) if matches!(slot, Some(Object::Vdevice(_))) => slot.take(),
            _ => None,
        }
    }

    /// An mmap offset for `length` bytes (page multiple), unique in the context, indexed with
    /// `node` (allocated by the caller before it took the lock) for a vIOMMU not yet published:
    /// [`Objects::finalize`] names it, [`Objects::forget_mmap`] drops it if that never happens.
    pub(crate) fn alloc_mmap_offset(
        &mut self,
        length: u64,
        node: RBTreeNodeReservation<u64, u32>,
    ) -> Result<u64> {
        let offset = self.next_mmap;
        // Offsets are page numbers in `vm_pgoff`: keep them inside an `unsigned long` of pages.
        let next = offset
            .checked_add(length)
            .filter(|n| usize::try_from(*n / kernel::page::PAGE_SIZE as u64).is_ok())
            .ok_or(ENOSPC)?;
        self.next_mmap = next;
        self.mmaps.insert(node.into_node(offset, 0));
        Ok(offset)
    }

    /// Drops the index entry of the region at `offset` if no published vIOMMU names it: the
    /// vIOMMU it was handed out for was never built or never published.
    pub(crate) fn forget_mmap(&mut self, offset: u64) {
        if self.mmaps.get(&offset) == Some(&0) {
            self.mmaps.remove(&offset);
        }
    }

    /// The vIOMMU that offered the mmap region starting at `offset`, in use.
    pub(crate) fn find_mmap(&self, offset: u64) -> Option<InUse<crate::viommu::Viommu>> {
        let id = self.mmaps.get(&offset)?;
        match self.slots.get(id)? {
            Some(Object::Viommu(v)) if v.mmap.is_some_and(|m| m.offset == offset) => {
                Some(InUse::new(v.clone()))
            }
            _ => None,
        }
    }

    /// The fault queue named `id`, in use.
    pub(crate) fn get_fault(&self, id: u32) -> Result<InUse<crate::eventq::fault::Fault>> {
        match self.lookup(id) {
            Some(Object::Fault(f)) => Ok(InUse::new(f.clone())),
            _ => Err(ENOENT),
        }
    }

    /// The device named `id`, in use.
    pub(crate) fn get_device(&self, id: u32) -> Result<InUse<Device>> {
        match self.lookup(id) {
            Some(Object::Device(d)) => Ok(InUse::new(d.clone())),
            _ => Err(ENOENT),
        }
    }

    /// The extension object named `id`, in use.
    pub(crate) fn get_extension(
        &self,
        id: u32,
    ) -> Result<InUse<dyn crate::context::extension::ExtensionObject>> {
        match self.lookup(id) {
            Some(Object::Extension(e)) => Ok(InUse::new(e.clone())),
            _ => Err(ENOENT),
        }
    }

    /// An IOAS or HWPT named `id` (the target of an attach); `ENOENT` for an unknown ID,
    /// `EINVAL` for another kind, as upstream.
    pub(crate) fn get_pt(&self, id: u32) -> Result<Pt> {
        match self.lookup(id) {
            Some(Object::Ioas(i)) => Ok(Pt::Ioas(InUse::new(i.clone()))),
            Some(Object::HwptPaging(h)) => Ok(Pt::Hwpt(InUse::new(h.clone()))),
            Some(Object::HwptNested(h)) => Ok(Pt::Nested(InUse::new(h.clone()))),
            Some(_) => Err(EINVAL),
            _ => Err(ENOENT),
        }
    }

    /// Whether a published device of `group` is bound to the context (a bind still under way
    /// does not count: it may yet fail to claim the group).
    pub(crate) fn has_group(&self, group: *mut kernel::bindings::iommu_group) -> bool {
        self.groups
            .get(&(group as usize))
            .is_some_and(|e| e.published > 0)
    }

    /// Counts a bind of `group` whose device has just been published.
    pub(crate) fn igroup_published(&mut self, group: *mut kernel::bindings::iommu_group) {
        if let Some(entry) = self.groups.get_mut(&(group as usize)) {
            entry.published = entry.published.saturating_add(1);
        }
    }

    /// Takes a binding's count on `group`'s record, if there is one.
    pub(crate) fn igroup_join(
        &mut self,
        group: *mut kernel::bindings::iommu_group,
    ) -> Option<Arc<IGroup>> {
        let entry = self.groups.get_mut(&(group as usize))?;
        entry.bindings = entry.bindings.saturating_add(1);
        Some(entry.igroup.clone())
    }

    /// Takes a binding's count on the record of `candidate`'s group: `candidate` becomes the
    /// record (in `node`) unless another bind made one meanwhile. Returns the record, and the
    /// candidate when it was not used, for the caller to drop outside the lock (it holds a group
    /// reference).
    pub(crate) fn igroup_insert(
        &mut self,
        candidate: Arc<IGroup>,
        node: RBTreeNodeReservation<usize, GroupEntry>,
    ) -> (Arc<IGroup>, Option<Arc<IGroup>>) {
        if let Some(existing) = self.igroup_join(candidate.group()) {
            return (existing, Some(candidate));
        }
        let key = candidate.group() as usize;
        self.groups.insert(node.into_node(
            key,
            GroupEntry {
                igroup: candidate.clone(),
                bindings: 1,
                published: 0,
            },
        ));
        (candidate, None)
    }

    /// Gives back a binding's count on `group`'s record (`published`: its device was in the
    /// table); the last one takes the record out and returns it, for the caller to drop outside
    /// the lock.
    pub(crate) fn igroup_leave(
        &mut self,
        group: *mut kernel::bindings::iommu_group,
        published: bool,
    ) -> Option<GroupEntry> {
        let key = group as usize;
        let entry = self.groups.get_mut(&key)?;
        if published {
            entry.published = entry.published.saturating_sub(1);
        }
        entry.bindings = entry.bindings.saturating_sub(1);
        if entry.bindings == 0 {
            self.groups.remove(&key)
        } else {
            None
        }
    }

    /// Removes `id` if it still names `hwpt` and nothing holds it: an automatic HWPT whose last
    /// device left. Returns the object for the caller to drop outside the lock.
    pub(crate) fn remove_unused_hwpt(&mut self, id: u32, hwpt: &Arc<HwptPaging>) -> Option<Object> {
        match self.slots.get(&id) {
            Some(Some(Object::HwptPaging(h))) if Arc::ptr_eq(h, hwpt) && !h.users().busy() => {}
            _ => return None,
        }
        let obj = self.slots.remove(&id).flatten();
        self.release_id(id);
        obj
    }

    /// Takes the lowest extension object with an ID from `from` out of the table (closing the
    /// context), with its ID: the caller goes on from the next ID, so the table is walked once,
    /// not once per object.
    pub(crate) fn take_extension(&mut self, from: u32) -> Option<(u32, Object)> {
        let mut cursor = self.slots.cursor_lower_bound_mut(&from)?;
        let id = loop {
            let (&id, slot) = cursor.current();
            if matches!(slot, Some(Object::Extension(_))) {
                break id;
            }
            cursor = cursor.move_next()?;
        };
        Some((id, self.remove_if(id, |_| true)?))
    }

    /// Removes the access object `id` for its creator (destroy).
    pub(crate) fn remove_access(&mut self, id: u32) -> Option<Object> {
        self.remove_if(id, |o| matches!(o, Object::Access(_)))
    }

    /// Removes the device object `id` for its binder (unbind), whatever holds it long-term: the
    /// binder was the last to.
    pub(crate) fn remove_device(&mut self, id: u32) -> Option<Object> {
        self.remove_if(id, |o| matches!(o, Object::Device(_)))
    }

    /// Removes `id` if it names an object `pred` accepts, whatever its users: for the owner of
    /// an object that ends its life itself.
    fn remove_if(&mut self, id: u32, pred: impl Fn(&Object) -> bool) -> Option<Object> {
        match self.slots.get(&id) {
            Some(Some(obj)) if pred(obj) => {}
            _ => return None,
        }
        let obj = self.slots.remove(&id).flatten();
        self.release_id(id);
        if let Some(obj) = &obj {
            self.unindex(obj);
        }
        obj
    }
}

/// A long-term dependant's hold on an object (one count of its [`Users::hold`]) with a reference
/// to it: taken by [`Hold::new`], given back when dropped. An object that depends on another
/// keeps one as a field; the hold then goes exactly once, with the field, on every path: also
/// when the dependant is dropped half built, or never built because an allocation failed.
pub(crate) struct Hold<T: Used>(Arc<T>);

impl<T: Used> Hold<T> {
    /// Holds `obj` (its `IOMMU_DESTROY` answers `EBUSY`) until the result drops.
    pub(crate) fn new(obj: Arc<T>) -> Self {
        obj.users().hold(1);
        Self(obj)
    }

    /// The held object, for another reference.
    pub(crate) fn arc(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T: Used> core::ops::Deref for Hold<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Used> Drop for Hold<T> {
    fn drop(&mut self) {
        self.0.users().release(1);
    }
}

/// Reserves an ID, builds the answer with it, and publishes `obj` only if the answer reached the
/// caller: the shape every `*_ALLOC` ioctl shares.
pub(crate) fn publish(
    ucmd: &Ucmd<'_>,
    obj: Object,
    answer: impl FnOnce(u32) -> Result,
) -> Result<u32> {
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let reserved = ucmd.ictx.objects.lock().reserve(node)?;
    let id = reserved.id;
    match answer(id) {
        Ok(()) => {
            ucmd.ictx.objects.lock().finalize(reserved, obj);
            Ok(id)
        }
        Err(e) => {
            ucmd.ictx.objects.lock().abort(reserved);
            Err(e)
        }
    }
}

/// `IOMMU_DESTROY`.
pub(crate) fn destroy_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_destroy = ucmd.cmd()?;
    let obj = ucmd.ictx.objects.lock().remove(cmd.id)?;
    // Objects that own other objects' lifetimes let go of them first (an extension object may
    // detach and unbind a device); then the object is freed here, outside the table lock.
    if let Object::Extension(e) = &obj {
        e.teardown(ucmd.ictx);
    }
    drop(obj);
    Ok(())
}
