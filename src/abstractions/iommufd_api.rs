// SPDX-License-Identifier: GPL-2.0
//! The C side of the in-kernel API of `include/linux/iommufd.h` (`iommufd_ctx_from_fd()`,
//! `iommufd_device_bind()`, `iommufd_access_*()`, the VFIO compat entry points), the way
//! `rust/kernel/miscdevice.rs` is the C side of a misc device.
//!
//! A module that offers the API implements [`IommufdApi`] in safe code and names its type once
//! with [`iommufd_api_entry_points!`], which defines the `iommufd_rs_*` functions
//! `src/ffi/shim.c` forwards the kernel's exported names to. The raw side lives here, in
//! [`Adapter`]: the opaque C handles become references to the implementation's values, the
//! `struct device *`, `struct file *`, page arrays and buffers become safe Rust values, the
//! out-parameters are written, and errors become errnos or `ERR_PTR`s. Each entry point's
//! signature is checked at build time against the declaration bindgen made of it from
//! `src/ffi/shim.h`, so neither side can drift.
//!
//! The handles C holds are:
//! - `struct iommufd_ctx *`: a [`IommufdApi::Ctx`], the private data of an open file of the
//!   implementation's misc device; a reference on the context is a reference on that file;
//! - `struct iommufd_device *`: a leaked `Arc<IommufdApi::Device>`, taken back at unbind;
//! - `struct iommufd_access *`: a leaked `KBox<IommufdApi::Access>`, taken back at destroy.

use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::{
        self,
        NonNull, //
    },
};
use kernel::{
    bindings,
    device::Device,
    ffi::c_int,
    fs::{
        File,
        LocalFile, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
};

use crate::ffi::kbind;

/// What the in-kernel API needs from the module behind it. The methods are the API's entry
/// points, with every C argument already turned into a Rust value; see [`Adapter`].
///
/// # Safety
///
/// Implementers promise that:
/// - every open file whose `f_op` is the non-null [`IommufdApi::fops`] holds a live
///   [`IommufdApi::Ctx`] at its `private_data`, until its last reference is put;
/// - [`IommufdApi::ctx_file`] of a context is that file, so that a reference on the file keeps the
///   context alive.
pub(crate) unsafe trait IommufdApi: 'static {
    /// A context: what a `struct iommufd_ctx *` points to.
    type Ctx: Sync;
    /// A bound device; C holds an `Arc` of it.
    type Device: Send + Sync;
    /// An emulated access; C holds a box of it.
    type Access: Send + Sync;

    /// Whether `file` is one of the implementation's files, whose private data is a `Ctx`.
    fn is_ctx_file(file: &File) -> bool;

    /// The file whose private data `ctx` is (see the trait's safety section).
    fn ctx_file(ctx: &Self::Ctx) -> &File;

    /// Whether a device of `group` is bound to `ctx`; `group` is only compared.
    fn ctx_has_group(ctx: &Self::Ctx, group: NonNull<bindings::iommu_group>) -> bool;

    /// Binds `dev` to `ctx` (`iommufd_device_bind()`).
    fn device_bind(ctx: &Self::Ctx, dev: &Device) -> Result<Arc<Self::Device>>;

    /// Ends a binding (`iommufd_device_unbind()`); the caller detached everything first.
    fn device_unbind(dev: Arc<Self::Device>);

    /// Attaches `pasid` to page table `pt_id` (`iommufd_device_attach()`); returns the ID of
    /// the HWPT attached.
    fn device_attach(dev: &Self::Device, pasid: u32, pt_id: u32) -> Result<u32>;

    /// Replaces what `pasid` is attached to (`iommufd_device_replace()`); returns the ID of the
    /// HWPT attached.
    fn device_replace(dev: &Self::Device, pasid: u32, pt_id: u32) -> Result<u32>;

    /// Detaches `pasid` (`iommufd_device_detach()`).
    fn device_detach(dev: &Self::Device, pasid: u32);

    /// The context `dev` is bound to.
    fn device_ctx(dev: &Self::Device) -> &Self::Ctx;

    /// The device's object ID.
    fn device_id(dev: &Self::Device) -> u32;

    /// A new access in `ctx`, whose file is `file`, calling back through `ops`
    /// (`iommufd_access_create()`), already visible to userspace: everything that can fail
    /// comes before that.
    fn access_create(ctx: &Self::Ctx, file: &File, ops: AccessOps) -> Result<KBox<Self::Access>>;

    /// The access's object ID.
    fn access_id(access: &Self::Access) -> u32;

    /// Destroys the access (`iommufd_access_destroy()`).
    fn access_destroy(access: KBox<Self::Access>);

    /// Attaches the access to IOAS `ioas_id` (`iommufd_access_attach()`).
    fn access_attach(access: &Self::Access, ioas_id: u32) -> Result;

    /// Moves the access to IOAS `ioas_id` (`iommufd_access_replace()`).
    fn access_replace(access: &Self::Access, ioas_id: u32) -> Result;

    /// Detaches the access from its IOAS (`iommufd_access_detach()`).
    fn access_detach(access: &Self::Access);

    /// Pins the pages under `[iova, iova + length)` into `out`, one entry per page the range
    /// touches (`iommufd_access_pin_pages()`).
    fn access_pin_pages(
        access: &Self::Access,
        iova: u64,
        length: u64,
        out: &mut [*mut bindings::page],
        flags: u32,
    ) -> Result;

    /// Gives back the pins of [`IommufdApi::access_pin_pages`] on the same range
    /// (`iommufd_access_unpin_pages()`).
    fn access_unpin_pages(access: &Self::Access, iova: u64, length: u64);

    /// Copies between `buf` and the memory under `[iova, iova + buf.len())`
    /// (`iommufd_access_rw()`); `buf` is not empty.
    fn access_rw(access: &Self::Access, iova: u64, buf: &mut [u8], flags: u32) -> Result;

    /// The compat IOAS's ID (`iommufd_vfio_compat_ioas_get_id()`).
    fn vfio_compat_ioas_get_id(ctx: &Self::Ctx) -> Result<u32>;

    /// Makes sure a compat IOAS exists (`iommufd_vfio_compat_ioas_create()`).
    fn vfio_compat_ioas_create(ctx: &Self::Ctx) -> Result;

    /// A no-IOMMU device was attached (`iommufd_vfio_compat_set_no_iommu()`).
    fn vfio_compat_set_no_iommu(ctx: &Self::Ctx) -> Result;
}

