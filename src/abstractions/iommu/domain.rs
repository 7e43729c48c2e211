// SPDX-License-Identifier: GPL-2.0
//! IOMMU domains (`struct iommu_domain`): a translation a device can be attached to.

use kernel::{bindings, types::Opaque};

/// A live `struct iommu_domain`, borrowed: what attach, map and the drivers' ops take.
///
/// # Invariants
///
/// The wrapped domain is allocated and not freed for as long as the reference lives.
#[repr(transparent)]
pub(crate) struct Domain(Opaque<bindings::iommu_domain>);

// SAFETY: the IOMMU core and the drivers lock inside their domain operations; a domain may be
// used from any thread.
unsafe impl Send for Domain {}
// SAFETY: as above.
unsafe impl Sync for Domain {}

impl Domain {
    /// Borrows the domain at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live domain that is not freed while the returned reference lives.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::iommu_domain) -> &'a Self {
        // SAFETY: `Domain` is a transparent wrapper of the C struct; the caller promises the
        // domain lives for `'a` (the type invariant).
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C domain, for the C interfaces that take one.
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::iommu_domain {
        self.0.get()
    }
}
