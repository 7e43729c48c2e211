// SPDX-License-Identifier: GPL-2.0
//! Fault queues (upstream's eventq.c, fault part): I/O page faults on a HWPT allocated with a
//! fault ID reach userspace through the fault object's fd. `read()` hands out whole fault groups
//! as `struct iommu_hwpt_pgfault` records, each group under a cookie; `write()` takes
//! `struct iommu_hwpt_page_response` records and answers the device.
//!
//! A group waits in `deliver` until read, then in `response` until answered. Groups still
//! waiting when their device detaches, or when the queue goes away, are answered "invalid" so
//! the device is never left hanging.
//!
//! `deliver` links the groups through their own `node` field (the one the core leaves to the
//! handler, as upstream's list does): queueing a fault never allocates, so none is dropped for
//! want of memory, and groups move from one list to another under the spinlock for free.
//!
//! Lock order: `Fault::response` before `Fault::deliver` (a spinlock: the fault handler may run
//! from a threaded interrupt; nothing under it sleeps or touches user memory, and no group is
//! answered under it: `iopf_group_response()` takes a mutex).

use core::{mem::size_of, ptr::NonNull};
use kernel::{
    bindings,
    ffi::c_int,
    fs::file::FileDescriptorReservation,
    new_mutex, new_spinlock,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        Arc,
        Mutex,
        SpinLock, //
    },
    types::Opaque,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    context::errno,
    context::ioctl::Ucmd,
    context::object::{
        Object,
        Used,
        Users, //
    },
    eventq::queue_fd::{
        self,
        PollQueue,
        QueueFile,
        QueueFops, //
    },
    ffi::uapi,
};

/// A fault group the IOMMU core handed us; answered and freed exactly once.
#[derive(Clone, Copy, PartialEq, Eq)]
struct GroupPtr(NonNull<bindings::iopf_group>);

// SAFETY: a fault group is owned by whoever holds this pointer; the core does not touch it
// between the handler and the response.
unsafe impl Send for GroupPtr {}

impl GroupPtr {
    /// Answers the device and frees the group.
    fn respond(self, code: bindings::iommu_page_response_code) {
        // SAFETY: the group is ours (type docs) and is answered once, here.
        unsafe {
            bindings::iopf_group_response(self.0.as_ptr(), code);
            bindings::iopf_free_group(self.0.as_ptr());
        }
    }

    fn handle(self) -> *mut bindings::iommu_attach_handle {
        // SAFETY: the group is ours and its handle field was set by the core.
        unsafe { (*self.0.as_ptr()).attach_handle }
    }

    fn fault_count(self) -> usize {
        // SAFETY: as above.
        unsafe { (*self.0.as_ptr()).fault_count }
    }

    /// The group's link for the handler's own lists.
    fn node(self) -> *mut bindings::list_head {
        // SAFETY: the group is ours; `node` is left to the fault handler.
        unsafe { &raw mut (*self.0.as_ptr()).node }
    }

    /// The group whose `node` is `node`.
    ///
    /// # Safety
    ///
    /// `node` must be the `node` field of a group we own.
    unsafe fn from_node(node: *mut bindings::list_head) -> Self {
        // SAFETY: the caller's guarantee: `node` is inside an `iopf_group`.
        let group = unsafe {
            node.byte_sub(core::mem::offset_of!(bindings::iopf_group, node))
                .cast::<bindings::iopf_group>()
        };
        // SAFETY: derived from a non-null field pointer.
        Self(unsafe { NonNull::new_unchecked(group) })
    }
}

/// Fault groups in arrival order, linked through their `node`: adding and moving never
/// allocate. Every group left on the list when it goes is answered "invalid".
///
/// # Invariants
///
/// `head` is an initialized list head whose entries are the `node`s of groups we own (see
/// [`GroupPtr`]), each on this list only; the list is only changed through `&self` by its owner
/// or under the lock that guards it.
#[pin_data(PinnedDrop)]
struct GroupList {
    #[pin]
    head: Opaque<bindings::list_head>,
}

// SAFETY: the list holds groups (which are `Send`) and is changed only under its owner's lock.
unsafe impl Send for GroupList {}

