// SPDX-License-Identifier: GPL-2.0
//! The mock IOMMU's vIOMMU (test builds), as upstream's selftest.c has it: type
//! `IOMMU_VIOMMU_TYPE_SELFTEST`; optional data whose `in_data` comes back in `out_data` and in
//! the first word of a two-page region userspace may mmap; nested domains with a mock IOTLB;
//! invalidation of the per-device mock caches by virtual device ID; and up to
//! `IOMMU_TEST_HW_QUEUE_MAX` HW queues, each after the previous one and depending on it.
//!
//! Lock order: `MockViommu::queues` before the vIOMMU's `vdevs` (not taken together today).

use core::ptr;
use kernel::{
    bindings, new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

use crate::{
    context::ioctl,
    selftest::mock,
    selftest::uapi as t,
    viommu::{
        HwQueue,
        HwQueueMake,
        MmapAlloc,
        Viommu,
        ViommuOps, //
    },
};

const QUEUES: usize = t::IOMMU_TEST_HW_QUEUE_MAX as usize;

/// Two zeroed pages, freed on drop.
struct TwoPages(ptr::NonNull<u8>);

// SAFETY: plain memory owned by this value.
unsafe impl Send for TwoPages {}
// SAFETY: as above; only read through a user mapping.
unsafe impl Sync for TwoPages {}

impl TwoPages {
    fn new() -> Result<Self> {
        // SAFETY: a plain page allocation.
        let addr = unsafe {
            bindings::get_free_pages_noprof(bindings::GFP_KERNEL | bindings::__GFP_ZERO, 1)
        };
        ptr::NonNull::new(addr as *mut u8).map(Self).ok_or(ENOMEM)
    }

    fn phys(&self) -> u64 {
        // SAFETY: a direct-map address of ours.
        unsafe { crate::ffi::shim::iommufd_rs_virt_to_phys(self.0.as_ptr().cast()) }
    }

    fn write_first_word(&self, v: u32) {
        // SAFETY: two pages of ours, aligned.
        unsafe { self.0.as_ptr().cast::<u32>().write(v) };
    }
}

impl Drop for TwoPages {
    fn drop(&mut self) {
        // SAFETY: allocated by `new()` with order 1.
        unsafe { bindings::free_pages(self.0.as_ptr() as usize, 1) };
    }
}

/// The registered HW queues' object IDs, by index (0: none).
struct Queues([u32; QUEUES]);

struct MockViommu {
    _page: Option<TwoPages>,
    queues: Pin<KBox<Mutex<Queues>>>,
}

/// `iommu_ops::viommu_init` of the mock IOMMU.
pub(crate) fn viommu_init(
    viommu_type: u32,
    _parent: *mut bindings::iommu_domain,
    data: Option<&bindings::iommu_user_data>,
    mmap: &mut MmapAlloc<'_>,
) -> Result<KBox<dyn ViommuOps>> {
    if viommu_type != t::IOMMU_VIOMMU_TYPE_SELFTEST {
        return Err(crate::context::errno::eopnotsupp());
    }
    let page = match data {
        None => None,
        Some(data) => {
            let mut cfg: t::iommu_viommu_selftest = ioctl::copy_struct_from_user(
                data,
                t::IOMMU_VIOMMU_TYPE_SELFTEST,
                core::mem::offset_of!(t::iommu_viommu_selftest, out_data)
                    + core::mem::size_of::<u32>(),
            )?;
            let page = TwoPages::new()?;
            let length = 2 * kernel::page::PAGE_SIZE as u64;
            let offset = mmap(page.phys(), length)?;
            page.write_first_word(cfg.in_data);
            cfg.out_data = cfg.in_data;
            cfg.out_mmap_offset = offset;
            cfg.out_mmap_length = length;
            let len = data
                .len
                .min(core::mem::size_of::<t::iommu_viommu_selftest>());
            let bytes = kernel::transmute::AsBytes::as_bytes(&cfg);
            kernel::uaccess::UserSlice::new(
                kernel::uaccess::UserPtr::from_addr(data.uptr as usize),
                len,
            )
            .writer()
            .write_slice(bytes.get(..len).ok_or(EINVAL)?)?;
            Some(page)
        }
    };
    let queues = KBox::pin_init(new_mutex!(Queues([0; QUEUES])), GFP_KERNEL_ACCOUNT)?;
    let v = KBox::new(
        MockViommu {
            _page: page,
            queues,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    Ok(v)
}

impl ViommuOps for MockViommu {
    fn alloc_domain_nested(
        &self,
        viommu: &Viommu,
        flags: u32,
        data: &bindings::iommu_user_data,
    ) -> Result<*mut bindings::iommu_domain> {
        mock::alloc_nested_on_viommu(viommu, flags, data)
    }

    fn cache_invalidate(
        &self,
        viommu: &Viommu,
        array: &mut bindings::iommu_user_data_array,
    ) -> Result {
        // An empty array of the right type checks the type.
        if array.entry_num == 0 && array.type_ == t::IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST {
            return Ok(());
        }
        let mut done = 0u32;
        let rc = (|| -> Result {
            if array.type_ != t::IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST || array.entry_num == 0 {
                return Err(EINVAL);
            }
            // Read them all first, as upstream does: a bad entry anywhere fails before any
            // cache is touched.
            let n = usize::try_from(array.entry_num).map_err(|_| EINVAL)?;
            let mut cmds = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
            for i in 0..n {
                let at = array
                    .entry_len
                    .checked_mul(i)
                    .and_then(|o| (array.uptr as usize).checked_add(o))
                    .ok_or(EFAULT)?;
                let cmd: t::iommu_viommu_invalidate_selftest =
                    ioctl::copy_struct_raw(at, array.entry_len)?;
                cmds.push(cmd, GFP_KERNEL_ACCOUNT)?;
            }
            for cmd in cmds.iter() {
                if cmd.flags & !t::IOMMU_TEST_INVALIDATE_FLAG_ALL != 0 {
                    return Err(crate::context::errno::eopnotsupp());
                }
                if cmd.cache_id > t::MOCK_DEV_CACHE_ID_MAX {
                    return Err(EINVAL);
                }
                let all = cmd.flags & t::IOMMU_TEST_INVALIDATE_FLAG_ALL != 0;
                viommu
                    .with_dev(u64::from(cmd.vdev_id), |dev| {
                        mock::invalidate_dev_cache(dev, (!all).then_some(cmd.cache_id))
                    })
                    .ok_or(EINVAL)?;
                done += 1;
            }
            Ok(())
        })();
        array.entry_num = done;
        rc
    }

    fn hw_queue_supported(&self, queue_type: u32) -> bool {
        queue_type == t::IOMMU_HW_QUEUE_TYPE_SELFTEST
    }

    fn hw_queue_init(
        &self,
        viommu: &Viommu,
        index: u32,
        base_iova: u64,
        base_pa: u64,
        make: &mut HwQueueMake<'_>,
    ) -> Result<Arc<HwQueue>> {
        let i = usize::try_from(index).map_err(|_| EINVAL)?;
        if i >= QUEUES {
            return Err(EINVAL);
        }
        let mut queues = self.queues.lock();
        if queues.0[i] != 0 {
            return Err(EEXIST);
        }
        let prev = match i.checked_sub(1) {
            None => None,
            Some(p) if queues.0[p] == 0 => return Err(EIO),
            Some(p) => Some(queues.0[p]),
        };
        // Catches a core that got the physical address wrong.
        if base_pa != mock::iova_to_phys(viommu.parent.domain().as_raw(), base_iova) {
            return Err(EFAULT);
        }
        let q = make(prev)?;
        queues.0[i] = q.id();
        q.set_registered();
        Ok(q)
    }

    fn hw_queue_destroy(&self, index: u32, id: u32) {
        let mut queues = self.queues.lock();
        if let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| queues.0.get_mut(i))
        {
            if *slot == id {
                *slot = 0;
            }
        }
    }
}
