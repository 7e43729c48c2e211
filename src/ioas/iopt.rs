// SPDX-License-Identifier: GPL-2.0
//! The io_pagetable of an IOAS (upstream's `struct io_pagetable`): its areas, allowed and reserved
//! IOVA ranges and alignment, over the kernel-independent span logic of `pure::span` and
//! `pure::iova`.
//!
//! An area maps an IOVA span to a byte range of a [`Pages`] object (user memory). As upstream,
//! memory is pinned only when something needs the physical pages: a domain to fill or an access
//! to serve. With neither, MAP and UNMAP are bookkeeping of areas. With domains, every area is
//! pinned (one pin user per area, `pages.rs`) and mapped into each domain, contiguous PFN runs in
//! one `iommu_map()` call each; MAP, COPY and UNMAP keep all domains equal to the area tree, and
//! a domain added later is filled from the PFNs already pinned.

use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::Arc,
};

use crate::{
    abstractions::iommu::domain::{
        page,
        OwnedDomain, //
    },
    pages::Pages,
    pure::{
        batch::Kind,
        prot,
        span::{
            Span,
            SpanSet, //
        },
        ulong::Ulong,
    },
};

// `pure::prot` has the kernel's bits.
const _: () = assert!(
    prot::IOMMU_READ == bindings::IOMMU_READ
        && prot::IOMMU_WRITE == bindings::IOMMU_WRITE
        && prot::IOMMU_CACHE == bindings::IOMMU_CACHE
        && prot::IOMMU_MMIO == bindings::IOMMU_MMIO
);

const PAGE: u64 = PAGE_SIZE as u64;

/// What a [`SpanTree`] stores per span: at least where it ends.
pub(crate) trait SpanValue {
    fn last(&self) -> u64;
}

impl SpanValue for u64 {
    fn last(&self) -> u64 {
        *self
    }
}

/// Non-overlapping spans in an rbtree keyed by start.
pub(crate) struct SpanTree<V: SpanValue>(pub(crate) RBTree<u64, V>);

impl<V: SpanValue> SpanTree<V> {
    pub(crate) fn new() -> Self {
        Self(RBTree::new())
    }

    /// Inserts `value` at `start` with a node the caller allocated; `false` (and the node
    /// dropped) if it would overlap a span already there.
    pub(crate) fn insert(
        &mut self,
        start: u64,
        value: V,
        node: RBTreeNodeReservation<u64, V>,
    ) -> bool {
        if self.intersects(Span {
            start,
            last: value.last(),
        }) {
            return false;
        }
        self.0.insert(node.into_node(start, value));
        true
    }
}

impl<V: SpanValue> SpanTree<V> {
    /// Inserts `value` at `start` where the caller has already checked the span is free (the
    /// IOVA checks of MAP and COPY), saving a second walk of the tree.
    pub(crate) fn insert_free(
        &mut self,
        start: u64,
        value: V,
        node: RBTreeNodeReservation<u64, V>,
    ) {
        self.0.insert(node.into_node(start, value));
    }
}

impl<V: SpanValue> SpanSet for SpanTree<V> {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        let span = |(&start, v): (&u64, &V)| Span {
            start,
            last: v.last(),
        };
        // The span starting at or after `range.start`, and the one before it, which may reach in.
        let (prev, at) = match self.0.cursor_lower_bound(&range.start) {
            // Spans do not overlap: none before one starting right at `range.start` reaches in.
            Some(c) if *c.current().0 == range.start => return Some(span(c.current())),
            Some(c) => (c.peek_prev().map(span), Some(span(c.current()))),
            None => (self.0.cursor_back().map(|c| span(c.current())), None),
        };
        prev.filter(|p| p.last >= range.start)
            .or(at.filter(|a| a.start <= range.last))
    }
}

/// A reserved range and whom it is for (a device or domain, by address; `0` for a range reserved
/// on nobody's behalf).
pub(crate) struct Reserved {
    pub(crate) span: Span,
    pub(crate) owner: usize,
}

