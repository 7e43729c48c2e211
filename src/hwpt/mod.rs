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

pub(crate) mod device;
pub(crate) mod dirty;
pub(crate) mod driver;

use core::sync::atomic::{
    AtomicU32,
    Ordering, //
};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc, //
};

use crate::{
    abstractions::iommu::domain::{
        Domain,
        OwnedDomain,
        UserData,
        UserDataArray, //
    },
    abstractions::iommufd_c::CHwpt,
    context::errno,
    context::ioctl::Ucmd,
    context::object::{
        self,
        Hold,
        Object,
        Pt,
        Used,
        Users, //
    },
    eventq::fault::Fault,
    ffi::uapi,
    hwpt::device::Device,
    ioas::iopt::DomainRef,
    ioas::Ioas,
};

/// Routes the I/O page faults of `domain` to a fault queue (before anything attaches). The
/// queue is held by the HWPT's `fault` field, not here.
fn set_fault_handler(domain: &mut OwnedDomain, fault: Option<&Hold<Fault>>) {
    if fault.is_some() {
        domain.set_iopf_handler(crate::eventq::fault::iopf_handler);
    }
}

/// `IOMMUFD_OBJ_HWPT_PAGING`.
pub(crate) struct HwptPaging {
    /// The domain; the IOAS's list has the other reference while the HWPT lives.
    domain: DomainRef,
    /// The IOAS whose mappings the domain carries, held (its `DESTROY` answers `EBUSY`).
    pub(crate) ioas: Hold<Ioas>,
    /// Made by an attach to an IOAS, not by `IOMMU_HWPT_ALLOC`.
    pub(crate) auto_domain: bool,
    /// Allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`: nested domains may sit on it.
    pub(crate) nest_parent: bool,
    /// Allocated with `IOMMU_HWPT_ALLOC_PASID`: may be attached at PASIDs.
    pasid_compat: bool,
    /// The domain keeps all DMA cache coherent (set at allocation for a device that can).
    pub(crate) enforce_cc: bool,
    /// Where I/O page faults on this domain go (`IOMMU_HWPT_FAULT_ID_VALID`), held.
    fault: Option<Hold<Fault>>,
    users: Users,
    id: AtomicU32,
    /// The C part, which the domain's cookie names (`abstractions::iommufd_c`); last, so it goes
    /// after the domain.
    pub(crate) c: CHwpt,
}

impl Used for HwptPaging {
    fn users(&self) -> &Users {
        &self.users
    }
}

/// Flags a paging HWPT may be allocated with.
const PAGING_FLAGS: u32 = uapi::IOMMU_HWPT_ALLOC_NEST_PARENT
    | uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING
    | uapi::IOMMU_HWPT_FAULT_ID_VALID
    | uapi::IOMMU_HWPT_ALLOC_PASID;

