// SPDX-License-Identifier: GPL-2.0
//! Attaching domains through attach handles (`struct iommu_attach_handle`): the core's
//! iommufd-reserved entry points (`iommu_attach_group_handle()` and friends, in
//! drivers/iommu/iommu-priv.h) for a whole group, and `iommu_attach_device_pasid()` for one PASID
//! of a device. The core keeps the handle for the group or PASID while the domain is attached and
//! names it in every I/O page fault group it reports there.

use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    device::Device,
    prelude::*,
    sync::aref::ARef,
    types::Opaque, //
};

use crate::{
    abstractions::iommu::{
        device::dev_ptr,
        domain::Domain,
        group::Group,
        iopf::IopfGroup, //
    },
    ffi::kbind,
};

/// What an attach handle carries for its user, and how the user takes the I/O page faults that
/// come through it.
///
/// # Safety
///
/// An implementor keeps a group handed to [`AttachData::deliver`] only until
/// [`AttachData::release`] of the same handle returns: by then every such group is answered or
/// dropped (a group borrows its handle's data, and the handle is freed right after `release`).
pub(crate) unsafe trait AttachData: Sized + Send + Sync {
    /// Whether faults through this handle are taken; the core answers the others itself.
    fn accepts_faults(&self) -> bool;

    /// Takes a fault group that came through this handle (only if
    /// [`AttachData::accepts_faults`]); it is ours to answer from here.
    fn deliver(&self, group: IopfGroup<Self>);

    /// The handle is being freed: its attachment, if it had one, has ended, so the core reports
    /// no new fault through it. Answers what it still holds of it.
    fn release(handle: &AttachHandle<Self>);
}

/// An attach handle and its user's data: upstream's `struct iommufd_attach_handle` (the core's
/// handle, then the C device, which code built into the kernel reads: `iommufd_sw_msi()`), then
/// what the user keeps with it (the device ID and fault queue).
///
/// # Invariants
///
/// `raw` is the first field (the core's pointer to it is a pointer to the whole) and `idev`
/// follows it directly, as in the C struct (asserted here and in `src/ffi/c_objects.c`); `idev`
/// names a C device that outlives the attachment. The handle is reached by the core only through
/// an [`Attached`] that owns it.
#[repr(C)]
pub(crate) struct AttachHandle<T: AttachData> {
    raw: Opaque<bindings::iommu_attach_handle>,
    idev: *mut c_void,
    data: T,
}

// The C layout's `idev` is at `sizeof(struct iommu_attach_handle)` (src/ffi/c_objects.c); so is ours.
const _: () = assert!(
    core::mem::offset_of!(AttachHandle<NoData>, idev)
        == core::mem::size_of::<bindings::iommu_attach_handle>()
);

/// A stand-in user for the layout assertion above (the offset of `idev` does not depend on `T`:
/// it precedes `data`).
struct NoData;

// SAFETY: nothing is delivered or kept.
unsafe impl AttachData for NoData {
    fn accepts_faults(&self) -> bool {
        false
    }
    fn deliver(&self, _group: IopfGroup<Self>) {}
    fn release(_handle: &AttachHandle<Self>) {}
}

/// An attach handle in its allocation, which does not move while the core knows it.
pub(crate) type HandleBox<T> = Pin<KBox<AttachHandle<T>>>;

impl<T: AttachData> AttachHandle<T> {
    /// A new handle carrying `data`, naming the C device `idev`, which must outlive the handle's
    /// attachment.
    pub(crate) fn new(
        data: T,
        idev: *mut c_void,
        flags: kernel::alloc::Flags,
    ) -> Result<HandleBox<T>> {
        Ok(KBox::pin(
            Self {
                raw: Opaque::new(bindings::iommu_attach_handle::default()),
                idev,
                data,
            },
            flags,
        )?)
    }

    /// The user's data.
    #[inline]
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// The C handle, as the core knows it (and as fault groups name it).
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::iommu_attach_handle {
        self.raw.get()
    }

    /// Borrows the handle at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is the C handle of an `AttachHandle<T>` that stays allocated for `'a`.
    #[inline]
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::iommu_attach_handle) -> &'a Self {
        // SAFETY: `raw` is the first field of the `repr(C)` struct (type invariant), and the
        // caller promises the handle is one of ours and lives for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }
}

impl<T: AttachData> Drop for AttachHandle<T> {
    fn drop(&mut self) {
        T::release(self);
    }
}

/// Where an attachment is.
enum Target {
    /// The whole group (every device's RID, `IOMMU_NO_PASID`).
    Group(ARef<Group>),
    /// One PASID of one device.
    Pasid(ARef<Device>, u32),
}

