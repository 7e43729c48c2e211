// SPDX-License-Identifier: GPL-2.0
//! IOMMU groups (`struct iommu_group`): the devices an IOMMU cannot isolate from each other,
//! attached to domains as one.

use core::ptr::NonNull;

use crate::abstractions::iommu::device::dev_ptr;
use kernel::{
    bindings,
    device::Device,
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    types::Opaque,
};

/// An IOMMU group, reference counted (`iommu_group_ref_get()` / `iommu_group_put()`).
///
/// # Invariants
///
/// The wrapped group is live, and a reference to it is held for as long as the `Group` is
/// borrowed or an [`ARef<Group>`] to it exists.
#[repr(transparent)]
pub(crate) struct Group(Opaque<bindings::iommu_group>);

// SAFETY: groups are reference counted with atomics and lock inside every operation; a
// reference may be taken, used and dropped from any thread.
unsafe impl Send for Group {}
// SAFETY: as above.
unsafe impl Sync for Group {}

// SAFETY: `iommu_group_ref_get()` and `iommu_group_put()` take and drop a reference on the
// group's kobject; the group is freed only once the last one is dropped.
unsafe impl AlwaysRefCounted for Group {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `&self` proves a reference is held (type invariant), so the count is not zero.
        unsafe { bindings::iommu_group_ref_get(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up a reference it holds.
        unsafe { bindings::iommu_group_put(obj.cast().as_ptr()) };
    }
}

impl Group {
    /// The group of `dev` (`iommu_group_get()`), `None` for a device no IOMMU probed.
    pub(crate) fn get(dev: &Device) -> Option<ARef<Self>> {
        // SAFETY: `dev` is a live device; the call returns a new reference on its group, or NULL.
        let group = NonNull::new(unsafe { bindings::iommu_group_get(dev_ptr(dev)) })?;
        // SAFETY: the reference just taken is handed to the `ARef` (the type invariant).
        Some(unsafe { ARef::from_raw(group.cast()) })
    }

    /// The C group, for the C interfaces that take one (and as a key: its address identifies
    /// it while referenced).
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::iommu_group {
        self.0.get()
    }

    /// Whether the platform keeps the MSIs of every device of the group isolated, so a DMA
    /// write cannot raise interrupts it does not own (`iommu_group_has_isolated_msi()`).
    pub(crate) fn has_isolated_msi(&self) -> bool {
        // SAFETY: the group is live (type invariant); the call takes the group's mutex.
        unsafe { bindings::iommu_group_has_isolated_msi(self.as_raw()) }
    }
}

/// Whether the admin allowed binding devices whose MSIs are not isolated (this module's
/// `allow_unsafe_interrupts` parameter, VFIO's historical escape hatch; kept in the C shim).
pub(crate) fn allow_unsafe_interrupts() -> bool {
    // SAFETY: reads a module parameter with `READ_ONCE()`; no arguments.
    unsafe { crate::ffi::shim::iommufd_rs_allow_unsafe_interrupts() }
}
