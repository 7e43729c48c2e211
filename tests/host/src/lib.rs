// SPDX-License-Identifier: GPL-2.0
//! Host build of the kernel-independent files of `src/` (everything under `src/pure/`, and
//! `src/pages/pfns.rs` over a model of the kernel's vectors): the same source the module compiles,
//! tested here with `cargo test` in seconds instead of a VM boot.

#![allow(dead_code)]

#[path = "../../../src/pure/mod.rs"]
pub mod pure;

/// The PFN table of `src/pages/pfns.rs`, built over the model of the kernel's vectors in
/// `kernel-model/` (whose allocations can be made to fail).
#[path = "../../../src/pages/pfns.rs"]
pub mod pfns;

#[cfg(test)]
mod attach_tests;
#[cfg(test)]
mod batch_props;
#[cfg(test)]
mod cover_props;
#[cfg(test)]
mod model;
#[cfg(test)]
mod pfns_props;
#[cfg(test)]
mod props;
#[cfg(test)]
mod prot_tests;
#[cfg(test)]
mod ucmd_tests;
#[cfg(test)]
mod ulong_tests;
