// SPDX-License-Identifier: GPL-2.0
//! A fixed set of slots that parts of this module fill at module init, for the core to ask
//! later: the in-module IOMMU drivers of `hwpt/driver.rs`, the vIOMMU drivers of
//! `viommu/driver.rs`, the dma-buf exporters of `pages/exporter.rs`, the extra ioctl rows of
//! `context/ioctl_ext.rs`. The core names no provider; a provider registers itself and holds the
//! [`Registration`] until module exit, so a build without it simply has an empty registry.
//!
//! Lock free and allocation free: a slot is a [`SetOnce`] holding a `&'static` provider and a flag
//! saying whether it is registered now. A slot is filled once per module load (a provider that
//! unregisters leaves its slot spent), which suits providers that register at module init and
//! unregister at exit. A lookup is a few atomic loads, cheap enough for any path.

use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use kernel::{
    prelude::*,
    sync::SetOnce, //
};

/// One provider's place in a [`Registry`].
struct Slot<T: ?Sized + Sync + 'static> {
    entry: SetOnce<&'static T>,
    live: AtomicBool,
}

impl<T: ?Sized + Sync + 'static> Slot<T> {
    const fn new() -> Self {
        Self {
            entry: SetOnce::new(),
            live: AtomicBool::new(false),
        }
    }

    /// The provider, while it is registered.
    #[inline]
    fn get(&self) -> Option<&'static T> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        self.entry.as_ref().copied()
    }
}

/// Up to `N` providers of `T` (usually a `dyn Trait`), each registered until its
/// [`Registration`] drops. Meant for a `static`.
pub(crate) struct Registry<T: ?Sized + Sync + 'static, const N: usize> {
    slots: [Slot<T>; N],
}

impl<T: ?Sized + Sync + 'static, const N: usize> Registry<T, N> {
    /// An empty registry.
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { Slot::new() }; N],
        }
    }

    /// Registers `provider` until the result drops; `ENOSPC` once every slot has been used.
    pub(crate) fn register(&'static self, provider: &'static T) -> Result<Registration> {
        for slot in self.slots.iter() {
            if slot.entry.populate(provider) {
                slot.live.store(true, Ordering::Release);
                return Ok(Registration { live: &slot.live });
            }
        }
        Err(ENOSPC)
    }

    /// The registered providers, in registration order.
    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'static T> + '_ {
        self.slots.iter().filter_map(Slot::get)
    }

    /// The first registered provider `pick` accepts.
    #[inline]
    pub(crate) fn find(&self, pick: impl Fn(&T) -> bool) -> Option<&'static T> {
        self.iter().find(|p| pick(p))
    }
}

/// A provider's registration: dropping it unregisters the provider (lookups stop finding it).
pub(crate) struct Registration {
    live: &'static AtomicBool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Release);
    }
}
