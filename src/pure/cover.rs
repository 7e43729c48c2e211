// SPDX-License-Identifier: GPL-2.0
//! Which parts of a range of pages no pin user covers: the rule behind pinning each page once
//! however many areas, domains and accesses use it.
//!
//! A pages object has users, each a span of page indexes (an area mapped into domains, an
//! access's pin). A new user pins only the parts of its span no existing user covers; a leaving
//! user unpins only the parts no remaining user covers. Upstream answers the same question with
//! interval trees of users (`domains_itree`, `access_itree`).
//!
//! Here the users are kept as the run-length encoding of their per-page count: [`Piece`]s, each
//! a maximal run of pages that the same users cover, keyed by first page in a sorted map the
//! caller provides ([`Pieces`]: an rbtree in the module, a `BTreeMap` in the host tests). Every
//! question and update then costs `O((k + 1) log n)` for a range meeting `k` pieces out of `n`,
//! however many users share a page: 20000 per-page access pins or COPYs of one area no longer
//! scan each other on every pin.
//!
//! Users are not kept one by one; a piece counts the users starting at its first page and those
//! ending at its last page, which is all that coverage needs: the users are known up to which
//! start goes with which end. A piece boundary exists exactly where a user starts or ends (the
//! count changes, or two users meet), so there are at most `2 * users` pieces: removing a user
//! merges what only it separated.
//!
//! Invariants of a [`Pieces`] map (the functions here keep them; the host tests check them):
//! - pieces are disjoint and each has `users >= 1`;
//! - for every page `p`, `users(p) - users(p - 1) = starts(p) - ends(p - 1)`, the count being 0
//!   outside pieces, `starts` counted on the piece starting at `p`, `ends` on the one ending at
//!   `p - 1`;
//! - two adjacent pieces (`a.last + 1 == b.start`) have `a.ends + b.starts > 0`.
//!
//! Only `core`: insertions are infallible, so an update reserves its nodes first
//! ([`inserts_for_add`], [`inserts_for_replace`]) and removals free them.

use super::span::Span;

/// A run of pages every one of which the same users cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Piece {
    /// Last page of the run (its first is the map's key).
    pub(crate) last: u64,
    /// Users covering each page of the run (at least one).
    pub(crate) users: u64,
    /// Users whose span starts at the run's first page.
    pub(crate) starts: u64,
    /// Users whose span ends at the run's last page.
    pub(crate) ends: u64,
}

/// A sorted map from a piece's first page to the piece.
pub(crate) trait Pieces {
    /// The piece with the highest first page at or below `p`.
    fn at_or_below(&self, p: u64) -> Option<(u64, Piece)>;
    /// The piece with the lowest first page at or above `p`.
    fn at_or_above(&self, p: u64) -> Option<(u64, Piece)>;
    /// Overwrites the piece starting at `start`, which exists.
    fn set(&mut self, start: u64, piece: Piece);
    /// Adds a piece at `start`, where none starts; the caller reserved room for it.
    fn insert(&mut self, start: u64, piece: Piece);
    /// Removes the piece starting at `start`.
    fn remove(&mut self, start: u64);
}

impl<T: Pieces + ?Sized> Pieces for &mut T {
    fn at_or_below(&self, p: u64) -> Option<(u64, Piece)> {
        (**self).at_or_below(p)
    }
    fn at_or_above(&self, p: u64) -> Option<(u64, Piece)> {
        (**self).at_or_above(p)
    }
    fn set(&mut self, start: u64, piece: Piece) {
        (**self).set(start, piece)
    }
    fn insert(&mut self, start: u64, piece: Piece) {
        (**self).insert(start, piece)
    }
    fn remove(&mut self, start: u64) {
        (**self).remove(start)
    }
}

/// The piece holding page `p`, with its first page.
fn piece_at<P: Pieces + ?Sized>(pieces: &P, p: u64) -> Option<(u64, Piece)> {
    pieces.at_or_below(p).filter(|(_, pc)| pc.last >= p)
}

/// Calls `f` with each maximal part of `range` that no user covers, lowest first; stops at the
/// first error `f` returns.
pub(crate) fn for_each_uncovered<E>(
    pieces: &(impl Pieces + ?Sized),
    range: Span,
    mut f: impl FnMut(Span) -> Result<(), E>,
) -> Result<(), E> {
    let mut cur = range.start;
    loop {
        if let Some((_, pc)) = piece_at(pieces, cur) {
            if pc.last >= range.last {
                return Ok(());
            }
            cur = pc.last + 1;
            continue;
        }
        // `cur` is uncovered: the gap runs to the next piece starting inside the range.
        match pieces.at_or_above(cur).filter(|(s, _)| *s <= range.last) {
            Some((start, _)) => {
                f(Span {
                    start: cur,
                    last: start - 1,
                })?;
                cur = start;
            }
            None => {
                return f(Span {
                    start: cur,
                    last: range.last,
                })
            }
        }
    }
}