/// Reserved ranges, which may overlap: each entry with its owner (to drop an owner's ranges when
/// it goes away), plus their union as non-overlapping spans in an rbtree, which is what every
/// query walks, in O(log n) however many ranges userspace piles up (upstream keeps an interval
/// tree for the same reason).
///
/// Every entry brings one rbtree node; nodes the cover does not use wait in `spare`. Removing an
/// owner rebuilds the cover from the entries left, which never needs more nodes than there are
/// entries: removal cannot fail for want of memory.
pub(crate) struct ReservedList {
    entries: KVec<Reserved>,
    cover: SpanTree<u64>,
    spare: KVec<RBTreeNodeReservation<u64, u64>>,
}

impl ReservedList {
    fn new() -> Self {
        Self {
            entries: KVec::new(),
            cover: SpanTree::new(),
            spare: KVec::new(),
        }
    }

    /// Adds `span` for `owner`; all allocation happens before anything changes.
    fn add(&mut self, span: Span, owner: usize) -> Result {
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        self.entries.reserve(1, GFP_KERNEL_ACCOUNT)?;
        // Room for every cover node the merge below may free, plus the new entry's.
        self.spare
            .reserve(self.entries.len() + 1, GFP_KERNEL_ACCOUNT)?;
        self.entries
            .push(Reserved { span, owner }, GFP_KERNEL_ACCOUNT)?;
        let _ = self.spare.push(node, GFP_KERNEL_ACCOUNT);
        self.fold(span);
        Ok(())
    }

    /// Merges `span` into the cover with every covered span it overlaps or touches, taking one
    /// node from the pool and giving back the ones the merge frees (the pool has room for them).
    fn fold(&mut self, span: Span) {
        let mut merged = span;
        while let Some(s) = self.cover.first_intersecting(Span {
            start: merged.start.saturating_sub(1),
            last: merged.last.saturating_add(1),
        }) {
            if let Some(old) = self.cover.0.remove_node(&s.start) {
                let _ = self.spare.push(old.into_reservation(), GFP_KERNEL_ACCOUNT);
            }
            merged.start = merged.start.min(s.start);
            merged.last = merged.last.max(s.last);
        }
        if let Some(node) = self.spare.pop() {
            self.cover.insert_free(merged.start, merged.last, node);
        }
    }

    /// Drops every range `owner` reserved and rebuilds the cover from the rest.
    pub(crate) fn remove_owner(&mut self, owner: usize) {
        let before = self.entries.len();
        self.entries.retain(|r| r.owner != owner);
        if self.entries.len() == before {
            return;
        }
        // Every cover node back to the pool, then the entries left folded in one by one, each
        // merge giving back the nodes it frees: never more nodes in use than entries folded.
        while let Some(start) = self.cover.0.iter().next().map(|(&k, _)| k) {
            if let Some(node) = self.cover.0.remove_node(&start) {
                // The pool's capacity covers one node per entry ever added and not removed.
                let _ = self.spare.push(node.into_reservation(), GFP_KERNEL_ACCOUNT);
            }
        }
        for i in 0..self.entries.len() {
            let span = self.entries[i].span;
            self.fold(span);
        }
        // Keep one node per entry in all.
        let keep = self
            .entries
            .len()
            .saturating_sub(self.cover.0.iter().count());
        self.spare.truncate(keep);
    }

    /// The union of the reserved ranges, lowest first.
    pub(crate) fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.cover
            .0
            .iter()
            .map(|(&start, &last)| Span { start, last })
    }
}

impl SpanSet for ReservedList {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        self.cover.first_intersecting(range)
    }
}

/// One mapping: `[iova, last]` to `pages` from byte `start_byte` on.
pub(crate) struct Area {
    pub(crate) last: u64,
    pub(crate) pages: Arc<Pages>,
    pub(crate) start_byte: u64,
    /// `IOMMU_READ`/`IOMMU_WRITE`/`IOMMU_CACHE` of the MAP/COPY flags (`prot::area_prot`);
    /// domains map each run with `prot::domain_prot` of them (MMIO for a dma-buf's range).
    pub(crate) prot: u32,
    /// Access pins on this area (each one a pin user of its pages).
    pub(crate) num_accesses: u32,
    /// An unmap waits for the accesses to let go: no new access pins meanwhile.
    pub(crate) prevent_access: bool,
    /// Pins that also lock the area (a HW queue's): unmapping it answers `EBUSY` meanwhile.
    pub(crate) num_locks: u32,
}

impl Area {
    /// The pages of `pages` this area maps, as page indexes: its span as a pin user.
    pub(crate) fn page_span(&self, iova: u64) -> Span {
        self.sub_page_span(iova, iova, self.last)
    }

