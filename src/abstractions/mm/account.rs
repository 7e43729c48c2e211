// SPDX-License-Identifier: GPL-2.0
//! Accounting of pinned memory (`mm/util.c`, `kernel/user.c`): the `user_struct` whose
//! `locked_vm` counts a user's pins, the `mm->locked_vm` and `mm->pinned_vm` of a process, the
//! task whose RLIMIT_MEMLOCK a charge is judged against, and `CAP_IPC_LOCK`.

use core::ptr::NonNull;
use kernel::{
    bindings,
    ffi::c_int,
    mm::Mm,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::Atomic, //
    },
    task::Task,
};

use crate::ffi::shim;

/// Whether the calling task has `CAP_IPC_LOCK` (which exempts it from RLIMIT_MEMLOCK).
#[inline]
pub(crate) fn capable_ipc_lock() -> bool {
    // SAFETY: `capable()` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_IPC_LOCK as c_int) }
}

/// A reference on a `struct user_struct` (the per-user counters, `locked_vm` among them).
///
/// # Invariants
///
/// `0` carries a reference from `get_current_user()`, dropped with `free_uid()`.
pub(crate) struct UserRef(NonNull<bindings::user_struct>);

// SAFETY: `user_struct` is refcounted and its `locked_vm` is atomic; the reference may be used
// and dropped from any thread.
unsafe impl Send for UserRef {}
// SAFETY: as above; shared use only touches atomics.
unsafe impl Sync for UserRef {}

impl UserRef {
    /// The user of the current credentials; `None` if the kernel gave none (it always does).
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: returns the current credentials' user with a reference taken for us.
        let user = NonNull::new(unsafe { shim::iommufd_rs_get_current_user() })?;
        // INVARIANT: `user` carries the reference `get_current_user()` took.
        Some(Self(user))
    }

    /// Whether `self` and `other` are the same user.
    #[inline]
    pub(crate) fn is(&self, other: &UserRef) -> bool {
        self.0 == other.0
    }

    /// `user->locked_vm`, in pages.
    #[inline]
    pub(crate) fn locked_vm(&self) -> &Atomic<i64> {
        // SAFETY: the user is referenced (type invariant), so its counter lives as long as
        // `self`; `atomic_long_t` is an `i64` the kernel only touches atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.0.as_ptr()).locked_vm.counter) }
    }
}

impl Drop for UserRef {
    fn drop(&mut self) {
        // SAFETY: drops the reference the type invariant says we hold.
        unsafe { bindings::free_uid(self.0.as_ptr()) };
    }
}

/// `mm->pinned_vm`: pages pinned long-term in `mm`, whatever they are charged to.
#[inline]
pub(crate) fn pinned_vm(mm: &Mm) -> &Atomic<i64> {
    // SAFETY: `mm` is a live mm for the borrow; `pinned_vm` is an `atomic64_t` the kernel only
    // touches atomically.
    unsafe { Atomic::from_ptr(&raw mut (*mm.as_raw()).__bindgen_anon_1.pinned_vm.counter) }
}

/// `mm->locked_vm += npages` (or `-=` without `inc`) under the mmap write lock, judged against
/// the RLIMIT_MEMLOCK of `task` unless `bypass` (upstream's `__account_locked_vm()`); `ENOMEM`
/// over it. Only a charge can fail.
pub(crate) fn account_locked_vm(
    mm: &Mm,
    npages: usize,
    inc: bool,
    task: &Task,
    bypass: bool,
) -> Result {
    let mm = mm.as_raw();
    // SAFETY: `mm` is live for the borrow, and so is its lock.
    unsafe { shim::iommufd_rs_mmap_write_lock(mm) };
    // SAFETY: the mmap lock is held for writing, as `__account_locked_vm()` asserts; `mm` and
    // `task` are live for the borrows.
    let rc = unsafe { bindings::__account_locked_vm(mm, npages, inc, task.as_ptr(), bypass) };
    // SAFETY: taken above, by this thread.
    unsafe { shim::iommufd_rs_mmap_write_unlock(mm) };
    if rc != 0 {
        return Err(Error::from_errno(rc));
    }
    Ok(())
}

/// The task whose RLIMIT_MEMLOCK judges the pins of some memory: the thread group leader of the
/// task that mapped it (upstream's `pages->source_task`), whichever task or kernel thread pins
/// it later. The limit is read when a pin is charged, so it is the mapper's limit of that
/// moment, as upstream.
///
/// # Invariants
///
/// `0` is a thread group leader we hold a reference to. A referenced task keeps its signal struct
/// (where its rlimits live) until the last reference goes, even after it exited.
pub(crate) struct SourceTask(ARef<Task>);

impl SourceTask {
    /// The calling thread's group leader.
    pub(crate) fn current() -> Self {
        let task = kernel::current!();
        // INVARIANT: the group leader of the current task, referenced by `ARef::from`.
        Self(ARef::from(task.group_leader()))
    }

    /// The task, for [`account_locked_vm`].
    #[inline]
    pub(crate) fn task(&self) -> &Task {
        &self.0
    }

    /// Its RLIMIT_MEMLOCK, in pages.
    pub(crate) fn memlock_pages(&self) -> u64 {
        // SAFETY: the task is referenced (type invariant), so its signal struct is valid;
        // `task_rlimit()` reads one word of it.
        let bytes = unsafe { shim::iommufd_rs_task_rlimit_memlock(self.0.as_ptr()) };
        u64::try_from(bytes / PAGE_SIZE).unwrap_or(u64::MAX)
    }
}