/// Whether any page of `range` has a user: one lookup, where [`uncovered_len`] walks every
/// piece of the range (a PFN chunk of 512 pages under per-page pins).
pub(crate) fn covers_any<P: Pieces + ?Sized>(pieces: &P, range: Span) -> bool {
    // Pieces all have users: one that starts at or below the range's end and reaches its start.
    pieces
        .at_or_below(range.last)
        .is_some_and(|(_, pc)| pc.last >= range.start)
}

/// Pages of `range` that no user covers.
pub(crate) fn uncovered_len<P: Pieces + ?Sized>(pieces: &P, range: Span) -> u64 {
    let mut n = 0u64;
    let _ = for_each_uncovered::<()>(pieces, range, |s| {
        n = n.saturating_add(s.len());
        Ok(())
    });
    n
}

/// Whether a piece runs across the boundary before page `p` (so a user starting at `p`, or
/// ending at `p - 1`, must split it).
fn splits_at<P: Pieces + ?Sized>(pieces: &P, p: u64) -> bool {
    piece_at(pieces, p).is_some_and(|(s, _)| s < p)
}

/// Pieces [`add`] of `span` inserts: one per uncovered part, one per piece it cuts.
pub(crate) fn inserts_for_add<P: Pieces + ?Sized>(pieces: &P, span: Span) -> usize {
    let mut n = usize::from(splits_at(pieces, span.start));
    if let Some(after) = span.last.checked_add(1) {
        n += usize::from(splits_at(pieces, after));
    }
    let _ = for_each_uncovered::<()>(pieces, span, |_| {
        n = n.saturating_add(1);
        Ok(())
    });
    n
}

/// Cuts the piece holding `p` (if it starts before `p`) in two at `p`.
fn split_at<P: Pieces + ?Sized>(pieces: &mut P, p: u64) {
    let Some((s, pc)) = piece_at(pieces, p).filter(|(s, _)| *s < p) else {
        return;
    };
    // No user starts at `p` or ends at `p - 1`: the boundary did not exist.
    pieces.set(
        s,
        Piece {
            last: p - 1,
            ends: 0,
            ..pc
        },
    );
    pieces.insert(p, Piece { starts: 0, ..pc });
}

/// Joins the piece starting at `p` to the one ending at `p - 1` where no user starts or ends
/// between them any more.
fn merge_at<P: Pieces + ?Sized>(pieces: &mut P, p: u64) {
    let Some(before) = p.checked_sub(1) else {
        return;
    };
    let Some((rs, right)) = piece_at(pieces, p).filter(|(s, _)| *s == p) else {
        return;
    };
    let Some((ls, left)) = piece_at(pieces, before) else {
        return;
    };
    // Equal counts follow from the invariant; checked so that a broken map never loses pages.
    if left.ends != 0 || right.starts != 0 || left.users != right.users {
        return;
    }
    pieces.remove(rs);
    pieces.set(
        ls,
        Piece {
            last: right.last,
            ends: right.ends,
            ..left
        },
    );
}

/// Adds a user of `span`. Inserts at most [`inserts_for_add`] pieces, which the caller
/// reserved.
pub(crate) fn add<P: Pieces + ?Sized>(pieces: &mut P, span: Span) {
    split_at(pieces, span.start);
    if let Some(after) = span.last.checked_add(1) {
        split_at(pieces, after);
    }
    // Every piece meeting the span now lies inside it: count one more user on each, and fill
    // the gaps with pieces of this user alone.
    let mut cur = span.start;
    loop {
        let end = match piece_at(pieces, cur) {
            Some((s, pc)) => {
                pieces.set(
                    s,
                    Piece {
                        users: pc.users.saturating_add(1),
                        ..pc
                    },
                );
                pc.last
            }
            None => {
                let end = match pieces.at_or_above(cur).filter(|(s, _)| *s <= span.last) {
                    Some((s, _)) => s - 1,
                    None => span.last,
                };
                pieces.insert(
                    cur,
                    Piece {
                        last: end,
                        users: 1,
                        starts: 0,
                        ends: 0,
                    },
                );
                end
            }
        };
        if end >= span.last {
            break;
        }
        cur = end + 1;
    }
    if let Some((s, pc)) = piece_at(pieces, span.start) {
        pieces.set(
            s,
            Piece {
                starts: pc.starts.saturating_add(1),
                ..pc
            },
        );
    }
    if let Some((s, pc)) = piece_at(pieces, span.last) {
        pieces.set(
            s,
            Piece {
                ends: pc.ends.saturating_add(1),
                ..pc
            },
        );
    }
}

