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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_than_mandatory_is_einval() {
        assert_eq!(plan(7, 8, 12), Err(SizeError::TooShort));
        assert_eq!(plan(0, 4, 4), Err(SizeError::TooShort));
    }

    #[test]
    fn old_abi_copies_what_it_has() {
        let p = plan(8, 8, 12).unwrap();
        assert_eq!((p.copy, p.respond), (8, 8));
        assert!(p.zero_tail.is_empty());
    }

    #[test]
    fn exact_size() {
        let p = plan(12, 8, 12).unwrap();
        assert_eq!((p.copy, p.respond), (12, 12));
        assert!(p.zero_tail.is_empty());
    }

    #[test]
    fn newer_abi_needs_zero_tail() {
        let p = plan(4096, 8, 12).unwrap();
        assert_eq!((p.copy, p.respond), (12, 12));
        assert_eq!(p.zero_tail, 12..4096);
        let p = plan(u32::MAX, 8, 12).unwrap();
        assert_eq!(p.zero_tail.end, usize::try_from(u32::MAX).unwrap());
    }

    #[test]
    fn table_lookup() {
        // _IO(';', 0x80) == 0x3b80
        assert_eq!(table_index(0x3b80, 0x80, 21), Some(0));
        assert_eq!(table_index(0x3b94, 0x80, 21), Some(20));
        assert_eq!(table_index(0x3b95, 0x80, 21), None);
        assert_eq!(table_index(0x3b7f, 0x80, 21), None);
        assert_eq!(table_index(0x3b00, 0x80, 21), None);
    }

    /// Property: for every size triple the plan never copies more than either side has, never
    /// answers past the copy, and asks for a zero tail exactly when the user is longer.
    #[test]
    fn plan_properties_exhaustive_small() {
        for ksize in 4..64usize {
            for min in 4..=ksize {
                for user in 0..200u32 {
                    let u = usize::try_from(user).unwrap();
                    match plan(user, min, ksize) {
                        Err(SizeError::TooShort) => assert!(u < min),
                        Ok(p) => {
                            assert!(u >= min);
                            assert!(p.copy <= ksize && p.copy <= u);
                            assert_eq!(p.respond, p.copy);
                            assert_eq!(!p.zero_tail.is_empty(), u > ksize);
                            if u > ksize {
                                assert_eq!(p.zero_tail, ksize..u);
                            }
                        }
                    }
                }
            }
        }
    }
}
