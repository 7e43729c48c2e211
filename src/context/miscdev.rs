// SPDX-License-Identifier: GPL-2.0
//! The misc devices of the module, registered as upstream's are: `/dev/iommu` with mode 0660 and,
//! on kernels built with `CONFIG_IOMMUFD_VFIO_CONTAINER` (no VFIO container of VFIO's own),
//! `/dev/vfio/vfio` with mode 0666 (`vfio_misc_dev`). Both use one set of file operations whose
//! `owner` is this module, so that an open file (or a vIOMMU region mapped from one, which holds
//! its file) keeps the module loaded and `rmmod` is refused until it is closed.
//!
//! The kernel crate's `MiscDeviceRegistration` builds its file operations as a `const` without an
//! owner and registers with mode 0600 and a dynamic minor. [`init_fops`] copies the same file
//! operations (so the `MiscDevice` trait's open, ioctl and mmap glue is unchanged) into a static
//! with the owner filled in, and [`Registration`] registers a device with that copy, its minor,
//! node name and mode.

use core::{cell::UnsafeCell, marker::PhantomData, mem::MaybeUninit};
use kernel::{
    bindings,
    error::to_result,
    ffi::c_int,
    miscdevice::{MiscDevice, MiscDeviceOptions},
    prelude::*,
    types::Opaque,
};

/// The file operations `/dev/iommu` is registered with: zero until [`Fops::init`], read-only
/// after.
struct Fops(UnsafeCell<MaybeUninit<bindings::file_operations>>);

// SAFETY: written once by `init_fops()` at module init, before any device exists; read-only
// after.
unsafe impl Sync for Fops {}

static FOPS: Fops = Fops(UnsafeCell::new(MaybeUninit::zeroed()));

/// Fills in the file operations every [`Registration`] uses: the kernel crate's for `T`, owned by
/// `module`. Called once, at module init, before any registration.
pub(crate) fn init_fops<T: MiscDevice>(module: &'static ThisModule) {
    let raw = MiscDeviceOptions { name: c"" }.into_raw::<T>();
    let fops = FOPS.0.get().cast::<bindings::file_operations>();
    // SAFETY: `raw.fops` is the kernel crate's static table for `T`; `FOPS` is written only here,
    // before any device that uses it is registered.
    unsafe {
        fops.write(*raw.fops);
        (*fops).owner = module.as_ptr();
    }
}

/// What a [`Registration`] registers.
pub(crate) struct Options {
    pub(crate) name: &'static CStr,
    /// The path under /dev, when it is not the name.
    pub(crate) nodename: Option<&'static CStr>,
    /// A fixed minor; `None` for a dynamic one.
    pub(crate) minor: Option<u32>,
    pub(crate) mode: u16,
}

/// A registered misc device whose files pin `module`.
///
/// # Invariants
///
/// - `inner` holds a `struct miscdevice` registered with `misc_register()` for as long as the
///   registration lives, deregistered exactly once in `Drop`.
/// - Its `fops` point at [`FOPS`]: the kernel crate's operations for `T` with `owner` set
///   ([`init_fops`] ran before).
/// - `inner` is laid out as `MiscDeviceRegistration<T>` is (a transparent `Opaque<miscdevice>`),
///   which the kernel crate's open glue casts the device pointer to.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    _t: PhantomData<T>,
}

// SAFETY: `misc_deregister()` may run on another thread than `misc_register()`.
unsafe impl<T> Send for Registration<T> {}
// SAFETY: no `&self` method changes anything.
unsafe impl<T> Sync for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// Registers a device with `opts`; [`init_fops`] must have run for `T`.
    pub(crate) fn register(opts: Options) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut raw = MiscDeviceOptions { name: opts.name }.into_raw::<T>();
                raw.fops = FOPS.0.get().cast::<bindings::file_operations>();
                raw.mode = opts.mode;
                if let Some(node) = opts.nodename {
                    raw.nodename = node.as_char_ptr();
                }
                if let Some(minor) = opts.minor {
                    raw.minor = c_int::try_from(minor).map_err(|_| EINVAL)?;
                }
                // SAFETY: the initializer may write `slot`.
                unsafe { slot.write(raw) };
                // SAFETY: `slot` holds a filled-in miscdevice; it is pinned and deregistered in
                // `Drop` before its memory goes.
                // INVARIANT: registered on success, with `FOPS`.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
            _t: PhantomData,
        })
    }
}

/// Whether `misc` (a device of ours, from an open) is the VFIO container `/dev/vfio/vfio`.
pub(crate) fn is_vfio_container(misc: *const bindings::miscdevice) -> bool {
    // SAFETY: `misc` is the registered device an open came through; its minor never changes.
    let minor = unsafe { (*misc).minor };
    u32::try_from(minor).is_ok_and(|m| m == bindings::VFIO_MINOR)
}

#[pinned_drop]
impl<T> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered (type invariant); deregistered once, here.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}