impl GroupList {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `INIT_LIST_HEAD` makes `slot` an empty list.
            head <- Opaque::ffi_init(|slot| unsafe { bindings::INIT_LIST_HEAD(slot) }),
        })
    }

    fn head(&self) -> *mut bindings::list_head {
        self.head.get()
    }

    fn is_empty(&self) -> bool {
        let head = self.head();
        // SAFETY: `head` is initialized (type invariants).
        unsafe { (*head).next == head }
    }

    /// Queues `group` last.
    fn push_back(&self, group: GroupPtr) {
        // SAFETY: the group is ours and on no list; `head` is initialized.
        unsafe { bindings::list_add_tail(group.node(), self.head()) };
    }

    /// Queues `group` first (a group taken and given back).
    fn push_front(&self, group: GroupPtr) {
        // SAFETY: as in `push_back`.
        unsafe { crate::ffi::shim::iommufd_rs_list_add(group.node(), self.head()) };
    }

    /// Takes the first group off the list.
    fn pop_front(&self) -> Option<GroupPtr> {
        if self.is_empty() {
            return None;
        }
        // SAFETY: the list is not empty, so `next` is the `node` of a group on it.
        let group = unsafe { GroupPtr::from_node((*self.head()).next) };
        // SAFETY: the group is on this list.
        unsafe { crate::ffi::shim::iommufd_rs_list_del_init(group.node()) };
        Some(group)
    }

    /// Moves the groups that came through `handle` to the end of `to`, in order.
    fn move_matching(&self, to: &GroupList, handle: *mut bindings::iommu_attach_handle) {
        let head = self.head();
        // SAFETY: walking an initialized list; `next` is read before the entry moves.
        let mut pos = unsafe { (*head).next };
        while pos != head {
            // SAFETY: as above.
            let next = unsafe { (*pos).next };
            // SAFETY: every entry is the `node` of a group we own (type invariants).
            let group = unsafe { GroupPtr::from_node(pos) };
            if group.handle() == handle {
                // SAFETY: the group is on this list; `to` is initialized.
                unsafe { crate::ffi::shim::iommufd_rs_list_move_tail(pos, to.head()) };
            }
            pos = next;
        }
    }
}

#[pinned_drop]
impl PinnedDrop for GroupList {
    fn drop(self: Pin<&mut Self>) {
        while let Some(g) = self.pop_front() {
            g.respond(bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID);
        }
    }
}

/// Groups read and waiting for an answer, by cookie.
struct Responses {
    map: RBTree<u32, GroupPtr>,
    next: u32,
}

/// `IOMMUFD_OBJ_FAULT`.
#[pin_data(PinnedDrop)]
pub(crate) struct Fault {
    #[pin]
    deliver: SpinLock<GroupList>,
    #[pin]
    response: Mutex<Responses>,
    #[pin]
    wait: PollQueue,
    users: Users,
}

impl Used for Fault {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Fault {
    /// Queues a group for userspace (the domain's `iopf_handler`).
    fn deliver(&self, group: GroupPtr) {
        self.deliver.lock().push_back(group);
        self.wait.wake_all();
    }

    /// Answers "invalid" every group that came through `handle` (its device is detaching).
    pub(crate) fn auto_respond(&self, handle: *mut bindings::iommu_attach_handle) {
        let mut responses = self.response.lock();
        // The groups move to a list of our own under the spinlock and are answered after it is
        // dropped, as upstream's `iommufd_auto_response_faults()` does.
        pin_init::stack_pin_init!(let gone = GroupList::new());
        self.deliver.lock().move_matching(&gone, handle);
        while let Some(g) = gone.pop_front() {
            g.respond(bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID);
        }
        loop {
            let found = responses
                .map
                .iter()
                .find(|(_, g)| g.handle() == handle)
                .map(|(&c, _)| c);
            let Some(cookie) = found else {
                break;
            };
            if let Some(g) = responses.map.remove(&cookie) {
                g.respond(bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID);
            }
        }
    }

