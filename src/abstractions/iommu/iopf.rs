// SPDX-License-Identifier: GPL-2.0
//! I/O page fault groups (`struct iopf_group`): the page requests of one device PASID that the
//! IOMMU core reports together to the handler of the attached domain, answered together.
//!
//! The core hands a group to the domain's `iopf_handler` ([`iopf_handler`] here, the adapter to
//! [`AttachData`]); once the handler takes it, the group is ours until answered with
//! [`IopfGroup::respond`], which also frees it. An [`IopfGroup`] dropped unanswered is answered
//! "invalid", so a device is never left waiting. [`IopfList`] queues groups through the `node`
//! the core leaves to the handler: queueing never allocates.

use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    ffi::c_int,
    prelude::*,
    types::Opaque, //
};

use crate::abstractions::iommu::attach::{
    AttachData,
    AttachHandle, //
};

/// A fault group the core handed us, answered and freed exactly once: by [`IopfGroup::respond`],
/// or "invalid" when dropped. Must not be dropped under a spinlock (answering takes a mutex).
///
/// # Invariants
///
/// `group` is a dequeued group the core no longer tracks, owned by this value; its
/// `attach_handle` is the C handle of a live `AttachHandle<T>`, which stays allocated while the
/// group is unanswered (the [`AttachData`] contract).
pub(crate) struct IopfGroup<T: AttachData> {
    group: NonNull<bindings::iopf_group>,
    _data: PhantomData<*const T>,
}

// SAFETY: the group is owned by this value (the core does not touch it between the handler and
// the response) and may be answered from any thread; the handle data it borrows is `Sync`.
unsafe impl<T: AttachData> Send for IopfGroup<T> {}

/// One page request of a fault group (`struct iommu_fault_page_request`).
pub(crate) type PageRequest = bindings::iommu_fault_page_request;

impl<T: AttachData> IopfGroup<T> {
    /// Takes ownership of the group at `group`.
    ///
    /// # Safety
    ///
    /// `group` is a dequeued group nobody else owns, reported through an `AttachHandle<T>`.
    #[inline]
    unsafe fn from_raw(group: NonNull<bindings::iopf_group>) -> Self {
        // INVARIANT: the caller's promises.
        Self {
            group,
            _data: PhantomData,
        }
    }

    #[inline]
    fn raw(&self) -> *mut bindings::iopf_group {
        self.group.as_ptr()
    }

    /// The data of the attach handle the group came through.
    #[inline]
    pub(crate) fn handle_data(&self) -> &T {
        // SAFETY: the group's handle is a live `AttachHandle<T>` while the group is ours (type
        // invariants); the borrow ends before the group is answered.
        unsafe { AttachHandle::<T>::from_raw((*self.raw()).attach_handle) }.data()
    }

    /// Whether the group came through `handle`.
    #[inline]
    pub(crate) fn came_through(&self, handle: &AttachHandle<T>) -> bool {
        // SAFETY: the group is ours; the core set `attach_handle` before handing it over.
        unsafe { (*self.raw()).attach_handle == handle.as_raw() }
    }

    /// How many page requests the group holds.
    #[inline]
    pub(crate) fn fault_count(&self) -> usize {
        // SAFETY: the group is ours.
        unsafe { (*self.raw()).fault_count }
    }

    /// Records the cookie the group is known by to the handler's user.
    #[inline]
    pub(crate) fn set_cookie(&mut self, cookie: u32) {
        // SAFETY: the group is ours; `cookie` is left to the handler.
        unsafe { (*self.raw()).cookie = cookie };
    }

