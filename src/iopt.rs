// SPDX-License-Identifier: GPL-2.0
//! The io_pagetable of an IOAS (upstream's `struct io_pagetable`): its areas, allowed and reserved
//! IOVA ranges and alignment, over the kernel-independent span logic of `pure::span` and
//! `pure::iova`.
//!
//! An area maps an IOVA span to a byte range of a [`Pages`] object (user memory). As upstream,
//! memory is pinned only when something needs the physical pages: a domain to fill or an access
//! to serve. With neither, MAP and UNMAP are bookkeeping of areas; the pinning layer and domains
//! land next (issue 3).

use kernel::{
    fs::File,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        Arc, //
    },
};

use crate::pure::span::{
    Span,
    SpanSet, //
};

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
            Some(c) => (c.peek_prev().map(span), Some(span(c.current()))),
            None => (self.0.cursor_back().map(|c| span(c.current())), None),
        };
        prev.filter(|p| p.last >= range.start)
            .or(at.filter(|a| a.start <= range.last))
    }
}

/// A reserved range and whom it is for (a device or domain; `0` for the selftest's own).
// Read when an owner goes away and takes its ranges along (device detach, domain removal): the
// cover is rebuilt from the entries left.
#[allow(dead_code)]
pub(crate) struct Reserved {
    pub(crate) span: Span,
    pub(crate) owner: usize,
}

/// Reserved ranges, which may overlap: each entry with its owner (to drop an owner's ranges when
/// it goes away), plus their union as non-overlapping spans in an rbtree, which is what every
/// query walks, in O(log n) however many ranges userspace piles up (upstream keeps an interval
/// tree for the same reason).
pub(crate) struct ReservedList {
    entries: KVec<Reserved>,
    cover: SpanTree<u64>,
}

impl ReservedList {
    fn new() -> Self {
        Self {
            entries: KVec::new(),
            cover: SpanTree::new(),
        }
    }

    /// Adds `span` for `owner`; all allocation happens before anything changes.
    fn add(&mut self, span: Span, owner: usize) -> Result {
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        self.entries
            .push(Reserved { span, owner }, GFP_KERNEL_ACCOUNT)?;
        // Fold every covered span that overlaps or touches the new one into it.
        let mut merged = span;
        while let Some(s) = self.cover.first_intersecting(Span {
            start: merged.start.saturating_sub(1),
            last: merged.last.saturating_add(1),
        }) {
            self.cover.0.remove(&s.start);
            merged.start = merged.start.min(s.start);
            merged.last = merged.last.max(s.last);
        }
        self.cover.insert_free(merged.start, merged.last, node);
        Ok(())
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

/// Where the memory of a [`Pages`] lives. What the pinning layer pins from (with domains and
/// accesses, next).
#[allow(dead_code)]
pub(crate) enum Source {
    /// User memory of the process that mapped it (`IOMMU_IOAS_MAP`, `IOPT_ADDRESS_USER`).
    User,
    /// A file's pages, a memfd typically (`IOMMU_IOAS_MAP_FILE`, `IOPT_ADDRESS_FILE`); held open
    /// for as long as anything maps it.
    File(ARef<File>),
}

/// The memory an area maps (upstream's `struct iopt_pages`). Areas share it:
/// `IOMMU_IOAS_COPY` maps the same pages again without a second pin.
// `length` is what the pinning layer pins (with domains and accesses, next).
#[allow(dead_code)]
pub(crate) struct Pages {
    pub(crate) source: Source,
    /// Page-aligned start: a user address, or a file offset.
    pub(crate) base: u64,
    /// Bytes from `base` to the end of the memory.
    pub(crate) length: u64,
    /// Whether the memory may be mapped for device writes.
    pub(crate) writable: bool,
}

/// One mapping: `[iova, last]` to `pages` from byte `start_byte` on.
pub(crate) struct Area {
    pub(crate) last: u64,
    pub(crate) pages: Arc<Pages>,
    pub(crate) start_byte: u64,
    /// `IOMMU_READ`/`IOMMU_WRITE` bits domains map this area with (read when domains land).
    #[allow(dead_code)]
    pub(crate) prot: u32,
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
}

impl Iopt {
    pub(crate) fn new() -> Self {
        Self {
            areas: SpanTree::new(),
            allowed: SpanTree::new(),
            reserved: ReservedList::new(),
            iova_alignment: 1,
            disable_large_pages: false,
        }
    }

    /// Reserves `span` for `owner` (upstream's `iopt_reserve_iova()`): refused with `EADDRINUSE`
    /// over an allowed range (the caller promised that IOVA to userspace) or an area.
    pub(crate) fn reserve(&mut self, span: Span, owner: usize) -> Result {
        if self.allowed.intersects(span) || self.areas.intersects(span) {
            return Err(crate::errno::eaddrinuse());
        }
        self.reserved.add(span, owner)
    }

    /// The alignment that follows from the current settings (upstream's
    /// `iopt_calculate_iova_alignment()`, so far without domains and accesses). Raising it is
    /// refused with `EADDRINUSE` while an area would not satisfy it.
    pub(crate) fn update_alignment(&mut self) -> Result {
        let new = if self.disable_large_pages {
            PAGE_SIZE as u64
        } else {
            1
        };
        if new > self.iova_alignment {
            let mask = new - 1;
            for (&iova, area) in self.areas.0.iter() {
                let length = area.last - iova + 1;
                if iova & mask != 0
                    || length & mask != 0
                    || (area.start_byte % PAGE_SIZE as u64) & mask != 0
                {
                    return Err(crate::errno::eaddrinuse());
                }
            }
        }
        self.iova_alignment = new;
        Ok(())
    }

    /// The memory behind `[start, start + length - 1]`, which must be covered by adjacent areas
    /// with no gap (upstream's `iopt_get_pages()`): one element per area, sharing its pages.
    pub(crate) fn get_pages(&self, start: u64, length: u64, out: &mut KVec<Elem>) -> Result {
        if length == 0 {
            return Err(EINVAL);
        }
        let range = Span::from_len(start, length).ok_or(EOVERFLOW)?;
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
    /// `iopt_unmap_iova_range()`): `ENOENT` at the first area the range cuts, with the areas
    /// before it already gone, as upstream. Returns the bytes unmapped. (Removed areas only drop
    /// a `Pages` reference; unpinning, when pages are pinned, happens where that reaches zero.)
    pub(crate) fn unmap_range(&mut self, range: Span) -> Result<u64> {
        let mut unmapped = 0u64;
        // One tree walk to the first area, then neighbour steps: no lookup per area. The first
        // area at or after `range.start` may be preceded by one reaching into the range.
        let tree = &mut self.areas.0;
        let mut cursor = match tree.cursor_lower_bound_mut(&range.start) {
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
            if span.start < range.start || span.last > range.last {
                return Err(ENOENT);
            }
            let (next, removed) = c.remove_current();
            drop(removed);
            unmapped = unmapped.saturating_add(span.len());
            if span.last >= range.last {
                break;
            }
            // `remove_current` falls back to the previous node at the end of the tree.
            cursor = next.filter(|n| *n.current().0 > span.start);
        }
        Ok(unmapped)
    }
}
