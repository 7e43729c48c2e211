// SPDX-License-Identifier: GPL-2.0
//! Objects of kinds the core does not know: a part of this module that adds its own ioctl rows (`ioctl_ext.rs`) may also keep its
//! objects in the context's table, as [`Object::Extension`](crate::context::object::Object), and
//! find them again by ID. The table treats them as any other object (IDs, users, `DESTROY`),
//! and lets each end its life with the context through [`ExtensionObject::teardown`].

use core::any::Any;

use crate::context::{
    ictx::Ictx,
    object::Used, //
};

/// An object of a kind the core does not know.
pub(crate) trait ExtensionObject: Used + Any + Send + Sync {
    /// Lets go of what the object owns in the context (detach, unbind), while the table still
    /// works: called once the object has left the table, by `IOMMU_DESTROY` or when the context
    /// closes (before any other object goes). Must tolerate being called more than once.
    fn teardown(&self, ictx: &Ictx);
}

impl dyn ExtensionObject {
    /// The object as a `T`, if it is one (for the part that made it).
    pub(crate) fn downcast_ref<T: ExtensionObject>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref::<T>()
    }
}