    /// The group's page requests, in the order the device made them.
    pub(crate) fn page_requests(&self) -> PageRequests<'_> {
        // SAFETY: the group is ours; `faults` is its initialized list of `iopf_fault`s.
        let head = unsafe { &raw mut (*self.raw()).faults };
        PageRequests {
            head,
            // SAFETY: as above.
            pos: unsafe { (*head).next },
            _group: PhantomData,
        }
    }

    /// Answers the device with `code` (an `IOMMU_PAGE_RESP_*`) and frees the group.
    pub(crate) fn respond(self, code: bindings::iommu_page_response_code) {
        let this = ManuallyDrop::new(self);
        // SAFETY: the group is ours (type invariants) and answered once: `this` is not dropped.
        unsafe {
            bindings::iopf_group_response(this.raw(), code);
            bindings::iopf_free_group(this.raw());
        }
    }

    /// The group's link for the handler's own lists.
    #[inline]
    fn node(&self) -> *mut bindings::list_head {
        // SAFETY: the group is ours; `node` is left to the handler.
        unsafe { &raw mut (*self.raw()).node }
    }

    /// The group whose `node` is `node`, without taking it.
    ///
    /// # Safety
    ///
    /// `node` is the `node` of a group owned by an `IopfList<T>`, which keeps owning it.
    #[inline]
    unsafe fn peek_node(node: *mut bindings::list_head) -> ManuallyDrop<Self> {
        // SAFETY: the caller's guarantee: `node` is inside an `iopf_group`.
        let group = unsafe { kernel::container_of!(node, bindings::iopf_group, node) };
        // SAFETY: derived from a non-null field pointer; the list's groups are owned as
        // `IopfGroup<T>`s (`IopfList` invariants), and `ManuallyDrop` leaves that ownership there.
        ManuallyDrop::new(unsafe { Self::from_raw(NonNull::new_unchecked(group)) })
    }
}

impl<T: AttachData> Drop for IopfGroup<T> {
    fn drop(&mut self) {
        // SAFETY: as in `respond`; this is the one answer.
        unsafe {
            bindings::iopf_group_response(
                self.raw(),
                bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID,
            );
            bindings::iopf_free_group(self.raw());
        }
    }
}

/// The page requests of a group, while it is borrowed.
///
/// # Invariants
///
/// `head` is the `faults` list of a group borrowed for `'a`; `pos` is `head` or an entry.
pub(crate) struct PageRequests<'a> {
    head: *mut bindings::list_head,
    pos: *mut bindings::list_head,
    _group: PhantomData<&'a bindings::iopf_group>,
}

impl Iterator for PageRequests<'_> {
    type Item = PageRequest;

    fn next(&mut self) -> Option<PageRequest> {
        if self.pos == self.head {
            return None;
        }
        // SAFETY: `pos` is the `list` member of an `iopf_fault` of the group (type invariants).
        let iopf = unsafe { &*kernel::container_of!(self.pos, bindings::iopf_fault, list) };
        self.pos = iopf.list.next;
        // (The core groups page requests only: `prm` is what it filled.)
        Some(iopf.fault.prm)
    }
}

/// Fault groups in arrival order, linked through their `node`: adding and moving never allocate.
/// Every group left on the list when it goes is answered "invalid".
///
/// # Invariants
///
/// `head` is an initialized list head whose entries are the `node`s of groups owned by the list
/// as `IopfGroup<T>`s, each on this list only. The list is changed only through `&self` by its
/// owner, under the lock that guards it.
#[pin_data(PinnedDrop)]
pub(crate) struct IopfList<T: AttachData> {
    #[pin]
    head: Opaque<bindings::list_head>,
    _groups: PhantomData<IopfGroup<T>>,
}

// SAFETY: the list owns groups, which are `Send`, and is changed only under its owner's lock.
unsafe impl<T: AttachData> Send for IopfList<T> {}

