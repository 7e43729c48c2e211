// SPDX-License-Identifier: GPL-2.0
//! The pin users of a pages object (upstream's `domains_itree` and `access_itree` of a
//! `struct iopt_pages`): `pure::cover`'s pieces in an rbtree, so that a pin or unpin costs what
//! its span meets, not a scan of every other user.
//!
//! `pure::cover` inserts without failing; the nodes it will need are allocated first
//! ([`PinUsers::reserve_user`], [`PinUsers::split_user`]) and kept as spares until it takes them.
//!
//! Guarded by the pages object's `pins` lock, like the rest of its pin state.

use kernel::{
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode,
        RBTreeNodeReservation, //
    },
};

use crate::pure::{
    cover::{
        self,
        Piece,
        Pieces, //
    },
    span::Span,
};

/// Who uses which pages of a pages object, as pieces of equal use.
pub(crate) struct PinUsers {
    pieces: RBTree<u64, Piece>,
    /// Nodes allocated for the next insertions, keyed `0..nspare`: a tree of their own, so that
    /// keeping them allocates nothing more.
    spare: RBTree<u64, Piece>,
    nspare: u64,
}

impl PinUsers {
    pub(crate) fn new() -> Self {
        Self {
            pieces: RBTree::new(),
            spare: RBTree::new(),
            nspare: 0,
        }
    }

    /// Whether no user is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Allocates what [`Self::add_user`] of `span` will insert. Nothing else changes, so a failure
    /// needs no unwinding.
    pub(crate) fn reserve_user(&mut self, span: Span) -> Result {
        self.reserve(cover::inserts_for_add(self, span))
    }

    /// Adds a user of `span`, after [`Self::reserve_user`] of the same span.
    pub(crate) fn add_user(&mut self, span: Span) {
        cover::add(self, span);
    }

    /// Removes a user of `span`; `false` if there is none (nothing changes). The pages left
    /// uncovered are what [`cover::for_each_uncovered`] then finds in `span`.
    pub(crate) fn remove_user(&mut self, span: Span) -> bool {
        cover::remove(self, span)
    }

    /// Replaces the user `whole` by `a` and `b`, which cover the same pages (an area split).
    pub(crate) fn split_user(&mut self, whole: Span, a: Span, b: Span) -> Result {
        self.reserve(cover::inserts_for_replace(self, a, b))?;
        cover::replace(self, whole, a, b).map_err(|_| EINVAL)
    }

    /// A user span [`Self::remove_user`] accepts, if any user is left.
    pub(crate) fn any_user(&self) -> Option<Span> {
        cover::any_user(self)
    }

    /// Tops the spare nodes up to `n`.
    fn reserve(&mut self, n: usize) -> Result {
        let n = u64::try_from(n).map_err(|_| ENOMEM)?;
        while self.nspare < n {
            let node = RBTreeNode::new(self.nspare, Piece::default(), GFP_KERNEL_ACCOUNT)?;
            // Keys `0..nspare` are taken, this one is new: nothing is replaced.
            let _ = self.spare.insert(node);
            self.nspare += 1;
        }
        Ok(())
    }

    /// A spare node, if one was reserved.
    fn take_spare(&mut self) -> Option<RBTreeNodeReservation<u64, Piece>> {
        let (_, node) = self.spare.cursor_back_mut()?.remove_current();
        self.nspare = self.nspare.saturating_sub(1);
        Some(node.into_reservation())
    }
}

impl Pieces for PinUsers {
    fn at_or_below(&self, p: u64) -> Option<(u64, Piece)> {
        let at = |(&k, &v): (&u64, &Piece)| (k, v);
        match self.pieces.cursor_lower_bound(&p) {
            Some(c) if *c.current().0 == p => Some(at(c.current())),
            Some(c) => c.peek_prev().map(at),
            // Every key is below `p`: the last one.
            None => self.pieces.cursor_back().map(|c| at(c.current())),
        }
    }

    fn at_or_above(&self, p: u64) -> Option<(u64, Piece)> {
        self.pieces
            .cursor_lower_bound(&p)
            .map(|c| (*c.current().0, *c.current().1))
    }

    fn set(&mut self, start: u64, piece: Piece) {
        match self.pieces.get_mut(&start) {
            Some(v) => *v = piece,
            None => kernel::pr_warn_once!("iommufd: pin users: no piece at {}\n", start),
        }
    }

    fn insert(&mut self, start: u64, piece: Piece) {
        let node = match self.take_spare() {
            Some(r) => r.into_node(start, piece),
            None => {
                // `pure::cover` inserts no more than it said it would, and that was reserved.
                kernel::pr_warn_once!("iommufd: pin users: insert without a reserved node\n");
                match RBTreeNode::new(start, piece, GFP_KERNEL_ACCOUNT) {
                    Ok(n) => n,
                    Err(_) => {
                        kernel::pr_err!(
                            "iommufd: pin users: lost pages {}..={}\n",
                            start,
                            piece.last
                        );
                        return;
                    }
                }
            }
        };
        let _ = self.pieces.insert(node);
    }

    fn remove(&mut self, start: u64) {
        let _ = self.pieces.remove(&start);
    }
}
