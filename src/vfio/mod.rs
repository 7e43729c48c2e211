// SPDX-License-Identifier: GPL-2.0
//! What VFIO sees of us: the in-kernel API of `include/linux/iommufd.h` that vfio binds devices
//! through, and the VFIO type1 container ioctls `/dev/iommu` answers for compatibility.

pub(crate) mod compat;
pub(crate) mod kapi;
