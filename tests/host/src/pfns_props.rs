// SPDX-License-Identifier: GPL-2.0
//! `src/pages/pfns.rs` against a per-page model, driven the way `Pages::pin`/`unpin` drive it: a pin
//! reserves and fills its uncovered parts a batch at a time and, if an allocation fails, releases
//! what no other user needs; an unpin releases the same way.
//!
//! Checked after every step: the directory is sorted and unique; every chunk is needed by a user
//! (so what the table holds follows what is pinned, not the mapping's length); every user's view
//! reads back the model's PFNs and runs; a failed pin leaves the chunks as they were; and once
//! every user has left, every byte the table allocated is freed.

use crate::pfns::{
    chunk_span,
    PfnTable,
    CHUNK,
    INLINE, //
};
use crate::pure::span::Span;
use kernel::alloc::{
    fail_after,
    live_bytes, //
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// The runs of pages of `span` that no span of `users` covers.
fn uncovered_parts(users: &[Span], span: Span) -> Vec<Span> {
    let mut parts: Vec<Span> = Vec::new();
    for p in span.start..=span.last {
        if users.iter().any(|u| u.start <= p && p <= u.last) {
            continue;
        }
        match parts.last_mut() {
            Some(last) if last.last + 1 == p => last.last = p,
            _ => parts.push(Span { start: p, last: p }),
        }
    }
    parts
}

/// The pin driver of `Pages::pin` over the table alone: `Err` if an allocation failed (then
/// the table is released as `pin` releases it).
fn pin(
    t: &mut PfnTable,
    users: &mut Vec<Span>,
    model: &mut BTreeMap<u64, u64>,
    span: Span,
    batch: u64,
    pfn_of: impl Fn(u64) -> u64,
) -> Result<(), ()> {
    let mut set = Vec::new();
    let rc = (|| -> Result<(), ()> {
        for part in uncovered_parts(users, span) {
            let mut idx = part.start;
            while idx <= part.last {
                let this = Span {
                    start: idx,
                    last: (idx + batch - 1).min(part.last),
                };
                t.reserve(this).map_err(|_| ())?;
                let mut p = this.start;
                while p <= this.last {
                    let slots = t.slots_mut(p, (this.last - p + 1) as usize).ok_or(())?;
                    assert!(!slots.is_empty());
                    for s in slots.iter_mut() {
                        *s = pfn_of(p);
                        set.push((p, *s));
                        p += 1;
                    }
                }
                idx = this.last + 1;
            }
        }
        Ok(())
    })();
    if rc.is_err() {
        release(t, users, span);
        return rc;
    }
    model.extend(set);
    users.push(span);
    Ok(())
}

fn unpin(t: &mut PfnTable, users: &mut Vec<Span>, model: &mut BTreeMap<u64, u64>, i: usize) {
    let span = users.remove(i);
    for p in span.start..=span.last {
        if !users.iter().any(|u| u.start <= p && p <= u.last) {
            model.remove(&p);
        }
    }
    release(t, users, span);
}

/// `release_unused` with the users as a plain list of spans.
fn release(t: &mut PfnTable, users: &[Span], span: Span) {
    t.release_unused(
        !users.is_empty(),
        |chunk| users.iter().any(|u| u.intersects(&chunk)),
        span,
    );
}

/// The invariants of a table at rest (no pin in progress).
fn check(
    t: &PfnTable,
    npages: u64,
    users: &[Span],
    model: &BTreeMap<u64, u64>,
) -> Result<(), TestCaseError> {
    let idx: Vec<usize> = t.chunk_indexes().collect();
    prop_assert!(
        idx.windows(2).all(|w| w[0] < w[1]),
        "directory not sorted: {:?}",
        idx
    );
    for &c in &idx {
        let s = chunk_span(npages, c);
        prop_assert!(s.last < npages);
        prop_assert!(
            users.iter().any(|u| u.intersects(&s)),
            "chunk {} kept with no user",
            c
        );
    }
    let (chunks, bytes) = t.footprint();
    prop_assert_eq!(chunks, idx.len());
    if users.is_empty() {
        prop_assert_eq!(bytes, 0);
    }
    for u in users {
        let v = t.view(*u);
        prop_assert!(v.is_some(), "no view of user {:?}", u);
        let v = v.unwrap();
        prop_assert_eq!(v.len() as u64, u.len());
        for (i, p) in (u.start..=u.last).enumerate() {
            prop_assert_eq!(v.get(i), model.get(&p).copied(), "page {}", p);
            prop_assert_eq!(t.get(p), model.get(&p).copied());
        }
        prop_assert_eq!(v.get(v.len()), None);
        // Runs: maximal, contiguous, and they tile the span.
        let mut i = 0;
        while i < v.len() {
            let (first, n) = v.run_at(i).unwrap();
            prop_assert!(n >= 1 && i + n <= v.len());
            for k in 0..n {
                prop_assert_eq!(v.get(i + k), Some(first + k as u64));
            }
            if i + n < v.len() {
                prop_assert_ne!(
                    v.get(i + n),
                    Some(first + n as u64),
                    "run at {} not maximal",
                    i
                );
            }
            i += n;
        }
        prop_assert_eq!(v.run_at(v.len()), None);
        prop_assert_eq!(v.iter().count(), v.len());
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    /// Pin `[start, start + len)` (clamped), in batches of `batch`, PFN runs of `run`, the
    /// `fail`-th allocation failing if set.
    Pin {
        start: u64,
        len: u64,
        batch: u64,
        run: u64,
        fail: Option<usize>,
    },
    Unpin(usize),
}

fn op(npages: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..npages, 1u64..3 * CHUNK as u64, 1u64..2 * CHUNK as u64, 1u64..700,
              prop::option::weighted(0.3, 0usize..6))
            .prop_map(|(start, len, batch, run, fail)| Op::Pin { start, len, batch, run, fail }),
        2 => (0usize..8).prop_map(Op::Unpin),
    ]
}