    /// Byte offset into the pages of `at` (an IOVA of this area, which starts at `iova`).
    pub(crate) fn start_byte_of(&self, iova: u64, at: u64) -> u64 {
        self.start_byte + (at - iova)
    }

    /// The pages holding `[first, last]` (IOVAs of this area, which starts at `iova`).
    pub(crate) fn sub_page_span(&self, iova: u64, first: u64, last: u64) -> Span {
        Span {
            start: self.start_byte_of(iova, first) / PAGE,
            last: self.start_byte_of(iova, last) / PAGE,
        }
    }
}

/// Where an unmap stopped short: an area accesses still pin, which they must be told to let go
/// of before the unmap goes on (upstream's `iommufd_access_notify_unmap()`).
pub(crate) struct AccessedArea {
    pub(crate) iova: u64,
    pub(crate) length: u64,
}

/// An `iommu_domain` an IOAS keeps mapped: one reference of the domain its HWPT owns, which adds
/// and removes it; equal to another when it is the same domain.
#[derive(Clone)]
pub(crate) struct DomainRef(pub(crate) Arc<OwnedDomain>);

impl PartialEq for DomainRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DomainRef {}

impl DomainRef {
    /// The reserved-range owner key of the domain (its aperture's outside).
    pub(crate) fn owner(&self) -> usize {
        self.0.as_raw() as usize
    }

    /// The page sizes the domain maps.
    pub(crate) fn pgsize_bitmap(&self) -> u64 {
        self.0.pgsize_bitmap() as u64
    }

    /// Smallest page the domain maps.
    fn min_page(&self) -> u64 {
        let bitmap = self.pgsize_bitmap();
        if bitmap == 0 {
            PAGE
        } else {
            1u64 << bitmap.trailing_zeros()
        }
    }

    /// Its aperture, `[start, end]`.
    fn aperture(&self) -> (u64, u64) {
        self.0.aperture()
    }

    /// Maps `area` at `iova` from the PFNs pinned for it; all or nothing. A revoked dma-buf
    /// maps nothing (its range is gone); a live one is mapped and tracked for a revoke under its
    /// revoke lock (`DmaBufSrc::map_tracked`).
    fn map_area(&self, iova: u64, area: &Area, small_pages: bool) -> Result {
        let span = area.page_span(iova);
        // A dma-buf's range is MMIO (upstream's `BATCH_MMIO`); anything else pinned CPU memory.
        let (dmabuf, kind) = match area.pages.dmabuf() {
            Some(d) => (Some(d), Kind::Mmio),
            None => (None, Kind::CpuMemory),
        };
        let iommu_prot = prot::domain_prot(area.prot, kind);
        area.pages.with_pins(|pins| {
            let pfns = pins.pfns(span).ok_or(EINVAL)?;
            let map = || self.map_pfns(iova, area, pfns, small_pages, iommu_prot);
            match dmabuf {
                Some(d) => d.map_tracked(self.clone(), iova, area.last - iova + 1, map),
                None => map(),
            }
        })
    }

    /// Undoes [`Self::map_area`].
    fn unmap_area(&self, iova: u64, area: &Area) {
        let len = area.last - iova + 1;
        match area.pages.dmabuf() {
            // Unless the revoke took the mapping already.
            Some(d) => d.unmap_tracked(self.clone(), iova, || self.unmap(iova, len)),
            None => self.unmap(iova, len),
        }
    }

    /// Maps `area` at `iova` from `pfns` with `iommu_prot`, contiguous runs in one call each;
    /// all or nothing.
    fn map_pfns(
        &self,
        iova: u64,
        area: &Area,
        pfns: crate::pages::pfns::PfnView<'_>,
        small_pages: bool,
        iommu_prot: u32,
    ) -> Result {
        let mut cur = iova;
        let prot = i32::try_from(iommu_prot).map_err(|_| EINVAL)?;
        let rc = for_each_run(pfns, area, iova, small_pages, |at, phys, len| {
            // The IOMMU API's `unsigned long` IOVA and `size_t` length.
            let (c_iova, c_len) = Ulong::NATIVE.narrow::<usize>(at, len)?;
            // SAFETY: `phys` is pinned memory (or a dma-buf range whose mapping a revoke takes
            // back) that the area holds for as long as the mapping exists: the area unmaps
            // every domain before it unpins.
            unsafe { self.0.map(c_iova, phys, c_len, prot) }?;
            cur = at + len;
            Ok(())
        });
        if rc.is_err() && cur > iova {
            self.unmap(iova, cur - iova);
        }
        rc
    }