/// A driver's access callbacks (`struct iommufd_access_ops`) and the data it gave for them.
///
/// # Invariants
///
/// `ops` points to an ops table that stays valid for as long as the access lives, and `data` is
/// valid for its callbacks, from any thread, until the access is destroyed: the contract of
/// `iommufd_access_create()`.
pub(crate) struct AccessOps {
    ops: NonNull<kbind::iommufd_access_ops>,
    data: *mut c_void,
}

impl AccessOps {
    /// The ops and data `iommufd_access_create()` was called with; `EINVAL` without ops.
    ///
    /// # Safety
    ///
    /// `ops` (if not null) and `data` must be valid as the type invariants say.
    unsafe fn from_raw(ops: *const kbind::iommufd_access_ops, data: *mut c_void) -> Result<Self> {
        let ops = NonNull::new(ops.cast_mut()).ok_or(EINVAL)?;
        // INVARIANT: the caller's guarantee.
        Ok(Self { ops, data })
    }

    /// Whether the driver takes pins (`needs_pin_pages`); it must then handle `unmap`.
    #[inline]
    pub(crate) fn needs_pin_pages(&self) -> bool {
        // SAFETY: `ops` is valid (type invariant).
        unsafe { self.ops.as_ref() }.needs_pin_pages() != 0
    }

    /// The raw ops and data, for the access that stores and calls them.
    #[inline]
    pub(crate) fn into_raw(self) -> (*const kbind::iommufd_access_ops, *mut c_void) {
        (self.ops.as_ptr().cast_const(), self.data)
    }
}

/// `-EBADFD`, for a file that is not ours (`kernel::error::code` does not declare it).
fn ebadfd() -> Error {
    // The constant is a small positive errno; the conversion cannot truncate.
    Error::from_errno(-(bindings::EBADFD as i32))
}