fn run_ops(npages: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let base = live_bytes();
    let mut t = PfnTable::new(npages);
    let mut users = Vec::new();
    let mut model = BTreeMap::new();
    for (gen, op) in ops.into_iter().enumerate() {
        match op {
            Op::Pin {
                start,
                len,
                batch,
                run,
                fail,
            } => {
                let span = Span {
                    start,
                    last: (start + len - 1).min(npages - 1),
                };
                let before: Vec<usize> = t.chunk_indexes().collect();
                let gen = gen as u64;
                fail_after(fail);
                let rc = pin(&mut t, &mut users, &mut model, span, batch, |p| {
                    // Physically contiguous runs of `run` pages, each run elsewhere.
                    (p / run) * 1_000_000 + gen * 10_000_000_000 + p % run
                });
                fail_after(None);
                if rc.is_err() {
                    prop_assert!(fail.is_some(), "a pin failed with no failure injected");
                    let after: Vec<usize> = t.chunk_indexes().collect();
                    prop_assert_eq!(&before, &after, "a failed pin changed the chunks");
                }
            }
            Op::Unpin(i) => {
                if !users.is_empty() {
                    let i = i % users.len();
                    unpin(&mut t, &mut users, &mut model, i);
                }
            }
        }
        check(&t, npages, &users, &model)?;
    }
    while !users.is_empty() {
        unpin(&mut t, &mut users, &mut model, 0);
        check(&t, npages, &users, &model)?;
    }
    prop_assert_eq!(live_bytes(), base, "bytes left allocated with no user");
    drop(t);
    prop_assert_eq!(live_bytes(), base);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn table_matches_model(npages in 1u64..6 * CHUNK as u64,
                           ops in prop::collection::vec(op(6 * CHUNK as u64), 0..24)) {
        let ops = ops.into_iter().map(|o| match o {
            Op::Pin { start, len, batch, run, fail } =>
                Op::Pin { start: start % npages, len, batch, run, fail },
            o => o,
        }).collect();
        run_ops(npages, ops)?;
    }

    #[test]
    fn small_tables_stay_inline(npages in 1u64..=INLINE as u64,
                                ops in prop::collection::vec(op(INLINE as u64), 0..16)) {
        let ops = ops.into_iter().map(|o| match o {
            Op::Pin { start, len, batch, run, fail } =>
                Op::Pin { start: start % npages, len: len % 4 + 1, batch, run, fail },
            o => o,
        }).collect();
        run_ops(npages, ops)?;
    }

    /// A table of a 64 TiB mapping: pins anywhere cost the chunks they touch, nothing more.
    #[test]
    fn huge_table_costs_what_is_pinned(spans in prop::collection::vec((0u64..1 << 34, 1u64..4 * CHUNK as u64), 1..6)) {
        let npages = 1u64 << 34;
        let base = live_bytes();
        let mut t = PfnTable::new(npages);
        let mut users = Vec::new();
        let mut model = BTreeMap::new();
        for (start, len) in spans {
            let span = Span { start, last: (start + len - 1).min(npages - 1) };
            pin(&mut t, &mut users, &mut model, span, 8192, |p| p).unwrap();
        }
        check(&t, npages, &users, &model)?;
        let touched: std::collections::BTreeSet<u64> = users
            .iter()
            .flat_map(|u| (u.start / CHUNK as u64)..=(u.last / CHUNK as u64))
            .collect();
        let (chunks, bytes) = t.footprint();
        prop_assert_eq!(chunks, touched.len());
        prop_assert!(bytes <= touched.len() * CHUNK * 8);
        // The directory and the chunks, with the directory's doubling: within twice the chunks'
        // entries plus the chunks.
        prop_assert!(live_bytes() - base <= bytes + 2 * 32 * touched.len() + 64);
        while !users.is_empty() {
            unpin(&mut t, &mut users, &mut model, 0);
        }
        prop_assert_eq!(live_bytes(), base);
    }
}