    fn read(&self, buf: usize, count: usize) -> Result<usize> {
        let rec = size_of::<uapi::iommu_hwpt_pgfault>();
        if count % rec != 0 {
            return Err(ESPIPE);
        }
        let mut responses = self.response.lock();
        let mut done = 0usize;
        loop {
            let Some(group) = self.deliver.lock().pop_front() else {
                break;
            };
            let need = group.fault_count().checked_mul(rec).ok_or(EINVAL)?;
            if done >= count || need > count - done {
                self.restore(group);
                if done == 0 {
                    return Err(EINVAL);
                }
                break;
            }
            let node = match RBTreeNodeReservation::new(GFP_KERNEL) {
                Ok(n) => n,
                Err(e) => {
                    self.restore(group);
                    return if done == 0 { Err(e) } else { Ok(done) };
                }
            };
            let cookie = next_cookie(&mut responses);
            // SAFETY: the group is ours until answered.
            unsafe { (*group.0.as_ptr()).cookie = cookie };
            responses.map.insert(node.into_node(cookie, group));
            match write_group(group, cookie, buf, done) {
                Ok(n) => done += n,
                Err(e) => {
                    responses.map.remove(&cookie);
                    self.restore(group);
                    return if done == 0 { Err(e) } else { Ok(done) };
                }
            }
        }
        Ok(done)
    }

    /// Puts a group back at the head of the delivery queue.
    fn restore(&self, group: GroupPtr) {
        self.deliver.lock().push_front(group);
    }

    fn write(&self, buf: usize, count: usize) -> Result<usize> {
        let rec = size_of::<uapi::iommu_hwpt_page_response>();
        if count % rec != 0 {
            return Err(ESPIPE);
        }
        let mut responses = self.response.lock();
        let mut done = 0usize;
        let mut rc = Ok(());
        while count > done {
            let addr = buf.checked_add(done).ok_or(EFAULT)?;
            let resp: uapi::iommu_hwpt_page_response =
                match UserSlice::new(UserPtr::from_addr(addr), rec)
                    .reader()
                    .read()
                {
                    Ok(r) => r,
                    Err(e) => {
                        rc = Err(e);
                        break;
                    }
                };
            if resp.code != uapi::IOMMUFD_PAGE_RESP_SUCCESS
                && resp.code != uapi::IOMMUFD_PAGE_RESP_INVALID
            {
                rc = Err(EINVAL);
                break;
            }
            let Some(group) = responses.map.remove(&resp.cookie) else {
                rc = Err(EINVAL);
                break;
            };
            group.respond(resp.code);
            done += rec;
        }
        if done == 0 {
            rc?;
        }
        Ok(done)
    }
}

#[pinned_drop]
impl PinnedDrop for Fault {
    fn drop(self: Pin<&mut Self>) {
        // Nobody else holds the queue any more: answer everything still in it (the groups not
        // yet read go with `deliver`, which answers what it holds).
        let mut responses = self.response.lock();
        while let Some(cookie) = responses.map.iter().next().map(|(&c, _)| c) {
            if let Some(g) = responses.map.remove(&cookie) {
                g.respond(bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID);
            }
        }
    }
}

/// A free cookie, from 1 (upstream allocates them in an xarray from 1).
fn next_cookie(r: &mut Responses) -> u32 {
    loop {
        r.next = r.next.wrapping_add(1).max(1);
        if r.map.get(&r.next).is_none() {
            return r.next;
        }
    }
}

/// Writes a group's faults as records at `buf + at`; returns the bytes written.
fn write_group(group: GroupPtr, cookie: u32, buf: usize, at: usize) -> Result<usize> {
    let rec = size_of::<uapi::iommu_hwpt_pgfault>();
    let dev_id = crate::hwpt::device::handle_dev_id(group.handle());
    let head: *mut bindings::list_head =
        // SAFETY: the group is ours; `faults` is its list of `iopf_fault`s.
        unsafe { &raw mut (*group.0.as_ptr()).faults };
    let mut written = 0usize;
    // SAFETY: walking the core's list of a group we own; `list` is a field of `iopf_fault`.
    let mut pos = unsafe { (*head).next };
    while pos != head {
        // SAFETY: see above.
        let iopf = unsafe {
            pos.cast::<u8>()
                .sub(core::mem::offset_of!(bindings::iopf_fault, list))
                .cast::<bindings::iopf_fault>()
        };
        // SAFETY: a page request fault: `prm` is the union member the core filled.
        let prm = unsafe { (*iopf).fault.prm };
        let msg = uapi::iommu_hwpt_pgfault {
            flags: prm.flags,
            dev_id,
            pasid: prm.pasid,
            grpid: prm.grpid,
            perm: prm.perm,
            __reserved: 0,
            addr: prm.addr,
            length: 0,
            cookie,
        };
        let addr = buf
            .checked_add(at)
            .and_then(|a| a.checked_add(written))
            .ok_or(EFAULT)?;
        UserSlice::new(UserPtr::from_addr(addr), rec)
            .writer()
            .write(&msg)?;
        written += rec;
        // SAFETY: see above.
        pos = unsafe { (*pos).next };
    }
    Ok(written)
}

/// `iommu_domain::iopf_handler` of HWPTs with a fault queue.
///
/// # Safety
///
/// Called by the IOMMU core with a fault group whose attach handle is one of ours.
pub(crate) unsafe extern "C" fn iopf_handler(group: *mut bindings::iopf_group) -> c_int {
    let Some(group) = NonNull::new(group).map(GroupPtr) else {
        return EINVAL.to_errno();
    };
    let Some(fault) = crate::hwpt::device::handle_fault(group.handle()) else {
        return EINVAL.to_errno();
    };
    // SAFETY: the group is ours from here; the core stops tracking it as pending.
    unsafe { bindings::iopf_group_dequeue(group.0.as_ptr()) };
    fault.deliver(group);
    0
}

static FOPS: QueueFops<Fault> = QueueFops::new();

/// Fills in the fault fd's file operations.
pub(crate) fn init_statics(module: &'static ThisModule) {
    FOPS.init(module);
}

impl QueueFile for Fault {
    const NAME: &'static CStr = c"[iommufd-pgfault]";
    const WRITABLE: bool = true;

