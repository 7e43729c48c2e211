// SPDX-License-Identifier: GPL-2.0
//! IOMMU drivers that live in this module, and what they say of their devices that the IOMMU
//! core does not: a software IOMMU for testing registers one here at module init, so that binding
//! treats its devices as it must without the core naming it (upstream's core asks its test build
//! directly). No driver is registered in a production build.

use kernel::bindings;

use crate::context::registry::Registry;

/// An in-module IOMMU driver's answers about the devices it drives.
pub(crate) trait IommuDriver: Sync {
    /// Whether `dev` (a live device) is one of this driver's.
    fn drives(&self, dev: *mut bindings::device) -> bool;

    /// The driver's devices raise no interrupts a DMA write could forge (they have no MSI), so
    /// binding one needs no isolated MSI from the platform.
    fn msi_safe(&self) -> bool;

    /// The driver binds its devices from an object of the context itself: a binding must not hold
    /// the context's file, or closing the context would wait for itself.
    fn binds_from_context(&self) -> bool;
}

/// How many in-module IOMMU drivers may register.
const MAX_DRIVERS: usize = 2;

/// The registered drivers: `DRIVERS.register(&driver)` at module init.
pub(crate) static DRIVERS: Registry<dyn IommuDriver, MAX_DRIVERS> = Registry::new();

/// What binding `dev` (a live device) must know of its driver.
#[derive(Clone, Copy)]
pub(crate) struct BindTraits {
    /// No isolated MSI is needed (see [`IommuDriver::msi_safe`]).
    pub(crate) msi_safe: bool,
    /// The binding holds the context's file (not so for [`IommuDriver::binds_from_context`]).
    pub(crate) holds_ctx: bool,
}

/// The traits of `dev` (a live device): those of its in-module driver, the defaults of a device
/// whose driver is elsewhere in the kernel (the usual case).
pub(crate) fn bind_traits(dev: *mut bindings::device) -> BindTraits {
    match DRIVERS.find(|d| d.drives(dev)) {
        Some(d) => BindTraits {
            msi_safe: d.msi_safe(),
            holds_ctx: !d.binds_from_context(),
        },
        None => BindTraits {
            msi_safe: false,
            holds_ctx: true,
        },
    }
}
