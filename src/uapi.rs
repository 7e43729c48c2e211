// SPDX-License-Identifier: GPL-2.0
//! The upstream uAPI (`include/uapi/linux/iommufd.h`), generated from the kernel we build against.
//!
//! The Makefile runs bindgen over the installed uAPI header of `$(KDIR)` into `src/generated/`, so
//! the structs here are the kernel's own layouts: a kernel whose header changes changes ours, and a
//! field we use that disappears fails the build. This file adds what bindgen cannot: the ioctl
//! numbers (function-like macros) and the byte-view traits the ioctl layer needs.

#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unreachable_pub
)]
mod generated {
    use kernel::ffi;
    include!("generated/iommufd_uapi.rs");
}

pub(crate) use generated::{
    iommu_destroy,
    iommu_ioas_alloc, //
};

use kernel::ioctl::_IO;

/// `IOMMUFD_TYPE`: the ioctl type byte, `';'`.
const IOMMUFD_TYPE: u32 = b';' as u32;

/// First command number of the iommufd range; `_IOC_NR(cmd) - IOMMUFD_CMD_BASE` indexes the table.
pub(crate) const IOMMUFD_CMD_BASE: u32 = generated::IOMMUFD_CMD_BASE;

/// `IOMMU_TEST_CMD` sits 32 numbers above the base (`iommufd_test.h`): the table reaches that far.
pub(crate) const IOMMUFD_CMD_TABLE_LEN: usize = 33;

pub(crate) const IOMMU_DESTROY: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_DESTROY);
pub(crate) const IOMMU_IOAS_ALLOC: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_ALLOC);

// SAFETY: plain `repr(C)` structs of `__u32` fields with no padding: every bit pattern is valid and
// every byte is initialized.
unsafe impl kernel::transmute::FromBytes for iommu_destroy {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for iommu_destroy {}
// SAFETY: as above.
unsafe impl kernel::transmute::FromBytes for iommu_ioas_alloc {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for iommu_ioas_alloc {}
