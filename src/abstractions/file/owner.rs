// SPDX-License-Identifier: GPL-2.0
//! The file an object lives in, seen from the object: a back-pointer, not a reference (the file
//! owns the object, so a reference would keep it open for ever).

use core::ptr::NonNull;
use kernel::{bindings, fs::File};

/// The file whose private data owns the value holding this.
///
/// # Invariants
///
/// `file` points to a file that stays open (its `release` has not run) for as long as this
/// value lives.
pub(crate) struct OwnerFile(NonNull<bindings::file>);

// SAFETY: a `struct file` is used from any thread; this only borrows it.
unsafe impl Send for OwnerFile {}
// SAFETY: as above.
unsafe impl Sync for OwnerFile {}

impl OwnerFile {
    /// # Safety
    ///
    /// The returned value is dropped before `file` is released: it lives in (or is owned through)
    /// `file`'s private data, which `release` drops.
    pub(crate) unsafe fn new(file: &File) -> Self {
        // INVARIANT: the caller's guarantee.
        Self(NonNull::from(file).cast())
    }

    /// The file.
    #[inline]
    pub(crate) fn get(&self) -> &File {
        // SAFETY: open for as long as `self` lives (the type invariant).
        unsafe { File::from_raw_file(self.0.as_ptr()) }
    }
}
