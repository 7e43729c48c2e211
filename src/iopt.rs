// SPDX-License-Identifier: GPL-2.0
//! The io_pagetable of an IOAS (upstream's `struct io_pagetable`): its allowed and reserved IOVA
//! ranges and alignment, over the kernel-independent span logic of `pure::span` and `pure::iova`.
//!
//! Areas, pinned pages and domains join this struct with `IOMMU_IOAS_MAP`.

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
};

use crate::pure::span::{
    Span,
    SpanSet, //
};

/// Non-overlapping spans in an rbtree keyed by start (value: last).
pub(crate) struct SpanTree(RBTree<u64, u64>);

impl SpanTree {
    pub(crate) fn new() -> Self {
        Self(RBTree::new())
    }

    /// Inserts `span` with a node the caller allocated; `false` (and the node dropped) if it
    /// overlaps a span already there.
    pub(crate) fn insert(&mut self, span: Span, node: RBTreeNodeReservation<u64, u64>) -> bool {
        if self.intersects(span) {
            return false;
        }
        self.0.insert(node.into_node(span.start, span.last));
        true
    }
}

impl SpanSet for SpanTree {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        let span = |(&start, &last): (&u64, &u64)| Span { start, last };
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
pub(crate) struct Reserved {
    pub(crate) span: Span,
    // Read when the owner goes away and takes its ranges along (device detach, domain removal).
    #[allow(dead_code)]
    pub(crate) owner: usize,
}

/// Reserved ranges may overlap and are few (a device's MSI window, a domain's aperture): a vector
/// scanned linearly.
pub(crate) struct ReservedList(pub(crate) KVec<Reserved>);

impl SpanSet for ReservedList {
    fn first_intersecting(&self, range: Span) -> Option<Span> {
        self.0
            .iter()
            .map(|r| r.span)
            .filter(|s| s.intersects(&range))
            .min_by_key(|s| s.start)
    }
}

pub(crate) struct Iopt {
    pub(crate) allowed: SpanTree,
    pub(crate) reserved: ReservedList,
    /// Minimum IOVA alignment for MAP/COPY: 1, or more once domains or accesses need it.
    pub(crate) iova_alignment: u64,
    /// `IOMMU_OPTION_HUGE_PAGES` = 0: map everything as PAGE_SIZE.
    pub(crate) disable_large_pages: bool,
}

impl Iopt {
    pub(crate) fn new() -> Self {
        Self {
            allowed: SpanTree::new(),
            reserved: ReservedList(KVec::new()),
            iova_alignment: 1,
            disable_large_pages: false,
        }
    }

    /// Reserves `span` for `owner` (upstream's `iopt_reserve_iova()`): refused with `EADDRINUSE`
    /// over an allowed range (the caller promised that IOVA to userspace) or an area.
    pub(crate) fn reserve(&mut self, span: Span, owner: usize) -> Result {
        if self.allowed.intersects(span) {
            return Err(crate::errno::eaddrinuse());
        }
        self.reserved.0.push(Reserved { span, owner }, GFP_KERNEL)?;
        Ok(())
    }

    /// The alignment that follows from the current settings (upstream's
    /// `iopt_calculate_iova_alignment()`, so far without domains and accesses).
    pub(crate) fn required_alignment(&self) -> u64 {
        if self.disable_large_pages {
            kernel::page::PAGE_SIZE as u64
        } else {
            1
        }
    }
}
