// SPDX-License-Identifier: GPL-2.0
//! Safe types over the kernel's C interfaces this module uses and the kernel crate does not wrap
//! yet: the IOMMU core (`iommu/`), pinned user memory and its accounting (`mm/`), dma-bufs
//! (`dma_buf.rs`), files, poll and wait queues (`file/`), the C entry points of the in-kernel
//! API VFIO calls (`iommufd_api.rs`) and the callbacks of a driver's access (`access_ops.rs`).
//!
//! Written the way `rust/kernel/` is: each type owns or borrows one C object, says what it
//! guarantees under `# Invariants`, and every `unsafe` block justifies itself from those
//! invariants in a `// SAFETY:` comment. The rest of the module (object and ioctl logic) calls
//! these types and almost never writes `unsafe` itself; nothing here knows about iommufd objects,
//! so the layer could be proposed upstream as `rust/kernel/iommu/` and friends.

pub(crate) mod access_ops;
pub(crate) mod dma_buf;
pub(crate) mod file;
pub(crate) mod iommu;
pub(crate) mod iommufd_api;
pub(crate) mod iommufd_c;
pub(crate) mod mm;
