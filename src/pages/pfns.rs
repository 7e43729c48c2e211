// SPDX-License-Identifier: GPL-2.0
//! The PFNs of a pages object's pinned pages, by page index: a sorted directory of fixed-size
//! chunks, each allocated when a page in it is first pinned and freed when no user of the pages
//! covers any page of it any more. What the table holds follows what is pinned, never the length
//! of the mapping: a pin of one page at the end of a 64 TiB mapping costs one chunk and one
//! directory entry, as upstream's xarray of pinned PFNs costs a node per populated range. A
//! mapping of a few pages keeps its PFNs in the table itself and allocates nothing, as an xarray
//! holding one entry does.
//!
//! A lookup is a binary search of the directory; a [`PfnView`] of a span finds its chunks once,
//! so reading it is two array indexings per page, and runs of pages are read and written a
//! chunk's slice at a time ([`PfnTable::slots_mut`], [`PfnView::run_at`]).
//!
//! This file builds in the host crate too (`tests/host`, over a model of the kernel's vectors
//! that can fail any allocation), so keep its kernel surface to the vector and error types.

use core::{
    mem::ManuallyDrop,
    ops::{
        Deref,
        DerefMut, //
    },
};
use kernel::{
    alloc::{
        allocator::KVmalloc,
        Allocator,
        Vec, //
    },
    prelude::*, //
};

use crate::pure::span::Span;

/// A vector that, dropped without ever having allocated, skips the allocator: the kernel crate's
/// `Vec` hands even an empty buffer back to `krealloc()`/`kvrealloc()`, which a pages object that
/// was never pinned (every map without a domain) would otherwise pay on each unmap.
pub(crate) struct QuietVec<T, A: Allocator>(ManuallyDrop<Vec<T, A>>);

impl<T, A: Allocator> QuietVec<T, A> {
    pub(crate) fn new() -> Self {
        Self(ManuallyDrop::new(Vec::new()))
    }
}

impl<T, A: Allocator> Deref for QuietVec<T, A> {
    type Target = Vec<T, A>;

    fn deref(&self) -> &Vec<T, A> {
        &self.0
    }
}

impl<T, A: Allocator> DerefMut for QuietVec<T, A> {
    fn deref_mut(&mut self) -> &mut Vec<T, A> {
        &mut self.0
    }
}

impl<T, A: Allocator> Drop for QuietVec<T, A> {
    fn drop(&mut self) {
        // A vector of sized elements with no capacity holds no element and no memory.
        if self.0.capacity() != 0 || size_of::<T>() == 0 {
            // Dropped here, leaving in its place a new empty vector, which holds nothing and is
            // never dropped (no allocator call for it either).
            drop(core::mem::replace(&mut *self.0, Vec::new()));
        }
    }
}

/// PFNs per chunk: a page of them (4 KiB), covering 2 MiB of 4 KiB pages, so a chunk is one
/// slab allocation that never falls back to vmalloc, and a huge page is one chunk.
pub(crate) const CHUNK_SHIFT: u32 = 9;
pub(crate) const CHUNK: usize = 1 << CHUNK_SHIFT;

/// Up to this many pages, the PFNs are kept in place.
pub(crate) const INLINE: usize = 4;

/// Allocations of the table: charged to the caller's memory cgroup, and a failure is an
/// `ENOMEM` for userspace, not a warning in the log.
fn gfp() -> kernel::alloc::Flags {
    GFP_KERNEL_ACCOUNT | __GFP_NOWARN
}

/// Chunk number and index in the chunk of page `idx`.
pub(crate) fn split(idx: u64) -> Option<(usize, usize)> {
    let chunk = usize::try_from(idx >> CHUNK_SHIFT).ok()?;
    let at = usize::try_from(idx & (CHUNK as u64 - 1)).ok()?;
    Some((chunk, at))
}

