// SPDX-License-Identifier: GPL-2.0
//! Misc devices registered with our own file operations table, minor, node name and mode.
//!
//! The kernel crate's `MiscDeviceRegistration` builds its file operations as a `const` without an
//! owner and registers with mode 0600 and a dynamic minor. [`MiscFops::init`] copies the same file
//! operations (so the `MiscDevice` trait's open, ioctl and mmap glue is unchanged) into a static
//! with the owner filled in, and [`Registration`] registers a device with that copy, its minor,
//! node name and mode. An open file (or anything holding one) then keeps the module loaded.

use core::marker::PhantomData;
use kernel::{
    bindings,
    error::to_result,
    ffi::c_int,
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
    types::Opaque,
};

use super::fops::FopsCell;

/// The file operations the misc devices of `T` are registered with: the kernel crate's for `T`
/// with an owner. Empty until [`MiscFops::init`].
pub(crate) struct MiscFops<T> {
    cell: FopsCell,
    _t: PhantomData<fn() -> T>,
}

impl<T: MiscDevice> MiscFops<T> {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Self {
            cell: FopsCell::new(),
            _t: PhantomData,
        }
    }

    /// Fills in the kernel crate's operations for `T`, owned by `module`. Called at module
    /// init, before any [`Registration`] with this table; later calls change nothing.
    pub(crate) fn init(&self, module: &'static ThisModule) {
        let raw = MiscDeviceOptions { name: c"" }.into_raw::<T>();
        // SAFETY: `raw.fops` is the kernel crate's static table for `T`.
        let mut fops = unsafe { *raw.fops };
        fops.owner = module.as_ptr();
        self.cell.set(fops);
    }

    /// Whether `file` is an open file of a device registered with this table.
    #[inline]
    pub(crate) fn is_file_of(&self, file: &File) -> bool {
        self.cell.is_fops_of(file)
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

/// A registered misc device whose files pin the module of its [`MiscFops`].
///
/// # Invariants
///
/// - `inner` holds a `struct miscdevice` registered with `misc_register()` for as long as the
///   registration lives, deregistered exactly once in `Drop`.
/// - Its `fops` point at an initialised [`MiscFops<T>`]: the kernel crate's operations for `T`.
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
    /// Registers a device with `opts` and the operations `fops` (`EINVAL` if not initialised).
    pub(crate) fn register(fops: &'static MiscFops<T>, opts: Options) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut raw = MiscDeviceOptions { name: opts.name }.into_raw::<T>();
                raw.fops = fops.cell.get().ok_or(EINVAL)?;
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
                // INVARIANT: registered on success, with `fops`.
                to_result(unsafe { bindings::misc_register(slot) })
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered (type invariant); deregistered once, here.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The minor of `misc`, the registered device an open came through.
#[inline]
pub(crate) fn minor<T: MiscDevice>(misc: &MiscDeviceRegistration<T>) -> c_int {
    // SAFETY: a registered device (the kernel crate's registration invariant, or ours, which has
    // its layout); its minor never changes after registration.
    unsafe { (*misc.as_raw()).minor }
}

/// The device (`this_device`) of `misc`, the registered device an open came through, for the C
/// interfaces that take one; it lives until `misc` is deregistered.
#[inline]
pub(crate) fn this_device<T: MiscDevice>(
    misc: &MiscDeviceRegistration<T>,
) -> *mut bindings::device {
    // SAFETY: a registered device (as in `minor`); `this_device` is set by registration and
    // never changes after it.
    unsafe { (*misc.as_raw()).this_device }
}
