// SPDX-License-Identifier: GPL-2.0
//! Property tests for `pure::cover` against a per-page model: a page is uncovered exactly when
//! no user span holds it, and the reported parts are maximal, sorted and disjoint.

use crate::pure::cover::{
    for_each_uncovered,
    uncovered_len, //
};
use crate::pure::span::Span;
use proptest::prelude::*;

const N: u64 = 256;

fn span() -> impl Strategy<Value = Span> {
    (0..N, 1..=64u64).prop_map(|(start, len)| Span {
        start,
        last: (start + len - 1).min(N - 1),
    })
}

proptest! {
    #[test]
    fn parts_are_exactly_the_uncovered_pages(
        users in prop::collection::vec(span(), 0..8),
        range in span(),
    ) {
        let covered = |p: u64| users.iter().any(|u| u.start <= p && p <= u.last);
        let mut parts = Vec::new();
        for_each_uncovered::<()>(&users, range, |s| {
            parts.push(s);
            Ok(())
        })
        .unwrap();
        let mut from_parts = vec![false; N as usize];
        for (i, s) in parts.iter().enumerate() {
            prop_assert!(range.contains(s));
            if i > 0 {
                // Sorted, disjoint and maximal: a covered page separates two parts.
                prop_assert!(parts[i - 1].last + 1 < s.start);
            }
            for p in s.start..=s.last {
                from_parts[p as usize] = true;
            }
        }
        for p in range.start..=range.last {
            prop_assert_eq!(from_parts[p as usize], !covered(p), "page {}", p);
        }
        let model = (range.start..=range.last).filter(|&p| !covered(p)).count() as u64;
        prop_assert_eq!(uncovered_len(&users, range), model);
    }

    #[test]
    fn an_error_stops_the_walk(users in prop::collection::vec(span(), 0..8), range in span()) {
        let mut calls = 0;
        let r = for_each_uncovered(&users, range, |_| {
            calls += 1;
            Err(())
        });
        prop_assert!(calls <= 1);
        prop_assert_eq!(r.is_err(), calls == 1);
    }
}

#[test]
fn a_range_at_the_top_of_the_space_ends() {
    let users = [Span {
        start: 10,
        last: u64::MAX,
    }];
    let range = Span {
        start: 0,
        last: u64::MAX,
    };
    let mut parts = Vec::new();
    for_each_uncovered::<()>(&users, range, |s| {
        parts.push(s);
        Ok(())
    })
    .unwrap();
    assert_eq!(parts, [Span { start: 0, last: 9 }]);
    assert_eq!(uncovered_len(&[], range), u64::MAX);
}
