// SPDX-License-Identifier: GPL-2.0
//! The iommufd ioctl argument rule, kept free of kernel types so the host tests build it too.
//!
//! Every iommufd ioctl argument starts with a `u32 size`. The kernel knows two sizes per command:
//! `min_size`, the end of the last mandatory field, and `ksize`, the size of the struct it was built
//! with. A caller may pass anything from `min_size` up: a shorter struct is an older ABI whose
//! missing tail reads as zero, a longer one is a newer ABI accepted only if the part we do not know
//! is all zero (the caller did not ask for anything we would ignore). This is upstream's
//! `copy_struct_from_user()` contract, split into a plan (pure) and the copying (kernel glue).

/// `_IOC_NR()`: the command number sits in the low byte of an ioctl number.
pub(crate) const fn ioc_nr(cmd: u32) -> u32 {
    cmd & 0xff
}

/// Where `cmd` lands in a table of `len` commands starting at command number `base`, if anywhere.
pub(crate) fn table_index(cmd: u32, base: u32, len: usize) -> Option<usize> {
    let idx = usize::try_from(ioc_nr(cmd).checked_sub(base)?).ok()?;
    if idx < len {
        Some(idx)
    } else {
        None
    }
}

/// Why an argument is refused before any handler sees it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum SizeError {
    /// Shorter than the last mandatory field: `EINVAL`.
    TooShort,
}

/// What to do with a user argument of `user_size` bytes.
#[derive(Debug, PartialEq, Eq, Clone)]
pub(crate) struct CopyPlan {
    /// Bytes to copy in from the start of the user buffer; the kernel buffer past them is zero.
    pub(crate) copy: usize,
    /// User bytes `[ksize, user_size)` that must all be zero (`E2BIG` otherwise); empty if none.
    pub(crate) zero_tail: core::ops::Range<usize>,
    /// Bytes to write back when the handler answers: never past what either side knows.
    pub(crate) respond: usize,
}

/// Plans the copy of a user argument that announces `user_size` bytes for a command whose
/// mandatory part ends at `min_size` and whose kernel struct is `ksize` bytes.
pub(crate) fn plan(user_size: u32, min_size: usize, ksize: usize) -> Result<CopyPlan, SizeError> {
    // A u32 always fits a usize on the 32- and 64-bit targets the kernel supports; saturating
    // keeps a hypothetical 16-bit target refusing rather than wrapping.
    let user = usize::try_from(user_size).unwrap_or(usize::MAX);
    if user < min_size {
        return Err(SizeError::TooShort);
    }
    let copy = user.min(ksize);
    let zero_tail = if user > ksize { ksize..user } else { 0..0 };
    Ok(CopyPlan {
        copy,
        zero_tail,
        respond: copy,
    })
}
