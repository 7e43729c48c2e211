// SPDX-License-Identifier: GPL-2.0
//! Tests of `pure::ucmd`, the ioctl argument size rule (kept out of `src/` with the other host
//! tests).

use crate::pure::ucmd::*;

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
