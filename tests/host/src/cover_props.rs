// SPDX-License-Identifier: GPL-2.0
//! Property tests for `pure::cover` against a naive model (the list of user spans, as the module
//! kept them before, and a per-page count): random sequences of adds, removes and splits must
//! agree with the model on every page, keep the map's invariants, insert exactly what they said
//! they would, and cost a bounded number of map operations however many users there are.

use crate::pure::cover::{
    add,
    any_user,
    covers_any,
    for_each_uncovered,
    inserts_for_add,
    inserts_for_replace,
    is_user,
    remove,
    replace,
    uncovered_len,
    Piece,
    Pieces,
    ReplaceError, //
};
use crate::pure::span::Span;
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::BTreeMap;

const N: u64 = 256;

/// A `BTreeMap` of pieces that counts what is asked of it.
#[derive(Default, Clone, Debug)]
struct Map {
    map: BTreeMap<u64, Piece>,
    lookups: Cell<u64>,
    inserts: u64,
    removes: u64,
}

impl Pieces for Map {
    fn at_or_below(&self, p: u64) -> Option<(u64, Piece)> {
        self.lookups.set(self.lookups.get() + 1);
        self.map.range(..=p).next_back().map(|(&s, &pc)| (s, pc))
    }
    fn at_or_above(&self, p: u64) -> Option<(u64, Piece)> {
        self.lookups.set(self.lookups.get() + 1);
        self.map.range(p..).next().map(|(&s, &pc)| (s, pc))
    }
    fn set(&mut self, start: u64, piece: Piece) {
        let slot = self.map.get_mut(&start).expect("set of a missing piece");
        *slot = piece;
    }
    fn insert(&mut self, start: u64, piece: Piece) {
        self.inserts += 1;
        assert!(
            self.map.insert(start, piece).is_none(),
            "insert over a piece"
        );
    }
    fn remove(&mut self, start: u64) {
        self.removes += 1;
        assert!(
            self.map.remove(&start).is_some(),
            "remove of a missing piece"
        );
    }
}

impl Map {
    /// Map operations since the last call.
    fn take_ops(&mut self) -> u64 {
        let n = self.lookups.get() + self.inserts + self.removes;
        self.lookups.set(0);
        self.inserts = 0;
        self.removes = 0;
        n
    }
}

/// The naive model: every user span, in a list.
#[derive(Default, Clone, Debug)]
struct Model(Vec<Span>);

impl Model {
    fn count(&self, p: u64) -> u64 {
        self.0
            .iter()
            .filter(|u| u.start <= p && p <= u.last)
            .count() as u64
    }
}

/// Checks the invariants of `pieces.rs`'s doc and that every page's count is the model's.
fn check(map: &Map, model: &Model) -> Result<(), TestCaseError> {
    let mut prev: Option<(u64, Piece)> = None;
    for (&s, pc) in &map.map {
        prop_assert!(s <= pc.last, "piece {} {:?} is empty", s, pc);
        prop_assert!(pc.users >= 1, "piece {} {:?} has no user", s, pc);
        if let Some((ps, ppc)) = prev {
            prop_assert!(ppc.last < s, "pieces {} and {} overlap", ps, s);
            if ppc.last + 1 == s {
                prop_assert!(ppc.ends + pc.starts > 0, "needless boundary at {}", s);
            }
        }
        prev = Some((s, *pc));
    }
    // Per page: the count and the starts and ends that explain each change of it.
    let count = |p: u64| {
        map.map
            .range(..=p)
            .next_back()
            .filter(|(_, pc)| pc.last >= p)
            .map_or(0, |(_, pc)| pc.users)
    };
    for p in 0..N + 1 {
        prop_assert_eq!(count(p), model.count(p), "users of page {}", p);
        let starts = model.0.iter().filter(|u| u.start == p).count() as u64;
        let ends = model.0.iter().filter(|u| u.last + 1 == p).count() as u64;
        let here = map.map.get(&p).map_or(0, |pc| pc.starts);
        let before = p
            .checked_sub(1)
            .and_then(|b| map.map.range(..=b).next_back())
            .filter(|(_, pc)| p >= 1 && pc.last == p - 1)
            .map_or(0, |(_, pc)| pc.ends);
        prop_assert_eq!(here, starts, "users starting at {}", p);
        prop_assert_eq!(before, ends, "users ending before {}", p);
    }
    prop_assert!(
        map.map.len() <= 2 * model.0.len(),
        "{} pieces",
        map.map.len()
    );
    Ok(())
}