    /// Unmaps `[iova, iova + length)`, which this IOAS mapped; warns if the domain unmaps less.
    pub(crate) fn unmap(&self, iova: u64, length: u64) {
        // Everything mapped passed the same bound on its way in.
        let Ok((c_iova, c_len)) = Ulong::NATIVE.narrow::<usize>(iova, length) else {
            kernel::pr_warn_once!("iommufd: unmap of {length} bytes at {iova:#x} out of range\n");
            return;
        };
        let done = self.0.unmap(c_iova, c_len);
        if done != c_len {
            kernel::pr_warn_once!("iommufd: domain unmapped {done} of {length} bytes\n");
        }
    }
}

/// Walks `area` (at `iova`) in runs of physically contiguous memory: `f(iova, phys, len)`. With
/// `small_pages`, runs stop at every page boundary (IOMMU_OPTION_HUGE_PAGES = 0).
fn for_each_run(
    pfns: crate::pages::pfns::PfnView<'_>,
    area: &Area,
    iova: u64,
    small_pages: bool,
    mut f: impl FnMut(u64, u64, u64) -> Result,
) -> Result {
    let total = area.last - iova + 1;
    let offset = area.start_byte % PAGE;
    let mut done = 0u64;
    let mut i = 0usize;
    while done < total {
        let (first, n) = if small_pages {
            (pfns.get(i).ok_or(EINVAL)?, 1)
        } else {
            pfns.run_at(i).ok_or(EINVAL)?
        };
        // The first run starts `offset` into its page; every run ends at a page end or the area's.
        let skip = if i == 0 { offset } else { 0 };
        let len = (n as u64 * PAGE - skip).min(total - done);
        let phys = first.checked_mul(PAGE).ok_or(EOVERFLOW)? + skip;
        f(iova + done, phys, len)?;
        done += len;
        i += n;
    }
    Ok(())
}

/// Pins `area` (at `iova`) and maps it into every domain; all or nothing.
pub(crate) fn fill_area(domains: &[DomainRef], iova: u64, area: &Area, small: bool) -> Result {
    if domains.is_empty() {
        return Ok(());
    }
    let span = area.page_span(iova);
    area.pages.pin(span)?;
    for (i, d) in domains.iter().enumerate() {
        if let Err(e) = d.map_area(iova, area, small) {
            for done in &domains[..i] {
                done.unmap_area(iova, area);
            }
            area.pages.unpin(span);
            return Err(e);
        }
    }
    Ok(())
}

/// Undoes [`fill_area`].
pub(crate) fn unfill_area(domains: &[DomainRef], iova: u64, area: &Area) {
    if domains.is_empty() {
        return;
    }
    for d in domains {
        d.unmap_area(iova, area);
    }
    area.pages.unpin(area.page_span(iova));
}

/// A piece of memory to map: `length` bytes of `pages` from byte `start_byte` on (upstream's
/// `struct iopt_pages_list` element). MAP makes one; COPY one per source area it spans.
pub(crate) struct Elem {
    pub(crate) pages: Arc<Pages>,
    pub(crate) start_byte: u64,
    pub(crate) length: u64,
}

impl SpanValue for Area {
    fn last(&self) -> u64 {
        self.last
    }
}

pub(crate) struct Iopt {
    pub(crate) areas: SpanTree<Area>,
    pub(crate) allowed: SpanTree<u64>,
    pub(crate) reserved: ReservedList,
    /// Minimum IOVA alignment for MAP/COPY: 1, or more once domains or accesses need it.
    pub(crate) iova_alignment: u64,
    /// `IOMMU_OPTION_HUGE_PAGES` = 0: map everything as PAGE_SIZE.
    pub(crate) disable_large_pages: bool,
    /// Domains this IOAS keeps equal to its areas.
    pub(crate) domains: KVec<DomainRef>,
    /// Attached accesses that pin pages (and so need PAGE_SIZE alignment).
    pub(crate) pinning_accesses: u32,
}

