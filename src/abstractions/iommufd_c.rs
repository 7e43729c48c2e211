// SPDX-License-Identifier: GPL-2.0
//! The C-visible parts of this module's objects: upstream's `struct iommufd_ctx`,
//! `struct iommufd_group`, `struct iommufd_device` and `struct iommufd_hw_pagetable`, laid out by
//! the tree under build (`src/ffi/c_objects.c` compiles against its `iommufd_private.h`), for the
//! code built into the kernel that reads them from whichever iommufd is loaded. Each Rust object
//! owns its C part through one of the types here and frees it after everything C could reach it
//! from is gone.
//!
//! Today's reader is the software-managed MSI path (`iommufd_sw_msi()`, called by
//! `iommu_dma_prepare_msi()` for a domain whose cookie is `IOMMU_COOKIE_IOMMUFD`): on arm64 with
//! an SMMUv3 and a GICv3 ITS, a device's MSI doorbell is mapped into the domain it is attached to
//! at an IOVA of its `IOMMU_RESV_SW_MSI` window, and [`CGroup::setup_msi`] carries those pages
//! into every domain the group attaches to afterwards.

use core::ptr::NonNull;
use kernel::{bindings, error::to_result, prelude::*, sync::Arc};

use crate::{
    abstractions::iommu::{domain::Domain, group::Group},
    ffi::shim::{self, CIommufdCtx, CIommufdDevice, CIommufdGroup, CIommufdHwpt},
};

/// The C context (`struct iommufd_ctx`): the software MSI pages of the context, their lock and
/// their list.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cctx_alloc()` and is freed only by `Drop`.
pub(crate) struct CCtx {
    ptr: NonNull<CIommufdCtx>,
}

// SAFETY: the C context is only read and written by C code under its own `sw_msi_lock`.
unsafe impl Send for CCtx {}
// SAFETY: as above.
unsafe impl Sync for CCtx {}

impl CCtx {
    /// A new C context, shared with the C groups made from it.
    pub(crate) fn new() -> Result<Arc<Self>> {
        // SAFETY: no preconditions.
        let ptr = NonNull::new(unsafe { shim::iommufd_rs_cctx_alloc() }).ok_or(ENOMEM)?;
        // INVARIANT: just allocated. (Had the Arc failed, the value's Drop would free it.)
        Ok(Arc::new(Self { ptr }, GFP_KERNEL_ACCOUNT)?)
    }
}

impl Drop for CCtx {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); the C groups made from it hold this value, so none is
        // left, and with them no device, HWPT or MSI path that could reach it.
        unsafe { shim::iommufd_rs_cctx_free(self.ptr.as_ptr()) };
    }
}

/// The C group (`struct iommufd_group`): its context, its `IOMMU_RESV_SW_MSI` window and the MSI
/// pages its devices require.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cgroup_alloc()` with the context of `ctx`, which it names, and is
/// freed only by `Drop`.
pub(crate) struct CGroup {
    ptr: NonNull<CIommufdGroup>,
    /// Keeps the C context the C group names; dropped after the C group is freed.
    ctx: Arc<CCtx>,
}

// SAFETY: the C group's fields are single words written and read once each (`WRITE_ONCE`,
// `READ_ONCE`) or under the context's `sw_msi_lock`.
unsafe impl Send for CGroup {}
// SAFETY: as above.
unsafe impl Sync for CGroup {}

impl CGroup {
    /// A C group for `group` in the context `ctx`.
    pub(crate) fn new(ctx: &Arc<CCtx>, group: &Group) -> Result<Self> {
        // SAFETY: the context is live (held below); the group pointer is only stored.
        let ptr = unsafe { shim::iommufd_rs_cgroup_alloc(ctx.ptr.as_ptr(), group.as_raw()) };
        // INVARIANT: just allocated, naming `ctx`'s C context.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            ctx: ctx.clone(),
        })
    }

    /// Records the group's software MSI window, as a device's reserved regions report it.
    pub(crate) fn set_sw_msi(&self, start: u64) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cgroup_set_sw_msi(self.ptr.as_ptr(), start) };
    }

    /// Maps every MSI page the group's devices were given into `hwpt`'s domain (before the
    /// group's RID attaches to it or is replaced by it): the driver's error if one map fails.
    pub(crate) fn setup_msi(&self, hwpt: &CHwpt) -> Result {
        // SAFETY: both are ours and live (borrowed); the C code locks the context.
        to_result(unsafe {
            shim::iommufd_rs_cgroup_setup_msi(self.ptr.as_ptr(), hwpt.ptr.as_ptr())
        })
    }
}

