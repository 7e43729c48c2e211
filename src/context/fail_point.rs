// SPDX-License-Identifier: GPL-2.0
//! The `fail_iommufd` fault point (test builds): lookups fail on demand, so fault-injection tests
//! (`iommufd_fail_nth`, `tests/selftests/fail_nth_ioas.c`) reach those error paths as they do
//! in upstream's test build. Without `CONFIG_IOMMUFD_TEST` it never fires.
//!
//! Also the test build's pause points (`/sys/kernel/debug/iommufd_rs/pause_*`, in `shim.c`): a
//! test arms one and the next path through it waits there until the test lets it go, so a race
//! with another thread can be forced into the window a pause point marks. Without
//! `CONFIG_IOMMUFD_TEST` they are empty functions.

#[cfg(CONFIG_IOMMUFD_TEST)]
mod imp {
    extern "C" {
        fn iommufd_rs_should_fail() -> bool;
        fn iommufd_rs_fault_init();
        fn iommufd_rs_fault_exit();
        fn iommufd_rs_pause_at_dmabuf_map();
    }

    pub(crate) fn should_fail() -> bool {
        // SAFETY: reads and updates the fault attribute's own counters; callable in any context
        // where sleeping is allowed, as every caller here is.
        unsafe { iommufd_rs_should_fail() }
    }

    /// Between recording a dma-buf mapping for revoke and mapping it (`dmabuf.rs`).
    pub(crate) fn pause_at_dmabuf_map() {
        // SAFETY: sleeps only if a test armed the point; every caller may sleep.
        unsafe { iommufd_rs_pause_at_dmabuf_map() }
    }

    /// Owns the debugfs directories of the fault point (`/sys/kernel/debug/fail_iommufd`) and
    /// the pause points.
    pub(crate) struct FaultPoint(());

    impl FaultPoint {
        pub(crate) fn new() -> Self {
            // SAFETY: called once at module init; a debugfs failure only leaves the knobs out.
            unsafe { iommufd_rs_fault_init() };
            Self(())
        }
    }

    impl Drop for FaultPoint {
        fn drop(&mut self) {
            // SAFETY: `new` created the directory; removing it is the inverse.
            unsafe { iommufd_rs_fault_exit() };
        }
    }
}

#[cfg(not(CONFIG_IOMMUFD_TEST))]
mod imp {
    pub(crate) fn should_fail() -> bool {
        false
    }

    pub(crate) fn pause_at_dmabuf_map() {}

    pub(crate) struct FaultPoint(());

    impl FaultPoint {
        pub(crate) fn new() -> Self {
            Self(())
        }
    }
}

pub(crate) use imp::{
    pause_at_dmabuf_map,
    should_fail,
    FaultPoint, //
};