fn span() -> impl Strategy<Value = Span> {
    (0..N, 1..=64u64).prop_map(|(start, len)| Span {
        start,
        last: (start + len - 1).min(N - 1),
    })
}

#[derive(Debug, Clone)]
enum Op {
    Add(Span),
    /// Removes the model's user at this index (modulo its length).
    Remove(usize),
    /// Splits the model's user at this index at this offset (modulo its length), with the two
    /// parts sharing a page if the flag says so.
    Split(usize, u64, bool),
    /// Removes a span that may be no user at all.
    RemoveAny(Span),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => span().prop_map(Op::Add),
        3 => any::<usize>().prop_map(Op::Remove),
        1 => (any::<usize>(), any::<u64>(), any::<bool>()).prop_map(|(i, at, o)| Op::Split(i, at, o)),
        1 => span().prop_map(Op::RemoveAny),
    ]
}

/// The model's answer to "which parts of `range` does no user cover".
fn model_uncovered(model: &Model, range: Span) -> Vec<Span> {
    let mut parts: Vec<Span> = Vec::new();
    for p in range.start..=range.last {
        if model.count(p) != 0 {
            continue;
        }
        match parts.last_mut() {
            Some(s) if s.last + 1 == p => s.last = p,
            _ => parts.push(Span { start: p, last: p }),
        }
    }
    parts
}

fn walk(map: &Map, range: Span) -> Vec<Span> {
    let mut parts = Vec::new();
    for_each_uncovered::<()>(map, range, |s| {
        parts.push(s);
        Ok(())
    })
    .unwrap();
    parts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn sequences_agree_with_the_model(ops in prop::collection::vec(op(), 1..60), probe in span()) {
        let mut map = Map::default();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Add(s) => {
                    let want = inserts_for_add(&map, s);
                    // What the pin of this user has to pin: the uncovered parts, before it joins.
                    prop_assert_eq!(walk(&map, s), model_uncovered(&model, s));
                    map.inserts = 0;
                    add(&mut map, s);
                    prop_assert_eq!(map.inserts, want as u64, "inserts of add {:?}", s);
                    model.0.push(s);
                }
                Op::Remove(i) => {
                    if model.0.is_empty() {
                        continue;
                    }
                    let s = model.0.remove(i % model.0.len());
                    prop_assert!(is_user(&map, s));
                    map.inserts = 0;
                    prop_assert!(remove(&mut map, s));
                    prop_assert_eq!(map.inserts, 0);
                    // What the unpin of this user has to unpin.
                    let freed: Vec<Span> = walk(&map, s);
                    prop_assert_eq!(freed, model_uncovered(&model, s));
                }
                Op::Split(i, at, overlap) => {
                    if model.0.is_empty() {
                        continue;
                    }
                    let i = i % model.0.len();
                    let whole = model.0[i];
                    if whole.len() < 2 {
                        continue;
                    }
                    let mid = whole.start + at % (whole.len() - 1);
                    let a = Span { start: whole.start, last: mid };
                    let b = Span { start: if overlap { mid.max(whole.start + 1) } else { mid + 1 }, last: whole.last };
                    let want = inserts_for_replace(&map, a, b);
                    let before: Vec<Span> = walk(&map, Span { start: 0, last: N });
                    map.inserts = 0;
                    prop_assert_eq!(replace(&mut map, whole, a, b), Ok(()));
                    prop_assert!(map.inserts <= want as u64);
                    // A split pins and unpins nothing.
                    prop_assert_eq!(walk(&map, Span { start: 0, last: N }), before);
                    model.0[i] = a;
                    model.0.push(b);
                }
                Op::RemoveAny(s) => {
                    // Removable by the model's lights: covered throughout, a user starting at
                    // its first page and one ending at its last (which start goes with which
                    // end does not matter for coverage).
                    let removable = (s.start..=s.last).all(|p| model.count(p) != 0)
                        && model.0.iter().any(|u| u.start == s.start)
                        && model.0.iter().any(|u| u.last == s.last);
                    prop_assert_eq!(is_user(&map, s), removable, "is_user of {:?}", s);
                    if removable {
                        // The module only removes users it added; a span that only pairs a
                        // start of one with the end of another is left alone here.
                        if let Some(i) = model.0.iter().position(|u| *u == s) {
                            model.0.remove(i);
                            prop_assert!(remove(&mut map, s));
                        }
                        continue;
                    }
                    let snapshot = map.map.clone();
                    prop_assert!(!remove(&mut map, s), "remove of {:?}", s);
                    prop_assert_eq!(&map.map, &snapshot);
                }
            }
            check(&map, &model)?;
            prop_assert_eq!(walk(&map, probe), model_uncovered(&model, probe));
            prop_assert_eq!(uncovered_len(&map, probe), model_uncovered(&model, probe).iter().map(|s| s.len()).sum::<u64>());
            prop_assert_eq!(covers_any(&map, probe), uncovered_len(&map, probe) < probe.len());
        }
        // Every user goes, one `any_user` at a time, and then nothing is left.
        while let Some(s) = any_user(&map) {
            prop_assert!(remove(&mut map, s));
        }
        prop_assert!(map.map.is_empty());
    }

    #[test]
    fn an_error_stops_the_walk(users in prop::collection::vec(span(), 0..8), range in span()) {
        let mut map = Map::default();
        for u in users {
            add(&mut map, u);
        }
        let mut calls = 0;
        let r = for_each_uncovered(&map, range, |_| {
            calls += 1;
            Err(())
        });
        prop_assert!(calls <= 1);
        prop_assert_eq!(r.is_err(), calls == 1);
    }
}