impl HwptPaging {
    /// A domain for `dev`, filled with everything mapped in `ioas` (upstream's
    /// `iommufd_hwpt_paging_alloc()` without immediate attach: the domain is complete before any
    /// device sees it). `fault`'s hold goes with the HWPT, or at once if it is not made.
    pub(crate) fn new(
        ioas: &Arc<Ioas>,
        dev: &Device,
        flags: u32,
        user_data: Option<&UserData>,
        auto_domain: bool,
        fault: Option<Hold<Fault>>,
    ) -> Result<Arc<Self>> {
        if flags & !PAGING_FLAGS != 0 {
            return Err(errno::eopnotsupp());
        }
        // Faults are reported through nested domains, not by a nesting parent.
        if flags & uapi::IOMMU_HWPT_FAULT_ID_VALID != 0
            && flags & uapi::IOMMU_HWPT_ALLOC_NEST_PARENT != 0
        {
            return Err(errno::eopnotsupp());
        }
        if flags & uapi::IOMMU_HWPT_ALLOC_DIRTY_TRACKING != 0
            && !dev.capable(bindings::iommu_cap_IOMMU_CAP_DIRTY_TRACKING)
        {
            return Err(errno::eopnotsupp());
        }
        let mut domain = OwnedDomain::alloc_paging(
            dev.kdev(),
            flags & !uapi::IOMMU_HWPT_FAULT_ID_VALID,
            user_data,
        )?;
        // A device whose IOMMU can keep even its no-snoop DMA coherent gets a domain that does
        // (VFIO tells KVM so, and KVM then skips emulating WBINVD), set before the fill below
        // maps anything. Such a driver that cannot do it on a new domain is buggy (upstream
        // WARNs too). Devices without the capability may still share the domain later.
        let enforce_cc = dev.capable(bindings::iommu_cap_IOMMU_CAP_ENFORCE_CACHE_COHERENCY);
        if enforce_cc && kernel::warn_on!(!domain.enforce_cache_coherency()) {
            return Err(EINVAL);
        }
        set_fault_handler(&mut domain, fault.as_ref());
        let c = CHwpt::new(&domain, None)?;
        let domain = DomainRef(Arc::new(domain, GFP_KERNEL_ACCOUNT)?);
        ioas.iopt.lock().add_domain(domain.clone())?;
        // From here the value's Drop undoes the fill, and its fields give the holds back, even
        // if the allocation below fails (the value is dropped then).
        let hwpt = Arc::new(
            HwptPaging {
                domain,
                ioas: Hold::new(ioas.clone()),
                auto_domain,
                nest_parent: flags & uapi::IOMMU_HWPT_ALLOC_NEST_PARENT != 0,
                pasid_compat: flags & uapi::IOMMU_HWPT_ALLOC_PASID != 0,
                enforce_cc,
                fault,
                users: Users::default(),
                id: AtomicU32::new(0),
                c,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(hwpt)
    }

    /// The domain, borrowed.
    pub(crate) fn domain(&self) -> &Domain {
        &self.domain.0
    }

    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
        self.c.set_id(id);
    }

    pub(crate) fn id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        // Unmap and unpin while the domain still exists; the domain is freed after this body.
        self.ioas.iopt.lock().remove_domain(&self.domain);
        // The IOAS's hold goes with the field, after this.
    }
}

/// `IOMMUFD_OBJ_HWPT_NESTED`: a domain whose stage-1 table userspace (a guest) owns, on top of a
/// nesting-parent paging HWPT that translates the stage-2.
pub(crate) struct HwptNested {
    domain: OwnedDomain,
    /// The nesting parent, held (its `DESTROY` answers `EBUSY`).
    pub(crate) parent: Hold<HwptPaging>,
    /// The vIOMMU it was made on, held likewise.
    pub(crate) viommu: Option<Hold<crate::viommu::Viommu>>,
    /// Where I/O page faults on this domain go, held.
    fault: Option<Hold<Fault>>,
    pasid_compat: bool,
    users: Users,
    /// The C part, naming the parent's (`abstractions::iommufd_c`); last, so it goes after the
    /// domain (freeing it reads nothing of the parent's).
    pub(crate) c: CHwpt,
}

impl Used for HwptNested {
    fn users(&self) -> &Users {
        &self.users
    }
}

