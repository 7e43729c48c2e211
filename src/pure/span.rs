// SPDX-License-Identifier: GPL-2.0
//! Inclusive IOVA spans and the walk over used and free runs of a set of them.
//!
//! Upstream walks interval trees with `interval_tree_span_iter` and `iopt_double_span`; we need
//! one primitive from whatever holds the spans ([`SpanSet::first_intersecting`]) and build the
//! walks on it. The kernel glue implements the trait over its trees, the host tests over
//! `BTreeMap` and plain slices, and both share the walks below.

/// `[start, last]`, both inclusive, so a span can end at `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u64,
    pub(crate) last: u64,
}

impl Span {
    /// `[start, start + length - 1]`; `None` for an empty or overflowing range.
    pub(crate) fn from_len(start: u64, length: u64) -> Option<Self> {
        let last = start.checked_add(length.checked_sub(1)?)?;
        Some(Self { start, last })
    }

    pub(crate) fn intersects(&self, other: &Span) -> bool {
        self.start <= other.last && other.start <= self.last
    }

    pub(crate) fn contains(&self, other: &Span) -> bool {
        self.start <= other.start && other.last <= self.last
    }

    /// Number of bytes, saturating at `u64::MAX` for the full space.
    pub(crate) fn len(&self) -> u64 {
        (self.last - self.start).saturating_add(1)
    }
}

/// A set of spans, possibly overlapping (reserved ranges may).
pub(crate) trait SpanSet {
    /// Of the spans intersecting `range`, the one with the lowest start.
    fn first_intersecting(&self, range: Span) -> Option<Span>;

    fn intersects(&self, range: Span) -> bool {
        self.first_intersecting(range).is_some()
    }
}

impl<T: SpanSet + ?Sized> SpanSet for &T {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        (**self).first_intersecting(range)
    }
}

/// Two sets seen as one: what upstream's double span iterator walks for "free" IOVA.
pub(crate) struct Union<'a, A: ?Sized, B: ?Sized>(pub(crate) &'a A, pub(crate) &'a B);

impl<A: SpanSet + ?Sized, B: SpanSet + ?Sized> SpanSet for Union<'_, A, B> {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        match (
            self.0.first_intersecting(range),
            self.1.first_intersecting(range),
        ) {
            (Some(a), Some(b)) => Some(if b.start < a.start { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// The empty set: an IOAS with no allowed ranges, no reservations or no areas.
pub(crate) struct Empty;

impl SpanSet for Empty {
    fn first_intersecting(&self, _range: Span) -> Option<Span> {
        None
    }
}

/// A maximal run inside the walked range: covered by the set, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    Used(Span),
    Hole(Span),
}

/// Walks `range` as alternating maximal used and hole runs, in ascending order. Spans that
/// overlap or touch make one used run; used runs are clipped to `range`.
pub(crate) struct Runs<'a, S: SpanSet + ?Sized> {
    set: &'a S,
    /// Next address to classify, `None` once the run ending at `last` was produced.
    pos: Option<u64>,
    last: u64,
}

pub(crate) fn runs<S: SpanSet + ?Sized>(set: &S, range: Span) -> Runs<'_, S> {
    Runs {
        set,
        pos: Some(range.start),
        last: range.last,
    }
}

impl<S: SpanSet + ?Sized> Iterator for Runs<'_, S> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        let pos = self.pos?;
        let rest = Span {
            start: pos,
            last: self.last,
        };
        let run = match self.set.first_intersecting(rest) {
            None => Run::Hole(rest),
            // `pos` is covered: extend over every span that touches or overlaps the run so far.
            Some(first) if first.start <= pos => {
                let mut end = first.last.min(self.last);
                while end < self.last {
                    let next = end + 1;
                    match self.set.first_intersecting(Span {
                        start: next,
                        last: next,
                    }) {
                        Some(s) => end = s.last.min(self.last),
                        None => break,
                    }
                }
                Run::Used(Span {
                    start: pos,
                    last: end,
                })
            }
            Some(first) => Run::Hole(Span {
                start: pos,
                last: first.start - 1,
            }),
        };
        let end = match run {
            Run::Used(s) | Run::Hole(s) => s.last,
        };
        // Stop after the run holding `last`; never compute `last + 1` (it may be u64::MAX).
        self.pos = if end >= self.last {
            None
        } else {
            Some(end + 1)
        };
        Some(run)
    }
}

/// The hole runs of `set` within `range`.
pub(crate) fn holes<S: SpanSet + ?Sized>(set: &S, range: Span) -> impl Iterator<Item = Span> + '_ {
    runs(set, range).filter_map(|r| match r {
        Run::Hole(s) => Some(s),
        Run::Used(_) => None,
    })
}

/// The used runs of `set` within `range`.
pub(crate) fn used<S: SpanSet + ?Sized>(set: &S, range: Span) -> impl Iterator<Item = Span> + '_ {
    runs(set, range).filter_map(|r| match r {
        Run::Used(s) => Some(s),
        Run::Hole(_) => None,
    })
}

/// Spans in a slice, any order, overlaps allowed: a linear scan, for the handful of reserved
/// ranges a device or domain brings and for test fixtures.
impl SpanSet for [Span] {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        self.iter()
            .filter(|s| s.intersects(&range))
            .min_by_key(|s| s.start)
            .copied()
    }
}
