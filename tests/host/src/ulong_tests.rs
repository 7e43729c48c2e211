// SPDX-License-Identifier: GPL-2.0
//! Tests of `pure::ulong` and of the IOVA choice under a 32-bit `ULONG_MAX`: the checks that keep
//! a `__u64` of the uAPI from being cut short when it becomes an `unsigned long` or `size_t` of
//! the IOMMU API. The 32-bit kernel is modelled by its bound (`Ulong { max: u32::MAX }`) and by
//! narrowing to `u32`; on it, a plain `as` cast would turn each refused value into a different,
//! accepted one, which the tests spell out.

use crate::pure::iova::{
    usable_ranges,
    Geometry,
    IovaError,
    IovaSpace, //
};
use crate::pure::span::Span;
use crate::pure::ulong::{
    RangeError,
    Ulong, //
};
use proptest::prelude::*;

const B32: Ulong = Ulong {
    max: u32::MAX as u64,
};
const B64: Ulong = Ulong { max: u64::MAX };
const PAGE: u64 = 4096;

const GEO32: Geometry = Geometry {
    page_size: PAGE,
    max_align: 2 << 20,
    ulong: B32,
};
const GEO64: Geometry = Geometry {
    page_size: PAGE,
    max_align: 2 << 20,
    ulong: B64,
};

#[test]
fn native_is_the_hosts_usize() {
    assert_eq!(Ulong::NATIVE.max, u64::try_from(usize::MAX).unwrap());
}

/// ioas.c: `if (cmd->iova >= ULONG_MAX || cmd->length >= ULONG_MAX) return -EOVERFLOW;`
#[test]
fn ioctl_args_below_ulong_max() {
    assert_eq!(B32.arg(0xffff_fffe), Ok(0xffff_fffe));
    assert_eq!(B32.arg(0xffff_ffff), Err(RangeError::Overflow));
    // 4 GiB: `as u32` would make it IOVA 0.
    assert_eq!(B32.arg(1 << 32), Err(RangeError::Overflow));
    assert_eq!(B32.arg(u64::MAX), Err(RangeError::Overflow));
    assert_eq!(B64.arg(1 << 32), Ok(1 << 32));
    assert_eq!(B64.arg(u64::MAX - 1), Ok(u64::MAX - 1));
    assert_eq!(B64.arg(u64::MAX), Err(RangeError::Overflow));
}

/// `check_add_overflow(iova, length - 1, &last)` in `unsigned long`.
#[test]
fn spans_end_at_or_below_ulong_max() {
    assert_eq!(B32.span(0x1000, 0), Err(RangeError::Inval));
    assert_eq!(
        B32.span(0xffff_f000, PAGE),
        Ok(Span {
            start: 0xffff_f000,
            last: 0xffff_ffff
        })
    );
    // Crosses 4 GiB: wraps in 32 bits.
    assert_eq!(B32.span(0xffff_f000, 2 * PAGE), Err(RangeError::Overflow));
    assert_eq!(B32.span(1 << 32, PAGE), Err(RangeError::Overflow));
    assert_eq!(B32.span(0, (1 << 32) + PAGE), Err(RangeError::Overflow));
    assert_eq!(
        B64.span(0xffff_f000, 2 * PAGE),
        Ok(Span {
            start: 0xffff_f000,
            last: 0x1_0000_0fff
        })
    );
    assert_eq!(B64.span(u64::MAX, 2), Err(RangeError::Overflow));
    assert_eq!(
        B32.whole(),
        Span {
            start: 0,
            last: 0xffff_ffff
        }
    );
}

/// pages.c: `if (length > SIZE_MAX - PAGE_SIZE || length == 0) return ERR_PTR(-EINVAL);`
#[test]
fn pages_length_leaves_a_page_of_room() {
    assert_eq!(B32.pages_length(0, PAGE), Err(RangeError::Inval));
    assert_eq!(B32.pages_length(0xffff_efff, PAGE), Ok(0xffff_efff));
    assert_eq!(B32.pages_length(0xffff_f000, PAGE), Err(RangeError::Inval));
    // 4 GiB + 4 KiB: `as u32` would make it a 4 KiB mapping.
    assert_eq!(
        B32.pages_length((1 << 32) + PAGE, PAGE),
        Err(RangeError::Inval)
    );
    assert_eq!(B64.pages_length(1 << 32, PAGE), Ok(1 << 32));
    assert_eq!(B64.pages_length(u64::MAX - PAGE, PAGE), Ok(u64::MAX - PAGE));
    assert_eq!(
        B64.pages_length(u64::MAX - PAGE + 1, PAGE),
        Err(RangeError::Inval)
    );
}

#[test]
fn narrow_never_truncates() {
    assert_eq!(
        B32.narrow::<u32>(0xffff_f000, PAGE),
        Ok((0xffff_f000, 0x1000))
    );
    // What `iova as u32, len as u32` would have handed iommu_map(): (0, 0x1000).
    assert_eq!(B32.narrow::<u32>(1 << 32, PAGE), Err(RangeError::Overflow));
    // ... and (0x1000, 0x1000) here.
    assert_eq!(
        B32.narrow::<u32>(PAGE, (1 << 32) + PAGE),
        Err(RangeError::Overflow)
    );
    // A bound wider than the type still cannot truncate: the conversion is checked.
    assert_eq!(B64.narrow::<u32>(1 << 32, PAGE), Err(RangeError::Overflow));
    assert_eq!(B64.narrow::<u64>(1 << 32, PAGE), Ok((1 << 32, PAGE)));
    assert_eq!(B32.narrow::<u32>(0, 0), Err(RangeError::Inval));
}

