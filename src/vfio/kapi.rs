// SPDX-License-Identifier: GPL-2.0
//! The in-kernel API of `include/linux/iommufd.h` that VFIO calls (`iommufd_ctx_from_fd()`,
//! `iommufd_device_bind()`, `iommufd_access_*()`, the VFIO compat entry points).
//!
//! `src/ffi/shim.c` exports the real symbols (namespaces `IOMMUFD` and `IOMMUFD_VFIO`) with the
//! prototypes of the kernel's header, so the C compiler checks them, and forwards to the
//! `iommufd_rs_*` functions here. Their Rust signatures are checked at build time against the
//! declarations in `src/ffi/shim.h` (bindgen output, `kbind`), so neither side can drift.
//!
//! The opaque handles are our objects: a `struct iommufd_ctx *` is the [`Ictx`] of an open
//! `/dev/iommu` (its reference is a reference on that file), a `struct iommufd_device *` a leaked
//! `Arc<Device>` (taken back at unbind), a `struct iommufd_access *` a leaked `Arc<Access>`.

use core::{
    ffi::c_void,
    ptr, //
};
use kernel::{bindings, ffi::c_int, fs::File, prelude::*, sync::Arc};

use crate::{context::ictx::Ictx, ffi::kbind, hwpt::device::Device, ioas::access::Access};

pub(crate) use crate::context::miscdev::IOMMU_DEV;

fn err_ptr<T>(e: Error) -> *mut T {
    (e.to_errno() as isize) as *mut T
}

fn rc(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `ictx` must be a context handle this module gave out and whose reference the caller holds.
unsafe fn ictx_ref<'a>(ictx: *mut kbind::iommufd_ctx) -> &'a Ictx {
    // SAFETY: the caller's guarantee: the file (and so the context) stays open.
    unsafe { &*ictx.cast::<Ictx>() }
}

/// The context of a `/dev/iommu` file, with a reference; `EBADFD` for other files.
///
/// # Safety
///
/// `file` must be a live file.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_from_file(
    file: *mut bindings::file,
) -> *mut kbind::iommufd_ctx {
    // SAFETY: the caller's guarantee.
    if !crate::context::miscdev::is_ctx_file(unsafe { File::from_raw_file(file) }) {
        return err_ptr(crate::context::errno::ebadfd());
    }
    // SAFETY: a live file; the reference keeps its context alive.
    unsafe {
        bindings::get_file(file);
        (*file).private_data.cast()
    }
}

/// The context of fd `fd`, with a reference.
///
/// # Safety
///
/// Callable from process context.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_from_fd(fd: c_int) -> *mut kbind::iommufd_ctx {
    let Ok(fd) = u32::try_from(fd) else {
        return err_ptr(EBADF);
    };
    // SAFETY: `fget()` validates the fd and returns a reference or NULL.
    let file = unsafe { bindings::fget(fd) };
    if file.is_null() {
        return err_ptr(EBADF);
    }
    // SAFETY: `file` is referenced.
    if !crate::context::miscdev::is_ctx_file(unsafe { File::from_raw_file(file) }) {
        // SAFETY: the reference `fget()` took.
        unsafe { bindings::fput(file) };
        return err_ptr(crate::context::errno::ebadfd());
    }
    // The `fget()` reference becomes the context's.
    // SAFETY: a referenced `/dev/iommu` file.
    unsafe { (*file).private_data.cast() }
}

/// # Safety
///
/// `ictx` must be a context handle the caller holds a reference on.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_get(ictx: *mut kbind::iommufd_ctx) {
    // SAFETY: the caller's guarantee.
    unsafe { bindings::get_file(ictx_ref(ictx).file()) };
}

/// # Safety
///
/// `ictx` must be a context handle whose reference the caller gives up.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_put(ictx: *mut kbind::iommufd_ctx) {
    // SAFETY: the caller's guarantee; the context may go with this.
    unsafe { bindings::fput(ictx_ref(ictx).file()) };
}

/// Whether a device of `group` is bound to the context.
///
/// # Safety
///
/// As [`iommufd_rs_ctx_get`]; `group` is only compared.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_ctx_has_group(
    ictx: *mut kbind::iommufd_ctx,
    group: *mut bindings::iommu_group,
) -> bool {
    if ictx.is_null() || group.is_null() {
        return false;
    }
    // SAFETY: the caller's guarantee.
    unsafe { ictx_ref(ictx) }.objects.lock().has_group(group)
}