impl Iopt {
    pub(crate) fn new() -> Self {
        Self {
            areas: SpanTree::new(),
            allowed: SpanTree::new(),
            reserved: ReservedList::new(),
            iova_alignment: 1,
            disable_large_pages: false,
            domains: KVec::new(),
            pinning_accesses: 0,
        }
    }

    /// Reserves `span` for `owner` (upstream's `iopt_reserve_iova()`): refused with `EADDRINUSE`
    /// over an allowed range (the caller promised that IOVA to userspace) or an area.
    pub(crate) fn reserve(&mut self, span: Span, owner: usize) -> Result {
        if self.allowed.intersects(span) || self.areas.intersects(span) {
            return Err(crate::context::errno::eaddrinuse());
        }
        self.reserved.add(span, owner)
    }

    /// The alignment that follows from the current settings (upstream's
    /// `iopt_calculate_iova_alignment()`, so far without accesses). Raising it is refused with
    /// `EADDRINUSE` while an area would not satisfy it.
    pub(crate) fn update_alignment(&mut self) -> Result {
        let mut new = if self.disable_large_pages || self.pinning_accesses != 0 {
            PAGE
        } else {
            1
        };
        for d in self.domains.iter() {
            new = new.max(d.min_page());
        }
        if new > self.iova_alignment {
            self.check_alignment(new)?;
        }
        self.iova_alignment = new;
        Ok(())
    }

    /// `IOMMU_OPTION_HUGE_PAGES` = 0 (and VFIO type1): map with small pages only. Refused with
    /// `EINVAL` once domains hold mappings (they may already use huge IOPTEs).
    pub(crate) fn disable_huge_pages(&mut self) -> Result {
        if self.disable_large_pages {
            return Ok(());
        }
        if !self.domains.is_empty() && !self.areas.0.is_empty() {
            return Err(EINVAL);
        }
        self.disable_large_pages = true;
        self.update_alignment()
            .inspect_err(|_| self.disable_large_pages = false)
    }

    /// `IOMMU_OPTION_HUGE_PAGES` = 1.
    pub(crate) fn enable_huge_pages(&mut self) {
        self.disable_large_pages = false;
        // Lowering the alignment cannot fail.
        let _ = self.update_alignment();
    }

    /// Splits the area holding `iova` so that one area ends at `iova` (upstream's
    /// `iopt_area_split()`, for VFIO type1 unmaps inside a mapping). Nothing to do when no area
    /// holds it or one already ends or starts there.
    pub(crate) fn cut_after(&mut self, iova: u64) -> Result {
        let point = Span {
            start: iova,
            last: iova,
        };
        let Some(found) = self.areas.first_intersecting(point) else {
            return Ok(());
        };
        if iova == found.start || iova == found.last {
            return Ok(());
        }
        let new_start = iova + 1;
        let mask = self.iova_alignment - 1;
        let small = self.disable_large_pages;
        let has_domains = !self.domains.is_empty();
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let area = self.areas.0.get_mut(&found.start).ok_or(ENOENT)?;
        if area.prevent_access {
            return Err(EBUSY);
        }
        // Tracking a split dma-buf mapping is not worth its complexity (as upstream).
        if area.pages.dmabuf().is_some() {
            return Err(crate::context::errno::eopnotsupp());
        }
        let rhs_start_byte = area.start_byte_of(found.start, new_start);
        if new_start & mask != 0 || rhs_start_byte & mask != 0 {
            return Err(EINVAL);
        }
        // Accesses' pins cannot be split, nor huge IOPTEs a domain may hold.
        if area.num_accesses != 0 || (has_domains && !small) {
            return Err(EINVAL);
        }
        let rhs = Area {
            last: area.last,
            pages: area.pages.clone(),
            start_byte: rhs_start_byte,
            prot: area.prot,
            num_accesses: 0,
            prevent_access: false,
            num_locks: 0,
        };
        if has_domains {
            // The area's pin user becomes two; the pages stay pinned throughout.
            let whole = area.page_span(found.start);
            let lhs_span = area.sub_page_span(found.start, found.start, iova);
            let rhs_span = rhs.page_span(new_start);
            area.pages.split_user(whole, lhs_span, rhs_span)?;
        }
        area.last = iova;
        self.areas.insert_free(new_start, rhs, node);
        Ok(())
    }

