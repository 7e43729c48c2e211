// SPDX-License-Identifier: GPL-2.0
//! Kernel-independent logic: only `core`, no allocation, no kernel types. The module builds these
//! files as they are, and so does the host crate in `tests/host` for `cargo test` and property
//! tests. Errors are small enums the kernel glue maps to errnos.

pub(crate) mod ucmd;

// The IOAS glue (IOMMU_IOAS_MAP, ALLOW_IOVAS, IOVA_RANGES) is their user in the module; until it
// lands they are exercised by the host tests only.
#[allow(dead_code)]
pub(crate) mod iova;
#[allow(dead_code)]
pub(crate) mod span;
