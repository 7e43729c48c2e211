// SPDX-License-Identifier: GPL-2.0
//! Where every ioctl starts: the misc devices, the per-open context, its object table and the
//! ioctl table that dispatches to the subsystems (upstream's main.c).

pub(crate) mod errno;
pub(crate) mod extension;
pub(crate) mod fail_point;
pub(crate) mod ictx;
pub(crate) mod ioctl;
pub(crate) mod ioctl_ext;
pub(crate) mod miscdev;
pub(crate) mod object;
pub(crate) mod registry;
