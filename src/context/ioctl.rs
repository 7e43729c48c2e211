// SPDX-License-Identifier: GPL-2.0
//! The ioctl table and dispatcher: the size rule lives here and nowhere else.
//!
//! Upstream's main.c keeps one `IOCTL_OP` row per command (number, handler, struct, last mandatory
//! field); we keep the same row, typed. The dispatcher reads the leading `size`, applies the rule
//! planned by [`crate::pure::ucmd::plan`], copies the argument once into a kernel buffer, and hands the
//! handler a [`Ucmd`] that can only read that copy and write one answer back.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    bindings,
    fs::File,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::file::check_zeroed_user,
    context::ictx::{
        self,
        Ictx, //
    },
    context::ioctl_ext,
    context::object,
    eventq::fault,
    ffi::uapi,
    hwpt,
    hwpt::device,
    hwpt::dirty,
    ioas,
    pure::ucmd, //
    vfio::compat,
};

/// The kernel copy of one ioctl argument: big and aligned enough for every struct in the table
/// (checked at build time by [`op`]).
#[repr(C, align(8))]
struct UcmdBuffer([u8; UCMD_BUFFER_SIZE]);
const UCMD_BUFFER_SIZE: usize = 128;

/// One ioctl call in flight: the context, the validated argument and where the answer goes.
pub(crate) struct Ucmd<'a> {
    pub(crate) ictx: &'a Ictx,
    /// The `/dev/iommu` file the call came through (objects that keep the context take it).
    pub(crate) file: &'a File,
    user: UserPtr,
    /// The argument, `Op::size` bytes; the part the caller did not send is zero.
    arg: &'a [u8],
    /// How many bytes of an answer the caller has room for (see [`ucmd::CopyPlan::respond`]).
    respond_len: usize,
    /// The ioctl's return value on success (0 but for commands that return an fd).
    pub(crate) ret: isize,
}

impl Ucmd<'_> {
    /// The argument as the command's struct.
    pub(crate) fn cmd<T: FromBytes>(&self) -> Result<T> {
        T::from_bytes_copy(self.arg.get(..size_of::<T>()).ok_or(EINVAL)?).ok_or(EINVAL)
    }

    /// Writes the answer back over the caller's struct, never past the size the caller gave.
    pub(crate) fn respond<T: AsBytes>(&self, answer: &T) -> Result {
        let bytes = answer.as_bytes();
        let len = self.respond_len.min(bytes.len());
        UserSlice::new(self.user, len)
            .writer()
            .write_slice(&bytes[..len])
    }
}

impl Ucmd<'_> {
    /// Writes one field of the answer at `offset` into the caller's struct (for commands whose
    /// only output is one field, so the caller's other fields are left as they were).
    pub(crate) fn respond_field<T: AsBytes>(&self, offset: usize, value: &T) -> Result {
        let bytes = value.as_bytes();
        let end = offset.checked_add(bytes.len()).ok_or(EINVAL)?;
        if end > self.respond_len {
            return Ok(());
        }
        UserSlice::new(self.user.wrapping_byte_add(offset), bytes.len())
            .writer()
            .write_slice(bytes)
    }
}

