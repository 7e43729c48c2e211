// SPDX-License-Identifier: GPL-2.0
//! FOLL_PIN pins of user memory (`mm/gup.c`) for DMA: pages of a process's address space, and
//! the folios of a memfd.
//!
//! A pin is taken into a batch type here ([`PageBatch`], [`PinnedFolios`]) and handed to the
//! caller as the PFN of its page: from then on the caller's record of PFNs is the record of its
//! pins. The pins a batch still holds are given back when it drops, so an error path leaks none.
//! The caller later gives a run of PFNs back through [`PinnedPfns::unpin`], and may copy through
//! the pinned pages meanwhile. Each pin is one page's: a folio pinned for several pages carries
//! one pin per page, so pages unpin one by one, whatever memory they are.

use core::marker::PhantomData;
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_ulong, //
    },
    fs::File,
    mm::MmWithUser,
    page::PAGE_SIZE,
    prelude::*,
};

use crate::ffi::shim;

/// The GUP flags of a long-term pin for DMA, device-writable or not.
#[inline]
fn gup_flags(write: bool) -> c_uint {
    let mut flags = bindings::FOLL_LONGTERM;
    if write {
        flags |= bindings::FOLL_WRITE;
    }
    flags
}

/// A GUP return value: pages pinned, or the error.
#[inline]
fn gup_result(rc: i64) -> Result<usize> {
    usize::try_from(rc).map_err(|_| Error::from_errno(i32::try_from(rc).unwrap_or(-14)))
}

/// A page array that GUP fills with pinned pages, reused from one pin call to the next.
///
/// # Invariants
///
/// The first `len` entries of `pages`' buffer (which has room for `pages.capacity()`) are pages
/// pinned (FOLL_PIN) by this batch; those from `head` on still carry the batch's pin, those
/// before it were handed out as PFNs.
pub(crate) struct PageBatch {
    pages: KVec<*mut bindings::page>,
    head: usize,
    len: usize,
}

impl PageBatch {
    /// A batch with room for `n` pages.
    pub(crate) fn with_capacity(n: usize) -> Result<Self> {
        let mut pages = KVec::new();
        pages.reserve(n, GFP_KERNEL_ACCOUNT)?;
        // INVARIANT: nothing pinned.
        Ok(Self {
            pages,
            head: 0,
            len: 0,
        })
    }

    /// How many pages one pin call can take.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.pages.capacity()
    }

    /// Gives back the pins not handed out yet.
    #[inline]
    fn release(&mut self) {
        if self.head < self.len {
            self.release_slow();
        }
    }

    #[cold]
    fn release_slow(&mut self) {
        for i in self.head..self.len {
            // SAFETY: entry `i` is a page pinned by the batch and not handed out (type
            // invariant); its pin is given back once, here.
            unsafe { bindings::unpin_user_page(*self.pages.as_ptr().add(i)) };
        }
        self.head = 0;
        self.len = 0;
    }

    /// Pins up to `n` pages (at most the capacity) of the current process's memory from user
    /// address `addr` (`pin_user_pages_fast()`, FOLL_LONGTERM, FOLL_WRITE with `write`); how
    /// many it pinned (0 if the first page could not be).
    #[inline]
    pub(crate) fn pin_fast(&mut self, addr: usize, n: usize, write: bool) -> Result<usize> {
        self.release();
        let n = n.min(self.capacity());
        let nr = c_int::try_from(n).unwrap_or(c_int::MAX);
        // SAFETY: the buffer has room for `nr <= n` pointers, all free (released above); GUP
        // checks the user range itself.
        let rc = unsafe {
            bindings::pin_user_pages_fast(addr, nr, gup_flags(write), self.pages.as_mut_ptr())
        };
        self.filled(i64::from(rc), n)
    }

    /// [`Self::pin_fast`] for the memory of `mm`, another process's or one a kernel thread
    /// works for (`pin_user_pages_remote()`, under `mm`'s mmap read lock).
    pub(crate) fn pin_remote(
        &mut self,
        mm: &MmWithUser,
        addr: usize,
        n: usize,
        write: bool,
    ) -> Result<usize> {
        self.release();
        let n = n.min(self.capacity());
        let _lock = mm.mmap_read_lock();
        // SAFETY: the mmap lock of `mm` is held and `mm` has a user (`MmWithUser`); the buffer
        // has room for `n` pointers, all free.
        let rc = unsafe {
            bindings::pin_user_pages_remote(
                mm.as_raw(),
                addr,
                c_ulong::try_from(n).unwrap_or(0),
                gup_flags(write),
                self.pages.as_mut_ptr(),
                core::ptr::null_mut(),
            )
        };
        self.filled(rc as i64, n)
    }

    /// Records what a GUP call asked for `n` pages returned.
    #[inline]
    fn filled(&mut self, rc: i64, n: usize) -> Result<usize> {
        let got = gup_result(rc)?.min(n);
        // INVARIANT: GUP pinned the first `got` entries.
        self.head = 0;
        self.len = got;
        Ok(got)
    }

    /// Writes the PFNs of the next pinned pages into `slots`, as many as it holds or are left;
    /// how many. Their pins go with them: the caller gives them back ([`PinnedPfns::unpin`]).
    #[inline]
    pub(crate) fn take_pfns(&mut self, slots: &mut [u64]) -> usize {
        let head = self.head;
        let n = slots.len().min(self.len - head);
        // SAFETY: entries `head..head + n` (`<= len`) are pages the batch pinned (type
        // invariant), so valid pages; `slots` has room for `n` PFNs. One call for the batch: a
        // call per page was the larger part of recording a pin.
        unsafe {
            shim::iommufd_rs_pages_to_pfns(self.pages.as_ptr().add(head), slots.as_mut_ptr(), n)
        };
        // INVARIANT: those `n` pins were handed out.
        self.head = head + n;
        n
    }
}

