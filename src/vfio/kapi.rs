// SPDX-License-Identifier: GPL-2.0
//! The in-kernel API of `include/linux/iommufd.h` that VFIO calls (`iommufd_ctx_from_fd()`,
//! `iommufd_device_bind()`, `iommufd_access_*()`, the VFIO compat entry points).
//!
//! `src/ffi/shim.c` exports the real symbols (namespaces `IOMMUFD` and `IOMMUFD_VFIO`) with the
//! prototypes of the kernel's header, so the C compiler checks them, and forwards to the
//! `iommufd_rs_*` functions [`iommufd_api_entry_points!`] defines here; the raw side (handles,
//! out-parameters, page arrays, errnos) is `abstractions::iommufd_api`, and this file answers
//! its [`IommufdApi`] with our objects.
//!
//! The opaque handles are our objects: a `struct iommufd_ctx *` is the [`Ictx`] of an open
//! `/dev/iommu` (its reference is a reference on that file), a `struct iommufd_device *` a leaked
//! `Arc<Device>` (taken back at unbind), a `struct iommufd_access *` a leaked
//! `KBox<Arc<Access>>`.

use core::ptr::NonNull;
use kernel::{bindings, fs::File, prelude::*, sync::Arc};

use crate::{
    abstractions::iommufd_api::{
        iommufd_api_entry_points,
        AccessOps,
        IommufdApi, //
    },
    context::ictx::Ictx,
    hwpt::device::Device,
    ioas::access::Access,
};

/// The in-kernel API answered by this module's objects: contexts, bound devices and accesses.
pub(crate) struct Api;

// SAFETY: `context::miscdev::is_ctx_file()` accepts the files of `/dev/iommu`'s misc devices
// only, which hold their `Ictx` at `private_data` while open (`kernel::miscdevice`,
// `Ptr = Pin<KBox<Ictx>>`), and `Ictx::file_ref()` is the file the context is the private data
// of.
unsafe impl IommufdApi for Api {
    type Ctx = Ictx;
    type Device = Device;
    type Access = Arc<Access>;

    fn is_ctx_file(file: &File) -> bool {
        crate::context::miscdev::is_ctx_file(file)
    }

    fn ctx_file(ctx: &Ictx) -> &File {
        ctx.file_ref()
    }

    fn ctx_has_group(ctx: &Ictx, group: NonNull<bindings::iommu_group>) -> bool {
        ctx.objects.lock().has_group(group.as_ptr())
    }

    fn device_bind(ctx: &Ictx, dev: &kernel::device::Device) -> Result<Arc<Device>> {
        Device::bind(ctx, dev)
    }

    fn device_unbind(dev: Arc<Device>) {
        let ctx = dev.ctx();
        dev.detach_all(Some(ctx));
        // VFIO's unbind cannot fail: an `EBUSY` (an ioctl kept the device past the wait, which
        // said so) leaves nothing to undo, and that ioctl frees the object when it ends.
        let _ = dev.unbind(Some(ctx));
        drop(dev);
    }

    fn device_attach(dev: &Device, pasid: u32, pt_id: u32) -> Result<u32> {
        dev.attach(dev.ctx(), pasid, pt_id)
    }

    fn device_replace(dev: &Device, pasid: u32, pt_id: u32) -> Result<u32> {
        dev.replace(dev.ctx(), pasid, pt_id)
    }

    fn device_detach(dev: &Device, pasid: u32) {
        dev.detach(Some(dev.ctx()), pasid);
    }

    fn device_ctx(dev: &Device) -> &Ictx {
        dev.ctx()
    }

    fn device_id(dev: &Device) -> u32 {
        dev.id()
    }

    fn access_create(ctx: &Ictx, file: &File, ops: AccessOps) -> Result<KBox<Arc<Access>>> {
        // Everything that can fail comes before the access is published: after that the caller
        // owns it, and an access left in the table would hold the context's own file for ever.
        let access = Access::new(ctx, file, ops)?;
        let handle = KBox::new(access, GFP_KERNEL_ACCOUNT)?;
        handle.publish()?;
        Ok(handle)
    }

    fn access_id(access: &Arc<Access>) -> u32 {
        access.id()
    }

    fn access_destroy(access: KBox<Arc<Access>>) {
        access.destroy(access.ctx());
    }

    fn access_attach(access: &Arc<Access>, ioas_id: u32) -> Result {
        access.attach(access.ctx(), ioas_id)
    }

    fn access_replace(access: &Arc<Access>, ioas_id: u32) -> Result {
        access.replace(access.ctx(), ioas_id)
    }

    fn access_detach(access: &Arc<Access>) {
        access.detach();
    }

    #[inline]
    fn access_pin_pages(
        access: &Arc<Access>,
        iova: u64,
        length: u64,
        out: &mut [*mut bindings::page],
        flags: u32,
    ) -> Result {
        access.pin_pages(iova, length, out, flags)
    }

    #[inline]
    fn access_unpin_pages(access: &Arc<Access>, iova: u64, length: u64) {
        access.unpin_pages(iova, length);
    }

    #[inline]
    fn access_rw(access: &Arc<Access>, iova: u64, buf: &mut [u8], flags: u32) -> Result {
        access.rw(iova, buf, flags)
    }

    fn vfio_compat_ioas_get_id(ctx: &Ictx) -> Result<u32> {
        ctx.compat_ioas_id()
    }

    fn vfio_compat_ioas_create(ctx: &Ictx) -> Result {
        ctx.compat_ioas_create()
    }

    fn vfio_compat_set_no_iommu(ctx: &Ictx) -> Result {
        let mut objects = ctx.objects.lock();
        if objects.vfio_ioas.is_some() {
            return Err(EINVAL);
        }
        objects.no_iommu_mode = true;
        Ok(())
    }
}

iommufd_api_entry_points!(Api);

/// An access as a driver holds it, made and ended through the entry points (the test build's
/// access fd); see [`crate::abstractions::iommufd_api::DriverAccess`].
#[cfg(CONFIG_IOMMUFD_TEST)]
pub(crate) type DriverAccess = crate::abstractions::iommufd_api::DriverAccess<Api>;