/// What a nested HWPT sits on: a nest-parent HWPT (the device's driver makes the domain), or a
/// vIOMMU (its driver makes the domain; the parent is the vIOMMU's).
enum NestedOn<'a> {
    Parent(&'a Arc<HwptPaging>),
    Viommu(&'a Arc<crate::viommu::Viommu>),
}

impl HwptNested {
    /// Upstream's `iommufd_hwpt_nested_alloc()` and `iommufd_viommu_alloc_hwpt_nested()`.
    fn new(
        on: NestedOn<'_>,
        dev: &Device,
        flags: u32,
        user_data: &UserData,
        fault: Option<Hold<Fault>>,
    ) -> Result<Arc<Self>> {
        if flags & !(uapi::IOMMU_HWPT_FAULT_ID_VALID | uapi::IOMMU_HWPT_ALLOC_PASID) != 0
            || user_data.len() == 0
        {
            return Err(errno::eopnotsupp());
        }
        let ops = dev.iommu_ops()?;
        let domain_flags = flags & !uapi::IOMMU_HWPT_FAULT_ID_VALID;
        let (mut domain, parent, viommu) = match on {
            NestedOn::Parent(parent) => {
                let owner = parent.domain().owner();
                if parent.auto_domain || !parent.nest_parent || !core::ptr::eq(owner, ops) {
                    return Err(EINVAL);
                }
                let domain = OwnedDomain::alloc_nested(
                    dev.kdev(),
                    parent.domain(),
                    domain_flags,
                    user_data,
                )?;
                (domain, parent, None)
            }
            NestedOn::Viommu(viommu) => {
                let raw =
                    viommu
                        .ops()
                        .alloc_domain_nested(viommu, domain_flags, user_data.as_raw())?;
                // SAFETY: `ViommuOps::alloc_domain_nested()` answers a new domain the caller
                // owns. This cannot move into the layer: the trait speaks of `Viommu`, an
                // iommufd object, and hands its domain back as the C pointer its drivers make.
                let domain = unsafe { OwnedDomain::adopt_nested(raw, ops) }?;
                (domain, viommu.parent.arc(), Some(viommu))
            }
        };
        set_fault_handler(&mut domain, fault.as_ref());
        let c = CHwpt::new(&domain, Some(&parent.c))?;
        // On failure the value is dropped, and its fields give the holds back.
        Ok(Arc::new(
            HwptNested {
                domain,
                parent: Hold::new(parent.clone()),
                viommu: viommu.map(|v| Hold::new(v.clone())),
                fault,
                pasid_compat: flags & uapi::IOMMU_HWPT_ALLOC_PASID != 0,
                users: Users::default(),
                c,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    /// The domain, borrowed.
    pub(crate) fn domain(&self) -> &Domain {
        &self.domain
    }
}

/// What a device attaches to: a paging or a nested HWPT.
#[derive(Clone)]
pub(crate) enum Hwpt {
    Paging(Arc<HwptPaging>),
    Nested(Arc<HwptNested>),
}

impl Hwpt {
    pub(crate) fn domain(&self) -> &Domain {
        match self {
            Hwpt::Paging(h) => h.domain(),
            Hwpt::Nested(h) => h.domain(),
        }
    }

    pub(crate) fn users(&self) -> &Users {
        match self {
            Hwpt::Paging(h) => h.users(),
            Hwpt::Nested(h) => h.users(),
        }
    }

    /// The paging HWPT whose IOAS the device's reserved regions go into: itself, or a nested
    /// HWPT's parent.
    pub(crate) fn paging(&self) -> &Arc<HwptPaging> {
        match self {
            Hwpt::Paging(h) => h,
            Hwpt::Nested(h) => h.parent.arc(),
        }
    }

    /// The C part (`abstractions::iommufd_c`).
    pub(crate) fn c(&self) -> &CHwpt {
        match self {
            Hwpt::Paging(h) => &h.c,
            Hwpt::Nested(h) => &h.c,
        }
    }

    /// Allocated for PASID use.
    pub(crate) fn pasid_compat(&self) -> bool {
        match self {
            Hwpt::Paging(h) => h.pasid_compat,
            Hwpt::Nested(h) => h.pasid_compat,
        }
    }

    /// The fault queue the domain's I/O page faults go to.
    pub(crate) fn fault(&self) -> Option<&Arc<Fault>> {
        match self {
            Hwpt::Paging(h) => h.fault.as_ref().map(Hold::arc),
            Hwpt::Nested(h) => h.fault.as_ref().map(Hold::arc),
        }
    }

    pub(crate) fn ptr_eq(&self, other: &Hwpt) -> bool {
        match (self, other) {
            (Hwpt::Paging(a), Hwpt::Paging(b)) => Arc::ptr_eq(a, b),
            (Hwpt::Nested(a), Hwpt::Nested(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
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
    let (pt, viommu) = {
        let objects = ucmd.ictx.objects.lock();
        match objects.get_viommu(cmd.pt_id) {
            Ok(v) => (None, Some(v)),
            Err(_) => (Some(objects.get_pt(cmd.pt_id).map_err(|_| EINVAL)?), None),
        }
    };
    if let Some(v) = &viommu {
        if !v.same_iommu(&idev) {
            return Err(EINVAL);
        }
    }
    let data = UserData::new(cmd.data_type, cmd.data_uptr, cmd.data_len.into())?;
    // A missing fault queue is reported after the allocation's own errors, as upstream.
    let (fault, fault_err) = if cmd.flags & uapi::IOMMU_HWPT_FAULT_ID_VALID != 0 {
        match ucmd.ictx.objects.lock().get_fault(cmd.fault_id) {
            Ok(f) => (Some(Hold::new(f.arc().clone())), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let obj = match (pt, viommu) {
        (_, Some(viommu)) => Object::HwptNested(HwptNested::new(
            NestedOn::Viommu(viommu.arc()),
            &idev,
            cmd.flags,
            &data,
            fault,
        )?),
        (None, None) => return Err(EINVAL),
        (Some(Pt::Ioas(ioas)), None) => {
            let user_data = (data.len() != 0).then_some(&data);
            // Serialized with automatic domain choice on the same IOAS, as upstream's
            // ioas->mutex.
            let _guard = ioas.hwpts.lock();
            Object::HwptPaging(HwptPaging::new(
                ioas.arc(),
                &idev,
                cmd.flags,
                user_data,
                false,
                fault,
            )?)
        }
        (Some(Pt::Hwpt(parent)), None) => Object::HwptNested(HwptNested::new(
            NestedOn::Parent(parent.arc()),
            &idev,
            cmd.flags,
            &data,
            fault,
        )?),
        (Some(Pt::Nested(_)), None) => return Err(EINVAL),
    };
    if let Some(e) = fault_err {
        // The HWPT just made goes with `obj`.
        drop(obj);
        return Err(e);
    }
    object::publish(ucmd, obj, |id| {
        cmd.out_hwpt_id = id;
        ucmd.respond(&cmd)
    })?;
    Ok(())
}

/// Entries one `IOMMU_HWPT_INVALIDATE` may carry: far above any real batch, low enough that one
/// call cannot hold the CPU.
const INVALIDATE_ENTRY_NUM_MAX: u32 = 1 << 19;

/// `IOMMU_HWPT_INVALIDATE`: hands a nested HWPT's cache invalidation requests to the driver;
/// answers how many it handled, also on failure.
pub(crate) fn invalidate_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_hwpt_invalidate = ucmd.cmd()?;
    let rc = invalidate(ucmd, &cmd);
    cmd.entry_num = match &rc {
        Ok(done) => *done,
        Err((_, done)) => *done,
    };
    ucmd.respond(&cmd).map_err(|_| EFAULT)?;
    rc.map(|_| ()).map_err(|(e, _)| e)
}

fn invalidate(
    ucmd: &Ucmd<'_>,
    cmd: &uapi::iommu_hwpt_invalidate,
) -> core::result::Result<u32, (Error, u32)> {
    if cmd.__reserved != 0 {
        return Err((errno::eopnotsupp(), 0));
    }
    if cmd.entry_num != 0
        && (cmd.data_uptr == 0
            || cmd.entry_len == 0
            || cmd.entry_len as usize > kernel::page::PAGE_SIZE
            || cmd.entry_num > INVALIDATE_ENTRY_NUM_MAX)
    {
        return Err((EINVAL, 0));
    }
    let mut array = UserDataArray::new(cmd.data_type, cmd.data_uptr, cmd.entry_len, cmd.entry_num)
        .map_err(|e| (e, 0))?;
    let viommu = ucmd.ictx.objects.lock().get_viommu(cmd.hwpt_id);
    if let Ok(viommu) = viommu {
        let rc = viommu.ops().cache_invalidate(&viommu, array.as_raw_mut());
        return match rc {
            Ok(()) => Ok(array.entry_num()),
            Err(e) => Err((e, array.entry_num())),
        };
    }
    let pt = ucmd
        .ictx
        .objects
        .lock()
        .get_pt(cmd.hwpt_id)
        .map_err(|e| (e, 0))?;
    let Pt::Nested(hwpt) = pt else {
        return Err((EINVAL, 0));
    };
    match hwpt.domain().cache_invalidate_user(&mut array) {
        Ok(()) => Ok(array.entry_num()),
        Err(e) => Err((e, array.entry_num())),
    }
}
