// SPDX-License-Identifier: GPL-2.0
//! Wait queues a file's `poll()` registers on (`wait_queue_head_t`, `poll_wait()`).

use core::marker::PhantomData;
use kernel::{
    bindings,
    fs::File,
    prelude::*,
    sync::LockClassKey,
    types::Opaque, //
};

/// A wait queue head that poll registers on and that wakes its waiters.
///
/// Unlike the kernel crate's `PollCondVar`, dropping it does not wait for an RCU grace period
/// (which made closing a context with many fault queues take a grace period per queue: 44 s for
/// a fuzzer's context under TCG, where C took under a second). None is needed because the only
/// way to register on it is [`PollTable::register`], from a file's own `poll()` (see
/// [`crate::abstractions::file::anon`]), with a queue that lives as long as the file's private
/// data: epoll takes its entries off when the file is released, before `release` frees the
/// private data, and `poll()`/`select()` take theirs off before returning, holding the file
/// meanwhile. Upstream's event queues rely on the same.
///
/// # Invariants
///
/// `head` is an initialised wait queue head.
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
    /// A wait queue named `name` with lock class `key`.
    pub(crate) fn new(name: &'static CStr, key: Pin<&'static LockClassKey>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid while the closure runs; `name` and `key` are static.
            // INVARIANT: initialised here.
            head <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_waitqueue_head(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    /// Wakes every waiter (`wake_up_all()`).
    #[inline]
    pub(crate) fn wake_all(&self) {
        // SAFETY: an initialised wait queue (the type invariant); any context may wake it.
        unsafe {
            bindings::__wake_up(
                self.head.get(),
                bindings::TASK_NORMAL,
                0,
                core::ptr::null_mut(),
            )
        };
    }
}

/// The poll table of one `poll()` call on a file whose private data lives for `'a`.
///
/// # Invariants
///
/// `file` is the file being polled and `table` its valid (or NULL) poll table, both for the
/// call; the file's private data, borrowed for `'a`, lives and is not moved until the file's
/// `release`, after every entry `table` adds is gone (see [`PollQueue`]).
pub(crate) struct PollTable<'a> {
    file: &'a File,
    table: *mut bindings::poll_table,
    _data: PhantomData<&'a ()>,
}

impl<'a> PollTable<'a> {
    /// # Safety
    ///
    /// `table` is NULL or the valid poll table of this `poll()` call on `file`, and whatever the
    /// caller borrows for `'a` lives until `file`'s `release`.
    #[inline]
    pub(super) unsafe fn from_raw(file: &'a File, table: *mut bindings::poll_table) -> Self {
        // INVARIANT: the caller's guarantee.
        Self {
            file,
            table,
            _data: PhantomData,
        }
    }

    /// `poll_wait()` on a C wait queue head.
    ///
    /// # Safety
    ///
    /// `head` is an initialised wait queue head that lives at least as long as the file's
    /// private data (as a [`PollQueue`] borrowed for `'a` would).
    #[inline]
    pub(crate) unsafe fn register_raw(&self, head: *mut bindings::wait_queue_head) {
        // SAFETY: `file` and `table` (or NULL) are valid for this call (the type invariant);
        // `head` outlives every entry `table` adds (the caller's guarantee).
        unsafe { bindings::poll_wait(self.file.as_ptr(), head, self.table) };
    }

    /// `poll_wait()` on `queue`, which lives at least as long as the file's private data.
    #[inline]
    pub(crate) fn register(&self, queue: &'a PollQueue) {
        // SAFETY: `file` and `table` (or NULL) are valid for this call; `queue` is borrowed for
        // `'a`, so it outlives every entry `table` adds (the type invariant).
        unsafe { bindings::poll_wait(self.file.as_ptr(), queue.head.get(), self.table) };
    }
}