/// The last page of a 64 TiB mapping: one chunk, cut to the one page it covers... of a mapping
/// whose length is not a multiple of a chunk; a whole chunk otherwise.
#[test]
fn last_page_of_a_huge_mapping() {
    let base = live_bytes();
    for npages in [1u64 << 34, (1u64 << 34) + 1] {
        let mut t = PfnTable::new(npages);
        let last = Span {
            start: npages - 1,
            last: npages - 1,
        };
        t.reserve(last).unwrap();
        t.set(npages - 1, 42).unwrap();
        assert_eq!(t.get(npages - 1), Some(42));
        assert_eq!(t.view(last).unwrap().get(0), Some(42));
        let (chunks, bytes) = t.footprint();
        assert_eq!(chunks, 1);
        assert_eq!(
            bytes,
            if npages % CHUNK as u64 == 0 {
                CHUNK * 8
            } else {
                8
            }
        );
        // Nothing else exists: a view across a missing chunk is refused.
        assert!(t
            .view(Span {
                start: npages - 1 - CHUNK as u64,
                last: npages - 1
            })
            .is_none());
        assert!(t.view(Span { start: 0, last: 0 }).is_none());
        assert_eq!(t.get(0), None);
        release(&mut t, &[], last);
        assert_eq!(t.footprint(), (0, 0));
    }
    assert_eq!(live_bytes(), base);
}

/// Out of range spans are refused without allocating.
#[test]
fn reserve_refuses_outside_the_table() {
    let base = live_bytes();
    let mut t = PfnTable::new(1000);
    assert!(t
        .reserve(Span {
            start: 999,
            last: 1000
        })
        .is_err());
    assert!(t.reserve(Span { start: 5, last: 4 }).is_err());
    assert_eq!(live_bytes(), base);
    assert!(t
        .view(Span {
            start: 0,
            last: 1000
        })
        .is_none());
}
