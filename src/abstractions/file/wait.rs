// SPDX-License-Identifier: GPL-2.0
//! Waiting for a counter to reach zero, on one wait queue the whole module shares (in
//! `shim.c`, `iommufd_rs_unused_wq`): waits are rare and each waiter rechecks its own counter.

use core::sync::atomic::AtomicU32;

use crate::ffi::shim;

/// Waits until `count` reads zero, at most `timeout_ms`; `false` on timeout. Whoever brings a
/// counter to zero while someone may wait calls [`wake_zero_waiters`].
pub(crate) fn wait_for_zero(count: &AtomicU32, timeout_ms: u32) -> bool {
    // SAFETY: `count` lives for the call; the wait only reads it (`READ_ONCE()`).
    unsafe { shim::iommufd_rs_wait_unused(count.as_ptr(), timeout_ms) }
}

/// Wakes every [`wait_for_zero`] waiter, which rechecks its counter.
#[inline]
pub(crate) fn wake_zero_waiters() {
    // SAFETY: wakes a static wait queue; callable from any context.
    unsafe { shim::iommufd_rs_wake_unused() };
}