fn err_ptr<P>(e: Error) -> *mut P {
    // An errno in `-MAX_ERRNO..0`, as `ERR_PTR()` encodes it.
    (e.to_errno() as isize) as *mut P
}

fn rc(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The raw entry points of the in-kernel API for implementation `T`, which
/// [`iommufd_api_entry_points!`] exports under the `iommufd_rs_*` names. Each has the C
/// prototype of its declaration in `src/ffi/shim.h` and that function's contract in
/// `include/linux/iommufd.h`, which its `# Safety` section spells out.
pub(crate) struct Adapter<T>(PhantomData<T>);

impl<T: IommufdApi> Adapter<T> {
    /// # Safety
    ///
    /// `ictx` must be a context handle this module gave out and on which the caller holds a
    /// reference.
    #[inline]
    unsafe fn ctx<'a>(ictx: *mut kbind::iommufd_ctx) -> &'a T::Ctx {
        // SAFETY: handles are pointers to a `T::Ctx`; the caller's reference on its file keeps
        // it alive (the trait's promise).
        unsafe { &*ictx.cast::<T::Ctx>() }
    }

    /// # Safety
    ///
    /// `idev` must be a handle from [`Self::device_bind`] not unbound yet.
    #[inline]
    unsafe fn device<'a>(idev: *mut kbind::iommufd_device) -> &'a T::Device {
        // SAFETY: the handle is a leaked `Arc<T::Device>` until unbind.
        unsafe { &*idev.cast::<T::Device>() }
    }

    /// # Safety
    ///
    /// `access` must be a handle from [`Self::access_create`] not destroyed yet.
    #[inline]
    unsafe fn access<'a>(access: *mut kbind::iommufd_access) -> &'a T::Access {
        // SAFETY: the handle is a leaked `KBox<T::Access>` until destroyed.
        unsafe { &*access.cast::<T::Access>() }
    }

    /// The context of `file` if it is one of ours.
    fn ctx_of_file(file: &File) -> Option<&T::Ctx> {
        if !T::is_ctx_file(file) {
            return None;
        }
        // SAFETY: one of our files, which holds a live context at `private_data` while open
        // (the trait's promise); `file` is open for the borrow.
        Some(unsafe { &*(*file.as_ptr()).private_data.cast::<T::Ctx>() })
    }

    /// `iommufd_ctx_from_file()`: the context of a file of ours, with a reference; `EBADFD`
    /// for other files.
    ///
    /// # Safety
    ///
    /// `file` must be a live file.
    pub(crate) unsafe extern "C" fn ctx_from_file(
        file: *mut bindings::file,
    ) -> *mut kbind::iommufd_ctx {
        // SAFETY: the caller's guarantee; the borrow ends with this call.
        let file = unsafe { File::from_raw_file(file) };
        match Self::ctx_of_file(file) {
            Some(ctx) => {
                // The reference becomes the caller's reference on the context.
                core::mem::forget(ARef::from(file));
                ptr::from_ref(ctx).cast_mut().cast()
            }
            None => err_ptr(ebadfd()),
        }
    }

    /// `iommufd_ctx_from_fd()`: the context of fd `fd`, with a reference.
    ///
    /// # Safety
    ///
    /// Callable from process context.
    pub(crate) unsafe extern "C" fn ctx_from_fd(fd: c_int) -> *mut kbind::iommufd_ctx {
        let Ok(fd) = u32::try_from(fd) else {
            return err_ptr(EBADF);
        };
        let Ok(file) = LocalFile::fget(fd) else {
            return err_ptr(EBADF);
        };
        // SAFETY: `file` is referenced for the borrow; only its `f_op` and `private_data` are
        // read, whatever `fdget_pos` does on it.
        let shared = unsafe { File::from_raw_file(file.as_ptr()) };
        match Self::ctx_of_file(shared) {
            Some(ctx) => {
                let ctx = ptr::from_ref(ctx).cast_mut().cast();
                // The `fget()` reference becomes the caller's reference on the context.
                core::mem::forget(file);
                ctx
            }
            // Dropping `file` puts the `fget()` reference.
            None => err_ptr(ebadfd()),
        }
    }

    /// `iommufd_ctx_get()`: one more reference on the context.
    ///
    /// # Safety
    ///
    /// `ictx` must be a context handle the caller holds a reference on.
    pub(crate) unsafe extern "C" fn ctx_get(ictx: *mut kbind::iommufd_ctx) {
        // SAFETY: the caller's guarantee.
        let ctx = unsafe { Self::ctx(ictx) };
        let file = T::ctx_file(ctx);
        // The new reference is the caller's.
        core::mem::forget(ARef::from(file));
    }

    /// `iommufd_ctx_put()`: gives a reference back; the context may go with it.
    ///
    /// # Safety
    ///
    /// `ictx` must be a context handle whose reference the caller gives up.
    pub(crate) unsafe extern "C" fn ctx_put(ictx: *mut kbind::iommufd_ctx) {
        // SAFETY: the caller's guarantee.
        let ctx = unsafe { Self::ctx(ictx) };
        let file = NonNull::from(T::ctx_file(ctx));
        // SAFETY: the caller's reference on the context is a reference on its file, given up
        // here; nothing uses `ctx` after.
        drop(unsafe { ARef::<File>::from_raw(file) });
    }

    /// `iommufd_ctx_has_group()`.
    ///
    /// # Safety
    ///
    /// `ictx` null or as for [`Self::ctx_get`]; `group` is only compared.
    pub(crate) unsafe extern "C" fn ctx_has_group(
        ictx: *mut kbind::iommufd_ctx,
        group: *mut bindings::iommu_group,
    ) -> bool {
        let Some(group) = NonNull::new(group) else {
            return false;
        };
        if ictx.is_null() {
            return false;
        }
        // SAFETY: the caller's guarantee.
        T::ctx_has_group(unsafe { Self::ctx(ictx) }, group)
    }

    /// `iommufd_device_bind()`: the device ID goes to `*id`.
    ///
    /// # Safety
    ///
    /// `ictx` referenced by the caller, `dev` a live device, `id` writable.
    pub(crate) unsafe extern "C" fn device_bind(
        ictx: *mut kbind::iommufd_ctx,
        dev: *mut bindings::device,
        id: *mut u32,
    ) -> *mut kbind::iommufd_device {
        // SAFETY: the caller's guarantee.
        let ctx = unsafe { Self::ctx(ictx) };
        // SAFETY: the caller holds `dev` for the call; the borrow ends with it.
        let dev = unsafe { Device::from_raw(dev) };
        match T::device_bind(ctx, dev) {
            Ok(idev) => {
                // SAFETY: `id` is writable.
                unsafe { id.write(T::device_id(&idev)) };
                Arc::into_raw(idev).cast_mut().cast()
            }
            Err(e) => err_ptr(e),
        }
    }

    /// `iommufd_device_unbind()`.
    ///
    /// # Safety
    ///
    /// `idev` from [`Self::device_bind`], not used again.
    pub(crate) unsafe extern "C" fn device_unbind(idev: *mut kbind::iommufd_device) {
        // SAFETY: the leaked reference, taken back once.
        T::device_unbind(unsafe { Arc::from_raw(idev.cast::<T::Device>().cast_const()) });
    }

    /// `iommufd_device_attach()`: `*pt_id` in, the attached HWPT's ID out.
    ///
    /// # Safety
    ///
    /// `idev` bound, `pt_id` readable and writable.
    pub(crate) unsafe extern "C" fn device_attach(
        idev: *mut kbind::iommufd_device,
        pasid: u32,
        pt_id: *mut u32,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        let (dev, pt) = unsafe { (Self::device(idev), &mut *pt_id) };
        rc(T::device_attach(dev, pasid, *pt).map(|id| *pt = id))
    }

    /// `iommufd_device_replace()`: as [`Self::device_attach`].
    ///
    /// # Safety
    ///
    /// As [`Self::device_attach`].
    pub(crate) unsafe extern "C" fn device_replace(
        idev: *mut kbind::iommufd_device,
        pasid: u32,
        pt_id: *mut u32,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        let (dev, pt) = unsafe { (Self::device(idev), &mut *pt_id) };
        rc(T::device_replace(dev, pasid, *pt).map(|id| *pt = id))
    }

    /// `iommufd_device_detach()`.
    ///
    /// # Safety
    ///
    /// `idev` bound.
    pub(crate) unsafe extern "C" fn device_detach(idev: *mut kbind::iommufd_device, pasid: u32) {
        // SAFETY: the caller's guarantee.
        T::device_detach(unsafe { Self::device(idev) }, pasid);
    }

    /// `iommufd_device_to_ictx()`.
    ///
    /// # Safety
    ///
    /// `idev` bound.
    pub(crate) unsafe extern "C" fn device_to_ictx(
        idev: *mut kbind::iommufd_device,
    ) -> *mut kbind::iommufd_ctx {
        // SAFETY: the caller's guarantee.
        ptr::from_ref(T::device_ctx(unsafe { Self::device(idev) }))
            .cast_mut()
            .cast()
    }

    /// `iommufd_device_to_id()`.
    ///
    /// # Safety
    ///
    /// `idev` bound.
    pub(crate) unsafe extern "C" fn device_to_id(idev: *mut kbind::iommufd_device) -> u32 {
        // SAFETY: the caller's guarantee.
        T::device_id(unsafe { Self::device(idev) })
    }

    /// `iommufd_access_create()`: an emulated access for a driver (mdev-style); its ID goes to
    /// `*id`.
    ///
    /// # Safety
    ///
    /// `ictx` referenced by the caller; `ops` and `data` valid until destroy; `id` writable.
    pub(crate) unsafe extern "C" fn access_create(
        ictx: *mut kbind::iommufd_ctx,
        ops: *const kbind::iommufd_access_ops,
        data: *mut c_void,
        id: *mut u32,
    ) -> *mut kbind::iommufd_access {
        // SAFETY: the caller's guarantee.
        let ctx = unsafe { Self::ctx(ictx) };
        let file = T::ctx_file(ctx);
        // SAFETY: the caller's guarantee on `ops` and `data`.
        let made = unsafe { AccessOps::from_raw(ops, data) }
            .and_then(|ops| T::access_create(ctx, file, ops));
        match made {
            Ok(handle) => {
                // SAFETY: `id` is writable.
                unsafe { id.write(T::access_id(&handle)) };
                KBox::into_raw(handle).cast()
            }
            Err(e) => err_ptr(e),
        }
    }

    /// `iommufd_access_destroy()`.
    ///
    /// # Safety
    ///
    /// `access` from [`Self::access_create`], not used again.
    pub(crate) unsafe extern "C" fn access_destroy(access: *mut kbind::iommufd_access) {
        // SAFETY: the box given out at create, taken back once.
        T::access_destroy(unsafe { KBox::from_raw(access.cast::<T::Access>()) });
    }

    /// `iommufd_access_attach()`.
    ///
    /// # Safety
    ///
    /// `access` live.
    pub(crate) unsafe extern "C" fn access_attach(
        access: *mut kbind::iommufd_access,
        ioas_id: u32,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        rc(T::access_attach(unsafe { Self::access(access) }, ioas_id))
    }

    /// `iommufd_access_replace()`.
    ///
    /// # Safety
    ///
    /// `access` live.
    pub(crate) unsafe extern "C" fn access_replace(
        access: *mut kbind::iommufd_access,
        ioas_id: u32,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        rc(T::access_replace(unsafe { Self::access(access) }, ioas_id))
    }

    /// `iommufd_access_detach()`.
    ///
    /// # Safety
    ///
    /// `access` live.
    pub(crate) unsafe extern "C" fn access_detach(access: *mut kbind::iommufd_access) {
        // SAFETY: the caller's guarantee.
        T::access_detach(unsafe { Self::access(access) });
    }

    /// `iommufd_access_pin_pages()`: one page pointer per page the range touches goes to
    /// `out_pages`.
    ///
    /// # Safety
    ///
    /// `access` live; `out_pages` has room for the pages of the range.
    #[inline]
    pub(crate) unsafe extern "C" fn access_pin_pages(
        access: *mut kbind::iommufd_access,
        iova: usize,
        length: usize,
        out_pages: *mut *mut bindings::page,
        flags: u32,
    ) -> c_int {
        let (Ok(iova), Ok(length)) = (u64::try_from(iova), u64::try_from(length)) else {
            return EOVERFLOW.to_errno();
        };
        let Some(end) = iova.checked_add(length) else {
            return EOVERFLOW.to_errno();
        };
        let page = kernel::page::PAGE_SIZE as u64;
        let Ok(n) = usize::try_from(end.div_ceil(page).saturating_sub(iova / page)) else {
            return EOVERFLOW.to_errno();
        };
        // SAFETY: the caller's guarantee on the array.
        let out = unsafe { core::slice::from_raw_parts_mut(out_pages, n) };
        // SAFETY: the caller's guarantee.
        rc(T::access_pin_pages(
            unsafe { Self::access(access) },
            iova,
            length,
            out,
            flags,
        ))
    }

    /// `iommufd_access_unpin_pages()`.
    ///
    /// # Safety
    ///
    /// `access` live; the range was pinned by [`Self::access_pin_pages`].
    #[inline]
    pub(crate) unsafe extern "C" fn access_unpin_pages(
        access: *mut kbind::iommufd_access,
        iova: usize,
        length: usize,
    ) {
        let (Ok(iova), Ok(length)) = (u64::try_from(iova), u64::try_from(length)) else {
            kernel::pr_warn_once!("iommufd: access unpin out of range\n");
            return;
        };
        // SAFETY: the caller's guarantee.
        T::access_unpin_pages(unsafe { Self::access(access) }, iova, length);
    }

    /// `iommufd_access_rw()`: copies between `data` and the memory under the range.
    ///
    /// # Safety
    ///
    /// `access` live; `data` valid for `length` bytes.
    #[inline]
    pub(crate) unsafe extern "C" fn access_rw(
        access: *mut kbind::iommufd_access,
        iova: usize,
        data: *mut c_void,
        length: usize,
        flags: u32,
    ) -> c_int {
        if length == 0 {
            return EINVAL.to_errno();
        }
        let Ok(iova) = u64::try_from(iova) else {
            return EOVERFLOW.to_errno();
        };
        // SAFETY: the caller's guarantee: `data` is valid for `length` (non-zero) bytes.
        let buf = unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), length) };
        // SAFETY: the caller's guarantee.
        rc(T::access_rw(
            unsafe { Self::access(access) },
            iova,
            buf,
            flags,
        ))
    }

    /// `iommufd_vfio_compat_ioas_get_id()`: the ID goes to `*out`.
    ///
    /// # Safety
    ///
    /// `ictx` referenced; `out` writable.
    pub(crate) unsafe extern "C" fn vfio_compat_ioas_get_id(
        ictx: *mut kbind::iommufd_ctx,
        out: *mut u32,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        match T::vfio_compat_ioas_get_id(unsafe { Self::ctx(ictx) }) {
            Ok(id) => {
                // SAFETY: `out` is writable.
                unsafe { out.write(id) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// `iommufd_vfio_compat_ioas_create()`.
    ///
    /// # Safety
    ///
    /// `ictx` referenced.
    pub(crate) unsafe extern "C" fn vfio_compat_ioas_create(
        ictx: *mut kbind::iommufd_ctx,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        rc(T::vfio_compat_ioas_create(unsafe { Self::ctx(ictx) }))
    }

    /// `iommufd_vfio_compat_set_no_iommu()`.
    ///
    /// # Safety
    ///
    /// `ictx` referenced.
    pub(crate) unsafe extern "C" fn vfio_compat_set_no_iommu(
        ictx: *mut kbind::iommufd_ctx,
    ) -> c_int {
        // SAFETY: the caller's guarantee.
        rc(T::vfio_compat_set_no_iommu(unsafe { Self::ctx(ictx) }))
    }
}

/// Defines the `iommufd_rs_*` functions `src/ffi/shim.c` forwards the in-kernel API to, each
/// calling [`Adapter`] for `$t` (an [`IommufdApi`]), and checks each against the type bindgen
/// gives its declaration in `src/ffi/shim.h`: a signature drifting from the C side fails the
/// build. Used once, by the module's implementation.
macro_rules! iommufd_api_entry_points {
    ($t:ty) => {
        $crate::abstractions::iommufd_api::iommufd_api_entry_points! {
            @fns $t;
            iommufd_rs_ctx_from_file => ctx_from_file(
                file: *mut ::kernel::bindings::file
            ) -> *mut $crate::ffi::kbind::iommufd_ctx;
            iommufd_rs_ctx_from_fd => ctx_from_fd(
                fd: ::kernel::ffi::c_int
            ) -> *mut $crate::ffi::kbind::iommufd_ctx;
            iommufd_rs_ctx_get => ctx_get(ictx: *mut $crate::ffi::kbind::iommufd_ctx) -> ();
            iommufd_rs_ctx_put => ctx_put(ictx: *mut $crate::ffi::kbind::iommufd_ctx) -> ();
            iommufd_rs_ctx_has_group => ctx_has_group(
                ictx: *mut $crate::ffi::kbind::iommufd_ctx,
                group: *mut ::kernel::bindings::iommu_group
            ) -> bool;
            iommufd_rs_device_bind => device_bind(
                ictx: *mut $crate::ffi::kbind::iommufd_ctx,
                dev: *mut ::kernel::bindings::device,
                id: *mut u32
            ) -> *mut $crate::ffi::kbind::iommufd_device;
            iommufd_rs_device_unbind => device_unbind(
                idev: *mut $crate::ffi::kbind::iommufd_device
            ) -> ();
            iommufd_rs_device_attach => device_attach(
                idev: *mut $crate::ffi::kbind::iommufd_device,
                pasid: u32,
                pt_id: *mut u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_device_replace => device_replace(
                idev: *mut $crate::ffi::kbind::iommufd_device,
                pasid: u32,
                pt_id: *mut u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_device_detach => device_detach(
                idev: *mut $crate::ffi::kbind::iommufd_device,
                pasid: u32
            ) -> ();
            iommufd_rs_device_to_ictx => device_to_ictx(
                idev: *mut $crate::ffi::kbind::iommufd_device
            ) -> *mut $crate::ffi::kbind::iommufd_ctx;
            iommufd_rs_device_to_id => device_to_id(
                idev: *mut $crate::ffi::kbind::iommufd_device
            ) -> u32;
            iommufd_rs_access_create => access_create(
                ictx: *mut $crate::ffi::kbind::iommufd_ctx,
                ops: *const $crate::ffi::kbind::iommufd_access_ops,
                data: *mut ::core::ffi::c_void,
                id: *mut u32
            ) -> *mut $crate::ffi::kbind::iommufd_access;
            iommufd_rs_access_destroy => access_destroy(
                access: *mut $crate::ffi::kbind::iommufd_access
            ) -> ();
            iommufd_rs_access_attach => access_attach(
                access: *mut $crate::ffi::kbind::iommufd_access,
                ioas_id: u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_access_replace => access_replace(
                access: *mut $crate::ffi::kbind::iommufd_access,
                ioas_id: u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_access_detach => access_detach(
                access: *mut $crate::ffi::kbind::iommufd_access
            ) -> ();
            iommufd_rs_access_pin_pages => access_pin_pages(
                access: *mut $crate::ffi::kbind::iommufd_access,
                iova: usize,
                length: usize,
                out_pages: *mut *mut ::kernel::bindings::page,
                flags: u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_access_unpin_pages => access_unpin_pages(
                access: *mut $crate::ffi::kbind::iommufd_access,
                iova: usize,
                length: usize
            ) -> ();
            iommufd_rs_access_rw => access_rw(
                access: *mut $crate::ffi::kbind::iommufd_access,
                iova: usize,
                data: *mut ::core::ffi::c_void,
                length: usize,
                flags: u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_vfio_compat_ioas_get_id => vfio_compat_ioas_get_id(
                ictx: *mut $crate::ffi::kbind::iommufd_ctx,
                out: *mut u32
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_vfio_compat_ioas_create => vfio_compat_ioas_create(
                ictx: *mut $crate::ffi::kbind::iommufd_ctx
            ) -> ::kernel::ffi::c_int;
            iommufd_rs_vfio_compat_set_no_iommu => vfio_compat_set_no_iommu(
                ictx: *mut $crate::ffi::kbind::iommufd_ctx
            ) -> ::kernel::ffi::c_int;
        }
    };
    (@fns $t:ty; $($name:ident => $fn:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        #[doc = concat!("The `", stringify!($name), "` entry point `src/ffi/shim.c` calls; see")]
        /// [`Adapter`].
        ///
        /// # Safety
        ///
        /// The contract of its `include/linux/iommufd.h` function.
        ///
        /// [`Adapter`]: $crate::abstractions::iommufd_api::Adapter
        #[no_mangle]
        pub(crate) unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the C caller's contract, handed on as it is.
            unsafe { $crate::abstractions::iommufd_api::Adapter::<$t>::$fn($($arg),*) }
        }

        const _: () = {
            let _ = [
                $crate::ffi::kbind::$name as unsafe extern "C" fn($($ty),*) -> $ret,
                $name,
            ];
        };
    )*};
}
pub(crate) use iommufd_api_entry_points;

/// An access as a driver holds it, made and ended through the in-kernel API's entry points (the
/// test build's access fd, as upstream's selftest calls `iommufd_access_create()`): what an
/// injected failure does to the in-kernel API is what the selftests see. Destroyed when dropped.
///
/// # Invariants
///
/// The handle is from [`Adapter::access_create`] for `T` and not destroyed yet.
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) struct DriverAccess<T: IommufdApi>(NonNull<kbind::iommufd_access>, PhantomData<T>);

// SAFETY: the handle is a boxed `T::Access`, which may be used and dropped from any thread.
#[cfg(CONFIG_IOMMUFD_TEST)]
unsafe impl<T: IommufdApi> Send for DriverAccess<T> {}
// SAFETY: as above; `&DriverAccess` only reaches `&T::Access`.
#[cfg(CONFIG_IOMMUFD_TEST)]
unsafe impl<T: IommufdApi> Sync for DriverAccess<T> {}

#[cfg(CONFIG_IOMMUFD_TEST)]
impl<T: IommufdApi> DriverAccess<T> {
    /// `iommufd_access_create()` on `ictx`.
    ///
    /// # Safety
    ///
    /// As [`Adapter::access_create`]: `ops` and `data` stay valid until the result drops; the
    /// caller holds `ictx` (an ioctl on its file).
    pub(crate) unsafe fn create(
        ictx: &T::Ctx,
        ops: *const kbind::iommufd_access_ops,
        data: *mut c_void,
    ) -> Result<Self> {
        let mut id = 0u32;
        // SAFETY: the caller's guarantee; `id` is writable.
        let raw = unsafe {
            Adapter::<T>::access_create(ptr::from_ref(ictx).cast_mut().cast(), ops, data, &mut id)
        };
        let raw = kernel::error::from_err_ptr(raw)?;
        // INVARIANT: a handle from `access_create`.
        Ok(Self(NonNull::new(raw).ok_or(EINVAL)?, PhantomData))
    }

    /// `iommufd_access_attach()`.
    pub(crate) fn attach(&self, ioas_id: u32) -> Result {
        // SAFETY: a live handle (type invariant).
        kernel::error::to_result(unsafe { Adapter::<T>::access_attach(self.0.as_ptr(), ioas_id) })
    }

    /// The access behind the handle.
    pub(crate) fn access(&self) -> &T::Access {
        // SAFETY: a live handle (type invariant), alive as long as `self`.
        unsafe { Adapter::<T>::access(self.0.as_ptr()) }
    }
}

#[cfg(CONFIG_IOMMUFD_TEST)]
impl<T: IommufdApi> Drop for DriverAccess<T> {
    fn drop(&mut self) {
        // SAFETY: the live handle (type invariant), given back once.
        unsafe { Adapter::<T>::access_destroy(self.0.as_ptr()) };
    }
}
