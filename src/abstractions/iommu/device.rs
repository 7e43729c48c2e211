// SPDX-License-Identifier: GPL-2.0
//! Devices as the IOMMU core sees them (`struct device` with `dev->iommu`): their driver's ops and
//! capabilities, reserved regions, PASID support and DMA ownership.

use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr,
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};
use kernel::{
    bindings,
    device::Device,
    error::from_err_ptr,
    prelude::*,
    sync::aref::ARef, //
};

use crate::ffi::kbind;

/// The C device of `dev`, for the C interfaces that take one (the kernel crate keeps its own
/// `Device::as_raw()` to itself).
#[inline]
pub(crate) fn dev_ptr(dev: &Device) -> *mut bindings::device {
    // `Device` is a transparent wrapper of `Opaque<bindings::device>`: same address.
    ptr::from_ref(dev).cast::<bindings::device>().cast_mut()
}

/// What the IOMMU core tells of a device: the questions iommufd asks of a device it binds.
///
/// Implemented for [`kernel::device::Device`]; every method may be called on any live device (a
/// device no IOMMU probed answers "no", `ENODEV` or 0).
pub(crate) trait IommuDevice {
    /// Whether the device's IOMMU has capability `cap` (`device_iommu_capable()`).
    fn iommu_capable(&self, cap: bindings::iommu_cap) -> bool;

    /// The IOMMU driver's ops for this device (`dev_iommu_ops()`); `ENODEV` if no IOMMU probed
    /// it.
    fn iommu_ops(&self) -> Result<&bindings::iommu_ops>;

    /// The physical IOMMU instance the device sits behind (`__iommu_get_iommu_dev()`), as a
    /// number for comparisons; 0 for none.
    fn iommu_instance(&self) -> usize;

    /// How many PASIDs the IOMMU supports for the device (`dev->iommu->max_pasids`); 0 without
    /// PASID support or an IOMMU.
    fn max_pasids(&self) -> u32;

    /// The driver's description of the IOMMU hardware behind the device (`ops->hw_info()`).
    /// `kind` is the type asked for and becomes the type returned; a driver without `hw_info`
    /// answers `IOMMU_HW_INFO_TYPE_NONE` with no data.
    fn hw_info(&self, kind: &mut bindings::iommu_hw_info_type) -> Result<HwInfo>;