/// Whether some user of `span` may be removed: a user starts at its first page, one ends at its
/// last, and every page between is covered.
pub(crate) fn is_user<P: Pieces + ?Sized>(pieces: &P, span: Span) -> bool {
    let Some((s, first)) = piece_at(pieces, span.start) else {
        return false;
    };
    if s != span.start || first.starts == 0 {
        return false;
    }
    let mut pc = first;
    loop {
        if pc.last == span.last {
            return pc.ends != 0;
        }
        if pc.last > span.last {
            return false;
        }
        // `pc.last < span.last`, so this cannot overflow.
        match piece_at(pieces, pc.last + 1) {
            Some((_, next)) => pc = next,
            None => return false,
        }
    }
}

/// Removes a user of `span`; `false` (and nothing changes) unless [`is_user`]. Frees pieces,
/// never inserts. The pages it leaves uncovered are then those [`for_each_uncovered`] finds in
/// `span`.
pub(crate) fn remove<P: Pieces + ?Sized>(pieces: &mut P, span: Span) -> bool {
    if !is_user(pieces, span) {
        return false;
    }
    let mut cur = span.start;
    while let Some((s, pc)) = piece_at(pieces, cur) {
        // `is_user` checked the counts this takes one from; saturating keeps a broken map from
        // wrapping.
        let mut next = Piece {
            users: pc.users.saturating_sub(1),
            ..pc
        };
        if s == span.start {
            next.starts = next.starts.saturating_sub(1);
        }
        if pc.last == span.last {
            next.ends = next.ends.saturating_sub(1);
        }
        if next.users == 0 {
            pieces.remove(s);
        } else {
            pieces.set(s, next);
        }
        if pc.last >= span.last {
            break;
        }
        cur = pc.last + 1;
    }
    merge_at(pieces, span.start);
    if let Some(after) = span.last.checked_add(1) {
        merge_at(pieces, after);
    }
    true
}

/// Why [`replace`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplaceError {
    /// `whole` is not a user.
    NotAUser,
    /// `a` and `b` do not cover exactly `whole`, `a` first.
    NotASplit,
}

/// Whether `a` then `b` cover exactly the pages of `whole`, each a proper part of it (they may
/// share a page: an area split inside a page).
fn is_split(whole: Span, a: Span, b: Span) -> bool {
    a.start == whole.start
        && b.last == whole.last
        && a.start <= a.last
        && b.start <= b.last
        && a.last < whole.last
        && b.start > whole.start
        && b.start <= a.last.saturating_add(1)
}

/// Pieces [`replace`] inserts at most.
pub(crate) fn inserts_for_replace<P: Pieces + ?Sized>(pieces: &P, a: Span, b: Span) -> usize {
    // Adding `a` only adds boundaries, so `b` needs no more than it would now.
    inserts_for_add(pieces, a).saturating_add(inserts_for_add(pieces, b))
}

/// Replaces the user `whole` by users `a` and `b` that cover the same pages (an area split):
/// no page becomes uncovered, so nothing is unpinned. Inserts at most [`inserts_for_replace`]
/// pieces, which the caller reserved.
pub(crate) fn replace<P: Pieces + ?Sized>(
    pieces: &mut P,
    whole: Span,
    a: Span,
    b: Span,
) -> Result<(), ReplaceError> {
    if !is_split(whole, a, b) {
        return Err(ReplaceError::NotASplit);
    }
    if !is_user(pieces, whole) {
        return Err(ReplaceError::NotAUser);
    }
    // Both parts first, so that `whole`'s pages stay covered throughout.
    add(pieces, a);
    add(pieces, b);
    // Still a user: adding `a` and `b` only added starts and ends.
    let _ = remove(pieces, whole);
    Ok(())
}

/// A user span that [`remove`] accepts, if any user is left: the first piece's first page to
/// the first end after it.
pub(crate) fn any_user<P: Pieces + ?Sized>(pieces: &P) -> Option<Span> {
    let (start, mut pc) = pieces.at_or_above(0)?;
    loop {
        if pc.ends != 0 {
            let span = Span {
                start,
                last: pc.last,
            };
            return Some(span).filter(|s| is_user(pieces, *s));
        }
        // Coverage only ends where a user does, so the next piece is adjacent.
        let next = pc.last.checked_add(1)?;
        pc = piece_at(pieces, next)?.1;
    }
}
