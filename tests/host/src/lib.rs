// SPDX-License-Identifier: GPL-2.0
//! Host build of the kernel-independent files of `src/` (everything under `src/pure/`): the same
//! source the module compiles, tested here with `cargo test` in seconds instead of a VM boot.

#![allow(dead_code)]

#[path = "../../../src/pure/mod.rs"]
pub mod pure;

#[cfg(test)]
mod attach_tests;
#[cfg(test)]
mod batch_props;
#[cfg(test)]
mod cover_props;
#[cfg(test)]
mod model;
#[cfg(test)]
mod props;
#[cfg(test)]
mod prot_tests;
#[cfg(test)]
mod ucmd_tests;
#[cfg(test)]
mod ulong_tests;