    /// `EADDRINUSE` unless every area satisfies alignment `new` (a power of two).
    fn check_alignment(&self, new: u64) -> Result {
        let mask = new - 1;
        for (&iova, area) in self.areas.0.iter() {
            let length = area.last - iova + 1;
            if iova & mask != 0 || length & mask != 0 || (area.start_byte % PAGE) & mask != 0 {
                return Err(crate::context::errno::eaddrinuse());
            }
        }
        Ok(())
    }

    /// Starts keeping `domain` equal to the areas (upstream's `iopt_table_add_domain()`): the
    /// IOVA outside its aperture becomes reserved, and every area is pinned (if this is the first
    /// domain) and mapped into it. All or nothing.
    pub(crate) fn add_domain(&mut self, domain: DomainRef) -> Result {
        let new_align = self.iova_alignment.max(domain.min_page());
        if new_align > PAGE {
            return Err(EINVAL);
        }
        if new_align != self.iova_alignment {
            self.check_alignment(new_align)?;
        }
        self.domains.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let (start, end) = domain.aperture();
        let rc = (|| -> Result {
            if start != 0 {
                self.reserve(
                    Span {
                        start: 0,
                        last: start - 1,
                    },
                    domain.owner(),
                )?;
            }
            if end != u64::MAX {
                self.reserve(
                    Span {
                        start: end + 1,
                        last: u64::MAX,
                    },
                    domain.owner(),
                )?;
            }
            Ok(())
        })();
        if let Err(e) = rc {
            self.reserved.remove_owner(domain.owner());
            return Err(e);
        }
        let first = self.domains.is_empty();
        let small = self.disable_large_pages;
        let mut failed = None;
        for (&iova, area) in self.areas.0.iter() {
            let rc = if first {
                fill_area(core::slice::from_ref(&domain), iova, area, small)
            } else {
                domain.map_area(iova, area, small)
            };
            if let Err(e) = rc {
                failed = Some((iova, e));
                break;
            }
        }
        if let Some((stop, e)) = failed {
            for (&iova, area) in self.areas.0.iter().take_while(|(&i, _)| i < stop) {
                if first {
                    unfill_area(core::slice::from_ref(&domain), iova, area);
                } else {
                    domain.unmap_area(iova, area);
                }
            }
            self.reserved.remove_owner(domain.owner());
            return Err(e);
        }
        self.iova_alignment = new_align;
        // Capacity reserved above.
        self.domains.push(domain, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Stops keeping `domain` (upstream's `iopt_table_remove_domain()`): its mappings go, and
    /// with the last domain the pins.
    pub(crate) fn remove_domain(&mut self, domain: &DomainRef) {
        let Some(i) = self.domains.iter().position(|d| d == domain) else {
            return;
        };
        // The reference the list had goes after the unmaps below (the caller holds another).
        let _listed = self.domains.remove(i);
        let last = self.domains.is_empty();
        for (&iova, area) in self.areas.0.iter() {
            if last {
                unfill_area(core::slice::from_ref(domain), iova, area);
            } else {
                domain.unmap_area(iova, area);
            }
        }
        self.reserved.remove_owner(domain.owner());
        // Dropping a domain only lowers the alignment, which no area can fail.
        let _ = self.update_alignment();
    }

    /// The memory behind `[start, start + length - 1]`, which must be covered by adjacent areas
    /// with no gap (upstream's `iopt_get_pages()`): one element per area, sharing its pages.
    pub(crate) fn get_pages(&self, start: u64, length: u64, out: &mut KVec<Elem>) -> Result {
        // `EINVAL` if empty, `EOVERFLOW` past `ULONG_MAX`.
        let range = Ulong::NATIVE.span(start, length)?;
        let mut cur = range.start;
        loop {
            let point = Span {
                start: cur,
                last: cur,
            };
            let found = self.areas.first_intersecting(point).ok_or(ENOENT)?;
            let area = self.areas.0.get(&found.start).ok_or(ENOENT)?;
            let end = found.last.min(range.last);
            out.push(
                Elem {
                    pages: area.pages.clone(),
                    start_byte: area
                        .start_byte
                        .checked_add(cur - found.start)
                        .ok_or(EOVERFLOW)?,
                    length: end - cur + 1,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
            if end >= range.last {
                return Ok(());
            }
            cur = end + 1;
        }
    }

    /// Removes the areas in `range`, which must cover each of them whole (upstream's
    /// `iopt_unmap_iova_range()`): at the first area that is locked (`EBUSY`) or that the range
    /// cuts (`ENOENT`; a locked area answers `EBUSY` even then, as upstream checks the lock
    /// first) it stops, with the areas before it already gone, as upstream. Returns the bytes
    /// unmapped; each area leaves every domain and gives up its pin. It stops early at an area
    /// accesses pin, marked so that no new access pins it, and says which: the caller tells the
    /// accesses and calls again.
    pub(crate) fn unmap_range(&mut self, range: Span) -> Result<(u64, Option<AccessedArea>)> {
        let mut unmapped = 0u64;
        // One tree walk to the first area, then neighbour steps: no lookup per area. The first
        // area at or after `range.start` may be preceded by one reaching into the range.
        let domains = &self.domains;
        let tree = &mut self.areas.0;
        let mut cursor = match tree.cursor_lower_bound_mut(&range.start) {
            // Areas do not overlap: none before one starting right at `range.start` reaches in.
            Some(c) if *c.current().0 == range.start => Some(c),
            Some(c)
                if c.peek_prev()
                    .is_some_and(|(_, prev)| prev.last >= range.start) =>
            {
                c.move_prev()
            }
            Some(c) => Some(c),
            None => tree
                .cursor_back_mut()
                .filter(|c| c.current().1.last >= range.start),
        };
        while let Some(c) = cursor {
            let (&start, area) = c.current();
            let span = Span {
                start,
                last: area.last,
            };
            if span.start > range.last {
                break;
            }
            // The area is locked by an object that has not been destroyed.
            if area.num_locks != 0 {
                return Err(EBUSY);
            }
            if span.start < range.start || span.last > range.last {
                return Err(ENOENT);
            }
            if area.num_accesses != 0 {
                let mut c = c;
                c.current_mut().1.prevent_access = true;
                return Ok((
                    unmapped,
                    Some(AccessedArea {
                        iova: span.start,
                        length: span.len(),
                    }),
                ));
            }
            let (next, removed) = c.remove_current();
            let (_, area) = removed.to_key_value();
            unfill_area(domains, span.start, &area);
            drop(area);
            unmapped = unmapped.saturating_add(span.len());
            if span.last >= range.last {
                break;
            }
            // `remove_current` falls back to the previous node at the end of the tree.
            cursor = next.filter(|n| *n.current().0 > span.start);
        }
        Ok((unmapped, None))
    }

    /// Calls `f(area_iova, area, first, last)` for each piece `[first, last]` of `[start, last]`,
    /// lowest first, where areas cover it with no gap (upstream's `iopt_for_each_contig_area`);
    /// `ENOENT` at a gap, after the pieces before it.
    pub(crate) fn for_each_contig(
        &mut self,
        start: u64,
        last: u64,
        mut f: impl FnMut(u64, &mut Area, u64, u64) -> Result,
    ) -> Result {
        let mut cur = start;
        loop {
            let found = self.area_at(cur)?;
            let area = self.areas.0.get_mut(&found.start).ok_or(ENOENT)?;
            let end = found.last.min(last);
            f(found.start, area, cur, end)?;
            if end >= last {
                return Ok(());
            }
            cur = end + 1;
        }
    }

    /// The span of the area holding `iova`; `ENOENT` if none does.
    fn area_at(&self, iova: u64) -> Result<Span> {
        let point = Span {
            start: iova,
            last: iova,
        };
        self.areas.first_intersecting(point).ok_or(ENOENT)
    }

    /// Read-only [`Self::for_each_contig`]: `f(first, last)` per piece.
    pub(crate) fn for_each_contig_ref(
        &self,
        start: u64,
        last: u64,
        mut f: impl FnMut(u64, u64) -> Result,
    ) -> Result {
        let mut cur = start;
        loop {
            let end = self.area_at(cur)?.last.min(last);
            f(cur, end)?;
            if end >= last {
                return Ok(());
            }
            cur = end + 1;
        }
    }

    /// Pins `[iova, last]` for an access and stores its pages in `out` (upstream's
    /// `iommufd_access_pin_pages()` walk). The range must start on a page and join areas at page
    /// boundaries; all or nothing.
    pub(crate) fn access_pin(
        &mut self,
        iova: u64,
        last: u64,
        write: bool,
        out: &mut [*mut bindings::page],
    ) -> Result {
        self.pin_pieces(iova, last, write, |i, pfn| {
            if let Some(slot) = out.get_mut(i) {
                // A pinned page's frame number names a valid page.
                *slot = page::pfn_to_page(pfn as usize);
            }
        })
    }

    /// [`Self::access_pin`], handing out the `i`th page's frame number as `emit(i, pfn)`.
    fn pin_pieces(
        &mut self,
        iova: u64,
        last: u64,
        write: bool,
        mut emit: impl FnMut(usize, u64),
    ) -> Result {
        let mut done_to: Option<u64> = None;
        let mut out_at = 0usize;
        let rc = self.for_each_contig(iova, last, |a_iova, area, first, end| {
            // Pages of an access are whole: the piece starts on a page and, unless it is the
            // last, ends at one.
            if area.prevent_access
                || area.start_byte_of(a_iova, first) % PAGE != 0
                || (end < last && area.start_byte_of(a_iova, end) % PAGE != PAGE - 1)
            {
                return Err(EINVAL);
            }
            let need = if write {
                prot::IOMMU_WRITE
            } else {
                prot::IOMMU_READ
            };
            if area.prot & need == 0 {
                return Err(EPERM);
            }
            // A dma-buf's range has no struct pages to hand out.
            if area.pages.dmabuf().is_some() {
                return Err(crate::context::errno::eopnotsupp());
            }
            let span = area.sub_page_span(a_iova, first, end);
            area.pages.pin_access(span)?;
            area.num_accesses += 1;
            area.pages.with_pins(|pins| {
                if let Some(pfns) = pins.pfns(span) {
                    for pfn in pfns.iter() {
                        emit(out_at, pfn);
                        out_at += 1;
                    }
                }
            });
            done_to = Some(end);
            Ok(())
        });
        if rc.is_err() {
            if let Some(end) = done_to {
                self.access_unpin(iova, end);
            }
        }
        rc
    }

    /// [`Self::access_pin`] (for reading) that also locks the areas against unmap (upstream's
    /// internal access with `lock_area`); stores the page frame numbers in `out`.
    pub(crate) fn lock_pin(&mut self, iova: u64, last: u64, out: &mut [u64]) -> Result {
        self.pin_pieces(iova, last, false, |i, pfn| {
            if let Some(slot) = out.get_mut(i) {
                *slot = pfn;
            }
        })?;
        let locked = self.for_each_contig(iova, last, |_, area, _, _| {
            area.num_locks += 1;
            Ok(())
        });
        if locked.is_err() {
            self.access_unpin(iova, last);
        }
        locked
    }

    /// Undoes [`Self::lock_pin`] of the same range.
    pub(crate) fn lock_unpin(&mut self, iova: u64, last: u64) {
        self.unpin_pieces(iova, last, true);
    }

    /// Undoes [`Self::access_pin`] of the same range.
    pub(crate) fn access_unpin(&mut self, iova: u64, last: u64) {
        self.unpin_pieces(iova, last, false);
    }

    /// Gives back, piece by piece, what [`Self::access_pin`] (and with `unlock`, the lock of
    /// [`Self::lock_pin`]) took over `[iova, last]` (upstream's `iopt_area_remove_access()`
    /// per area). A piece counts only where its pages hold a pin of exactly its span: a driver
    /// that unpins a range it never pinned changes nothing, and an area's access and lock counts
    /// stay those of the pins it really has (a count dropped for nothing would let an unmap go
    /// ahead without telling the access that still holds pages there).
    fn unpin_pieces(&mut self, iova: u64, last: u64, unlock: bool) {
        let rc = self.for_each_contig(iova, last, |a_iova, area, first, end| {
            if !area
                .pages
                .unpin_access(area.sub_page_span(a_iova, first, end))
            {
                return Ok(());
            }
            if unlock {
                area.num_locks = area.num_locks.saturating_sub(1);
            }
            area.num_accesses = area.num_accesses.saturating_sub(1);
            Ok(())
        });
        if rc.is_err() {
            kernel::pr_warn_once!("iommufd: access unpin of a range that is not mapped\n");
        }
    }
}
