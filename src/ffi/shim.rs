// SPDX-License-Identifier: GPL-2.0
//! Declarations of `src/ffi/shim.c`: static inlines of the kernel that Rust cannot call, one C line
//! each. `src/ffi/shim.h` holds the same prototypes and the C compiler checks the definitions against
//! it; keep the two in step.

use kernel::{bindings, ffi::c_int};

// `struct page` and `struct folio` embed zero-sized members (lockdep maps) that trip
// `improper_ctypes`; only pointers to them cross the boundary, never the structs.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn iommufd_rs_page_ref_count(page: *const bindings::page) -> c_int;
    pub(crate) fn iommufd_rs_page_compound(page: *const bindings::page) -> bool;
    pub(crate) fn iommufd_rs_put_page(page: *mut bindings::page);
    pub(crate) fn iommufd_rs_page_to_pfn(page: *const bindings::page) -> usize;
    pub(crate) fn iommufd_rs_pages_to_pfns(
        pages: *const *mut bindings::page,
        pfns: *mut u64,
        n: usize,
    );
    pub(crate) fn iommufd_rs_pfn_to_page(pfn: usize) -> *mut bindings::page;
    pub(crate) fn iommufd_rs_pci_pri_facts(
        dev: *mut bindings::device,
        is_virtfn: *mut bool,
        pri_supported: *mut bool,
    ) -> bool;
    pub(crate) fn iommufd_rs_folio_pfn(folio: *const bindings::folio) -> usize;
    pub(crate) fn iommufd_rs_folio_nr_pages(folio: *const bindings::folio) -> usize;
    pub(crate) fn iommufd_rs_get_current_user() -> *mut bindings::user_struct;
    pub(crate) fn iommufd_rs_task_rlimit_memlock(task: *const bindings::task_struct) -> usize;
    pub(crate) fn iommufd_rs_mmap_write_lock(mm: *mut bindings::mm_struct);
    pub(crate) fn iommufd_rs_mmap_write_unlock(mm: *mut bindings::mm_struct);
    pub(crate) fn iommufd_rs_allow_unsafe_interrupts() -> bool;
    pub(crate) fn iommufd_rs_list_add(
        entry: *mut bindings::list_head,
        head: *mut bindings::list_head,
    );
    pub(crate) fn iommufd_rs_list_del_init(entry: *mut bindings::list_head);
    pub(crate) fn iommufd_rs_list_move_tail(
        entry: *mut bindings::list_head,
        head: *mut bindings::list_head,
    );
    pub(crate) fn iommufd_rs_wake_unused();
    pub(crate) fn iommufd_rs_wait_unused(
        count: *const u32,
        timeout_ms: kernel::ffi::c_uint,
    ) -> bool;
    pub(crate) fn iommufd_rs_memcpy_from_page(
        to: *mut u8,
        page: *mut bindings::page,
        offset: usize,
        len: usize,
    );
    pub(crate) fn iommufd_rs_dirty_bitmap_init(
        dirty: *mut bindings::iommu_dirty_bitmap,
        bitmap: *mut bindings::iova_bitmap,
        gather: *mut bindings::iommu_iotlb_gather,
    );
    pub(crate) fn iommufd_rs_iotlb_sync(
        domain: *mut bindings::iommu_domain,
        gather: *mut bindings::iommu_iotlb_gather,
    );
    pub(crate) fn iommufd_rs_dma_resv_lock(obj: *mut bindings::dma_resv) -> c_int;
    pub(crate) fn iommufd_rs_dma_resv_unlock(obj: *mut bindings::dma_resv);
    pub(crate) fn iommufd_rs_virt_to_phys(addr: *mut kernel::ffi::c_void) -> bindings::phys_addr_t;
    pub(crate) fn iommufd_rs_cond_resched();
    pub(crate) fn iommufd_rs_file_writable(file: *const bindings::file) -> bool;
    pub(crate) fn iommufd_rs_file_seals(file: *mut bindings::file) -> kernel::ffi::c_uint;
    pub(crate) fn iommufd_rs_mapping_map_writable(file: *mut bindings::file) -> c_int;
    pub(crate) fn iommufd_rs_mapping_unmap_writable(file: *mut bindings::file);
    pub(crate) fn iommufd_rs_vma_pgoff(vma: *const bindings::vm_area_struct) -> usize;
    pub(crate) fn iommufd_rs_mmap_phys(
        vma: *mut bindings::vm_area_struct,
        owner: *mut kernel::ffi::c_void,
        addr: bindings::phys_addr_t,
    ) -> c_int;
    pub(crate) fn iommufd_rs_vfio_dmabuf_range(
        attach: *mut bindings::dma_buf_attachment,
        paddr: *mut u64,
        len: *mut u64,
    ) -> c_int;
    pub(crate) fn iommufd_rs_memcpy_to_page(
        page: *mut bindings::page,
        offset: usize,
        from: *const u8,
        len: usize,
    );
}

/// Upstream's `struct iommufd_ctx`, `struct iommufd_group`, `struct iommufd_device`,
/// `struct iommufd_hw_pagetable`, `struct iommufd_viommu`, `struct iommufd_vdevice` and
/// `struct iommufd_veventq`, opaque here: only `src/ffi/c_objects.c` (compiled against the
/// tree's `iommufd_private.h`) reads or writes their fields.
macro_rules! opaque_c_object {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub(crate) struct $name {
            _opaque: [u8; 0],
        }
    )*};
}
opaque_c_object!(
    CIommufdCtx,
    CIommufdGroup,
    CIommufdDevice,
    CIommufdHwpt,
    CIommufdViommu,
    CIommufdVdevice,
    CIommufdVeventq,
    CIommufdVevent
);

