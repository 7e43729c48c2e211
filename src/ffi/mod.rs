// SPDX-License-Identifier: GPL-2.0
//! The raw interface to C: the uAPI structures bindgen generates from the kernel we build against
//! (`generated/`), kernel declarations the kernel crate's bindings lack (`kernel_extra.h`), and
//! the C shim (`shim.c`) for static inlines and macros Rust cannot call.

pub(crate) mod kbind;
pub(crate) mod shim;
pub(crate) mod uapi;
