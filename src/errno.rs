// SPDX-License-Identifier: GPL-2.0
//! Errno values the uAPI needs that `kernel::error::code` does not declare.

use kernel::{
    bindings,
    error::Error,
};

/// `EOPNOTSUPP`: what upstream answers for an unknown flag or a non-zero reserved field.
pub(crate) fn eopnotsupp() -> Error {
    // The constant is a small positive errno; the conversion cannot truncate.
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}
