// SPDX-License-Identifier: GPL-2.0
//! The PFNs of a pages object's pinned pages, by page index: a directory of fixed-size chunks,
//! each allocated when a page in it is first pinned. Pinning a little of a huge mapping costs a
//! little (one chunk and a directory of one pointer per 32 MiB of mapping), as upstream's xarray
//! of pinned PFNs does, where one array for the whole mapping would be user sized (8 bytes per
//! page of a mapping of any length).
//!
//! Lookups are two array indexings; runs are found by the caller, page by page.

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

/// Chunk number and index in the chunk of page `idx`.
fn split(idx: u64) -> Option<(usize, usize)> {
    let chunk = usize::try_from(idx >> CHUNK_SHIFT).ok()?;
    let at = usize::try_from(idx & (CHUNK as u64 - 1)).ok()?;
    Some((chunk, at))
}

/// Sparse PFN table; an empty chunk vector is a chunk not allocated.
pub(crate) struct PfnTable {
    dir: QuietVec<KVVec<u64>, KVmalloc>,
    /// Pages of the memory: the last chunk is only as long as the pages it covers, so a small
    /// mapping (a 4 KiB area: one PFN) costs its size, not a whole chunk.
    npages: u64,
}

impl PfnTable {
    pub(crate) fn new(npages: u64) -> Self {
        Self {
            dir: QuietVec::new(),
            npages,
        }
    }

    /// A table for as many pages as this one, empty.
    pub(crate) fn emptied(&self) -> Self {
        Self::new(self.npages)
    }

    /// Entries chunk `c` needs: a whole chunk but for the last one.
    fn chunk_len(&self, c: usize) -> usize {
        let first = u64::try_from(c)
            .unwrap_or(u64::MAX)
            .saturating_mul(CHUNK as u64);
        let left = self.npages.saturating_sub(first);
        usize::try_from(left).unwrap_or(CHUNK).clamp(1, CHUNK)
    }

    /// Makes room for the PFNs of pages `span`: the directory up to its last page and every chunk
    /// it touches.
    pub(crate) fn reserve(&mut self, span: Span) -> Result {
        let first = usize::try_from(span.start >> CHUNK_SHIFT).map_err(|_| ENOMEM)?;
        let last = usize::try_from(span.last >> CHUNK_SHIFT).map_err(|_| ENOMEM)?;
        let need = last.checked_add(1).ok_or(ENOMEM)?;
        if self.dir.len() < need {
            // At most one entry per 32 MiB of the mapping: a 128 TiB one needs 32 MiB here.
            let more = need - self.dir.len();
            self.dir.reserve(more, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
            while self.dir.len() < need {
                self.dir.push(KVVec::new(), GFP_KERNEL_ACCOUNT)?;
            }
        }
        for c in first..=last {
            if self.dir[c].is_empty() {
                let len = self.chunk_len(c);
                self.dir[c] = KVVec::from_elem(0, len, GFP_KERNEL_ACCOUNT)?;
            }
        }
        Ok(())
    }

    /// Records the PFN of page `idx`, whose chunk [`Self::reserve`] made.
    pub(crate) fn set(&mut self, idx: u64, pfn: u64) -> Result {
        let (c, at) = split(idx).ok_or(EINVAL)?;
        let slot = self
            .dir
            .get_mut(c)
            .and_then(|chunk| chunk.get_mut(at))
            .ok_or(EINVAL)?;
        *slot = pfn;
        Ok(())
    }

    /// The PFN recorded for page `idx`, if its chunk exists.
    pub(crate) fn get(&self, idx: u64) -> Option<u64> {
        let (c, at) = split(idx)?;
        self.dir.get(c)?.get(at).copied()
    }

    /// A view of pages `span`, if every chunk of it exists.
    pub(crate) fn view(&self, span: Span) -> Option<PfnView<'_>> {
        let first = usize::try_from(span.start >> CHUNK_SHIFT).ok()?;
        let last = usize::try_from(span.last >> CHUNK_SHIFT).ok()?;
        let all = self
            .dir
            .get(first..=last)?
            .iter()
            .all(|chunk| !chunk.is_empty());
        let len = usize::try_from(span.len()).ok()?;
        all.then_some(PfnView {
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
            let rest = self.table.dir.get(c)?.get(at..)?;
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
