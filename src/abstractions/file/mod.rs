// SPDX-License-Identifier: GPL-2.0
//! Files: anonymous-inode files with our file operations, poll and wait queues, misc devices and
//! the capability checks an open or an ioctl makes; also the user-memory check of extensible
//! ioctl structs and the test build's fault injection knobs.

pub(crate) mod anon;
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) mod fault_inject;
mod fops;
pub(crate) mod misc;
pub(crate) mod owner;
pub(crate) mod poll;
pub(crate) mod wait;

use kernel::{bindings, prelude::*, uaccess::UserPtr};

/// A capability `capable()` checks.
#[derive(Clone, Copy)]
pub(crate) enum Capability {
    /// `CAP_SYS_RESOURCE`.
    SysResource,
    /// `CAP_SYS_RAWIO`.
    SysRawio,
}

/// Whether the current task has `cap` (`capable()`; an audited check).
pub(crate) fn capable(cap: Capability) -> bool {
    let cap = match cap {
        Capability::SysResource => bindings::CAP_SYS_RESOURCE,
        Capability::SysRawio => bindings::CAP_SYS_RAWIO,
    };
    // Both constants are small (below 64).
    let cap = cap as i32;
    // SAFETY: `capable()` only reads the current task's credentials; any capability number is
    // accepted.
    unsafe { bindings::capable(cap) }
}

/// Whether the `len` user bytes at `from` are all zero (`check_zeroed_user()`); `EFAULT` if
/// they cannot be read.
pub(crate) fn check_zeroed_user(from: UserPtr, len: usize) -> Result<bool> {
    // SAFETY: `check_zeroed_user()` validates the user range itself (`access_ok()` and faulting
    // reads); it only reads user memory.
    let ret = unsafe { bindings::check_zeroed_user(from.as_const_ptr(), len) };
    match ret {
        1 => Ok(true),
        0 => Ok(false),
        e => Err(Error::from_errno(e)),
    }
}