impl Drop for PageBatch {
    fn drop(&mut self) {
        self.release();
    }
}

/// The folios of a memfd range pinned by `memfd_pin_folios()`, one pin each, taken one by one
/// as page pins ([`Self::next_run`]).
///
/// # Invariants
///
/// The entries of `folios`' buffer from `head` to `len` are folios carrying one pin of ours;
/// `skip` is the page of the folio at `head` the range starts at (0 but for the first).
pub(crate) struct PinnedFolios {
    folios: KVec<*mut bindings::folio>,
    head: usize,
    len: usize,
    skip: usize,
}

impl PinnedFolios {
    /// Pins the folios of bytes `start..=end` of memfd `file`, at most `max` of them.
    pub(crate) fn pin(file: &File, start: i64, end: i64, max: usize) -> Result<Self> {
        let mut folios: KVec<*mut bindings::folio> = KVec::with_capacity(max, GFP_KERNEL_ACCOUNT)?;
        let mut offset: c_ulong = 0;
        let nmax = c_uint::try_from(max).unwrap_or(c_uint::MAX);
        // SAFETY: `file` is referenced; `folios` has room for `nmax` pointers.
        let rc = unsafe {
            bindings::memfd_pin_folios(
                file.as_ptr(),
                start,
                end,
                folios.as_mut_ptr(),
                nmax,
                &mut offset,
            )
        };
        let len = usize::try_from(rc)
            .map_err(|_| Error::from_errno(i32::try_from(rc).unwrap_or(-22)))?
            .min(max);
        // INVARIANT: `memfd_pin_folios()` pinned the first `len`; `offset` is into the first.
        Ok(Self {
            folios,
            head: 0,
            len,
            skip: offset / PAGE_SIZE,
        })
    }

    /// The next folio as the pins of up to `max` of its pages, from where the range starts in
    /// it; `None` when all were taken. On an error the folio's pin is given back; the folios
    /// after it still drop with `self`.
    pub(crate) fn next_run(&mut self, max: usize) -> Option<Result<PinnedRun>> {
        if self.head >= self.len {
            return None;
        }
        // SAFETY: `head < len`: a folio with our pin (type invariant), so valid.
        let folio = unsafe { *self.folios.as_ptr().add(self.head) };
        let skip = self.skip;
        // INVARIANT: the folio at `head` is ours now (its pin goes into the run, or back).
        self.head += 1;
        self.skip = 0;
        // SAFETY: `folio` is pinned, so valid.
        let nr = unsafe { shim::iommufd_rs_folio_nr_pages(folio) };
        // SAFETY: as above.
        let base_pfn = unsafe { shim::iommufd_rs_folio_pfn(folio) };
        let take = nr.saturating_sub(skip).min(max);
        if take == 0 {
            // SAFETY: the folio's one pin, given back: no page of it is taken.
            unsafe { bindings::unpin_folio(folio) };
            return Some(Ok(PinnedRun { pfn: 0, len: 0 }));
        }
        if take > 1 {
            // SAFETY: `folio` carries the pin `memfd_pin_folios()` took.
            let r = unsafe { bindings::folio_add_pins(folio, (take - 1) as c_uint) };
            if r != 0 {
                // SAFETY: gives back the folio's one pin.
                unsafe { bindings::unpin_folio(folio) };
                return Some(Err(Error::from_errno(r)));
            }
        }
        // INVARIANT: the folio carries `take` pins now, one per page from `skip`, and its pages
        // are physically contiguous.
        Some(Ok(PinnedRun {
            pfn: base_pfn + skip,
            len: take,
        }))
    }
}

impl Drop for PinnedFolios {
    fn drop(&mut self) {
        for i in self.head..self.len {
            // SAFETY: folios not taken still hold their one pin (type invariant).
            unsafe { bindings::unpin_folio(*self.folios.as_ptr().add(i)) };
        }
    }
}