/// A table row: upstream's `struct iommufd_ioctl_op`.
#[derive(Clone, Copy)]
pub(crate) struct Op {
    pub(crate) cmd: u32,
    /// `sizeof(struct)`: what this kernel knows.
    size: usize,
    /// `offsetofend(struct, last mandatory field)`.
    min_size: usize,
    execute: fn(&mut Ucmd<'_>) -> Result,
}

impl Op {
    /// A row for rows kept outside the table (`ioctl_ext.rs`): a struct of `size` bytes whose
    /// mandatory part ends at `min_size`. In a constant, a struct too big for the buffer fails
    /// the build, as [`op`] does.
    pub(crate) const fn new(
        cmd: u32,
        size: usize,
        min_size: usize,
        execute: fn(&mut Ucmd<'_>) -> Result,
    ) -> Self {
        assert!(size <= UCMD_BUFFER_SIZE && min_size <= size);
        Self {
            cmd,
            size,
            min_size,
            execute,
        }
    }
}

/// Size of the field a projection points at; lets [`op`] compute `offsetofend` in a const.
const fn field_size<T, F>(_project: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Builds a table row; the buffer-size check fails the build, not the call.
macro_rules! op {
    ($cmd:expr, $execute:path, $ty:ty, $last:ident) => {{
        const _: () = assert!(size_of::<$ty>() <= UCMD_BUFFER_SIZE);
        Some(Op {
            cmd: $cmd,
            size: size_of::<$ty>(),
            min_size: offset_of!($ty, $last) + field_size(|s: &$ty| &s.$last),
            execute: $execute,
        })
    }};
}

/// Builds the table: each row lands at `_IOC_NR(cmd) - IOMMUFD_CMD_BASE`, and two rows for one
/// number fail the build.
macro_rules! ops_table {
    ($($(#[$attr:meta])* ($cmd:expr, $execute:path, $ty:ty, $last:ident)),* $(,)?) => {{
        let mut t: [Option<Op>; uapi::IOMMUFD_CMD_TABLE_LEN] = [None; uapi::IOMMUFD_CMD_TABLE_LEN];
        $(
            $(#[$attr])*
            {
                let idx = (ucmd::ioc_nr($cmd) - uapi::IOMMUFD_CMD_BASE) as usize;
                assert!(t[idx].is_none(), "two ioctl table rows for one command");
                t[idx] = op!($cmd, $execute, $ty, $last);
            }
        )*
        t
    }};
}

/// Indexed by `_IOC_NR(cmd) - IOMMUFD_CMD_BASE`. A command this module does not implement has no
/// row and answers `ENOTTY`, as a kernel that predates it would.
#[rustfmt::skip]
static OPS: [Option<Op>; uapi::IOMMUFD_CMD_TABLE_LEN] = ops_table![
    (uapi::IOMMU_DESTROY, object::destroy_ioctl, uapi::iommu_destroy, id),
    (uapi::IOMMU_IOAS_ALLOC, ioas::alloc_ioctl, uapi::iommu_ioas_alloc, out_ioas_id),
    (uapi::IOMMU_IOAS_ALLOW_IOVAS, ioas::allow_iovas_ioctl, uapi::iommu_ioas_allow_iovas,
     allowed_iovas),
    (uapi::IOMMU_IOAS_COPY, ioas::copy_ioctl, uapi::iommu_ioas_copy, src_iova),
    (uapi::IOMMU_IOAS_IOVA_RANGES, ioas::iova_ranges_ioctl, uapi::iommu_ioas_iova_ranges,
     out_iova_alignment),
    (uapi::IOMMU_IOAS_MAP, ioas::map_ioctl, uapi::iommu_ioas_map, iova),
    (uapi::IOMMU_IOAS_UNMAP, ioas::unmap_ioctl, uapi::iommu_ioas_unmap, length),
    (uapi::IOMMU_OPTION, ictx::option_ioctl, uapi::iommu_option, val64),
    (uapi::IOMMU_IOAS_MAP_FILE, ioas::map_file_ioctl, uapi::iommu_ioas_map_file, iova),
    (uapi::IOMMU_HWPT_ALLOC, hwpt::alloc_ioctl, uapi::iommu_hwpt_alloc, __reserved),
    (uapi::IOMMU_GET_HW_INFO, device::get_hw_info_ioctl, uapi::iommu_hw_info, __reserved),
    (uapi::IOMMU_HWPT_INVALIDATE, hwpt::invalidate_ioctl, uapi::iommu_hwpt_invalidate, __reserved),
    (uapi::IOMMU_FAULT_QUEUE_ALLOC, fault::alloc_ioctl, uapi::iommu_fault_alloc, out_fault_fd),
    (uapi::IOMMU_HWPT_SET_DIRTY_TRACKING, dirty::set_dirty_tracking_ioctl,
     uapi::iommu_hwpt_set_dirty_tracking, __reserved),
    (uapi::IOMMU_HWPT_GET_DIRTY_BITMAP, dirty::get_dirty_bitmap_ioctl,
     uapi::iommu_hwpt_get_dirty_bitmap, data),
    (uapi::IOMMU_VFIO_IOAS, compat::vfio_ioas_ioctl, uapi::iommu_vfio_ioas, __reserved),
    (uapi::IOMMU_IOAS_CHANGE_PROCESS, ioas::change_process_ioctl, uapi::iommu_ioas_change_process,
     __reserved),
    (uapi::IOMMU_VIOMMU_ALLOC, crate::viommu::alloc_ioctl, uapi::iommu_viommu_alloc,
     out_viommu_id),
    (uapi::IOMMU_VDEVICE_ALLOC, crate::viommu::vdevice_alloc_ioctl, uapi::iommu_vdevice_alloc,
     virt_id),
    (uapi::IOMMU_VEVENTQ_ALLOC, crate::eventq::veventq::alloc_ioctl, uapi::iommu_veventq_alloc,
     out_veventq_fd),
    (uapi::IOMMU_HW_QUEUE_ALLOC, crate::viommu::hw_queue_alloc_ioctl,
     uapi::iommu_hw_queue_alloc, length),
];

/// `E2BIG` unless the user bytes in `tail` are all zero (`EFAULT` if they cannot be read).
fn check_zero_tail(user: UserPtr, tail: core::ops::Range<usize>) -> Result {
    let from = user.wrapping_byte_add(tail.start);
    if check_zeroed_user(from, tail.len())? {
        Ok(())
    } else {
        Err(E2BIG)
    }
}

/// Reads a `T` of `len` user bytes at `uptr` (the kernel's `copy_struct_from_user()`): a shorter
/// struct reads its missing tail as zero, a longer one must have a zero tail (`E2BIG`).
pub(crate) fn copy_struct_raw<T: FromBytes>(uptr: usize, len: usize) -> Result<T> {
    let ksize = size_of::<T>();
    let user = UserPtr::from_addr(uptr);
    if len > ksize {
        check_zero_tail(user, ksize..len)?;
    }
    let n = len.min(ksize);
    let mut buf = KVec::from_elem(0u8, ksize, GFP_KERNEL)?;
    UserSlice::new(user, n).reader().read_slice(&mut buf[..n])?;
    T::from_bytes_copy(&buf).ok_or(EINVAL)
}

/// Reads a driver-specific struct `T` from user data (`iommu_copy_struct_from_user()`):
/// `EINVAL` for another data type, fewer than `min_len` bytes or more than `T` has; a shorter
/// struct reads its missing tail as zero.
pub(crate) fn copy_struct_from_user<T: FromBytes>(
    data: &bindings::iommu_user_data,
    kind: u32,
    min_len: usize,
) -> Result<T> {
    let ksize = size_of::<T>();
    if data.type_ != kind || data.len < min_len || data.len > ksize {
        return Err(EINVAL);
    }
    let user = UserPtr::from_addr(data.uptr as usize);
    let n = data.len;
    let mut buf = KVec::from_elem(0u8, ksize, GFP_KERNEL)?;
    UserSlice::new(user, n).reader().read_slice(&mut buf[..n])?;
    T::from_bytes_copy(&buf).ok_or(EINVAL)
}

/// Entry point for every ioctl on `/dev/iommu`.
pub(crate) fn dispatch(ictx: &Ictx, file: &File, cmd: u32, arg: usize) -> Result<isize> {
    let len = ioctl_ext::table_len(OPS.len());
    let Some(idx) = ucmd::table_index(cmd, uapi::IOMMUFD_CMD_BASE, len) else {
        // Outside the iommufd range: the VFIO container ioctls, answered on the compat IOAS.
        return compat::ioctl(ictx, cmd, arg);
    };
    let user = UserPtr::from_addr(arg);
    // Upstream reads the size before it looks at the row: keep its errno order (EFAULT first).
    let user_size: u32 = UserSlice::new(user, size_of::<u32>()).reader().read()?;
    let op = match OPS
        .get(idx)
        .copied()
        .flatten()
        .or_else(|| ioctl_ext::find(cmd))
    {
        Some(op) if op.cmd == cmd => op,
        _ => return Err(ENOTTY),
    };
    let plan =
        ucmd::plan(user_size, op.min_size, op.size).map_err(|ucmd::SizeError::TooShort| EINVAL)?;
    if !plan.zero_tail.is_empty() {
        check_zero_tail(user, plan.zero_tail.clone())?;
    }
    let mut buf = UcmdBuffer([0; UCMD_BUFFER_SIZE]);
    UserSlice::new(user, plan.copy)
        .reader()
        .read_slice(&mut buf.0[..plan.copy])?;
    let mut ucmd = Ucmd {
        ictx,
        file,
        user,
        arg: &buf.0[..op.size],
        respond_len: plan.respond,
        ret: 0,
    };
    (op.execute)(&mut ucmd)?;
    Ok(ucmd.ret)
}
