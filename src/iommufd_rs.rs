// SPDX-License-Identifier: GPL-2.0
//! iommufd-rs: `/dev/iommu`, the IOMMU user API, written in Rust as a drop-in for `iommufd.ko`.
//!
//! The crate root only holds the module, the `/dev/iommu` registration and the list of files. One
//! file per concept, after the C layout: `ioctl.rs` is main.c's ioctl table, `ictx.rs` the
//! per-open context, `object.rs` the object table, `ioas.rs` the IOAS. `pure/` is
//! kernel-independent and is also built by the host tests (`tests/host`).

use kernel::prelude::*;

mod access;
mod device;
mod dirty;
mod dmabuf;
mod errno;
mod eventq;
mod fault;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod gup;
mod hwpt;
mod ictx;
mod ioas;
mod ioctl;
mod iopt;
mod kapi;
mod kbind;
mod mapped_file;
mod miscdev;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod mock;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod mock_viommu;
mod object;
mod pages;
mod pfns;
mod pin_users;
mod pure;
mod queue_fd;
#[cfg(CONFIG_IOMMUFD_TEST)]
mod selftest;
mod shim;
mod uapi;
mod veventq;
mod vfio_compat;
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
    // Fields drop in order: /dev/iommu goes before the mock IOMMU its objects may use.
    #[pin]
    misc: miscdev::Registration<ictx::Ictx>,
    /// `/dev/vfio/vfio`, where the kernel has no VFIO container of its own.
    #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
    #[pin]
    vfio: miscdev::Registration<ictx::Ictx>,
    #[cfg(CONFIG_IOMMUFD_TEST)]
    _mock: mock::MockIommu,
    _fault: fault::FaultPoint,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        miscdev::init_fops::<ictx::Ictx>(module);
        eventq::init_statics(module);
        veventq::init_statics(module);
        #[cfg(CONFIG_IOMMUFD_TEST)]
        selftest::init_statics(module);
        try_pin_init!(Self {
            _fault: fault::FaultPoint::new(),
            #[cfg(CONFIG_IOMMUFD_TEST)]
            _mock: mock::MockIommu::register(module)?,
            // As upstream's `iommu_misc_dev` and `vfio_misc_dev`.
            misc <- miscdev::Registration::register(miscdev::Options {
                name: c"iommu",
                nodename: None,
                minor: None,
                mode: 0o660,
            }),
            #[cfg(CONFIG_IOMMUFD_VFIO_CONTAINER)]
            vfio <- miscdev::Registration::register(miscdev::Options {
                name: c"vfio",
                nodename: Some(c"vfio/vfio"),
                minor: Some(kernel::bindings::VFIO_MINOR),
                mode: 0o666,
            }),
        })
    }
}
