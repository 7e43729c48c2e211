// SPDX-License-Identifier: GPL-2.0
//! HWPT paging objects: an `iommu_domain` from the kernel IOMMU API that an IOAS keeps equal to
//! its areas (upstream's hw_pagetable.c, paging part).
//!
//! A HWPT holds its IOAS (IOAS `DESTROY` answers `EBUSY` meanwhile); devices attached to it hold
//! it. An automatic HWPT (one the kernel made when a device attached to an IOAS) goes away when
//! its last device leaves; one made by `IOMMU_HWPT_ALLOC` when userspace destroys it.
//!
//! Lock order: `Ioas::hwpts` (automatic domain choice) before a group's attach lock before
//! `Ioas::iopt`; the object table is a leaf.

use core::{
    ptr::NonNull,
    sync::atomic::{
        AtomicU32,
        Ordering, //
    },
};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc, //
};

use crate::{
    device::Device,
    errno,
    ioas::Ioas,
    ioctl::Ucmd,
    iopt::DomainRef,
    object::{
        self,
        Object,
        Pt,
        Used,
        Users, //
    },
    uapi,
};

/// An `iommu_domain` allocated for us, freed with `iommu_domain_free()`.
///
/// # Invariants
///
/// `self.0` is a domain we allocated and nobody else frees.
pub(crate) struct DomainBox(NonNull<bindings::iommu_domain>);

// SAFETY: domains are used from any thread through the IOMMU API, which locks inside.
unsafe impl Send for DomainBox {}
// SAFETY: as above.
unsafe impl Sync for DomainBox {}

impl DomainBox {
    /// A paging domain for `dev`: through the driver's `domain_alloc_paging_flags()` with
    /// `user_data` (driver-specific page table settings) when given, else through the IOMMU
    /// core.
    fn alloc(
        dev: &Device,
        flags: u32,
        user_data: Option<&bindings::iommu_user_data>,
    ) -> Result<Self> {
        let raw = match user_data {
            None => {
                // SAFETY: `dev` is a live device with an IOMMU (it was bound).
                unsafe { bindings::iommu_paging_domain_alloc_flags(dev.as_raw(), flags) }
            }
            Some(data) => {
                let ops = dev.iommu_ops()?;
                // SAFETY: `ops` are the driver ops of a live probed device.
                let alloc =
                    unsafe { (*ops).domain_alloc_paging_flags }.ok_or(errno::eopnotsupp())?;
                // SAFETY: the driver contract: a live device, flags, and user data the driver
                // copies from user space itself.
                let d = unsafe { alloc(dev.as_raw(), flags, data) };
                if let Ok(d) = kernel::error::from_err_ptr(d) {
                    // SAFETY: the driver returned a new domain; the core's allocator would set
                    // the owner, this path must.
                    unsafe { (*d).owner = ops };
                }
                d
            }
        };
        let raw = kernel::error::from_err_ptr(raw)?;
        // INVARIANT: a new domain, ours alone.
        NonNull::new(raw).map(Self).ok_or(ENOMEM)
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::iommu_domain {
        self.0.as_ptr()
    }
}

impl Drop for DomainBox {
    fn drop(&mut self) {
        // SAFETY: the type invariant: ours to free, and nothing is attached to it any more
        // (devices hold the HWPT that owns this).
        unsafe { bindings::iommu_domain_free(self.0.as_ptr()) };
    }
}

/// `IOMMUFD_OBJ_HWPT_PAGING`.
pub(crate) struct HwptPaging {
    domain: DomainBox,
    pub(crate) ioas: Arc<Ioas>,
    /// Made by an attach to an IOAS, not by `IOMMU_HWPT_ALLOC`.
    pub(crate) auto_domain: bool,
    users: Users,
    id: AtomicU32,
}

impl Used for HwptPaging {
    fn users(&self) -> &Users {
        &self.users
    }
}

/// HWPT allocation flags this module knows (`IOMMU_HWPT_FAULT_ID_VALID` needs fault objects,
/// which are not here yet).
const PAGING_FLAGS: u32 = uapi::IOMMU_HWPT_ALLOC_NEST_PARENT
    | uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING
    | uapi::IOMMU_HWPT_ALLOC_PASID;

impl HwptPaging {
    /// A domain for `dev`, filled with everything mapped in `ioas` (upstream's
    /// `iommufd_hwpt_paging_alloc()` without immediate attach: the domain is complete before any
    /// device sees it).
    pub(crate) fn new(
        ioas: &Arc<Ioas>,
        dev: &Device,
        flags: u32,
        user_data: Option<&bindings::iommu_user_data>,
        auto_domain: bool,
    ) -> Result<Arc<Self>> {
        if flags & !PAGING_FLAGS != 0 {
            return Err(errno::eopnotsupp());
        }
        if flags & uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0
            && !dev.capable(bindings::iommu_cap_IOMMU_CAP_DIRTY_TRACKING)
        {
            return Err(errno::eopnotsupp());
        }
        let domain = DomainBox::alloc(dev, flags, user_data)?;
        let dref = DomainRef(domain.0);
        ioas.iopt.lock().add_domain(dref)?;
        // From here the value's Drop undoes both the fill and this hold, even if the allocation
        // below fails (the value is dropped then).
        ioas.users().hold(1);
        let hwpt = Arc::new(
            HwptPaging {
                domain,
                ioas: ioas.clone(),
                auto_domain,
                users: Users::default(),
                id: AtomicU32::new(0),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(hwpt)
    }

    pub(crate) fn domain(&self) -> *mut bindings::iommu_domain {
        self.domain.as_ptr()
    }

    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
    }

    pub(crate) fn id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        // Unmap and unpin while the domain still exists; the domain is freed after this body.
        self.ioas
            .iopt
            .lock()
            .remove_domain(DomainRef(self.domain.0));
        self.ioas.users().release(1);
    }
}

/// `IOMMU_HWPT_ALLOC`: a paging domain over an IOAS for a device, with optional driver data.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_hwpt_alloc = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    if (cmd.data_type == uapi::IOMMU_HWPT_DATA_NONE && cmd.data_len != 0)
        || (cmd.data_type != uapi::IOMMU_HWPT_DATA_NONE && cmd.data_len == 0)
    {
        return Err(EINVAL);
    }
    let idev = ucmd.ictx.get_device(cmd.dev_id)?;
    // An unknown ID is EINVAL here, as upstream.
    let pt = ucmd
        .ictx
        .objects
        .lock()
        .get_pt(cmd.pt_id)
        .map_err(|_| EINVAL)?;
    let Pt::Ioas(ioas) = pt else {
        // Nested domains over a parent HWPT come with vIOMMU support.
        return Err(errno::eopnotsupp());
    };
    if cmd.flags & uapi::IOMMU_HWPT_FAULT_ID_VALID != 0 {
        return Err(errno::eopnotsupp());
    }
    let data = bindings::iommu_user_data {
        type_: cmd.data_type,
        uptr: usize::try_from(cmd.data_uptr).map_err(|_| EFAULT)? as *mut core::ffi::c_void,
        len: usize::try_from(cmd.data_len).map_err(|_| EINVAL)?,
    };
    let user_data = (data.len != 0).then_some(&data);
    let hwpt = {
        // Serialized with automatic domain choice on the same IOAS, as upstream's ioas->mutex.
        let _guard = ioas.hwpts.lock();
        HwptPaging::new(ioas.arc(), &idev, cmd.flags, user_data, false)?
    };
    object::publish(ucmd, Object::HwptPaging(hwpt), |id| {
        cmd.out_hwpt_id = id;
        ucmd.respond(&cmd)
    })?;
    Ok(())
}
