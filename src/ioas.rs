// SPDX-License-Identifier: GPL-2.0
//! IOAS: an I/O address space, the object a VMM maps guest memory into.
//!
//! So far an IOAS is an object that can be created and destroyed; its io_pagetable (areas, pinned
//! pages, allowed and reserved ranges) lands with the core work (issue 3).

use kernel::{
    prelude::*,
    sync::Arc,
};

use crate::{
    errno,
    ioctl::Ucmd,
    object::{
        self,
        Object,
        ObjectKind, //
    },
    uapi, //
};

pub(crate) struct Ioas {}

/// `IOMMU_IOAS_ALLOC`.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_alloc = ucmd.cmd()?;
    if cmd.flags != 0 {
        return Err(errno::eopnotsupp());
    }
    let obj = Arc::new(
        Object {
            kind: ObjectKind::Ioas(Ioas {}),
        },
        GFP_KERNEL,
    )?;
    object::publish(ucmd, obj, |id| {
        cmd.out_ioas_id = id;
        ucmd.respond(&cmd)
    })?;
    Ok(())
}