    /// Calls `f` with the device's reserved regions (`iommu_get_resv_regions()`), freed when it
    /// returns.
    fn with_resv_regions<R>(&self, f: impl FnOnce(ResvRegions<'_>) -> R) -> R;

    /// The PCI PASID capability's control bits (`pci_pasid_status()`), `None` if the device is
    /// not PCI or has PASID disabled or absent.
    fn pci_pasid_status(&self) -> Option<u32>;

    /// What the fault-capable attach rule reads of a PCI device, `None` if it is not one.
    fn pci_pri_facts(&self) -> Option<PciPriFacts>;
}

/// A PCI device's answers to the fault-capable attach rule.
#[derive(Clone, Copy)]
pub(crate) struct PciPriFacts {
    /// It is a virtual function (SR-IOV).
    pub(crate) is_virtfn: bool,
    /// Its PRI capability is supported (`pci_pri_supported()`).
    pub(crate) pri_supported: bool,
}

impl IommuDevice for Device {
    #[inline]
    fn iommu_capable(&self, cap: bindings::iommu_cap) -> bool {
        // SAFETY: `self` is a live device; the core answers false without an IOMMU.
        unsafe { bindings::device_iommu_capable(dev_ptr(self), cap) }
    }

    fn iommu_ops(&self) -> Result<&bindings::iommu_ops> {
        let dev = dev_ptr(self);
        // SAFETY: `dev` is live; `dev->iommu` is set while an IOMMU has the device probed and its
        // `iommu_dev` (an IOMMU instance, registered before any device it probes) lives as long.
        let ops = unsafe {
            let iommu = (*dev).iommu;
            if iommu.is_null() || (*iommu).iommu_dev.is_null() {
                return Err(ENODEV);
            }
            (*(*iommu).iommu_dev).ops
        };
        // SAFETY: a registered IOMMU's ops are a static of its driver, which cannot unload while
        // it has devices probed (and so not while `self` is borrowed in one).
        unsafe { ops.as_ref() }.ok_or(ENODEV)
    }

    fn iommu_instance(&self) -> usize {
        // SAFETY: as in `iommu_ops`.
        unsafe {
            let iommu = (*dev_ptr(self)).iommu;
            if iommu.is_null() {
                0
            } else {
                (*iommu).iommu_dev as usize
            }
        }
    }

    fn max_pasids(&self) -> u32 {
        // SAFETY: as in `iommu_ops`.
        unsafe {
            let iommu = (*dev_ptr(self)).iommu;
            if iommu.is_null() {
                0
            } else {
                (*iommu).max_pasids
            }
        }
    }

    fn hw_info(&self, kind: &mut bindings::iommu_hw_info_type) -> Result<HwInfo> {
        let ops = self.iommu_ops()?;
        let Some(hw_info) = ops.hw_info else {
            *kind = bindings::iommu_hw_info_type_IOMMU_HW_INFO_TYPE_NONE;
            return Ok(HwInfo {
                data: ptr::null_mut(),
                len: 0,
            });
        };
        let mut len: u32 = 0;
        // SAFETY: the driver contract: a live device it probed and two out-pointers; it returns a
        // kmalloc'ed buffer of `len` bytes (or NULL, or an error pointer).
        let data = unsafe { hw_info(dev_ptr(self), &mut len, kind) };
        let data = from_err_ptr(data)?;
        // INVARIANT: `data` is NULL or `len` bytes from kmalloc, now ours.
        Ok(HwInfo {
            data: data.cast(),
            len,
        })
    }

    fn with_resv_regions<R>(&self, f: impl FnOnce(ResvRegions<'_>) -> R) -> R {
        let mut list = bindings::list_head::default();
        let head: *mut bindings::list_head = &mut list;
        // SAFETY: an empty list points at itself; `list` stays put until it is freed below.
        unsafe {
            (*head).next = head;
            (*head).prev = head;
        }
        // SAFETY: `self` is live; the driver fills `list` with regions freed below.
        unsafe { bindings::iommu_get_resv_regions(dev_ptr(self), head) };
        // INVARIANT: `head` is the list the driver built, freed only after `f` returns.
        let r = f(ResvRegions {
            head,
            // SAFETY: the list is initialized.
            pos: unsafe { (*head).next },
            _list: PhantomData,
        });
        // SAFETY: gives back what `iommu_get_resv_regions()` allocated; nothing borrows it now.
        unsafe { bindings::iommu_put_resv_regions(dev_ptr(self), head) };
        r
    }

    fn pci_pasid_status(&self) -> Option<u32> {
        let dev = dev_ptr(self);
        // SAFETY: `dev` is live; the helper compares its bus with `pci_bus_type`.
        if !unsafe { bindings::dev_is_pci(dev) } {
            return None;
        }
        // SAFETY: a device on the PCI bus is the `dev` member of a `pci_dev`.
        let pdev = unsafe { kernel::container_of!(dev, bindings::pci_dev, dev) };
        // SAFETY: a live PCI device; the call reads its PASID capability.
        let ctrl = unsafe { kbind::pci_pasid_status(pdev) };
        u32::try_from(ctrl).ok().filter(|&c| c > 0)
    }

    fn pci_pri_facts(&self) -> Option<PciPriFacts> {
        let mut is_virtfn = false;
        let mut pri_supported = false;
        // SAFETY: `self` is live; the helper only reads it and writes the two flags it is given.
        let is_pci = unsafe {
            crate::ffi::shim::iommufd_rs_pci_pri_facts(
                dev_ptr(self),
                &mut is_virtfn,
                &mut pri_supported,
            )
        };
        is_pci.then_some(PciPriFacts {
            is_virtfn,
            pri_supported,
        })
    }
}

/// The hardware description a driver's `hw_info()` allocated for us; freed with `kfree()`.
///
/// # Invariants
///
/// `data` is NULL or a kmalloc allocation of `len` bytes that this value owns.
pub(crate) struct HwInfo {
    data: *mut u8,
    len: u32,
}

impl HwInfo {
    /// Whether the driver returned data.
    pub(crate) fn has_data(&self) -> bool {
        !self.data.is_null()
    }

    /// The length the driver reported.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// The data (empty without any).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let Ok(len) = usize::try_from(self.len) else {
            return &[];
        };
        if self.data.is_null() {
            return &[];
        }
        // SAFETY: `len` initialized bytes at `data`, owned by `self` (type invariant).
        unsafe { core::slice::from_raw_parts(self.data, len) }
    }
}

impl Drop for HwInfo {
    fn drop(&mut self) {
        // SAFETY: NULL or a kmalloc allocation we own (type invariant).
        unsafe { bindings::kfree(self.data.cast()) };
    }
}

/// The kind of a reserved region (`enum iommu_resv_type`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResvType {
    /// Memory the device DMAs to by itself, identity mapped (`IOMMU_RESV_DIRECT`).
    Direct,
    /// As `Direct`, but the mapping may be dropped once a driver owns the device
    /// (`IOMMU_RESV_DIRECT_RELAXABLE`).
    DirectRelaxable,
    /// Not usable for DMA at all (`IOMMU_RESV_RESERVED`, and any kind unknown here).
    Reserved,
    /// A hardware MSI window, untranslated (`IOMMU_RESV_MSI`).
    Msi,
    /// The software-managed MSI window (`IOMMU_RESV_SW_MSI`).
    SwMsi,
}