/// `struct iommufd_rs_vevent` of `src/ffi/c_objects.h`: a vEVENTQ record a reader holds.
#[repr(C)]
pub(crate) struct CVeventRecord {
    pub(crate) flags: u32,
    pub(crate) sequence: u32,
    pub(crate) record: *mut CIommufdVevent,
    pub(crate) data: *const u8,
    pub(crate) data_len: isize,
}

// The C side asserts the same size of its struct.
const _: () = assert!(
    core::mem::size_of::<CVeventRecord>()
        == 2 * core::mem::size_of::<u32>() + 3 * core::mem::size_of::<usize>()
);

// Declarations of `src/ffi/c_objects.c` (prototypes in `src/ffi/c_objects.h`). Only pointers to
// the kernel's structs cross, as above.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn iommufd_rs_cctx_alloc() -> *mut CIommufdCtx;
    pub(crate) fn iommufd_rs_cctx_free(ictx: *mut CIommufdCtx);
    pub(crate) fn iommufd_rs_cgroup_alloc(
        ictx: *mut CIommufdCtx,
        group: *mut bindings::iommu_group,
    ) -> *mut CIommufdGroup;
    pub(crate) fn iommufd_rs_cgroup_free(igroup: *mut CIommufdGroup);
    pub(crate) fn iommufd_rs_cgroup_set_sw_msi(
        igroup: *mut CIommufdGroup,
        start: bindings::phys_addr_t,
    );
    pub(crate) fn iommufd_rs_cgroup_setup_msi(
        igroup: *mut CIommufdGroup,
        hwpt: *mut CIommufdHwpt,
    ) -> c_int;
    pub(crate) fn iommufd_rs_cdev_alloc(
        ictx: *mut CIommufdCtx,
        igroup: *mut CIommufdGroup,
        dev: *mut bindings::device,
    ) -> *mut CIommufdDevice;
    pub(crate) fn iommufd_rs_cdev_set_id(idev: *mut CIommufdDevice, id: u32);
    pub(crate) fn iommufd_rs_cdev_free(idev: *mut CIommufdDevice);
    pub(crate) fn iommufd_rs_chwpt_alloc(
        domain: *mut bindings::iommu_domain,
        parent: *mut CIommufdHwpt,
    ) -> *mut CIommufdHwpt;
    pub(crate) fn iommufd_rs_chwpt_set_id(hwpt: *mut CIommufdHwpt, id: u32);
    pub(crate) fn iommufd_rs_chwpt_free(hwpt: *mut CIommufdHwpt);
    pub(crate) fn iommufd_rs_cviommu_supported(dev: *mut bindings::device, type_: u32) -> bool;
    pub(crate) fn iommufd_rs_cviommu_alloc(
        ictx: *mut CIommufdCtx,
        dev: *mut bindings::device,
        type_: u32,
        parent: *mut CIommufdHwpt,
        user_data: *const bindings::iommu_user_data,
    ) -> *mut CIommufdViommu;
    pub(crate) fn iommufd_rs_cviommu_set_id(viommu: *mut CIommufdViommu, id: u32);
    pub(crate) fn iommufd_rs_cviommu_free(viommu: *mut CIommufdViommu);
    pub(crate) fn iommufd_rs_cviommu_alloc_domain_nested(
        viommu: *mut CIommufdViommu,
        flags: u32,
        user_data: *const bindings::iommu_user_data,
    ) -> *mut bindings::iommu_domain;
    pub(crate) fn iommufd_rs_cviommu_cache_invalidate(
        viommu: *mut CIommufdViommu,
        array: *mut bindings::iommu_user_data_array,
    ) -> c_int;
    pub(crate) fn iommufd_rs_cvdevice_alloc(
        viommu: *mut CIommufdViommu,
        idev: *mut CIommufdDevice,
        virt_id: u64,
    ) -> *mut CIommufdVdevice;
    pub(crate) fn iommufd_rs_cvdevice_set_id(vdev: *mut CIommufdVdevice, id: u32);
    pub(crate) fn iommufd_rs_cvdevice_free(vdev: *mut CIommufdVdevice);
    pub(crate) fn iommufd_rs_cveventq_alloc(
        viommu: *mut CIommufdViommu,
        type_: u32,
        depth: u32,
    ) -> *mut CIommufdVeventq;
    pub(crate) fn iommufd_rs_cveventq_list(veventq: *mut CIommufdVeventq);
    pub(crate) fn iommufd_rs_cveventq_unlist(veventq: *mut CIommufdVeventq);
    pub(crate) fn iommufd_rs_cveventq_free(veventq: *mut CIommufdVeventq);
    pub(crate) fn iommufd_rs_cveventq_wait(
        veventq: *mut CIommufdVeventq,
    ) -> *mut bindings::wait_queue_head;
    pub(crate) fn iommufd_rs_cveventq_readable(veventq: *mut CIommufdVeventq) -> bool;
    pub(crate) fn iommufd_rs_cveventq_fetch(
        veventq: *mut CIommufdVeventq,
        out: *mut CVeventRecord,
    ) -> bool;
    pub(crate) fn iommufd_rs_cveventq_restore(
        veventq: *mut CIommufdVeventq,
        rec: *mut CVeventRecord,
    );
    pub(crate) fn iommufd_rs_cveventq_done(veventq: *mut CIommufdVeventq, rec: *mut CVeventRecord);
}
