// SPDX-License-Identifier: GPL-2.0
//! iommufd-rs: `/dev/iommu`, the IOMMU user API, written in Rust as a drop-in for `iommufd.ko`.
//!
//! The crate root only holds the module, its misc devices and the list of subsystems, one folder
//! each, in the order an ioctl travels: `context/` (misc devices, per-open context, object and
//! ioctl tables), `ioas/` (IOAS, io_pagetable, emulated access), `pages/` (pinned memory, PFNs,
//! files and dma-bufs behind a mapping), `hwpt/` (HW page tables, devices, dirty tracking),
//! `eventq/` (fault queue, vEVENTQ, their fd), `viommu/`, `vfio/` (the in-kernel API and type1
//! compatibility), `selftest/` (test builds only), `ffi/` (bindgen output and the C shim),
//! `abstractions/` (safe types over those C interfaces) and `pure/`, kernel-independent and also
//! built by the host tests (`tests/host`).

// A production build leaves out the selftest, the one in-module user of the API the core offers
// IOMMU drivers (vIOMMU events, driver data copies, what is attached...) and of the registries'
// provider side: that code is dead there. The test build has every caller and is where dead code
// is caught.
#![cfg_attr(not(CONFIG_IOMMUFD_TEST), allow(dead_code))]

use kernel::prelude::*;

use context::miscdev;

mod abstractions;
mod context;
mod eventq;
mod ffi;
mod hwpt;
mod ioas;
mod pages;
mod pure;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod selftest;
mod vfio;
mod viommu;

module! {
    type: IommufdModule,
    name: "iommufd",
    authors: ["iommufd-rs developers"],
    description: "IOMMU user API (/dev/iommu), Rust implementation",
    license: "GPL",
}

#[pin_data]
struct IommufdModule {
    // Fields drop in order: /dev/iommu goes before the selftest its objects may use.
    #[pin]
    misc: miscdev::Registration<context::ictx::Ictx>,
    /// `/dev/vfio/vfio`, where the kernel has no VFIO container of its own.
    #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
    #[pin]
    vfio: miscdev::Registration<context::ictx::Ictx>,
    #[cfg(CONFIG_IOMMUFD_TEST)]
    _selftest: selftest::Selftest,
    _fault: context::fail_point::FaultPoint,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        miscdev::FOPS.init(module);
        eventq::fault::init_statics(module);
        eventq::veventq::init_statics(module);
        try_pin_init!(Self {
            _fault: context::fail_point::FaultPoint::new(),
            // Test builds only: the selftest registers itself with the core's registries.
            #[cfg(CONFIG_IOMMUFD_TEST)]
            _selftest: selftest::Selftest::register(module)?,
            // As upstream's `iommu_misc_dev` and `vfio_misc_dev`.
            misc <- miscdev::Registration::register(&miscdev::FOPS, miscdev::Options {
                name: c"iommu",
                nodename: None,
                minor: None,
                mode: 0o660,
            }),
            #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
            vfio <- miscdev::Registration::register(&miscdev::FOPS, miscdev::Options {
                name: c"vfio",
                nodename: Some(c"vfio/vfio"),
                minor: Some(kernel::bindings::VFIO_MINOR),
                mode: 0o666,
            }),
        })
    }
}
