// SPDX-License-Identifier: GPL-2.0
//! Property tests for `pure::batch` against a flat list of PFNs.

use crate::pure::batch::{
    Batch,
    Kind,
    MAX_NPFNS, //
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(u64, u32, bool),
    RemoveLast(u32),
    ClearCarry(u32),
    SkipCarry(u64),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..48, 0u32..8, prop::bool::weighted(0.1)).prop_map(|(p, n, m)| Op::Add(p, n, m)),
        1 => (0u32..6).prop_map(Op::RemoveLast),
        1 => (0u32..10).prop_map(Op::ClearCarry),
        1 => (0u64..10).prop_map(Op::SkipCarry),
        1 => Just(Op::Clear),
    ]
}

fn flat(b: &Batch<'_>) -> Vec<u64> {
    b.runs().flat_map(|(p, n)| (p..p + u64::from(n))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, .. ProptestConfig::default() })]

    #[test]
    fn batch_matches_flat_model(cap in 1usize..6, ops in prop::collection::vec(op(), 0..40)) {
        let mut pfns = vec![0u64; cap];
        let mut npfns = vec![0u32; cap];
        let mut b = Batch::new(&mut pfns, &mut npfns);
        let mut model: Vec<u64> = Vec::new();
        for op in ops {
            let last_run = b.runs().last();
            match op {
                Op::Add(pfn, nr, mmio) => {
                    let kind = if mmio { Kind::Mmio } else { Kind::CpuMemory };
                    let runs = b.runs().count();
                    let mergeable = last_run.is_some_and(|(p, n)| p + u64::from(n) == pfn && nr <= MAX_NPFNS - n);
                    let want = nr == 0
                        || ((b.is_empty() || b.kind() == Some(kind)) && (mergeable || runs < cap));
                    prop_assert_eq!(b.add(pfn, nr, kind), want);
                    if want {
                        model.extend(pfn..pfn + u64::from(nr));
                    }
                }
                Op::RemoveLast(nr) => {
                    b.remove_last(nr);
                    if let Some((_, n)) = last_run {
                        let k = nr.min(n) as usize;
                        model.truncate(model.len() - k);
                    }
                }
                Op::ClearCarry(keep) => {
                    b.clear_carry(keep);
                    model = match last_run {
                        Some((p, n)) if keep > 0 => {
                            let k = keep.min(n);
                            (p + u64::from(n - k)..p + u64::from(n)).collect()
                        }
                        _ => Vec::new(),
                    };
                }
                Op::SkipCarry(skip) => {
                    // Only meaningful on a carried (single-run) batch.
                    if b.runs().count() <= 1 {
                        b.skip_carry(skip);
                        let k = (skip as usize).min(model.len());
                        model.drain(..k);
                    }
                }
                Op::Clear => {
                    b.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(flat(&b), model.clone());
            prop_assert_eq!(b.total(), model.len() as u64);
            let runs: Vec<(u64, u32)> = b.runs().collect();
            prop_assert!(runs.len() <= cap);
            prop_assert!(runs.iter().all(|&(_, n)| n > 0), "empty run kept");
        }
    }
}

#[test]
fn long_runs_split_at_the_count_limit() {
    let mut pfns = [0u64; 2];
    let mut npfns = [0u32; 2];
    let mut b = Batch::new(&mut pfns, &mut npfns);
    assert!(b.add(100, MAX_NPFNS - 1, Kind::CpuMemory));
    assert!(b.add(100 + u64::from(MAX_NPFNS - 1), 2, Kind::CpuMemory));
    let runs: Vec<_> = b.runs().collect();
    assert_eq!(
        runs,
        vec![(100, MAX_NPFNS - 1), (100 + u64::from(MAX_NPFNS - 1), 2)]
    );
    assert_eq!(b.total(), u64::from(MAX_NPFNS) + 1);
    // Full, and the next page is not contiguous with a run that has room: refused.
    assert!(!b.add(7, 1, Kind::CpuMemory));
    // A run that would wrap the PFN space is refused outright.
    b.clear();
    assert!(!b.add(u64::MAX, 1, Kind::CpuMemory));
    assert!(b.add(u64::MAX - 1, 1, Kind::CpuMemory));
}

#[test]
fn one_kind_per_batch() {
    let mut pfns = [0u64; 4];
    let mut npfns = [0u32; 4];
    let mut b = Batch::new(&mut pfns, &mut npfns);
    assert!(b.add(1, 1, Kind::Mmio));
    assert!(!b.add(5, 1, Kind::CpuMemory));
    b.clear();
    assert!(b.add(5, 1, Kind::CpuMemory));
}