impl Drop for CGroup {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); its devices' C parts, which name it, went with them.
        unsafe { shim::iommufd_rs_cgroup_free(self.ptr.as_ptr()) };
    }
}

/// The C device (`struct iommufd_device`): its context, its group and its `struct device`, as
/// `iommufd_sw_msi()` reads them through the attach handle.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_cdev_alloc()` and is freed only by `Drop`. The owner keeps the
/// [`CGroup`] it was made with alive at least as long (a bound device holds its group), and ends
/// every attachment whose handle names it first.
pub(crate) struct CDevice {
    ptr: NonNull<CIommufdDevice>,
}

// SAFETY: the C device is written once (its ID, `WRITE_ONCE`) after it is made; C only reads it.
unsafe impl Send for CDevice {}
// SAFETY: as above.
unsafe impl Sync for CDevice {}

impl CDevice {
    /// A C device for `dev` in `group`.
    pub(crate) fn new(group: &CGroup, dev: *mut bindings::device) -> Result<Self> {
        // SAFETY: the group and its context are live (borrowed); the device pointer is only
        // stored, and read by C while the device is bound (the owner's promise).
        let ptr =
            unsafe { shim::iommufd_rs_cdev_alloc(group.ctx.ptr.as_ptr(), group.ptr.as_ptr(), dev) };
        // INVARIANT: just allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Records the device's object ID.
    pub(crate) fn set_id(&self, id: u32) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_cdev_set_id(self.ptr.as_ptr(), id) };
    }

    /// The pointer an attach handle carries (upstream's `iommufd_attach_handle::idev`).
    pub(crate) fn as_raw(&self) -> *mut CIommufdDevice {
        self.ptr.as_ptr()
    }
}

impl Drop for CDevice {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); no attach handle names it any more.
        unsafe { shim::iommufd_rs_cdev_free(self.ptr.as_ptr()) };
    }
}

/// The C HWPT (`struct iommufd_hwpt_paging` or `struct iommufd_hwpt_nested`), named by its
/// domain's cookie (`IOMMU_COOKIE_IOMMUFD`), with the MSI pages mapped into the domain.
///
/// # Invariants
///
/// `ptr` came from `iommufd_rs_chwpt_alloc()` and is freed only by `Drop`. The owner frees the
/// domain first (it declares this value after the domain), and a nested one holds its parent,
/// whose C HWPT it names, at least as long.
pub(crate) struct CHwpt {
    ptr: NonNull<CIommufdHwpt>,
}

// SAFETY: C writes the MSI bitmap under the context's `sw_msi_lock`; the rest is written once.
unsafe impl Send for CHwpt {}
// SAFETY: as above.
unsafe impl Sync for CHwpt {}

impl CHwpt {
    /// The C HWPT of `domain`: a paging one, or a nested one over `parent`'s. The domain's
    /// cookie names it unless the driver set a cookie of its own.
    pub(crate) fn new(domain: &Domain, parent: Option<&CHwpt>) -> Result<Self> {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.ptr.as_ptr());
        // SAFETY: the domain is live and not yet attached anywhere (a new HWPT's), so nothing
        // reads its cookie meanwhile; the parent, if any, is live (borrowed).
        let ptr = unsafe { shim::iommufd_rs_chwpt_alloc(domain.as_raw(), parent) };
        // INVARIANT: just allocated.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Records the HWPT's object ID.
    pub(crate) fn set_id(&self, id: u32) {
        // SAFETY: ours (type invariant).
        unsafe { shim::iommufd_rs_chwpt_set_id(self.ptr.as_ptr(), id) };
    }
}

impl Drop for CHwpt {
    fn drop(&mut self) {
        // SAFETY: ours (type invariant); its domain is gone.
        unsafe { shim::iommufd_rs_chwpt_free(self.ptr.as_ptr()) };
    }
}
