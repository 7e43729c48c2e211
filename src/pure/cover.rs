// SPDX-License-Identifier: GPL-2.0
//! Which parts of a range of pages no other user covers: the rule behind pinning each page once
//! however many areas, domains and accesses use it.
//!
//! A pages object keeps one span of page indexes per user (an area mapped into domains, an
//! access's pin). A new user pins only the parts of its span no existing user covers; a leaving
//! user unpins only the parts no remaining user covers. Upstream answers the same question with
//! interval trees of users (`domains_itree`, `access_itree`); users here are few (one per area
//! sharing the pages, plus accesses), so a scan of a slice is enough and allocates nothing.

use super::span::Span;

/// Calls `f` with each maximal part of `range` that no span of `users` intersects, lowest first;
/// stops at the first error `f` returns.
pub(crate) fn for_each_uncovered<E>(
    users: &[Span],
    range: Span,
    mut f: impl FnMut(Span) -> Result<(), E>,
) -> Result<(), E> {
    let mut cur = range.start;
    loop {
        // Skip past every user span covering `cur`.
        if let Some(last) = users
            .iter()
            .filter(|u| u.start <= cur && cur <= u.last)
            .map(|u| u.last)
            .max()
        {
            if last >= range.last {
                return Ok(());
            }
            cur = last + 1;
            continue;
        }
        // `cur` is uncovered: the gap runs to the next user span starting inside the range.
        let next = users
            .iter()
            .filter(|u| u.start > cur && u.start <= range.last)
            .map(|u| u.start)
            .min();
        match next {
            Some(start) => {
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

/// Pages of `range` that no span of `users` covers.
pub(crate) fn uncovered_len(users: &[Span], range: Span) -> u64 {
    let mut n = 0u64;
    let _ = for_each_uncovered::<()>(users, range, |s| {
        n = n.saturating_add(s.len());
        Ok(())
    });
    n
}
