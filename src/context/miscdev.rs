// SPDX-License-Identifier: GPL-2.0
//! The misc devices of the module, registered as upstream's are: `/dev/iommu` with mode 0660 and,
//! on kernels built with `CONFIG_IOMMUFD_VFIO_CONTAINER` (no VFIO container of VFIO's own),
//! `/dev/vfio/vfio` with mode 0666 (`vfio_misc_dev`). Both use one set of file operations,
//! [`FOPS`], whose `owner` is this module, so that an open file (or a vIOMMU region mapped from
//! one, which holds its file) keeps the module loaded and `rmmod` is refused until it is closed.
//! The registration itself is `abstractions::file::misc`.

use core::{
    ptr,
    sync::atomic::{
        AtomicPtr,
        Ordering, //
    },
};
use kernel::{bindings, fs::File, miscdevice::MiscDeviceRegistration};

pub(crate) use crate::abstractions::file::misc::{
    Options,
    Registration, //
};
use crate::{
    abstractions::file::misc::{
        self,
        MiscFops, //
    },
    context::ictx::Ictx,
};

/// The file operations of `/dev/iommu` (and `/dev/vfio/vfio`): what tells a context's file
/// from others (upstream's `iommufd_fops`, which `iommufd_ctx_from_file()` compares with).
/// Filled in at module init, before the devices are registered.
pub(crate) static FOPS: MiscFops<Ictx> = MiscFops::new();

/// The `/dev/iommu` device itself, learned at the first open: the importing device of dma-buf
/// attachments (upstream's `iommufd_global_device()`).
pub(crate) static IOMMU_DEV: AtomicPtr<bindings::device> = AtomicPtr::new(ptr::null_mut());

/// Whether `file` is an open `/dev/iommu` (or `/dev/vfio/vfio`) file, whose private data is an
/// [`Ictx`].
#[inline]
pub(crate) fn is_ctx_file(file: &File) -> bool {
    FOPS.is_file_of(file)
}

/// Notes the device an open came through as the module's device ([`IOMMU_DEV`]).
pub(crate) fn learn_device(misc: &MiscDeviceRegistration<Ictx>) {
    IOMMU_DEV.store(misc::this_device(misc), Ordering::Release);
}

/// Whether `misc` (a device of ours, from an open) is the VFIO container `/dev/vfio/vfio`.
pub(crate) fn is_vfio_container(misc: &MiscDeviceRegistration<Ictx>) -> bool {
    u32::try_from(misc::minor(misc)).is_ok_and(|m| m == bindings::VFIO_MINOR)
}