/// Entries chunk `c` of a table of `npages` pages needs: a whole chunk but for the last one.
pub(crate) fn chunk_len(npages: u64, c: usize) -> usize {
    let first = u64::try_from(c)
        .unwrap_or(u64::MAX)
        .saturating_mul(CHUNK as u64);
    let left = npages.saturating_sub(first);
    usize::try_from(left).unwrap_or(CHUNK).clamp(1, CHUNK)
}

/// The pages chunk `c` of a table of `npages` pages holds.
pub(crate) fn chunk_span(npages: u64, c: usize) -> Span {
    let start = u64::try_from(c)
        .unwrap_or(u64::MAX)
        .saturating_mul(CHUNK as u64);
    let len = chunk_len(npages, c) as u64;
    Span {
        start,
        last: start.saturating_add(len - 1),
    }
}

/// One chunk of the directory: the PFNs of pages `index * CHUNK ..`, [`chunk_len`] of them.
struct Chunk {
    index: usize,
    pfns: KVVec<u64>,
}

enum Store {
    /// At most [`INLINE`] pages: their PFNs, once reserved.
    Inline(Option<[u64; INLINE]>),
    /// The chunks that exist, sorted by index, no two with the same.
    Chunks(QuietVec<Chunk, KVmalloc>),
}

/// Sparse PFN table.
pub(crate) struct PfnTable {
    store: Store,
    /// Pages of the memory: the last chunk is only as long as the pages it covers, so a small
    /// mapping costs its size, not a whole chunk.
    npages: u64,
}

impl PfnTable {
    pub(crate) fn new(npages: u64) -> Self {
        let store = if npages <= INLINE as u64 {
            Store::Inline(None)
        } else {
            Store::Chunks(QuietVec::new())
        };
        Self { store, npages }
    }

    /// A table for as many pages as this one, empty.
    pub(crate) fn emptied(&self) -> Self {
        Self::new(self.npages)
    }

    /// The chunks of indexes `first..=last` that exist, as a slice of the directory.
    fn dir_range(dir: &[Chunk], first: usize, last: usize) -> core::ops::Range<usize> {
        let lo = dir.partition_point(|e| e.index < first);
        let hi = lo + dir[lo..].partition_point(|e| e.index <= last);
        lo..hi
    }

    /// The PFNs of chunk `c` for writing, if it exists (an inline table is chunk 0).
    fn chunk_mut(&mut self, c: usize) -> Option<&mut [u64]> {
        let npages = self.npages;
        match &mut self.store {
            Store::Inline(Some(pfns)) if c == 0 => pfns.get_mut(..chunk_len(npages, 0)),
            Store::Inline(_) => None,
            Store::Chunks(dir) => match dir.binary_search_by_key(&c, |e| e.index) {
                Ok(i) => Some(&mut dir[i].pfns[..]),
                Err(_) => None,
            },
        }
    }

    /// Makes room for the PFNs of pages `span`: allocates every chunk it touches that does not
    /// exist yet. Costs at most the chunks of `span` (plus the directory's growth), so callers
    /// pass what they are about to pin, a batch at a time. On failure the chunks made so far
    /// stay; [`Self::release_unused`] frees them.
    pub(crate) fn reserve(&mut self, span: Span) -> Result {
        if span.last >= self.npages || span.start > span.last {
            return Err(EINVAL);
        }
        let (first, _) = split(span.start).ok_or(EINVAL)?;
        let (last, _) = split(span.last).ok_or(EINVAL)?;
        let npages = self.npages;
        match &mut self.store {
            Store::Inline(pfns) => {
                pfns.get_or_insert([0; INLINE]);
            }
            Store::Chunks(dir) => {
                let have = Self::dir_range(dir, first, last);
                let missing = (last - first + 1) - have.len();
                if missing == 0 {
                    return Ok(());
                }
                dir.reserve(missing, gfp())?;
                let mut pos = have.start;
                for c in first..=last {
                    if dir.get(pos).is_some_and(|e| e.index == c) {
                        pos += 1;
                        continue;
                    }
                    let pfns = KVVec::from_elem(0, chunk_len(npages, c), gfp())?;
                    // Room was reserved above and `pos <= len`: this cannot fail.
                    dir.insert_within_capacity(pos, Chunk { index: c, pfns })
                        .map_err(|_| ENOMEM)?;
                    pos += 1;
                }
            }
        }
        Ok(())
    }