#[test]
fn a_range_at_the_top_of_the_space_ends() {
    let mut map = Map::default();
    let top = Span {
        start: 10,
        last: u64::MAX,
    };
    let all = Span {
        start: 0,
        last: u64::MAX,
    };
    assert_eq!(uncovered_len(&map, all), u64::MAX);
    assert_eq!(inserts_for_add(&map, top), 1);
    add(&mut map, top);
    add(&mut map, all);
    assert_eq!(walk(&map, all), []);
    assert!(remove(&mut map, all));
    assert_eq!(walk(&map, all), [Span { start: 0, last: 9 }]);
    assert!(remove(&mut map, top));
    assert!(map.map.is_empty());
}

#[test]
fn a_split_must_cover_the_whole() {
    let mut map = Map::default();
    let whole = Span { start: 0, last: 9 };
    add(&mut map, whole);
    let a = Span { start: 0, last: 3 };
    for b in [
        Span { start: 5, last: 9 }, // a hole at page 4
        Span { start: 4, last: 8 }, // short of the end
        Span { start: 0, last: 9 }, // not a proper part
    ] {
        assert_eq!(replace(&mut map, whole, a, b), Err(ReplaceError::NotASplit));
    }
    assert_eq!(
        replace(
            &mut map,
            Span { start: 0, last: 8 },
            a,
            Span { start: 4, last: 8 }
        ),
        Err(ReplaceError::NotAUser)
    );
    assert!(is_user(&map, whole));
}

/// Upper bound on map operations per add or remove with `k` pieces in the span: a constant per
/// piece, none per other user.
const OPS_PER_PIECE: u64 = 16;

/// 20000 per-page users in a scattered order, then the same page 20000 times (access pins, or
/// COPYs of one area), then all removed: each operation touches only the pieces of its span.
/// The list scan this replaces made each one cost as much as there were users.
#[test]
fn many_users_cost_what_their_spans_meet() {
    const USERS: u64 = 20000;
    let mut map = Map::default();
    // A stride coprime with USERS visits every page once, out of order.
    let page = |i: u64| (i * 7919) % USERS;
    let mut worst = 0;
    for i in 0..USERS {
        let s = Span {
            start: page(i),
            last: page(i),
        };
        map.take_ops();
        let _ = uncovered_len(&map, s);
        let _ = inserts_for_add(&map, s);
        add(&mut map, s);
        worst = worst.max(map.take_ops());
    }
    assert!(
        worst <= OPS_PER_PIECE,
        "{} map operations for one pin",
        worst
    );
    assert_eq!(map.map.len() as u64, USERS);
    let same = Span { start: 5, last: 5 };
    for _ in 0..USERS {
        map.take_ops();
        add(&mut map, same);
        worst = worst.max(map.take_ops());
    }
    assert!(
        worst <= OPS_PER_PIECE,
        "{} map operations for one pin",
        worst
    );
    for i in 0..USERS {
        let s = Span {
            start: page(i),
            last: page(i),
        };
        map.take_ops();
        assert!(remove(&mut map, s));
        let _ = uncovered_len(&map, s);
        worst = worst.max(map.take_ops());
    }
    for _ in 0..USERS {
        map.take_ops();
        assert!(remove(&mut map, same));
        worst = worst.max(map.take_ops());
    }
    assert!(
        worst <= OPS_PER_PIECE,
        "{} map operations for one unpin",
        worst
    );
    assert!(map.map.is_empty());
}