/// Physically contiguous pages, each carrying one pin of ours.
///
/// # Invariants
///
/// Pages `pfn..pfn + len` are one folio's, each with one pin of ours, given back on drop
/// (not dirtied) unless handed out by [`Self::keep`].
pub(crate) struct PinnedRun {
    pfn: usize,
    len: usize,
}

impl PinnedRun {
    /// The first page's PFN.
    #[inline]
    pub(crate) fn pfn(&self) -> usize {
        self.pfn
    }

    /// Pages in the run.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Hands the pins of the first `n` pages to the caller, as their PFNs (given back with
    /// [`PinnedPfns::unpin`]); gives the others back, unused.
    #[inline]
    pub(crate) fn keep(mut self, n: usize) {
        let n = n.min(self.len);
        // INVARIANT: the first `n` pins are the caller's now.
        self.pfn += n;
        self.len -= n;
    }
}

impl Drop for PinnedRun {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: the type invariant: `len` contiguous pages from `pfn`, each pinned once by us;
        // their `struct page`s are contiguous too (one folio).
        unsafe {
            let page = shim::iommufd_rs_pfn_to_page(self.pfn);
            bindings::unpin_user_page_range_dirty_lock(page, self.len, false);
        }
    }
}

/// A caller's record of PFNs it pinned through this module, by index: what [`PinnedPfns`]
/// reads.
pub(crate) trait PfnRuns {
    /// Pages recorded.
    fn len(&self) -> usize;
    /// Whether none is.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The PFN of the `i`-th page.
    fn get(&self, i: usize) -> Option<u64>;
    /// The run of physically contiguous pages from the `i`-th: its first PFN and length (at
    /// least 1).
    fn run_at(&self, i: usize) -> Option<(u64, usize)>;
}

/// Pages the caller pinned through this module (a [`PageBatch`] or a [`PinnedRun`]), as its
/// record of their PFNs: to copy through while pinned, and to give the pins back.
///
/// # Invariants
///
/// Every PFN `pfns` yields is a page carrying one pin of the caller's, held for `'a` at least,
/// or until [`Self::unpin`] gives them back.
pub(crate) struct PinnedPfns<'a, R: PfnRuns> {
    pfns: R,
    _pins: PhantomData<&'a ()>,
}

impl<'a, R: PfnRuns> PinnedPfns<'a, R> {
    /// The pinned pages `pfns` records.
    ///
    /// # Safety
    ///
    /// Each PFN `pfns` yields must be a page on which the caller holds one pin it took through
    /// this module and keeps for `'a`. If the caller calls [`Self::unpin`], those pins are given
    /// up: it must not use these PFNs as pins again (nor make another `PinnedPfns` of them).
    #[inline]
    pub(crate) unsafe fn new(pfns: R) -> Self {
        // INVARIANT: the caller's promise.
        Self {
            pfns,
            _pins: PhantomData,
        }
    }

    /// Gives back the pins of all the pages, a contiguous run per call, marking them dirty if
    /// `dirty` (devices may have written them).
    #[inline]
    pub(crate) fn unpin(self, dirty: bool) {
        if self.pfns.is_empty() {
            return;
        }
        let n = self.pfns.len();
        let mut i = 0;
        while i < n {
            let Some((start, len)) = self.pfns.run_at(i) else {
                return;
            };
            // SAFETY: these `len` pages carry one pin each (type invariant) that the caller gives
            // up by consuming `self`, and are physically contiguous, so their `struct page`s are
            // too.
            unsafe {
                let page = shim::iommufd_rs_pfn_to_page(start as usize);
                bindings::unpin_user_page_range_dirty_lock(page, len, dirty);
            }
            i += len;
        }
    }

    /// Copies between `buf` and the pages, from byte `offset` of the first (`buf.len()` bytes,
    /// which the pages must hold): into the pages with `write`, out of them otherwise
    /// (`memcpy_to_page()`/`memcpy_from_page()`). `EINVAL` if they do not hold that much.
    pub(crate) fn copy(&self, offset: usize, buf: &mut [u8], write: bool) -> Result {
        let mut done = 0usize;
        let mut offset = offset;
        let mut i = 0;
        while done < buf.len() {
            if offset >= PAGE_SIZE {
                return Err(EINVAL);
            }
            let pfn = self.pfns.get(i).ok_or(EINVAL)?;
            let pfn = usize::try_from(pfn).map_err(|_| EINVAL)?;
            let n = (PAGE_SIZE - offset).min(buf.len() - done);
            // SAFETY: the page is pinned for `'a` (type invariant), so valid; `n` bytes from
            // `offset` stay inside it; `buf[done..done + n]` is in bounds.
            unsafe {
                let page = shim::iommufd_rs_pfn_to_page(pfn);
                if write {
                    shim::iommufd_rs_memcpy_to_page(page, offset, buf.as_ptr().add(done), n);
                } else {
                    shim::iommufd_rs_memcpy_from_page(buf.as_mut_ptr().add(done), page, offset, n);
                }
            }
            done += n;
            offset = 0;
            i += 1;
        }
        Ok(())
    }
}