/// A domain attached at a group or a device's PASID through a handle this value owns. Dropping it
/// detaches (returning the group or PASID to its blocked or default domain); [`Attached::detach`]
/// does the same and gives the handle back.
///
/// # Invariants
///
/// `handle` is `Some` until the attachment ends; while it is, `domain` is attached at `target`
/// through it. The domain is not freed meanwhile: freeing an attached domain is forbidden to
/// whoever frees it (a precondition of `iommu_domain_free()`).
pub(crate) struct Attached<T: AttachData> {
    handle: Option<HandleBox<T>>,
    domain: NonNull<bindings::iommu_domain>,
    target: Target,
}

// SAFETY: the domain pointer is only handed to the core, which locks inside; the handle's data is
// `Send` and the group and device references may move between threads.
unsafe impl<T: AttachData> Send for Attached<T> {}
// SAFETY: shared use only reads the handle's data, which is `Sync`.
unsafe impl<T: AttachData> Sync for Attached<T> {}

impl<T: AttachData> Attached<T> {
    /// Attaches `domain` to every device of `group` through `handle`
    /// (`iommu_attach_group_handle()`): `EBUSY` if another domain is attached there, or the
    /// driver's error.
    pub(crate) fn group(group: &Group, domain: &Domain, handle: HandleBox<T>) -> Result<Self> {
        // SAFETY: the domain and group are live (borrowed); the handle stays allocated and in
        // place until the attachment ends (it is ours, pinned).
        let rc = unsafe {
            kbind::iommu_attach_group_handle(domain.as_raw(), group.as_raw(), handle.as_raw())
        };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: the attachment just made.
        Ok(Self {
            handle: Some(handle),
            domain: NonNull::from(domain).cast(),
            target: Target::Group(group.into()),
        })
    }

    /// Attaches `domain` at `pasid` of `dev` through `handle` (`iommu_attach_device_pasid()`).
    pub(crate) fn pasid(
        dev: &Device,
        pasid: u32,
        domain: &Domain,
        handle: HandleBox<T>,
    ) -> Result<Self> {
        // SAFETY: as in `group`.
        let rc = unsafe {
            bindings::iommu_attach_device_pasid(
                domain.as_raw(),
                dev_ptr(dev),
                pasid,
                handle.as_raw(),
            )
        };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: the attachment just made.
        Ok(Self {
            handle: Some(handle),
            domain: NonNull::from(domain).cast(),
            target: Target::Pasid(dev.into(), pasid),
        })
    }

    /// Switches the attachment to `domain` through `handle` without a blocked window
    /// (`iommu_replace_group_handle()`, `iommu_replace_device_pasid()`); returns the previous
    /// handle, which the core no longer uses. On failure the old domain stays attached.
    pub(crate) fn replace(
        &mut self,
        domain: &Domain,
        handle: HandleBox<T>,
    ) -> Result<HandleBox<T>> {
        // SAFETY: the attachment is live (type invariant), the new domain borrowed, and the new
        // handle ours and pinned; on success the core drops its use of the old handle.
        let rc = unsafe {
            match &self.target {
                Target::Group(group) => kbind::iommu_replace_group_handle(
                    group.as_raw(),
                    domain.as_raw(),
                    handle.as_raw(),
                ),
                Target::Pasid(dev, pasid) => kbind::iommu_replace_device_pasid(
                    domain.as_raw(),
                    dev_ptr(dev),
                    *pasid,
                    handle.as_raw(),
                ),
            }
        };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: `domain` is attached through `handle` now.
        self.domain = NonNull::from(domain).cast();
        self.handle.replace(handle).ok_or(EINVAL)
    }

    /// Ends the attachment (`iommu_detach_group_handle()`, `iommu_detach_device_pasid()`) and
    /// gives the handle back; the core no longer uses it.
    pub(crate) fn detach(mut self) -> Option<HandleBox<T>> {
        self.end()
    }

    fn end(&mut self) -> Option<HandleBox<T>> {
        let handle = self.handle.take()?;
        // SAFETY: the domain is attached at `target` through `handle` (type invariants).
        unsafe {
            match &self.target {
                Target::Group(group) => {
                    kbind::iommu_detach_group_handle(self.domain.as_ptr(), group.as_raw())
                }
                Target::Pasid(dev, pasid) => {
                    bindings::iommu_detach_device_pasid(self.domain.as_ptr(), dev_ptr(dev), *pasid)
                }
            }
        }
        Some(handle)
    }
}

impl<T: AttachData> Drop for Attached<T> {
    fn drop(&mut self) {
        drop(self.end());
    }
}
