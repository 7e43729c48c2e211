// SPDX-License-Identifier: GPL-2.0
//! A driver's `struct iommufd_access_ops` and its data (`include/linux/iommufd.h`): the callbacks
//! of a driver that reads and writes memory with the CPU through pins (an emulated access), told
//! through `unmap` when memory it may hold pins of goes away.
//!
//! The callbacks may run only until the driver's access is destroyed: [`AccessOps::revoke`] ends
//! them, waiting for any in flight.

use core::ffi::c_void;
use kernel::{
    new_mutex,
    prelude::*,
    sync::Mutex, //
};

use crate::{abstractions::iommufd_api::AccessOps as DriverOps, ffi::kbind};

/// The ops of an emulated access and the data they are called with.
///
/// # Invariants
///
/// `ops` is valid for the life of `self`; `data` is valid for the ops while `live` is true.
#[pin_data]
pub(crate) struct AccessOps {
    ops: *const kbind::iommufd_access_ops,
    data: *mut c_void,
    /// The ops may still be called; cleared (under the lock, so after any call in flight) by
    /// [`Self::revoke`]. Held across `unmap`, which may unpin and so take the caller's locks
    /// after it.
    #[pin]
    live: Mutex<bool>,
}

// SAFETY: the ops are static and the data pointer is the driver's, which promises it may be used
// from any thread (the C API's contract).
unsafe impl Send for AccessOps {}
// SAFETY: as above; `live` is under its mutex.
unsafe impl Sync for AccessOps {}

impl AccessOps {
    /// The driver's ops and data, and whether the driver pins pages (`needs_pin_pages`), not
    /// only copies (which the access's alignment follows, fixed before it exists).
    pub(crate) fn new(driver: DriverOps) -> (impl PinInit<Self>, bool) {
        let pins = driver.needs_pin_pages();
        let (ops, data) = driver.into_raw();
        // INVARIANT: `DriverOps` promises `ops` for the access's life and `data` until it is
        // destroyed, where the access revokes these ops.
        let init = pin_init!(AccessOps {
            ops,
            data,
            live <- new_mutex!(true),
        });
        (init, pins)
    }

    /// Whether the driver can be told about unmaps (has an `unmap` op).
    #[inline]
    pub(crate) fn has_unmap(&self) -> bool {
        // SAFETY: `ops` is valid (type invariant).
        unsafe { (*self.ops).unmap }.is_some()
    }

    /// Calls the driver's `unmap` op for `length` bytes at `iova`, if it has one and the ops
    /// were not revoked; waits for it to return.
    pub(crate) fn unmap(&self, iova: usize, length: usize) {
        let live = self.live.lock();
        if !*live {
            return;
        }
        // SAFETY: `ops` is valid (type invariant).
        if let Some(unmap) = unsafe { (*self.ops).unmap } {
            // SAFETY: `data` is valid for the op while `live` is true (type invariant), and
            // `revoke` waits for `live`'s lock, held here.
            unsafe { unmap(self.data, iova, length) };
        }
        drop(live);
    }

    /// Ends the ops: waits for calls in flight on other threads; none starts after this.
    pub(crate) fn revoke(&self) {
        *self.live.lock() = false;
    }
}
