// SPDX-License-Identifier: GPL-2.0
//! The IOMMU core (`include/linux/iommu.h`): domains and their page tables, dirty tracking, IOMMU
//! groups, devices and their DMA ownership, attach handles and I/O page fault groups.

pub(crate) mod attach;
pub(crate) mod device;
pub(crate) mod dirty;
pub(crate) mod domain;
pub(crate) mod group;
pub(crate) mod iopf;
