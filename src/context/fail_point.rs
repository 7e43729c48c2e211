// SPDX-License-Identifier: GPL-2.0
//! The `fail_iommufd` fault point (test builds): lookups fail on demand, so fault-injection tests
//! (`iommufd_fail_nth`, `tests/selftests/fail_nth_ioas.c`) reach those error paths as they do
//! in upstream's test build. Without `CONFIG_IOMMUFD_TEST` it never fires.
//!
//! Also the test build's pause points (`/sys/kernel/debug/iommufd_rs/pause_*`, in `shim.c`): a
//! test arms one and the next path through it waits there until the test lets it go, so a race
//! with another thread can be forced into the window a pause point marks. Without
//! `CONFIG_IOMMUFD_TEST` they are empty functions.
//!
//! The debugfs attribute and the pause points themselves are `abstractions::file::fault_inject`.

#[cfg(CONFIG_IOMMUFD_TEST)]
mod imp {
    use crate::abstractions::file::fault_inject;

    /// Whether this lookup (or allocation) is to fail.
    #[inline]
    pub(crate) fn should_fail() -> bool {
        fault_inject::should_fail()
    }

    /// Between recording a dma-buf mapping for revoke and mapping it (`dmabuf.rs`).
    #[inline]
    pub(crate) fn pause_at_dmabuf_map() {
        fault_inject::pause_at_dmabuf_map();
    }

    /// Owns the debugfs directories of the fault point (`/sys/kernel/debug/fail_iommufd`) and
    /// the pause points.
    pub(crate) struct FaultPoint {
        _knobs: fault_inject::DebugfsKnobs,
    }

    impl FaultPoint {
        pub(crate) fn new() -> Self {
            Self {
                _knobs: fault_inject::DebugfsKnobs::new(),
            }
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