/// `iommufd_check_iova_range()`: 64-bit sums, then both ends at or below `ULONG_MAX`.
#[test]
fn dirty_range_bounds() {
    assert_eq!(
        B32.dirty_range(0xffff_e000, 2 * PAGE, PAGE, PAGE),
        Ok(Span {
            start: 0xffff_e000,
            last: 0xffff_ffff
        })
    );
    assert_eq!(
        B32.dirty_range(0xffff_f000, 2 * PAGE, PAGE, PAGE),
        Err(RangeError::Overflow)
    );
    assert_eq!(
        B32.dirty_range(1 << 32, PAGE, PAGE, PAGE),
        Err(RangeError::Overflow)
    );
    assert_eq!(
        B64.dirty_range(0xffff_f000, 2 * PAGE, PAGE, PAGE),
        Ok(Span {
            start: 0xffff_f000,
            last: 0x1_0000_0fff
        })
    );
    // Overflow in 64 bits comes first, then alignment, then page size, as upstream.
    assert_eq!(
        B64.dirty_range(u64::MAX, 2, PAGE, PAGE),
        Err(RangeError::Overflow)
    );
    assert_eq!(
        B64.dirty_range(0x800, PAGE, PAGE, PAGE),
        Err(RangeError::Inval)
    );
    assert_eq!(B64.dirty_range(0, PAGE, PAGE, 0), Err(RangeError::Inval));
    assert_eq!(
        B64.dirty_range(PAGE, PAGE, PAGE, 2 * PAGE),
        Err(RangeError::Inval)
    );
    // Length 0 from IOVA 0 wraps to the whole space, as upstream's `length - 1`; in 32 bits
    // that reaches past ULONG_MAX.
    assert_eq!(
        B64.dirty_range(0, 0, PAGE, PAGE),
        Ok(Span {
            start: 0,
            last: u64::MAX
        })
    );
    assert_eq!(B32.dirty_range(0, 0, PAGE, PAGE), Err(RangeError::Overflow));
}

#[test]
fn iova_choice_stays_below_ulong_max() {
    let none: &[Span] = &[];
    let space = IovaSpace {
        allowed: none,
        reserved: none,
        areas: none,
        iova_alignment: 1,
    };
    // `length >= ULONG_MAX / 2` guards roundup_pow_of_two().
    assert_eq!(space.alloc(GEO32, 0, 1 << 31), Err(IovaError::Overflow));
    assert!(space.alloc(GEO64, 0, 1 << 31).is_ok());
    // The window ends a page below ULONG_MAX: with everything below 4 GiB reserved but its last
    // four pages, three fit under a 32-bit ULONG_MAX, four only in 64 bits.
    let reserved = [Span {
        start: 0,
        last: 0xffff_bfff,
    }];
    let r: &[Span] = &reserved;
    let space = IovaSpace {
        allowed: none,
        reserved: r,
        areas: none,
        iova_alignment: 1,
    };
    assert_eq!(space.alloc(GEO32, 0, 3 * PAGE), Ok(0xffff_c000));
    assert_eq!(space.alloc(GEO32, 0, 4 * PAGE), Err(IovaError::NoSpace));
    assert_eq!(space.alloc(GEO64, 0, 4 * PAGE), Ok(0xffff_c000));
    // A fixed IOVA across 4 GiB.
    assert_eq!(
        space.check_fixed(GEO32, 0xffff_f000, 2 * PAGE),
        Err(IovaError::Overflow)
    );
    assert_eq!(
        space.check_fixed(GEO32, 1 << 32, PAGE),
        Err(IovaError::Overflow)
    );
    assert!(space.check_fixed(GEO64, 1 << 32, PAGE).is_ok());
    // IOVA_RANGES ends at ULONG_MAX.
    let got: Vec<Span> = usable_ranges(r, B32).collect();
    assert_eq!(
        got,
        vec![Span {
            start: 0xffff_c000,
            last: 0xffff_ffff
        }]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// Whatever comes in, a range narrowed for a 32-bit kernel either is refused or is exactly
    /// the range asked for, inside `[0, ULONG_MAX]`.
    #[test]
    fn narrow_is_exact_or_refused(iova in prop_oneof![0u64..=u64::MAX, 0xffff_0000u64..0x1_0001_0000],
                                  length in prop_oneof![0u64..=u64::MAX, 0u64..0x2_0000]) {
        match B32.narrow::<u32>(iova, length) {
            Ok((i, l)) => {
                prop_assert_eq!(u64::from(i), iova);
                prop_assert_eq!(u64::from(l), length);
                prop_assert!(length > 0 && iova + (length - 1) <= u64::from(u32::MAX));
            }
            Err(RangeError::Inval) => prop_assert_eq!(length, 0),
            Err(RangeError::Overflow) => prop_assert!(
                length > 0 && iova.checked_add(length - 1).map_or(true, |l| l > u64::from(u32::MAX))
            ),
        }
    }

    /// The IOVA the kernel picks on a 32-bit kernel lies in `[PAGE, ULONG_MAX - PAGE]`.
    #[test]
    fn alloc_32_stays_in_window(addr in 0u64..(1 << 40), length in 1u64..(1 << 33),
                                top in 0u64..(1 << 32)) {
        let none: &[Span] = &[];
        let reserved = [Span { start: 0, last: top }];
        let r: &[Span] = &reserved;
        let space = IovaSpace { allowed: none, reserved: r, areas: none, iova_alignment: 1 };
        if let Ok(iova) = space.alloc(GEO32, addr, length) {
            prop_assert!(iova >= PAGE && iova > top);
            prop_assert!(iova + (length - 1) <= u64::from(u32::MAX) - PAGE);
        }
    }
}
