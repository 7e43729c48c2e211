// SPDX-License-Identifier: GPL-2.0
//! The upstream uAPI (`include/uapi/linux/iommufd.h`), generated from the kernel we build against.
//!
//! The Makefile runs bindgen over the installed uAPI header of `$(KDIR)` into `src/generated/`, so
//! the structs here are the kernel's own layouts: a kernel whose header changes changes ours, and a
//! field we use that disappears fails the build. This file adds what bindgen cannot: the ioctl
//! numbers (function-like macros) and the byte-view traits the ioctl layer needs.

super::bindgen_module! {
    mod generated = "generated/iommufd_uapi.rs";
    pub(crate) mod vfio {
        use kernel::ffi;
        include!("generated/vfio_uapi.rs");
    }
}

pub(crate) use generated::{
    iommu_destroy,
    iommu_fault_alloc,
    iommu_hw_info,
    iommu_hw_queue_alloc,
    iommu_hwpt_alloc,
    iommu_hwpt_get_dirty_bitmap,
    iommu_hwpt_invalidate,
    iommu_hwpt_page_response,
    iommu_hwpt_pgfault,
    iommu_hwpt_set_dirty_tracking,
    iommu_ioas_alloc,
    iommu_ioas_allow_iovas,
    iommu_ioas_change_process,
    iommu_ioas_copy,
    iommu_ioas_iova_ranges,
    iommu_ioas_map,
    iommu_ioas_map_file,
    iommu_ioas_unmap,
    iommu_iova_range,
    iommu_option,
    iommu_vdevice_alloc,
    iommu_veventq_alloc,
    iommu_vfio_ioas,
    iommu_viommu_alloc,
    iommufd_vevent_header,
    IOMMUFD_PAGE_RESP_INVALID,
    IOMMUFD_PAGE_RESP_SUCCESS,
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    IOMMU_HWPT_ALLOC_NEST_PARENT,
    IOMMU_HWPT_ALLOC_PASID,
    IOMMU_HWPT_DATA_NONE,
    IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
    IOMMU_HWPT_FAULT_ID_VALID,
    IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
    IOMMU_HW_CAP_DIRTY_TRACKING,
    IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED,
    IOMMU_HW_CAP_PCI_PASID_EXEC,
    IOMMU_HW_CAP_PCI_PASID_PRIV,
    IOMMU_HW_INFO_FLAG_INPUT_TYPE,
    IOMMU_HW_INFO_TYPE_DEFAULT,
    IOMMU_HW_INFO_TYPE_NONE,
    IOMMU_HW_QUEUE_TYPE_DEFAULT,
    IOMMU_IOAS_MAP_FIXED_IOVA,
    IOMMU_IOAS_MAP_READABLE,
    IOMMU_IOAS_MAP_WRITEABLE,
    IOMMU_OPTION_HUGE_PAGES,
    IOMMU_OPTION_OP_GET,
    IOMMU_OPTION_OP_SET,
    IOMMU_OPTION_RLIMIT_MODE, //
    IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
    IOMMU_VEVENTQ_TYPE_DEFAULT,
    IOMMU_VFIO_IOAS_CLEAR,
    IOMMU_VFIO_IOAS_GET,
    IOMMU_VFIO_IOAS_SET,
    IOMMU_VIOMMU_TYPE_DEFAULT,
};

use kernel::ioctl::_IO;

// `include/uapi/linux/eventpoll.h` poll bits (function-like macros over `__poll_t` that bindgen
// does not see): the fault fd's poll answers.
pub(crate) const EPOLLIN: kernel::bindings::__poll_t = 0x0001;
pub(crate) const EPOLLOUT: kernel::bindings::__poll_t = 0x0004;
pub(crate) const EPOLLRDNORM: kernel::bindings::__poll_t = 0x0040;

/// `IOMMUFD_TYPE`: the ioctl type byte, `';'`.
pub(crate) const IOMMUFD_TYPE: u32 = b';' as u32;

/// First command number of the iommufd range; `_IOC_NR(cmd) - IOMMUFD_CMD_BASE` indexes the table.
pub(crate) const IOMMUFD_CMD_BASE: u32 = generated::IOMMUFD_CMD_BASE;

/// Rows of the ioctl table: it ends after the last real command, as upstream's `ARRAY_SIZE` does
/// (numbers past it go to the VFIO compat path, unless a row registered in
/// `context/ioctl_ext.rs` extends the range).
pub(crate) const IOMMUFD_CMD_TABLE_LEN: usize = 21;

