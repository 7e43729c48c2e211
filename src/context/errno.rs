// SPDX-License-Identifier: GPL-2.0
//! Errno values the uAPI needs that `kernel::error::code` does not declare.

use kernel::{bindings, error::Error};

macro_rules! errno {
    ($($(#[$doc:meta])* $name:ident = $err:ident;)*) => {$(
        $(#[$doc])*
        pub(crate) fn $name() -> Error {
            // The constant is a small positive errno; the conversion cannot truncate.
            Error::from_errno(-(bindings::$err as i32))
        }
    )*};
}

errno! {
    /// Unknown flag, option or non-zero reserved field.
    eopnotsupp = EOPNOTSUPP;
    /// A range is in use by something that forbids the request (reserved vs allowed IOVA).
    eaddrinuse = EADDRINUSE;
    /// Something does not let go when asked (an access that ignores unmap).
    edeadlk = EDEADLK;
    /// Pages found are not the pages expected (checks of what is pinned).
    ebade = EBADE;
    /// An fd that is not of the expected kind.
    ebadfd = EBADFD;
}

impl From<crate::pure::ulong::RangeError> for Error {
    fn from(e: crate::pure::ulong::RangeError) -> Self {
        match e {
            crate::pure::ulong::RangeError::Inval => kernel::error::code::EINVAL,
            crate::pure::ulong::RangeError::Overflow => kernel::error::code::EOVERFLOW,
        }
    }
}