/// One reserved region of a device's I/O address space.
#[derive(Clone, Copy)]
pub(crate) struct ResvRegion {
    /// First I/O virtual address.
    pub(crate) start: u64,
    /// Length in bytes.
    pub(crate) length: usize,
    /// What it is reserved for.
    pub(crate) kind: ResvType,
}

/// The reserved regions of a device, while [`IommuDevice::with_resv_regions`] holds them.
///
/// # Invariants
///
/// `head` is an initialized list of `iommu_resv_region`s (linked through their first member,
/// `list`) that stays allocated for `'a`; `pos` is `head` or one of its entries.
pub(crate) struct ResvRegions<'a> {
    head: *mut bindings::list_head,
    pos: *mut bindings::list_head,
    _list: PhantomData<&'a bindings::list_head>,
}

impl Iterator for ResvRegions<'_> {
    type Item = ResvRegion;

    fn next(&mut self) -> Option<ResvRegion> {
        if self.pos == self.head {
            return None;
        }
        let region = self.pos.cast::<bindings::iommu_resv_region>();
        // SAFETY: `pos` is an entry of the list (type invariants), the `list` member of a
        // region the driver allocated.
        let r = unsafe { &*region };
        self.pos = r.list.next;
        Some(ResvRegion {
            start: r.start,
            length: r.length,
            kind: match r.type_ {
                bindings::iommu_resv_type_IOMMU_RESV_DIRECT => ResvType::Direct,
                bindings::iommu_resv_type_IOMMU_RESV_DIRECT_RELAXABLE => ResvType::DirectRelaxable,
                bindings::iommu_resv_type_IOMMU_RESV_MSI => ResvType::Msi,
                bindings::iommu_resv_type_IOMMU_RESV_SW_MSI => ResvType::SwMsi,
                _ => ResvType::Reserved,
            },
        })
    }
}

/// DMA ownership of a device claimed for a user (`iommu_device_claim_dma_owner()`): while held,
/// no kernel driver may use the device's group for DMA, and the core will attach the group only
/// to the owner's domains. Released once, by [`DmaOwner::release`] or when dropped.
///
/// # Invariants
///
/// `dev` is referenced; while `claimed` is set this value holds a claim on it.
pub(crate) struct DmaOwner {
    dev: ARef<Device>,
    claimed: AtomicBool,
}

impl DmaOwner {
    /// Claims `dev` for `owner`, a cookie compared by address: other claims of the group must
    /// name the same one (`EBUSY` otherwise, or while a kernel driver is bound in the group).
    pub(crate) fn claim<T>(dev: ARef<Device>, owner: &T) -> Result<Self> {
        let cookie = ptr::from_ref(owner).cast_mut().cast::<c_void>();
        // SAFETY: `dev` is referenced; the cookie is only compared by the core.
        let rc = unsafe { bindings::iommu_device_claim_dma_owner(dev_ptr(&dev), cookie) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: the claim just made.
        Ok(Self {
            dev,
            claimed: AtomicBool::new(true),
        })
    }

    /// The device (referenced for as long as `self` lives).
    #[inline]
    pub(crate) fn device(&self) -> &Device {
        &self.dev
    }

    /// Gives the claim back if it is still held; later calls do nothing.
    pub(crate) fn release(&self) {
        if self.claimed.swap(false, Ordering::AcqRel) {
            // SAFETY: the claim the type invariant says we hold, given back once (the flag).
            unsafe { bindings::iommu_device_release_dma_owner(dev_ptr(&self.dev)) };
        }
    }
}

impl Drop for DmaOwner {
    fn drop(&mut self) {
        self.release();
    }
}