pub(crate) const IOMMU_DESTROY: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_DESTROY);
pub(crate) const IOMMU_IOAS_ALLOC: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_ALLOC);
pub(crate) const IOMMU_IOAS_ALLOW_IOVAS: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
pub(crate) const IOMMU_IOAS_IOVA_RANGES: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_IOVA_RANGES);
pub(crate) const IOMMU_IOAS_COPY: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_COPY);
pub(crate) const IOMMU_IOAS_MAP: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_MAP);
pub(crate) const IOMMU_IOAS_MAP_FILE: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_MAP_FILE);
pub(crate) const IOMMU_IOAS_UNMAP: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_UNMAP);
pub(crate) const IOMMU_OPTION: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_OPTION);
pub(crate) const IOMMU_HWPT_ALLOC: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_HWPT_ALLOC);
pub(crate) const IOMMU_GET_HW_INFO: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_GET_HW_INFO);
pub(crate) const IOMMU_VFIO_IOAS: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_VFIO_IOAS);
pub(crate) const IOMMU_HWPT_INVALIDATE: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_HWPT_INVALIDATE);
pub(crate) const IOMMU_HWPT_SET_DIRTY_TRACKING: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);
pub(crate) const IOMMU_HWPT_GET_DIRTY_BITMAP: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);
pub(crate) const IOMMU_FAULT_QUEUE_ALLOC: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_FAULT_QUEUE_ALLOC);
pub(crate) const IOMMU_IOAS_CHANGE_PROCESS: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_IOAS_CHANGE_PROCESS);
pub(crate) const IOMMU_VIOMMU_ALLOC: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_VIOMMU_ALLOC);
pub(crate) const IOMMU_VDEVICE_ALLOC: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_VDEVICE_ALLOC);
pub(crate) const IOMMU_VEVENTQ_ALLOC: u32 = _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_VEVENTQ_ALLOC);
pub(crate) const IOMMU_HW_QUEUE_ALLOC: u32 =
    _IO(IOMMUFD_TYPE, generated::IOMMUFD_CMD_HW_QUEUE_ALLOC);

/// Marks uAPI structs as plain bytes both ways, after checking at build time that their size is
/// the sum of their fields (no padding, so every byte of an `AsBytes` view is initialized).
macro_rules! plain_uapi {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {$(
        const _: () = assert!(
            core::mem::size_of::<$ty>() == 0 $(+ field_size(|s: &$ty| &s.$field))*
        );
        // SAFETY: `repr(C)` integers only and no padding (checked above): every bit pattern is
        // a valid value and every byte is initialized.
        unsafe impl kernel::transmute::FromBytes for $ty {}
        // SAFETY: as above.
        unsafe impl kernel::transmute::AsBytes for $ty {}
    )*};
}

const fn field_size<T, F>(_project: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}

plain_uapi! {
    iommu_destroy { size, id }
    iommu_ioas_alloc { size, flags, out_ioas_id }
    iommu_ioas_allow_iovas { size, ioas_id, num_iovas, __reserved, allowed_iovas }
    iommu_ioas_iova_ranges { size, ioas_id, num_iovas, __reserved, allowed_iovas, out_iova_alignment }
    iommu_iova_range { start, last }
    iommu_ioas_map { size, flags, ioas_id, __reserved, user_va, length, iova }
    iommu_ioas_unmap { size, ioas_id, iova, length }
    iommu_ioas_map_file { size, flags, ioas_id, fd, start, length, iova }
    iommu_ioas_copy { size, flags, dst_ioas_id, src_ioas_id, length, dst_iova, src_iova }
    iommu_option { size, option_id, op, __reserved, object_id, val64 }
    iommu_hwpt_alloc { size, flags, dev_id, pt_id, out_hwpt_id, __reserved, data_type, data_len,
                       data_uptr, fault_id, __reserved2 }
    iommu_hw_info { size, flags, dev_id, data_len, data_uptr, __bindgen_anon_1, out_max_pasid_log2,
                    __reserved, out_capabilities }
    iommu_vfio_ioas { size, ioas_id, op, __reserved }
    iommu_ioas_change_process { size, __reserved }
    iommu_hwpt_invalidate { size, hwpt_id, data_uptr, data_type, entry_len, entry_num, __reserved }
    iommu_fault_alloc { size, flags, out_fault_id, out_fault_fd }
    iommu_hwpt_set_dirty_tracking { size, flags, hwpt_id, __reserved }
    iommu_hwpt_get_dirty_bitmap { size, hwpt_id, flags, __reserved, iova, length, page_size, data }
    iommu_hwpt_pgfault { flags, dev_id, pasid, grpid, perm, __reserved, addr, length, cookie }
    iommu_hwpt_page_response { cookie, code }
    iommu_viommu_alloc { size, flags, type_, dev_id, hwpt_id, out_viommu_id, data_len, __reserved,
                         data_uptr }
    iommu_vdevice_alloc { size, viommu_id, dev_id, out_vdevice_id, virt_id }
    iommu_veventq_alloc { size, flags, viommu_id, type_, veventq_depth, out_veventq_id,
                          out_veventq_fd, __reserved }
    iommu_hw_queue_alloc { size, flags, viommu_id, type_, index, out_hw_queue_id,
                           nesting_parent_iova, length }
    iommufd_vevent_header { flags, sequence }
}

/// The VFIO type1 container uAPI (`include/uapi/linux/vfio.h`), for the compat ioctls.
pub(crate) mod vfio {
    pub(crate) use super::generated::vfio::*;

    use super::field_size;

    plain_uapi! {
        vfio_iommu_type1_dma_map { argsz, flags, vaddr, iova, size }
        vfio_iommu_type1_dma_unmap { argsz, flags, iova, size, data }
        vfio_iommu_type1_info { argsz, flags, iova_pgsizes, cap_offset, pad }
        vfio_iommu_type1_info_dma_avail { header, avail }
        vfio_info_cap_header { id, version, next }
        vfio_iova_range { start, end }
    }
}