/// Binds `dev` (VFIO's `iommufd_device_bind()`); the device ID goes to `*id`.
///
/// # Safety
///
/// `ictx` referenced by the caller, `dev` live, `id` writable.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_bind(
    ictx: *mut kbind::iommufd_ctx,
    dev: *mut bindings::device,
    id: *mut u32,
) -> *mut kbind::iommufd_device {
    // SAFETY: the caller's guarantee.
    let ctx = unsafe { ictx_ref(ictx) };
    // SAFETY: as above.
    match unsafe { Device::bind(ctx, dev) } {
        Ok(idev) => {
            // SAFETY: `id` is writable.
            unsafe { *id = idev.id() };
            Arc::into_raw(idev).cast_mut().cast()
        }
        Err(e) => err_ptr(e),
    }
}

/// # Safety
///
/// `idev` must be a device handle from [`iommufd_rs_device_bind`].
unsafe fn idev_ref<'a>(idev: *mut kbind::iommufd_device) -> &'a Device {
    // SAFETY: the handle is a leaked `Arc<Device>` until unbind.
    unsafe { &*idev.cast::<Device>() }
}

/// Ends a binding (everything detached by the caller first, as VFIO does).
///
/// # Safety
///
/// `idev` from [`iommufd_rs_device_bind`], not used again.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_unbind(idev: *mut kbind::iommufd_device) {
    // SAFETY: the leaked reference, taken back once.
    let dev = unsafe { Arc::from_raw(idev.cast::<Device>().cast_const()) };
    let ctx = dev.ctx();
    dev.detach_all(Some(ctx));
    // VFIO's unbind cannot fail: an `EBUSY` (an ioctl kept the device past the wait, which
    // said so) leaves nothing to undo, and that ioctl frees the object when it ends.
    let _ = dev.unbind(Some(ctx));
    drop(dev);
}

/// # Safety
///
/// `idev` bound, `pt_id` readable and writable.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_attach(
    idev: *mut kbind::iommufd_device,
    pasid: u32,
    pt_id: *mut u32,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let (dev, pt) = unsafe { (idev_ref(idev), &mut *pt_id) };
    rc(dev.attach(dev.ctx(), pasid, *pt).map(|id| *pt = id))
}

/// # Safety
///
/// As [`iommufd_rs_device_attach`].
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_replace(
    idev: *mut kbind::iommufd_device,
    pasid: u32,
    pt_id: *mut u32,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let (dev, pt) = unsafe { (idev_ref(idev), &mut *pt_id) };
    rc(dev.replace(dev.ctx(), pasid, *pt).map(|id| *pt = id))
}

/// # Safety
///
/// `idev` bound.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_detach(
    idev: *mut kbind::iommufd_device,
    pasid: u32,
) {
    // SAFETY: the caller's guarantee.
    let dev = unsafe { idev_ref(idev) };
    dev.detach(Some(dev.ctx()), pasid);
}

/// # Safety
///
/// `idev` bound.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_to_ictx(
    idev: *mut kbind::iommufd_device,
) -> *mut kbind::iommufd_ctx {
    // SAFETY: the caller's guarantee.
    ptr::from_ref(unsafe { idev_ref(idev) }.ctx())
        .cast_mut()
        .cast()
}

/// # Safety
///
/// `idev` bound.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_device_to_id(idev: *mut kbind::iommufd_device) -> u32 {
    // SAFETY: the caller's guarantee.
    unsafe { idev_ref(idev) }.id()
}

/// # Safety
///
/// `access` must be a handle from [`iommufd_rs_access_create`].
unsafe fn access_ref<'a>(access: *mut kbind::iommufd_access) -> &'a Arc<Access> {
    // SAFETY: the handle is a leaked `Arc<Access>` (a pointer to the `Arc` itself) until
    // destroyed.
    unsafe { &*access.cast::<Arc<Access>>() }
}

