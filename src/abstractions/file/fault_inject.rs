// SPDX-License-Identifier: GPL-2.0
//! Fault injection (`<linux/fault-inject.h>`) and pause points, under debugfs: the fault
//! attribute `/sys/kernel/debug/fail_iommufd` and `/sys/kernel/debug/iommufd_rs/pause_*`, kept in
//! `shim.c` (whose statics the C macros define). Test builds only.

extern "C" {
    fn iommufd_rs_should_fail() -> bool;
    fn iommufd_rs_fault_init();
    fn iommufd_rs_fault_exit();
    fn iommufd_rs_pause_at_dmabuf_map();
}

/// Whether the fault attribute fires now (`should_fail()`).
#[inline]
pub(crate) fn should_fail() -> bool {
    // SAFETY: reads and updates the fault attribute's own counters; callable in any context
    // where sleeping is allowed, as every caller here is.
    unsafe { iommufd_rs_should_fail() }
}

/// The pause point `pause_dmabuf_map`: waits here (at most 10 s) if a test armed it. Callers
/// may sleep.
#[inline]
pub(crate) fn pause_at_dmabuf_map() {
    // SAFETY: sleeps only if a test armed the point; every caller may sleep.
    unsafe { iommufd_rs_pause_at_dmabuf_map() }
}

/// Owns the debugfs entries of the fault attribute and the pause points.
///
/// # Invariants
///
/// At most one exists (it is made once, at module init): the entries are created by `new` and
/// removed by `Drop`.
pub(crate) struct DebugfsKnobs(());

impl DebugfsKnobs {
    /// Creates the entries. Called once, at module init; a debugfs failure only leaves the
    /// knobs out.
    pub(crate) fn new() -> Self {
        // SAFETY: creates the static attribute's and pause points' entries.
        unsafe { iommufd_rs_fault_init() };
        Self(())
    }
}

impl Drop for DebugfsKnobs {
    fn drop(&mut self) {
        // SAFETY: `new` created the entries (the type invariant); removing them is the inverse.
        unsafe { iommufd_rs_fault_exit() };
    }
}