    /// Frees the chunks touching pages `span` whose pages no user covers (`covered` answers for
    /// a chunk's span of pages): after a pin of `span` failed, or after its user left. Chunks
    /// elsewhere are not looked at. With no user left (`any_user` false), the directory itself
    /// goes too.
    pub(crate) fn release_unused(
        &mut self,
        any_user: bool,
        covered: impl Fn(Span) -> bool,
        span: Span,
    ) {
        if !any_user {
            *self = self.emptied();
            return;
        }
        let npages = self.npages;
        let used = |c: usize| covered(chunk_span(npages, c));
        match &mut self.store {
            Store::Inline(pfns) => {
                if !used(0) {
                    *pfns = None;
                }
            }
            Store::Chunks(dir) => {
                let (Some((first, _)), Some((last, _))) = (split(span.start), split(span.last))
                else {
                    return;
                };
                let range = Self::dir_range(dir, first, last);
                // Keep the used chunks at the front of the range, in order; the rest go to the
                // end of the directory and are dropped there.
                let mut keep = range.start;
                for i in range.clone() {
                    if used(dir[i].index) {
                        dir.swap(keep, i);
                        keep += 1;
                    }
                }
                let gone = range.end - keep;
                if gone != 0 {
                    dir[keep..].rotate_left(gone);
                    let len = dir.len() - gone;
                    dir.truncate(len);
                }
            }
        }
    }

    /// Records the PFN of page `idx`, whose chunk [`Self::reserve`] made.
    pub(crate) fn set(&mut self, idx: u64, pfn: u64) -> Result {
        let slot = self.slots_mut(idx, 1).and_then(|s| s.first_mut());
        *slot.ok_or(EINVAL)? = pfn;
        Ok(())
    }

    /// The slots of pages `idx..` up to the end of their chunk, at most `max` of them, for
    /// recording a run of PFNs with one lookup (chunks [`Self::reserve`] made).
    pub(crate) fn slots_mut(&mut self, idx: u64, max: usize) -> Option<&mut [u64]> {
        let (c, at) = split(idx)?;
        let rest = self.chunk_mut(c)?.get_mut(at..).filter(|r| !r.is_empty())?;
        let n = rest.len().min(max);
        rest.get_mut(..n)
    }

    /// The PFN recorded for page `idx`, if its chunk exists (tests; the module reads views).
    #[cfg(test)]
    pub(crate) fn get(&self, idx: u64) -> Option<u64> {
        self.view(Span {
            start: idx,
            last: idx,
        })?
        .get(0)
    }

    /// A view of pages `span`, if every chunk of it exists.
    pub(crate) fn view(&self, span: Span) -> Option<PfnView<'_>> {
        if span.last >= self.npages || span.start > span.last {
            return None;
        }
        let (first, _) = split(span.start)?;
        let (last, _) = split(span.last)?;
        let chunks = match &self.store {
            Store::Inline(Some(pfns)) => Chunks::One(pfns.get(..chunk_len(self.npages, 0))?),
            Store::Inline(None) => return None,
            Store::Chunks(dir) => {
                let range = Self::dir_range(dir, first, last);
                // Sorted and unique: as many entries as chunk numbers means all of them.
                if range.len() != last - first + 1 {
                    return None;
                }
                Chunks::Dir(&dir[range])
            }
        };
        let len = usize::try_from(span.len()).ok()?;
        Some(PfnView {
            chunks,
            first_chunk: first,
            first: span.start,
            len,
        })
    }

    /// Chunks allocated and the bytes of PFNs they hold (tests).
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> (usize, usize) {
        match &self.store {
            Store::Inline(p) => (0, p.map_or(0, |_| INLINE * 8)),
            Store::Chunks(dir) => (dir.len(), dir.iter().map(|e| e.pfns.len() * 8).sum()),
        }
    }

    /// Indexes of the chunks that exist, in directory order (tests).
    #[cfg(test)]
    pub(crate) fn chunk_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        let dir: &[Chunk] = match &self.store {
            Store::Inline(_) => &[],
            Store::Chunks(dir) => dir,
        };
        dir.iter().map(|e| e.index)
    }
}