/// An emulated access for a driver (mdev-style); its ID goes to `*id`.
///
/// # Safety
///
/// `ictx` referenced by the caller; `ops` and `data` valid until destroy; `id` writable.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_create(
    ictx: *mut kbind::iommufd_ctx,
    ops: *const kbind::iommufd_access_ops,
    data: *mut c_void,
    id: *mut u32,
) -> *mut kbind::iommufd_access {
    // SAFETY: the caller's guarantee.
    let ctx = unsafe { ictx_ref(ictx) };
    let file = ctx.file_ref();
    // Everything that can fail comes before the access is published: after that the caller owns
    // it, and an access left in the table would hold the context's own file for ever.
    let made = (|| -> Result<KBox<Arc<Access>>> {
        // SAFETY: the caller's guarantee on `ops` and `data`.
        let access = unsafe { Access::new(ctx, file, ops, data) }?;
        let handle = KBox::new(access, GFP_KERNEL_ACCOUNT)?;
        handle.publish()?;
        Ok(handle)
    })();
    match made {
        Ok(handle) => {
            // SAFETY: `id` is writable.
            unsafe { *id = handle.id() };
            KBox::into_raw(handle).cast()
        }
        Err(e) => err_ptr(e),
    }
}

/// An access as a driver holds it, made and ended through the entry points here (the test
/// build's access fd, as upstream's selftest calls `iommufd_access_create()`): what an injected
/// failure does to the in-kernel API is what the selftests see. Destroyed when dropped.
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) struct DriverAccess(core::ptr::NonNull<kbind::iommufd_access>);

// SAFETY: the handle is a boxed `Arc<Access>`, which may be used and dropped from any thread.
#[cfg(CONFIG_IOMMUFD_TEST)]
unsafe impl Send for DriverAccess {}
// SAFETY: as above; `&DriverAccess` only reaches the `Arc`.
#[cfg(CONFIG_IOMMUFD_TEST)]
unsafe impl Sync for DriverAccess {}

#[cfg(CONFIG_IOMMUFD_TEST)]
impl DriverAccess {
    /// `iommufd_access_create()` on `ictx`.
    ///
    /// # Safety
    ///
    /// As [`iommufd_rs_access_create`]: `ops` and `data` stay valid until the result drops; the
    /// caller holds `ictx` (an ioctl on its file).
    pub(crate) unsafe fn create(
        ictx: &Ictx,
        ops: *const kbind::iommufd_access_ops,
        data: *mut c_void,
    ) -> Result<Self> {
        let mut id = 0u32;
        // SAFETY: the caller's guarantee; `id` is writable.
        let raw = unsafe {
            iommufd_rs_access_create(ptr::from_ref(ictx).cast_mut().cast(), ops, data, &mut id)
        };
        let raw = kernel::error::from_err_ptr(raw)?;
        Ok(Self(core::ptr::NonNull::new(raw).ok_or(EINVAL)?))
    }

    /// `iommufd_access_attach()`.
    pub(crate) fn attach(&self, ioas_id: u32) -> Result {
        // SAFETY: a live handle from `create`.
        kernel::error::to_result(unsafe { iommufd_rs_access_attach(self.0.as_ptr(), ioas_id) })
    }

    /// The access behind the handle.
    pub(crate) fn access(&self) -> &Arc<Access> {
        // SAFETY: a live handle from `create`.
        unsafe { access_ref(self.0.as_ptr()) }
    }
}

#[cfg(CONFIG_IOMMUFD_TEST)]
impl Drop for DriverAccess {
    fn drop(&mut self) {
        // SAFETY: the handle from `create`, given back once.
        unsafe { iommufd_rs_access_destroy(self.0.as_ptr()) };
    }
}

/// # Safety
///
/// `access` from [`iommufd_rs_access_create`], not used again.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_destroy(access: *mut kbind::iommufd_access) {
    // SAFETY: the box given out at create, taken back once.
    let a = unsafe { KBox::from_raw(access.cast::<Arc<Access>>()) };
    let ctx = a.ctx();
    a.destroy(ctx);
}

/// # Safety
///
/// `access` live.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_attach(
    access: *mut kbind::iommufd_access,
    ioas_id: u32,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let a = unsafe { access_ref(access) };
    rc(a.attach(a.ctx(), ioas_id))
}

/// # Safety
///
/// `access` live.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_replace(
    access: *mut kbind::iommufd_access,
    ioas_id: u32,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let a = unsafe { access_ref(access) };
    rc(a.replace(a.ctx(), ioas_id))
}

