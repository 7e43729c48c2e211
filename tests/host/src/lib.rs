// SPDX-License-Identifier: GPL-2.0
//! Host build of the kernel-independent files of `src/`: the same source the module compiles,
//! tested here with `cargo test` in seconds instead of a VM boot.

#![allow(dead_code)]

#[path = "../../../src/ucmd.rs"]
pub mod ucmd;
