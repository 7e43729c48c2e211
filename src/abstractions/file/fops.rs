// SPDX-License-Identifier: GPL-2.0
//! A `struct file_operations` in a static, filled in once at module init.
//!
//! The kernel crate builds its file operations as `const`s, which cannot name the module
//! (`owner`): a file whose operations have no owner does not pin the module, so `rmmod` could
//! unload the code an open file still calls. A [`FopsCell`] is written once, when the module is
//! known, and hands out its table only after that.

use core::{
    cell::UnsafeCell,
    mem::MaybeUninit,
    sync::atomic::{
        AtomicU8,
        Ordering, //
    },
};
use kernel::{bindings, fs::File};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

/// A file operations table written once ([`FopsCell::set`]) and read-only after.
///
/// # Invariants
///
/// `fops` is initialised and never written again once `state` is `READY`; only the one
/// [`FopsCell::set`] that moved `state` from `EMPTY` to `WRITING` writes it.
pub(crate) struct FopsCell {
    state: AtomicU8,
    fops: UnsafeCell<MaybeUninit<bindings::file_operations>>,
}

// SAFETY: `fops` is written by one thread only (the one that won `state`), before `state` is
// `READY` (release); readers see it only after reading `READY` (acquire), and never write it.
unsafe impl Sync for FopsCell {}

impl FopsCell {
    /// An empty cell.
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            fops: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `fops`; `false` (and nothing changes) if the cell was set before.
    pub(crate) fn set(&self, fops: bindings::file_operations) -> bool {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: this call won `state`, so nobody else writes `fops`, and nobody reads it
        // before `state` is `READY` (the type invariant).
        unsafe { (*self.fops.get()).write(fops) };
        // INVARIANT: initialised above, never written again.
        self.state.store(READY, Ordering::Release);
        true
    }

    /// The table, once [`FopsCell::set`] stored it.
    #[inline]
    pub(crate) fn get(&self) -> Option<&bindings::file_operations> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: `READY`: initialised and read-only from now on (the type invariant).
        Some(unsafe { (*self.fops.get()).assume_init_ref() })
    }

    /// Whether `file` was opened with this table (the check `iommufd_ctx_from_file()` and its
    /// kind make: `file->f_op == &fops`).
    #[inline]
    pub(crate) fn is_fops_of(&self, file: &File) -> bool {
        let Some(fops) = self.get() else {
            return false;
        };
        // SAFETY: `file` is a live file (`&File`); `f_op` of an open file does not change.
        let f_op = unsafe { (*file.as_ptr()).f_op };
        core::ptr::eq(f_op, fops)
    }
}
