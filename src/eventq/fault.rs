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

use core::mem::size_of;
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
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::iommu::{
        attach::AttachHandle,
        iopf::{
            self,
            IopfGroup,
            IopfList, //
        },
    },
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
        PollTable,
        QueueFile,
        QueueFops, //
    },
    ffi::uapi,
    hwpt::device::HandleInfo,
};

/// The fault groups of this module's attachments.
type Group = IopfGroup<HandleInfo>;

/// Groups read and waiting for an answer, by cookie.
struct Responses {
    map: RBTree<u32, Group>,
    next: u32,
}

/// `IOMMUFD_OBJ_FAULT`.
#[pin_data(PinnedDrop)]
pub(crate) struct Fault {
    #[pin]
    deliver: SpinLock<IopfList<HandleInfo>>,
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
    pub(crate) fn deliver(&self, group: Group) {
        self.deliver.lock().push_back(group);
        self.wait.wake_all();
    }

    /// Answers "invalid" every group that came through `handle` (its attachment has ended).
    pub(crate) fn auto_respond(&self, handle: &AttachHandle<HandleInfo>) {
        let mut responses = self.response.lock();
        // The groups move to a list of our own under the spinlock and are answered after it is
        // dropped, as upstream's `iommufd_auto_response_faults()` does.
        pin_init::stack_pin_init!(let gone = IopfList::new());
        self.deliver
            .lock()
            .move_matching(&gone, |g| g.came_through(handle));
        while let Some(g) = gone.pop_front() {
            g.respond(bindings::iommu_page_response_code_IOMMU_PAGE_RESP_INVALID);
        }
        loop {
            let found = responses
                .map
                .iter()
                .find(|(_, g)| g.came_through(handle))
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
            let Some(mut group) = self.deliver.lock().pop_front() else {
                break;
            };
            let Some(need) = group.fault_count().checked_mul(rec) else {
                self.restore(group);
                return Err(EINVAL);
            };
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
            group.set_cookie(cookie);
            match write_group(&group, cookie, buf, done) {
                Ok(n) => {
                    done += n;
                    responses.map.insert(node.into_node(cookie, group));
                }
                Err(e) => {
                    self.restore(group);
                    return if done == 0 { Err(e) } else { Ok(done) };
                }
            }
        }
        Ok(done)
    }

    /// Puts a group back at the head of the delivery queue.
    fn restore(&self, group: Group) {
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
fn write_group(group: &Group, cookie: u32, buf: usize, at: usize) -> Result<usize> {
    let rec = size_of::<uapi::iommu_hwpt_pgfault>();
    let dev_id = group.handle_data().dev_id();
    let mut written = 0usize;
    for prm in group.page_requests() {
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
    }
    Ok(written)
}

/// `iommu_domain::iopf_handler` of HWPTs with a fault queue: the groups reach the queue named by
/// the attach handle they came through ([`HandleInfo`]). Every domain it is installed on is
/// attached only through this module's attach handles.
#[allow(non_upper_case_globals)]
pub(crate) const iopf_handler: unsafe extern "C" fn(*mut bindings::iopf_group) -> c_int =
    iopf::iopf_handler::<HandleInfo>;

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

    fn register_poll<'a>(&'a self, table: &PollTable<'a>) {
        table.register(&self.wait);
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
            deliver <- new_spinlock!(IopfList::new()),
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
