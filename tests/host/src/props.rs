// SPDX-License-Identifier: GPL-2.0
//! Property tests for `pure::span` and `pure::iova` against the models in `model.rs`, in a small
//! address universe so the models can check every address.

use crate::model::{
    Bitmap,
    Tree, //
};
use crate::pure::iova::{
    usable_ranges,
    Geometry,
    IovaError,
    IovaSpace, //
};
use crate::pure::span::{
    runs,
    Run,
    Span,
    SpanSet, //
};
use crate::pure::ulong::Ulong;
use proptest::prelude::*;

/// Universe of the models: addresses `[0, N)`.
const N: u64 = 2048;
const GEO: Geometry = Geometry {
    page_size: 16,
    max_align: 128,
    ulong: Ulong { max: u64::MAX },
};

fn span_in(n: u64, max_len: u64) -> impl Strategy<Value = Span> {
    (0..n, 1..=max_len).prop_map(move |(start, len)| Span {
        start,
        last: (start + len - 1).min(n - 1),
    })
}

/// Non-overlapping spans, as a Tree (later overlapping draws are dropped).
fn tree(count: usize, max_len: u64) -> impl Strategy<Value = Tree> {
    prop::collection::vec(span_in(N, max_len), 0..count).prop_map(|v| {
        let mut t = Tree::default();
        for s in v {
            t.insert(s);
        }
        t
    })
}

