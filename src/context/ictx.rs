// SPDX-License-Identifier: GPL-2.0
//! The per-open context: what one open of `/dev/iommu` owns (upstream's `struct iommufd_ctx`).
//!
//! Closing the file drops the context and with it every object in its table.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    abstractions::file::{
        self,
        owner::OwnerFile,
        Capability, //
    },
    abstractions::iommufd_c::CCtx,
    context::errno,
    context::ioctl::{
        self,
        Ucmd, //
    },
    context::miscdev,
    context::object::{
        InUse,
        Objects, //
    },
    ffi::uapi, //
    ioas::{
        self,
        Ioas, //
    },
};

#[pin_data(PinnedDrop)]
pub(crate) struct Ictx {
    #[pin]
    pub(crate) objects: Mutex<Objects>,
    /// The `/dev/iommu` file this context belongs to: references on the context (VFIO's
    /// `iommufd_ctx_get()`, bound devices, access and fault fds) are references on it.
    file: OwnerFile,
    /// The C part of the context, which code built into the kernel reads (the software MSI
    /// pages); the C groups hold it too.
    pub(crate) c: Arc<CCtx>,
}

#[pinned_drop]
impl PinnedDrop for Ictx {
    /// Closing the file: objects that hold devices let go of them first, while the table still
    /// works (detach, unbind); everything else then goes with the table, each object after the
    /// objects holding it (they hold references).
    fn drop(self: Pin<&mut Self>) {
        let mut from = 0;
        loop {
            let Some((id, obj)) = self.objects.lock().take_extension(from) else {
                break;
            };
            from = id.saturating_add(1);
            if let crate::context::object::Object::Extension(e) = &obj {
                e.teardown(&self);
            }
            drop(obj);
        }
    }
}

impl Ictx {
    /// The context's file (see the field).
    pub(crate) fn file_ref(&self) -> &File {
        self.file.get()
    }

    /// The compat IOAS's ID, `ENODEV` without one (`iommufd_vfio_compat_ioas_get_id()`).
    pub(crate) fn compat_ioas_id(&self) -> Result<u32> {
        let objects = self.objects.lock();
        let id = objects.vfio_ioas.ok_or(ENODEV)?;
        objects.get_ioas(id).map_err(|_| ENODEV)?;
        Ok(id)
    }

    /// Makes sure there is a compat IOAS (`iommufd_vfio_compat_ioas_create()`): VFIO's legacy
    /// container path attaching a group. An IOAS made here is an ordinary object userspace can
    /// learn with `IOMMU_VFIO_IOAS` and destroy.
    pub(crate) fn compat_ioas_create(&self) -> Result {
        let ioas = crate::ioas::Ioas::new()?;
        let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut objects = self.objects.lock();
        if objects.no_iommu_mode {
            return Err(EINVAL);
        }
        if let Some(id) = objects.vfio_ioas {
            if objects.get_ioas(id).is_ok() {
                return Ok(());
            }
        }
        let reserved = objects.reserve(node)?;
        let id = reserved.id;
        objects.finalize(reserved, crate::context::object::Object::Ioas(ioas));
        objects.vfio_ioas = Some(id);
        Ok(())
    }

    /// The IOAS named `id`, in use until the returned guard drops; `ENOENT` if `id` names
    /// nothing or something else.
    pub(crate) fn get_ioas(&self, id: u32) -> Result<InUse<Ioas>> {
        self.objects.lock().get_ioas(id)
    }

    /// The bound device named `id`, in use until the returned guard drops.
    pub(crate) fn get_device(&self, id: u32) -> Result<InUse<crate::hwpt::device::Device>> {
        self.objects.lock().get_device(id)
    }
}

/// `IOMMU_OPTION`: global options of the context, or per-object ones by `object_id`.
pub(crate) fn option_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_option = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    match cmd.option_id {
        uapi::IOMMU_OPTION_RLIMIT_MODE => {
            if cmd.object_id != 0 {
                return Err(errno::eopnotsupp());
            }
            match u32::from(cmd.op) {
                uapi::IOMMU_OPTION_OP_GET => {
                    cmd.val64 = u64::from(ucmd.ictx.objects.lock().account_mm);
                }
                uapi::IOMMU_OPTION_OP_SET => {
                    if !file::capable(Capability::SysResource) {
                        return Err(EPERM);
                    }
                    let mut objects = ucmd.ictx.objects.lock();
                    if !objects.is_empty() {
                        return Err(EBUSY);
                    }
                    objects.account_mm = match cmd.val64 {
                        0 => false,
                        1 => true,
                        _ => return Err(EINVAL),
                    };
                }
                _ => return Err(errno::eopnotsupp()),
            }
        }
        uapi::IOMMU_OPTION_HUGE_PAGES => {
            let ioas = ucmd.ictx.get_ioas(cmd.object_id)?;
            ioas::option_huge_pages(&ioas, &mut cmd)?;
        }
        _ => return Err(errno::eopnotsupp()),
    }
    // Only `val64` is an output: write back just that field, as upstream does.
    ucmd.respond_field(core::mem::offset_of!(uapi::iommu_option, val64), &cmd.val64)
}

#[vtable]
impl MiscDevice for Ictx {
    type Ptr = Pin<KBox<Self>>;

    fn open(file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        miscdev::learn_device(misc);
        let mut objects = Objects::new();
        // Opened as the VFIO container: pins are charged as VFIO's type1 charges them (to the
        // process's locked_vm), as upstream does there.
        if miscdev::is_vfio_container(misc) {
            objects.account_mm = true;
            kernel::pr_info_once!("IOMMUFD is providing /dev/vfio/vfio, not VFIO.\n");
        }
        let c = CCtx::new()?;
        KBox::try_pin_init(
            try_pin_init!(Ictx {
                objects <- new_mutex!(objects),
                c,
                // SAFETY: the context is the file's private data (the kernel crate's misc glue
                // stores what `open` returns there) and is dropped by its release.
                file: unsafe { OwnerFile::new(file) },
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn mmap(me: Pin<&Self>, _file: &File, vma: &kernel::mm::virt::VmaNew) -> Result {
        crate::viommu::mmap(&me, vma)
    }

    fn ioctl(me: Pin<&Self>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, file, cmd, arg)
    }
}
