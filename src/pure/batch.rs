// SPDX-License-Identifier: GPL-2.0
//! A batch of physical page runs: what pinning fills and what a domain is mapped from, so that a
//! contiguous run goes to the IOMMU in one call instead of page by page (upstream's
//! `struct pfn_batch`).
//!
//! The caller owns the storage (two arrays of the same capacity, sized by the temporary memory
//! limit), which keeps this file free of allocation.

/// Largest page count one entry holds (the count array is `u32`).
pub(crate) const MAX_NPFNS: u32 = u32::MAX;

/// What the PFNs are: one kind per batch, as the IOMMU maps them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    CpuMemory,
    Mmio,
}

pub(crate) struct Batch<'a> {
    pfns: &'a mut [u64],
    npfns: &'a mut [u32],
    /// Entries in use.
    end: usize,
    /// Pages in all entries.
    total: u64,
    kind: Option<Kind>,
}

impl<'a> Batch<'a> {
    /// A batch over caller storage; its capacity is the shorter of the two arrays.
    pub(crate) fn new(pfns: &'a mut [u64], npfns: &'a mut [u32]) -> Self {
        Self {
            pfns,
            npfns,
            end: 0,
            total: 0,
            kind: None,
        }
    }

    fn capacity(&self) -> usize {
        self.pfns.len().min(self.npfns.len())
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.end == 0
    }

    pub(crate) fn kind(&self) -> Option<Kind> {
        self.kind
    }

    pub(crate) fn clear(&mut self) {
        self.end = 0;
        self.total = 0;
        self.kind = None;
    }

    /// Empties the batch but for the last `keep` pages of its last run, moved to the front: the
    /// tail of a huge page that the next round continues from (upstream's "carry").
    pub(crate) fn clear_carry(&mut self, keep: u32) {
        let Some(last) = self.end.checked_sub(1) else {
            return self.clear();
        };
        if keep == 0 {
            return self.clear();
        }
        let keep = keep.min(self.npfns[last]);
        self.pfns[0] = self.pfns[last] + u64::from(self.npfns[last] - keep);
        self.npfns[0] = keep;
        self.end = 1;
        self.total = u64::from(keep);
    }

    /// Drops the first `skip` pages of a carried run.
    pub(crate) fn skip_carry(&mut self, skip: u64) {
        if self.total == 0 {
            return;
        }
        let skip = skip.min(self.total).min(u64::from(self.npfns[0]));
        // `skip` fits a u32: it is at most `npfns[0]`.
        let skip32 = u32::try_from(skip).unwrap_or(self.npfns[0]);
        self.pfns[0] += skip;
        self.npfns[0] -= skip32;
        self.total -= skip;
        if self.npfns[0] == 0 {
            self.end = 0;
        }
    }

    /// Appends `nr` pages from `pfn`, growing the last run when contiguous. `false` when the
    /// batch is full or holds the other kind: the caller flushes and retries.
    pub(crate) fn add(&mut self, pfn: u64, nr: u32, kind: Kind) -> bool {
        // A run past the end of the PFN space cannot come from real memory; refusing it keeps
        // every `pfn + count` below representable.
        if nr == 0 || pfn.checked_add(u64::from(nr)).is_none() {
            return nr == 0;
        }
        if self.kind != Some(kind) {
            if self.end != 0 {
                return false;
            }
            self.kind = Some(kind);
        }
        let end = self.end;
        match end.checked_sub(1) {
            Some(last)
                if self.pfns[last].checked_add(u64::from(self.npfns[last])) == Some(pfn)
                    && nr <= MAX_NPFNS - self.npfns[last] =>
            {
                self.npfns[last] += nr;
            }
            _ if end < self.capacity() => {
                self.pfns[end] = pfn;
                self.npfns[end] = nr;
                self.end += 1;
            }
            _ => return false,
        }
        self.total += u64::from(nr);
        true
    }

    /// Takes back the last `nr` pages (they were added but could not be used).
    pub(crate) fn remove_last(&mut self, nr: u32) {
        let Some(last) = self.end.checked_sub(1) else {
            return;
        };
        let nr = nr.min(self.npfns[last]);
        self.npfns[last] -= nr;
        if self.npfns[last] == 0 {
            self.end = last;
        }
        self.total -= u64::from(nr);
    }

    /// The runs, first to last: `(first pfn, page count)`.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.pfns[..self.end]
            .iter()
            .copied()
            .zip(self.npfns[..self.end].iter().copied())
    }
}