fn bitmap_of(sets: &[&dyn SpanSet]) -> Bitmap {
    let mut b = Bitmap::new(N as usize);
    for a in 0..N {
        let p = Span { start: a, last: a };
        if sets.iter().any(|s| s.intersects(p)) {
            b.0[a as usize] = true;
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    /// Runs tile the range in order, alternate between used and hole, and agree with the bitmap.
    #[test]
    fn runs_tile_and_alternate(spans in prop::collection::vec(span_in(N, 200), 0..12),
                               range in span_in(N, N)) {
        let set: &[Span] = &spans;
        let bm = bitmap_of(&[&set]);
        let mut next = range.start;
        let mut prev_used: Option<bool> = None;
        let mut done = false;
        for r in runs(set, range) {
            prop_assert!(!done, "run after the end");
            let (s, used) = match r { Run::Used(s) => (s, true), Run::Hole(s) => (s, false) };
            prop_assert_eq!(s.start, next);
            prop_assert!(s.last >= s.start && s.last <= range.last);
            prop_assert_ne!(prev_used, Some(used), "two runs of one kind in a row");
            for a in s.start..=s.last {
                prop_assert_eq!(bm.covered(a), used, "address {} misclassified", a);
            }
            prev_used = Some(used);
            if s.last == range.last { done = true; } else { next = s.last + 1; }
        }
        prop_assert!(done, "runs stopped before the end of the range");
    }

    /// The tree's `first_intersecting` is the lowest-start intersecting span.
    #[test]
    fn tree_first_intersecting(t in tree(16, 150), q in span_in(N, 300)) {
        let want = t.0.iter().map(|(&start, &last)| Span { start, last })
            .filter(|s| s.intersects(&q)).min_by_key(|s| s.start);
        prop_assert_eq!(t.first_intersecting(q), want);
    }

    /// The kernel's choice is free, allowed, in the window, aligned, and (for page-aligned
    /// memory and more than one byte) the lowest such address: checked by brute force.
    #[test]
    fn alloc_is_lowest_free_fit(
        allowed in prop_oneof![Just(Tree::default()), tree(5, 600)],
        reserved in prop::collection::vec(span_in(N, 100), 0..6),
        areas in tree(12, 120),
        page in 0u64..64, length in 2u64..400,
        alignment in prop_oneof![Just(1u64), Just(16u64)],
    ) {
        let addr = page * GEO.page_size; // page-aligned user memory
        let reserved: &[Span] = &reserved;
        let space = IovaSpace { allowed: &allowed, reserved, areas: &areas, iova_alignment: alignment };
        let busy = bitmap_of(&[&reserved, &areas]);
        let mut align = length.next_power_of_two();
        if addr != 0 { align = align.min(1 << addr.trailing_zeros()); }
        let align = align.min(GEO.max_align);
        let allowed_runs: Vec<Span> = if allowed.0.is_empty() {
            vec![Span { start: GEO.page_size, last: u64::MAX - GEO.page_size }]
        } else {
            crate::pure::span::used(&allowed, Span { start: GEO.page_size, last: u64::MAX - GEO.page_size }).collect()
        };
        let fits = |a: u64| -> bool {
            let Some(s) = Span::from_len(a, length) else { return false };
            allowed_runs.iter().any(|r| r.contains(&s)) && !busy.any_in(s)
        };
        let brute = (0..N + 2 * GEO.max_align + length).step_by(align as usize).find(|&a| fits(a));
        match space.alloc(GEO, addr, length) {
            Ok(iova) => {
                prop_assert!(align >= alignment);
                prop_assert_eq!(iova % align, 0);
                prop_assert!(fits(iova), "{:#x} is not a free allowed fit", iova);
                prop_assert_eq!(Some(iova), brute, "not the lowest fit");
            }
            Err(IovaError::Inval) => prop_assert!(align < alignment),
            Err(IovaError::NoSpace) => prop_assert_eq!(brute, None),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    /// A fixed IOVA is refused exactly when it is misaligned, wraps, or meets reserved (EINVAL
    /// first) or an area (EEXIST); allowed ranges play no part.
    #[test]
    fn fixed_iova_checks(reserved in prop::collection::vec(span_in(N, 100), 0..6),
                         areas in tree(12, 120), iova in 0u64..N, length in 0u64..300,
                         alignment in prop_oneof![Just(1u64), Just(16u64)]) {
        let reserved: &[Span] = &reserved;
        let space = IovaSpace { allowed: &Tree::default(), reserved, areas: &areas, iova_alignment: alignment };
        let got = space.check_fixed(GEO, iova, length);
        if length == 0 || length % alignment != 0 || iova % alignment != 0 {
            prop_assert_eq!(got, Err(IovaError::Inval));
            return Ok(());
        }
        let s = Span::from_len(iova, length).unwrap();
        let want = if bitmap_of(&[&reserved]).any_in(s) {
            Err(IovaError::Inval)
        } else if bitmap_of(&[&areas]).any_in(s) {
            Err(IovaError::Exists)
        } else {
            Ok(s)
        };
        prop_assert_eq!(got, want);
    }

    /// IOVA_RANGES: the holes of the reserved ranges over the whole space, ending at u64::MAX
    /// unless the top is reserved.
    #[test]
    fn usable_ranges_are_reserved_holes(reserved in prop::collection::vec(span_in(N, 300), 0..8)) {
        let set: &[Span] = &reserved;
        let bm = bitmap_of(&[&set]);
        let got: Vec<Span> = usable_ranges(set, GEO.ulong).collect();
        prop_assert_eq!(got.last().map(|s| s.last), Some(u64::MAX));
        for w in got.windows(2) {
            prop_assert!(w[0].last + 1 < w[1].start, "holes touch or overlap");
        }
        for a in 0..N {
            let in_hole = got.iter().any(|s| s.start <= a && a <= s.last);
            prop_assert_eq!(in_hole, !bm.covered(a));
        }
    }
}

#[test]
fn edges_at_the_top_of_the_space() {
    let top = [Span {
        start: u64::MAX - 15,
        last: u64::MAX,
    }];
    let got: Vec<Span> = usable_ranges(&top[..], GEO.ulong).collect();
    assert_eq!(
        got,
        vec![Span {
            start: 0,
            last: u64::MAX - 16
        }]
    );
    let all = [Span {
        start: 0,
        last: u64::MAX,
    }];
    assert_eq!(usable_ranges(&all[..], GEO.ulong).count(), 0);
    assert_eq!(
        Span::from_len(u64::MAX, 1),
        Some(Span {
            start: u64::MAX,
            last: u64::MAX
        })
    );
    assert_eq!(Span::from_len(u64::MAX, 2), None);
    assert_eq!(Span::from_len(5, 0), None);
}

#[test]
fn alloc_rejects_silly_lengths() {
    let none: &[Span] = &[];
    let space = IovaSpace {
        allowed: none,
        reserved: none,
        areas: none,
        iova_alignment: 1,
    };
    assert_eq!(space.alloc(GEO, 0, 0), Err(IovaError::Overflow));
    assert_eq!(space.alloc(GEO, 0, u64::MAX / 2), Err(IovaError::Overflow));
    // Never the first page.
    assert_eq!(space.alloc(GEO, 0, 16), Ok(16));
    // Huge alignment is capped at max_align, so a 1 MiB map of 1 MiB-aligned memory lands at 128.
    assert_eq!(space.alloc(GEO, 1 << 20, 1 << 20), Ok(128));
}

#[test]
fn alloc_or_quirk_keeps_upstream_answer() {
    // Memory at page offset 3 with a one-byte alignment: upstream ORs the offset into the aligned
    // start; the answer is what the C module gives, not "addr mod page".
    let none: &[Span] = &[];
    let space = IovaSpace {
        allowed: none,
        reserved: none,
        areas: none,
        iova_alignment: 1,
    };
    assert_eq!(space.alloc(GEO, 0x1003, 1), Ok(16 | 3));
}
