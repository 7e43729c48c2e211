// SPDX-License-Identifier: GPL-2.0
//! Reference models for the property tests: the obvious, slow representation of the same state,
//! so a test compares two independent answers instead of one algorithm with itself.

use crate::pure::span::{
    Span,
    SpanSet, //
};
use std::collections::BTreeMap;

/// Non-overlapping spans keyed by start, as the module keeps areas in an rbtree.
#[derive(Default, Debug, Clone)]
pub(crate) struct Tree(pub(crate) BTreeMap<u64, u64>);

impl Tree {
    /// Inserts unless it overlaps an existing span.
    pub(crate) fn insert(&mut self, s: Span) -> bool {
        if self.first_intersecting(s).is_some() {
            return false;
        }
        self.0.insert(s.start, s.last);
        true
    }
}

impl SpanSet for Tree {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        // The predecessor may reach into the range; otherwise the first start inside it.
        if let Some((&start, &last)) = self.0.range(..=range.start).next_back() {
            if last >= range.start {
                return Some(Span { start, last });
            }
        }
        self.0
            .range(range.start..)
            .next()
            .filter(|(&start, _)| start <= range.last)
            .map(|(&start, &last)| Span { start, last })
    }
}

/// Coverage of `[0, n)` one address at a time.
pub(crate) struct Bitmap(pub(crate) Vec<bool>);

impl Bitmap {
    pub(crate) fn new(n: usize) -> Self {
        Self(vec![false; n])
    }

    pub(crate) fn cover(&mut self, s: Span) {
        for a in s.start..=s.last {
            if let Some(b) = self.0.get_mut(a as usize) {
                *b = true;
            }
        }
    }

    /// Addresses past the modelled universe are free.
    pub(crate) fn covered(&self, a: u64) -> bool {
        usize::try_from(a)
            .ok()
            .and_then(|i| self.0.get(i))
            .copied()
            .unwrap_or(false)
    }

    pub(crate) fn any_in(&self, s: Span) -> bool {
        (s.start..=s.last.min(self.0.len() as u64)).any(|a| self.covered(a))
    }
}