/// The chunks of a view: the inline PFNs, or the directory entries of its chunks in order.
#[derive(Clone, Copy)]
enum Chunks<'a> {
    One(&'a [u64]),
    Dir(&'a [Chunk]),
}

/// The PFNs of a span of pages, all present.
#[derive(Clone, Copy)]
pub(crate) struct PfnView<'a> {
    chunks: Chunks<'a>,
    /// Chunk number of the first entry of `chunks`.
    first_chunk: usize,
    first: u64,
    len: usize,
}

impl<'a> PfnView<'a> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The PFNs of chunk `c`, one of the view's.
    #[inline]
    fn chunk(&self, c: usize) -> Option<&'a [u64]> {
        let rel = c.checked_sub(self.first_chunk)?;
        match self.chunks {
            Chunks::One(pfns) => (rel == 0).then_some(pfns),
            Chunks::Dir(dir) => dir.get(rel).map(|e| &e.pfns[..]),
        }
    }

    /// The PFNs from page `idx` of the table to the end of its chunk, if it is one of the view's.
    #[inline]
    fn tail(&self, idx: u64) -> Option<&'a [u64]> {
        let (c, at) = split(idx)?;
        self.chunk(c)?.get(at..)
    }

    /// The PFN of the `i`-th page of the span.
    pub(crate) fn get(&self, i: usize) -> Option<u64> {
        if i >= self.len {
            return None;
        }
        let idx = self.first.checked_add(u64::try_from(i).ok()?)?;
        self.tail(idx)?.first().copied()
    }

    /// The run of physically contiguous pages from the `i`-th: its first PFN and length. One
    /// lookup per run (and one more per chunk the run crosses), then a walk of the chunk's slice.
    pub(crate) fn run_at(&self, i: usize) -> Option<(u64, usize)> {
        let max = self.len.checked_sub(i).filter(|m| *m > 0)?;
        let mut idx = self.first.checked_add(u64::try_from(i).ok()?)?;
        let mut rest = self.tail(idx)?;
        let first = *rest.first()?;
        if max == 1 {
            return Some((first, 1));
        }
        let mut n = 0usize;
        loop {
            let take = rest.len().min(max - n);
            let k = contiguous(&rest[..take], first.wrapping_add(n as u64));
            n += k;
            if k < take || n == max {
                return Some((first, n));
            }
            // The run goes on into the next chunk.
            idx = idx.checked_add(u64::try_from(k).ok()?)?;
            match self.tail(idx) {
                Some(next) if !next.is_empty() => rest = next,
                _ => return Some((first, n)),
            }
        }
    }

    /// The PFNs in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map_while(move |i| self.get(i))
    }
}

/// How many PFNs at the start of `pfns` go on from `expect`: `pfns[j] == expect + j`. Eight at a
/// time first, with one branch each: this loop is most of the cost of mapping and unmapping a
/// large area whose memory is physically contiguous.
#[inline(always)]
fn contiguous(pfns: &[u64], expect: u64) -> usize {
    let (groups, _) = pfns.as_chunks::<8>();
    let mut k = 0usize;
    let mut e = expect;
    for g in groups {
        let mut off = 0;
        for (j, p) in g.iter().enumerate() {
            off |= p ^ e.wrapping_add(j as u64);
        }
        if off != 0 {
            break;
        }
        e = e.wrapping_add(8);
        k += 8;
    }
    while k < pfns.len() && pfns[k] == e {
        k += 1;
        e = e.wrapping_add(1);
    }
    k
}
