// SPDX-License-Identifier: GPL-2.0
//! Kernel-independent logic: only `core`, no allocation, no kernel types. The module builds these
//! files as they are, and so does the host crate in `tests/host` for `cargo test` and property
//! tests. Errors are small enums the kernel glue maps to errnos.

pub(crate) mod attach;
pub(crate) mod cover;
pub(crate) mod prot;
pub(crate) mod ucmd;
pub(crate) mod ulong;

// Parts the module does not call yet (pinning fills batches; spans and IOVA choice are used by the
// IOAS glue, though not every helper) are exercised by the host tests.
#[allow(dead_code)]
pub(crate) mod batch;
#[allow(dead_code)]
pub(crate) mod iova;
#[allow(dead_code)]
pub(crate) mod span;