impl<T: AttachData> IopfList<T> {
    /// An empty list.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `INIT_LIST_HEAD` makes `slot` an empty list.
            head <- Opaque::ffi_init(|slot| unsafe { bindings::INIT_LIST_HEAD(slot) }),
            _groups: PhantomData,
        })
    }

    #[inline]
    fn head(&self) -> *mut bindings::list_head {
        self.head.get()
    }

    /// Whether the list holds no group.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head();
        // SAFETY: `head` is initialized (type invariants).
        unsafe { (*head).next == head }
    }

    /// Queues `group` last.
    #[inline]
    pub(crate) fn push_back(&self, group: IopfGroup<T>) {
        let group = ManuallyDrop::new(group);
        // SAFETY: the group is ours and on no list; `head` is initialized. INVARIANT: the list
        // owns it from here (`ManuallyDrop`).
        unsafe { bindings::list_add_tail(group.node(), self.head()) };
    }

    /// Queues `group` first (a group taken and given back).
    #[inline]
    pub(crate) fn push_front(&self, group: IopfGroup<T>) {
        let group = ManuallyDrop::new(group);
        // SAFETY: as in `push_back`.
        unsafe { crate::ffi::shim::iommufd_rs_list_add(group.node(), self.head()) };
    }

    /// Takes the first group off the list.
    pub(crate) fn pop_front(&self) -> Option<IopfGroup<T>> {
        if self.is_empty() {
            return None;
        }
        // SAFETY: the list is not empty, so `next` is the `node` of a group it owns.
        let group = unsafe { IopfGroup::<T>::peek_node((*self.head()).next) };
        // SAFETY: the group is on this list. INVARIANT: it leaves the list, and the list's
        // ownership goes to the caller.
        unsafe { crate::ffi::shim::iommufd_rs_list_del_init(group.node()) };
        Some(ManuallyDrop::into_inner(group))
    }

    /// Moves the groups for which `pred` holds to the end of `to`, in order.
    pub(crate) fn move_matching(&self, to: &Self, pred: impl Fn(&IopfGroup<T>) -> bool) {
        let head = self.head();
        // SAFETY: walking an initialized list; `next` is read before the entry moves.
        let mut pos = unsafe { (*head).next };
        while pos != head {
            // SAFETY: as above.
            let next = unsafe { (*pos).next };
            // SAFETY: every entry is the `node` of a group the list owns (type invariants).
            let group = unsafe { IopfGroup::<T>::peek_node(pos) };
            if pred(&group) {
                // SAFETY: the group is on this list; `to` is initialized. INVARIANT: `to`
                // owns it from here.
                unsafe { crate::ffi::shim::iommufd_rs_list_move_tail(pos, to.head()) };
            }
            pos = next;
        }
    }
}

#[pinned_drop]
impl<T: AttachData> PinnedDrop for IopfList<T> {
    fn drop(self: Pin<&mut Self>) {
        while let Some(g) = self.pop_front() {
            g.respond(bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID);
        }
    }
}

/// The `iopf_handler` of domains whose attachments go through `AttachHandle<T>`s: hands the
/// group to [`AttachData::deliver`] if the handle's data accepts faults, else refuses it (the
/// core answers it).
///
/// Install it only on domains attached through `AttachHandle<T>`s and nothing else (installing
/// is the unsafe write of `iommu_domain::iopf_handler`, whose writer promises this).
///
/// # Safety
///
/// Called by the IOMMU core with a fault group reported through an attach handle of a domain
/// this handler is installed on.
pub(crate) unsafe extern "C" fn iopf_handler<T: AttachData>(
    group: *mut bindings::iopf_group,
) -> c_int {
    let Some(group) = NonNull::new(group) else {
        return EINVAL.to_errno();
    };
    // SAFETY: the group is live for the call and its handle is an `AttachHandle<T>` (the
    // handler is installed only on such domains), attached, so allocated.
    let handle = unsafe { AttachHandle::<T>::from_raw((*group.as_ptr()).attach_handle) };
    if !handle.data().accepts_faults() {
        return EINVAL.to_errno();
    }
    // SAFETY: the group is live; from here the core stops tracking it as pending.
    unsafe { bindings::iopf_group_dequeue(group.as_ptr()) };
    // SAFETY: dequeued just now and handed to us by the core; reported through `handle`.
    let group = unsafe { IopfGroup::<T>::from_raw(group) };
    handle.data().deliver(group);
    0
}
