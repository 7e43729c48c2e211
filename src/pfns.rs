// SPDX-License-Identifier: GPL-2.0
//! The PFNs of a pages object's pinned pages, by page index: a directory of fixed-size chunks,
//! each allocated when a page in it is first pinned. Pinning a little of a huge mapping costs a
//! little (one chunk and a directory of one pointer per 32 MiB of mapping), as upstream's xarray
//! of pinned PFNs does, where one array for the whole mapping would be user sized (8 bytes per
//! page of a mapping of any length). A mapping of a few pages keeps its PFNs in the table itself
//! and allocates nothing, as an xarray holding one entry does.
//!
//! Lookups are two array indexings; runs of pages are written and read a chunk's slice at a time
//! ([`PfnTable::slots_mut`], [`PfnView::run_at`]).

use kernel::{
    alloc::allocator::KVmalloc,
    prelude::*, //
};

use crate::{
    pages::QuietVec,
    pure::span::Span, //
};

/// PFNs per chunk: 64 KiB of them, each covering 32 MiB of 4 KiB pages.
const CHUNK_SHIFT: u32 = 13;
const CHUNK: usize = 1 << CHUNK_SHIFT;

/// Up to this many pages, the PFNs are kept in place.
const INLINE: usize = 4;

/// Chunk number and index in the chunk of page `idx`.
fn split(idx: u64) -> Option<(usize, usize)> {
    let chunk = usize::try_from(idx >> CHUNK_SHIFT).ok()?;
    let at = usize::try_from(idx & (CHUNK as u64 - 1)).ok()?;
    Some((chunk, at))
}

/// Entries chunk `c` of a table of `npages` pages needs: a whole chunk but for the last one.
fn chunk_len(npages: u64, c: usize) -> usize {
    let first = u64::try_from(c)
        .unwrap_or(u64::MAX)
        .saturating_mul(CHUNK as u64);
    let left = npages.saturating_sub(first);
    usize::try_from(left).unwrap_or(CHUNK).clamp(1, CHUNK)
}

enum Store {
    /// At most [`INLINE`] pages: their PFNs, once reserved.
    Inline(Option<[u64; INLINE]>),
    /// The chunk directory; an empty chunk vector is a chunk not allocated.
    Chunks(QuietVec<KVVec<u64>, KVmalloc>),
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

    /// The PFNs of chunk `c`, if it exists (an inline table is chunk 0).
    fn chunk(&self, c: usize) -> Option<&[u64]> {
        match &self.store {
            Store::Inline(Some(pfns)) if c == 0 => pfns.get(..chunk_len(self.npages, 0)),
            Store::Inline(_) => None,
            Store::Chunks(dir) => dir.get(c).map(|chunk| &chunk[..]).filter(|s| !s.is_empty()),
        }
    }

    /// Makes room for the PFNs of pages `span`: the directory up to its last page and every chunk
    /// it touches.
    pub(crate) fn reserve(&mut self, span: Span) -> Result {
        let first = usize::try_from(span.start >> CHUNK_SHIFT).map_err(|_| ENOMEM)?;
        let last = usize::try_from(span.last >> CHUNK_SHIFT).map_err(|_| ENOMEM)?;
        let need = last.checked_add(1).ok_or(ENOMEM)?;
        let npages = self.npages;
        match &mut self.store {
            Store::Inline(pfns) => {
                if span.last >= INLINE as u64 {
                    return Err(EINVAL);
                }
                pfns.get_or_insert([0; INLINE]);
            }
            Store::Chunks(dir) => {
                if dir.len() < need {
                    // At most one entry per 32 MiB of the mapping: a 128 TiB one needs 32 MiB.
                    let more = need - dir.len();
                    dir.reserve(more, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
                    while dir.len() < need {
                        dir.push(KVVec::new(), GFP_KERNEL_ACCOUNT)?;
                    }
                }
                for c in first..=last {
                    if dir[c].is_empty() {
                        let len = chunk_len(npages, c);
                        dir[c] = KVVec::from_elem(0, len, GFP_KERNEL_ACCOUNT)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The PFNs of chunk `c` for writing, if it exists (as [`Self::chunk`]).
    fn chunk_mut(&mut self, c: usize) -> Option<&mut [u64]> {
        let npages = self.npages;
        match &mut self.store {
            Store::Inline(Some(pfns)) if c == 0 => pfns.get_mut(..chunk_len(npages, 0)),
            Store::Inline(_) => None,
            Store::Chunks(dir) => dir
                .get_mut(c)
                .map(|chunk| &mut chunk[..])
                .filter(|s| !s.is_empty()),
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

    /// The PFN recorded for page `idx`, if its chunk exists.
    pub(crate) fn get(&self, idx: u64) -> Option<u64> {
        let (c, at) = split(idx)?;
        self.chunk(c)?.get(at).copied()
    }

    /// A view of pages `span`, if every chunk of it exists.
    pub(crate) fn view(&self, span: Span) -> Option<PfnView<'_>> {
        let first = usize::try_from(span.start >> CHUNK_SHIFT).ok()?;
        let last = usize::try_from(span.last >> CHUNK_SHIFT).ok()?;
        if span.last >= self.npages || !(first..=last).all(|c| self.chunk(c).is_some()) {
            return None;
        }
        let len = usize::try_from(span.len()).ok()?;
        Some(PfnView {
            table: self,
            first: span.start,
            len,
        })
    }
}

/// The PFNs of a span of pages, all present.
#[derive(Clone, Copy)]
pub(crate) struct PfnView<'a> {
    table: &'a PfnTable,
    first: u64,
    len: usize,
}

impl PfnView<'_> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The PFN of the `i`-th page of the span.
    pub(crate) fn get(&self, i: usize) -> Option<u64> {
        if i >= self.len {
            return None;
        }
        self.table
            .get(self.first.checked_add(u64::try_from(i).ok()?)?)
    }

    /// The run of physically contiguous pages from the `i`-th: its first PFN and length. Walks
    /// the chunks' slices directly rather than looking each page up.
    pub(crate) fn run_at(&self, i: usize) -> Option<(u64, usize)> {
        let max = self.len.checked_sub(i).filter(|m| *m > 0)?;
        let start = self.first.checked_add(u64::try_from(i).ok()?)?;
        let first = self.table.get(start)?;
        let mut n = 1usize;
        let mut expect = first.wrapping_add(1);
        while n < max {
            let (c, at) = split(start.checked_add(u64::try_from(n).ok()?)?)?;
            let rest = self.table.chunk(c)?.get(at..)?;
            let take = rest.len().min(max - n);
            let mut k = 0;
            while k < take && rest[k] == expect {
                k += 1;
                expect = expect.wrapping_add(1);
            }
            n += k;
            if k < take || take == 0 {
                break;
            }
        }
        Some((first, n))
    }

    /// The PFNs in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map_while(move |i| self.get(i))
    }
}
