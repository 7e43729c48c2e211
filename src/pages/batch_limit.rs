// SPDX-License-Identifier: GPL-2.0
//! The bytes the pin batching may use for its temporary arrays (upstream's
//! `iommufd_test_memory_limit`, same default). Tests lower it to force many small batches, the
//! way upstream's `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT` does; nothing else changes it.

use core::sync::atomic::{
    AtomicUsize,
    Ordering, //
};
use kernel::prelude::*;

/// The default: 64 KiB of PFNs per batch.
const DEFAULT: usize = 65536;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT);

/// The limit in force.
#[inline]
pub(crate) fn get() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Overrides the limit (tests; a production build never does); `EINVAL` below one batch element (a PFN and its count).
pub(crate) fn set(limit: usize) -> Result {
    let min = core::mem::size_of::<usize>() + core::mem::size_of::<u32>();
    if limit < min {
        return Err(EINVAL);
    }
    LIMIT.store(limit, Ordering::Relaxed);
    Ok(())
}

/// Puts the default back (the override's owner going away).
pub(crate) fn reset() {
    LIMIT.store(DEFAULT, Ordering::Relaxed);
}
