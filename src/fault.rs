// SPDX-License-Identifier: GPL-2.0
//! The `fail_iommufd` fault point (test builds): lookups fail on demand, so fault-injection tests
//! (`iommufd_fail_nth`, `tests/selftests/fail_nth_ioas.c`) reach those error paths as they do
//! in upstream's test build. Without `CONFIG_IOMMUFD_TEST` it never fires.

#[cfg(CONFIG_IOMMUFD_TEST)]
mod imp {
    extern "C" {
        fn iommufd_rs_should_fail() -> bool;
        fn iommufd_rs_fault_init();
        fn iommufd_rs_fault_exit();
    }

    pub(crate) fn should_fail() -> bool {
        // SAFETY: reads and updates the fault attribute's own counters; callable in any context
        // where sleeping is allowed, as every caller here is.
        unsafe { iommufd_rs_should_fail() }
    }

    /// Owns the fault point's debugfs directory (`/sys/kernel/debug/fail_iommufd`).
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

    pub(crate) struct FaultPoint(());

    impl FaultPoint {
        pub(crate) fn new() -> Self {
            Self(())
        }
    }
}

pub(crate) use imp::{
    should_fail,
    FaultPoint, //
};
