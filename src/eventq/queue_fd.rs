// SPDX-License-Identifier: GPL-2.0
//! The fd of an event queue object (a fault queue, a vEVENTQ): an anonymous file whose private
//! data holds the queue and the context's file. Reads (and, for queues that take answers, writes)
//! go to the queue at position 0 only; poll waits on the queue's condition variable; the fd holds
//! the queue (`Users::hold`) until it is released.
//!
//! Each queue kind keeps one [`QueueFops`] static, filled in at module init by
//! [`QueueFops::init`] with this file's generic callbacks for that kind.

use core::{cell::UnsafeCell, ffi::c_void, marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int, //
    },
    fs::File,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        LockClassKey, //
    },
    types::Opaque,
};

use crate::{
    context::ioctl::Ucmd,
    context::object::Used,
    ffi::kbind,
    ffi::uapi, //
};

/// A queue object that can be read through a fd.
pub(crate) trait QueueFile: Used + Send + Sync + Sized + 'static {
    /// The anonymous inode's name (`[iommufd-...]`).
    const NAME: &'static CStr;
    /// The queue takes records through `write()` too.
    const WRITABLE: bool = false;

    /// The file operations of this kind's fds.
    fn fops() -> &'static QueueFops<Self>;
    /// `read()` at position 0 into user memory at `buf`.
    fn read(&self, buf: usize, count: usize) -> Result<usize>;
    /// `write()` at position 0 from user memory at `buf` (only if [`Self::WRITABLE`]).
    fn write(&self, _buf: usize, _count: usize) -> Result<usize> {
        Err(EINVAL)
    }
    /// What poll waits on; woken when something is queued.
    fn wait(&self) -> &PollQueue;
    /// Something waits to be read.
    fn readable(&self) -> bool;
}

/// The wait queue a queue fd's `poll()` registers on.
///
/// Unlike the kernel crate's `PollCondVar`, dropping it does not wait for an RCU grace period
/// (which made closing a context with many fault queues take a grace period per queue: 44 s for
/// a fuzzer's context under TCG, where C took under a second). None is needed: only the fd's own
/// `poll()` registers on it, and the fd holds the queue object, so the queue outlives the file.
/// epoll takes its entries off when the file is released, before `release` lets go of the
/// queue, and `poll()`/`select()` take theirs off before returning, holding the file meanwhile.
/// Upstream's event queues rely on the same.
#[pin_data]
pub(crate) struct PollQueue {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: a wait queue is used from any thread; its own spinlock guards it.
unsafe impl Send for PollQueue {}
// SAFETY: as above.
unsafe impl Sync for PollQueue {}

impl PollQueue {
    pub(crate) fn new(name: &'static CStr, key: Pin<&'static LockClassKey>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid while the closure runs; `name` and `key` are static.
            head <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_waitqueue_head(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    /// Wakes every waiter (`wake_up_all()`).
    pub(crate) fn wake_all(&self) {
        // SAFETY: an initialised wait queue; any context may wake it.
        unsafe {
            bindings::__wake_up(
                self.head.get(),
                bindings::TASK_NORMAL,
                0,
                core::ptr::null_mut(),
            )
        };
    }

    /// `poll_wait()` on this queue for `file` (a fd holding the queue object, see above).
    fn register(&self, file: *mut bindings::file, table: *mut bindings::poll_table) {
        // SAFETY: `file` and `table` (or NULL) are valid for this `poll()` call; the queue
        // outlives every entry `table` adds (the type's comment).
        unsafe { bindings::poll_wait(file, self.head.get(), table) };
    }
}

/// The file operations of one queue kind: zero until [`QueueFops::init`], read-only after.
pub(crate) struct QueueFops<T>(
    UnsafeCell<MaybeUninit<bindings::file_operations>>,
    PhantomData<T>,
);

// SAFETY: written once by `init()` at module init, read-only after.
unsafe impl<T> Sync for QueueFops<T> {}

impl<T: QueueFile> QueueFops<T> {
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(MaybeUninit::zeroed()), PhantomData)
    }

    fn as_ptr(&self) -> *mut bindings::file_operations {
        self.0.get().cast()
    }

