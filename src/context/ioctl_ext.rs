// SPDX-License-Identifier: GPL-2.0
//! Ioctl rows kept outside the table of `ioctl.rs`: a part of this module that has commands of its
//! own (upstream's test build has `IOMMU_TEST_CMD`, 32 numbers above the base) registers their
//! rows at module init. A registered row past the table's end extends the range `/dev/iommu`
//! answers as iommufd commands up to it, as a longer table would: the numbers between answer
//! `ENOTTY` rather than going to the VFIO compat path, exactly as upstream's table with that row.
//! Without a registration the table ends after the last real command.

use kernel::prelude::*;

use crate::{
    context::ioctl::Op,
    context::registry::{
        Registration,
        Registry, //
    },
    ffi::uapi,
    pure::ucmd, //
};

/// How many extra rows may register.
const MAX_ROWS: usize = 2;

static ROWS: Registry<Op, MAX_ROWS> = Registry::new();

/// Registers `row` until the result drops. `EINVAL` for a number below the table's end (the
/// table's rows are fixed) or outside the iommufd range, `EEXIST` for one already registered.
pub(crate) fn register(row: &'static Op) -> Result<Registration> {
    let nr = ucmd::ioc_nr(row.cmd);
    let idx = nr.checked_sub(uapi::IOMMUFD_CMD_BASE).ok_or(EINVAL)?;
    if usize::try_from(idx).map_err(|_| EINVAL)? < uapi::IOMMUFD_CMD_TABLE_LEN {
        return Err(EINVAL);
    }
    if ROWS.iter().any(|r| ucmd::ioc_nr(r.cmd) == nr) {
        return Err(EEXIST);
    }
    ROWS.register(row)
}

/// The number of command slots from the base: the table's `table_len`, or up to the highest
/// registered row.
#[inline]
pub(crate) fn table_len(table_len: usize) -> usize {
    ROWS.iter()
        .filter_map(|r| ucmd::ioc_nr(r.cmd).checked_sub(uapi::IOMMUFD_CMD_BASE))
        .filter_map(|i| usize::try_from(i).ok()?.checked_add(1))
        .fold(table_len, usize::max)
}

/// The registered row for `cmd` (its full number, as the table's rows are matched).
#[inline]
pub(crate) fn find(cmd: u32) -> Option<Op> {
    ROWS.find(|r| r.cmd == cmd).copied()
}
