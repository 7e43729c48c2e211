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
    sync::Mutex,
};

use crate::{
    errno,
    ioas::{
        self,
        Ioas, //
    },
    ioctl::{
        self,
        Ucmd, //
    },
    object::{
        InUse,
        Objects, //
    },
    uapi, //
};
use kernel::bindings;

#[pin_data(PinnedDrop)]
pub(crate) struct Ictx {
    #[pin]
    pub(crate) objects: Mutex<Objects>,
}

#[pinned_drop]
impl PinnedDrop for Ictx {
    /// Closing the file: objects that hold devices let go of them first, while the table still
    /// works (detach, unbind); everything else then goes with the table, each object after the
    /// objects holding it (they hold references).
    fn drop(self: Pin<&mut Self>) {
        #[cfg(CONFIG_IOMMUFD_TEST)]
        loop {
            let Some(obj) = self.objects.lock().take_selftest() else {
                break;
            };
            if let crate::object::Object::Selftest(st) = &obj {
                st.teardown(&self);
            }
            drop(obj);
        }
    }
}

impl Ictx {
    /// The IOAS named `id`, in use until the returned guard drops; `ENOENT` if `id` names
    /// nothing or something else.
    pub(crate) fn get_ioas(&self, id: u32) -> Result<InUse<Ioas>> {
        if crate::fault::should_fail() {
            return Err(ENOENT);
        }
        self.objects.lock().get_ioas(id)
    }

    /// The bound device named `id`, in use until the returned guard drops.
    pub(crate) fn get_device(&self, id: u32) -> Result<InUse<crate::device::Device>> {
        if crate::fault::should_fail() {
            return Err(ENOENT);
        }
        self.objects.lock().get_device(id)
    }
}

/// Whether the caller may change how its pinned memory is accounted.
fn capable_sys_resource() -> bool {
    // SAFETY: `capable()` only reads the current task's credentials; any capability number is
    // accepted.
    unsafe { bindings::capable(bindings::CAP_SYS_RESOURCE as i32) }
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
                    if !capable_sys_resource() {
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

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(Ictx {
                objects <- new_mutex!(Objects::new()),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    fn ioctl(me: Pin<&Self>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, file, cmd, arg)
    }
}
