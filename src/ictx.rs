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
    ioctl,
    object::Objects, //
};

#[pin_data]
pub(crate) struct Ictx {
    #[pin]
    pub(crate) objects: Mutex<Objects>,
}

#[vtable]
impl MiscDevice for Ictx {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(Ictx {
                objects <- new_mutex!(Objects::new()),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, cmd, arg)?;
        Ok(0)
    }
}