    /// Fills in the operations (the owner pins the module while a fd is open).
    pub(crate) fn init(&self, module: &'static ThisModule) {
        let f = self.as_ptr();
        // SAFETY: module init, before any fd of this kind exists.
        unsafe {
            (*f).owner = module.as_ptr();
            (*f).read = Some(fops_read::<T>);
            if T::WRITABLE {
                (*f).write = Some(fops_write::<T>);
            }
            (*f).poll = Some(fops_poll::<T>);
            (*f).release = Some(fops_release::<T>);
        }
    }
}

/// What the fd holds: the queue, and the context's file (the context stays while the fd is open).
struct QueueFd<T> {
    q: Arc<T>,
    _ictx: ARef<File>,
}

/// # Safety
///
/// `file` must be a fd of kind `T`: its private data is a `KBox<QueueFd<T>>`.
unsafe fn queue_of<'a, T: QueueFile>(file: *mut bindings::file) -> &'a T {
    // SAFETY: the caller's guarantee; the box lives until release.
    unsafe { &(*(*file).private_data.cast::<QueueFd<T>>()).q }
}

/// A byte count or error as a `read`/`write` return value.
fn ret(r: Result<usize>) -> isize {
    match r {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// `read` of a queue fd.
///
/// # Safety
///
/// Called by the VFS on a fd of kind `T`.
unsafe extern "C" fn fops_read<T: QueueFile>(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: the VFS passes a valid position.
    if unsafe { *ppos } != 0 {
        return ESPIPE.to_errno() as isize;
    }
    // SAFETY: the caller's guarantee.
    ret(unsafe { queue_of::<T>(file) }.read(buf as usize, count))
}

/// `write` of a queue fd.
///
/// # Safety
///
/// Called by the VFS on a fd of kind `T`.
unsafe extern "C" fn fops_write<T: QueueFile>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: the VFS passes a valid position.
    if unsafe { *ppos } != 0 {
        return ESPIPE.to_errno() as isize;
    }
    // SAFETY: the caller's guarantee.
    ret(unsafe { queue_of::<T>(file) }.write(buf as usize, count))
}

/// `poll` of a queue fd: always writable, readable while something waits.
///
/// # Safety
///
/// Called by the VFS on a fd of kind `T` with a valid or NULL poll table.
unsafe extern "C" fn fops_poll<T: QueueFile>(
    file: *mut bindings::file,
    wait: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: the caller's guarantee.
    let q = unsafe { queue_of::<T>(file) };
    q.wait().register(file, wait);
    let mut mask = uapi::EPOLLOUT;
    if q.readable() {
        mask |= uapi::EPOLLIN | uapi::EPOLLRDNORM;
    }
    mask
}

/// `release` of a queue fd: drops the fd's hold on the queue and on the context.
///
/// # Safety
///
/// Called by the VFS once per fd of kind `T`.
unsafe extern "C" fn fops_release<T: QueueFile>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: the box `make_file` gave the file, taken back once.
    let fd = unsafe { KBox::from_raw((*file).private_data.cast::<QueueFd<T>>()) };
    fd.q.users().release(1);
    drop(fd);
    0
}

/// Makes the fd of `q`: a file holding the queue (a hold, given back in release) and the context
/// (in `ucmd`). Dropping the returned file runs release.
pub(crate) fn make_file<T: QueueFile>(ucmd: &Ucmd<'_>, q: &Arc<T>) -> Result<ARef<File>> {
    let data = KBox::new(
        QueueFd {
            q: q.clone(),
            _ictx: ARef::from(ucmd.file),
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    q.users().hold(1);
    let raw_data = KBox::into_raw(data);
    // SAFETY: the operations were filled in at module init; the file takes over the box and
    // gives it back in release.
    let raw = unsafe {
        kbind::anon_inode_getfile(
            T::NAME.as_char_ptr(),
            T::fops().as_ptr(),
            raw_data.cast::<c_void>(),
            bindings::O_RDWR as c_int,
        )
    };
    match kernel::error::from_err_ptr(raw) {
        // SAFETY: a new file with one reference, now ours; dropping it runs release.
        Ok(f) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(f.cast())) }),
        Err(e) => {
            // SAFETY: not handed over.
            let back = unsafe { KBox::from_raw(raw_data) };
            back.q.users().release(1);
            Err(e)
        }
    }
}