    fn fops() -> &'static QueueFops<Self> {
        &FOPS
    }

    fn read(&self, buf: usize, count: usize) -> Result<usize> {
        Fault::read(self, buf, count)
    }

    fn write(&self, buf: usize, count: usize) -> Result<usize> {
        Fault::write(self, buf, count)
    }

    fn wait(&self) -> &PollQueue {
        &self.wait
    }

    fn readable(&self) -> bool {
        !self.deliver.lock().is_empty()
    }
}

/// `IOMMU_FAULT_QUEUE_ALLOC`: a fault queue object and the fd it is read through.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_fault_alloc = ucmd.cmd()?;
    if cmd.flags != 0 {
        return Err(errno::eopnotsupp());
    }
    let fault = Arc::pin_init(
        try_pin_init!(Fault {
            deliver <- new_spinlock!(GroupList::new()),
            response <- new_mutex!(Responses {
                map: RBTree::new(),
                next: 0,
            }),
            wait <- PollQueue::new(c"iommufd fault", kernel::static_lock_class!()),
            users: Users::default(),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    let reserved = ucmd.ictx.objects.lock().reserve(node)?;
    let id = reserved.id;
    let built = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)
        .and_then(|fd| Ok((queue_fd::make_file(ucmd, &fault)?, fd)));
    let (file, fd) = match built {
        Ok(b) => b,
        Err(e) => {
            ucmd.ictx.objects.lock().abort(reserved);
            return Err(e);
        }
    };
    cmd.out_fault_id = id;
    cmd.out_fault_fd = fd.reserved_fd();
    if let Err(e) = ucmd.respond(&cmd) {
        ucmd.ictx.objects.lock().abort(reserved);
        // Dropping the file runs release, which lets go of the queue.
        drop(file);
        return Err(e);
    }
    ucmd.ictx
        .objects
        .lock()
        .finalize(reserved, Object::Fault(fault));
    fd.fd_install(file);
    Ok(())
}