/// # Safety
///
/// `access` live.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_detach(access: *mut kbind::iommufd_access) {
    // SAFETY: the caller's guarantee.
    unsafe { access_ref(access) }.detach();
}

/// # Safety
///
/// `access` live; `out_pages` has room for the pages of the range.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_pin_pages(
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
    rc(unsafe { access_ref(access) }.pin_pages(iova, length, out, flags))
}

/// # Safety
///
/// `access` live; the range was pinned by [`iommufd_rs_access_pin_pages`].
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_unpin_pages(
    access: *mut kbind::iommufd_access,
    iova: usize,
    length: usize,
) {
    let (Ok(iova), Ok(length)) = (u64::try_from(iova), u64::try_from(length)) else {
        kernel::pr_warn_once!("iommufd: access unpin out of range\n");
        return;
    };
    // SAFETY: the caller's guarantee.
    unsafe { access_ref(access) }.unpin_pages(iova, length);
}

/// # Safety
///
/// `access` live; `data` valid for `length` bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_access_rw(
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
    // SAFETY: the caller's guarantee.
    let buf = unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), length) };
    // SAFETY: the caller's guarantee.
    rc(unsafe { access_ref(access) }.rw(iova, buf, flags))
}

/// The compat IOAS's ID (`ENODEV` without one).
///
/// # Safety
///
/// `ictx` referenced; `out` writable.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_vfio_compat_ioas_get_id(
    ictx: *mut kbind::iommufd_ctx,
    out: *mut u32,
) -> c_int {
    // SAFETY: the caller's guarantee.
    match unsafe { ictx_ref(ictx) }.compat_ioas_id() {
        Ok(id) => {
            // SAFETY: `out` is writable.
            unsafe { *out = id };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Makes sure a compat IOAS exists (a group attached through the legacy container path).
///
/// # Safety
///
/// `ictx` referenced.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_vfio_compat_ioas_create(
    ictx: *mut kbind::iommufd_ctx,
) -> c_int {
    // SAFETY: the caller's guarantee.
    rc(unsafe { ictx_ref(ictx) }.compat_ioas_create())
}

/// A no-IOMMU device was attached: type1 modes are off from now on.
///
/// # Safety
///
/// `ictx` referenced.
#[no_mangle]
pub(crate) unsafe extern "C" fn iommufd_rs_vfio_compat_set_no_iommu(
    ictx: *mut kbind::iommufd_ctx,
) -> c_int {
    // SAFETY: the caller's guarantee.
    let mut objects = unsafe { ictx_ref(ictx) }.objects.lock();
    if objects.vfio_ioas.is_some() {
        return EINVAL.to_errno();
    }
    objects.no_iommu_mode = true;
    0
}

/// Each `iommufd_rs_*` above has the type bindgen gives its declaration in `src/ffi/shim.h`: a
/// signature drifting from the C side fails the build here.
macro_rules! same_signature {
    ($($name:ident ($($arg:tt),*);)*) => {$(
        const _: () = {
            let _ = [
                kbind::$name as unsafe extern "C" fn($($arg),*) -> _,
                $name,
            ];
        };
    )*};
}

same_signature! {
    iommufd_rs_ctx_from_file(_);
    iommufd_rs_ctx_from_fd(_);
    iommufd_rs_ctx_get(_);
    iommufd_rs_ctx_put(_);
    iommufd_rs_ctx_has_group(_, _);
    iommufd_rs_device_bind(_, _, _);
    iommufd_rs_device_unbind(_);
    iommufd_rs_device_attach(_, _, _);
    iommufd_rs_device_replace(_, _, _);
    iommufd_rs_device_detach(_, _);
    iommufd_rs_device_to_ictx(_);
    iommufd_rs_device_to_id(_);
    iommufd_rs_access_create(_, _, _, _);
    iommufd_rs_access_destroy(_);
    iommufd_rs_access_attach(_, _);
    iommufd_rs_access_replace(_, _);
    iommufd_rs_access_detach(_);
    iommufd_rs_access_pin_pages(_, _, _, _, _);
    iommufd_rs_access_unpin_pages(_, _, _);
    iommufd_rs_access_rw(_, _, _, _, _);
    iommufd_rs_vfio_compat_ioas_get_id(_, _);
    iommufd_rs_vfio_compat_ioas_create(_);
    iommufd_rs_vfio_compat_set_no_iommu(_);
}
