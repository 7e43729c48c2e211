// SPDX-License-Identifier: GPL-2.0
//! The facts of a file whose pages are mapped for DMA (a memfd, or a tmpfs or hugetlbfs file):
//! whether it is open for writing, its memfd seals, and the writable-mapping count a shared
//! writable `mmap()` of it holds (what `F_SEAL_WRITE` waits to be zero).

use kernel::{
    fs::{
        File,
        LocalFile, //
    },
    prelude::*,
    sync::aref::ARef,
};

use crate::ffi::{
    kbind,
    shim, //
};

/// The file of fd `fd` of the calling process, referenced; `EBADF` if there is none.
///
/// For ioctl handlers only, which is where this module looks files up: an ioctl is not a
/// `read()`, `write()` or `lseek()`, so the calling thread holds no `fdget_pos()` on any file,
/// which is what lets the file be used as a shared [`File`].
pub(crate) fn fget(fd: u32) -> Result<ARef<File>> {
    let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
    // SAFETY: this thread is in an ioctl (see above) and has no `fdget_pos()` of its own on the
    // file it just looked up.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(file) })
}

/// Whether `file` is open for writing (`FMODE_WRITE`).
#[inline]
pub(crate) fn is_writable(file: &File) -> bool {
    // SAFETY: `file` is live for the borrow; `f_mode` is set at open.
    unsafe { shim::iommufd_rs_file_writable(file.as_ptr()) }
}

/// Whether `file` is a memfd sealed against writes (`F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE`).
/// Files that take no seals have none.
#[inline]
pub(crate) fn is_write_sealed(file: &File) -> bool {
    // SAFETY: `file` is live for the borrow, and so is its inode.
    let seals = unsafe { shim::iommufd_rs_file_seals(file.as_ptr()) };
    seals & (kbind::F_SEAL_WRITE | kbind::F_SEAL_FUTURE_WRITE) != 0
}

/// One writable-mapping count on a file's mapping (`mapping_map_writable()`), as a shared
/// writable `mmap()` holds: while it is held, `F_SEAL_WRITE` fails with `EBUSY`.
///
/// # Invariants
///
/// `file`'s mapping carries one writable-mapping count of ours, given back on drop.
pub(crate) struct WritableMapping {
    file: ARef<File>,
}

impl WritableMapping {
    /// Takes a count on `file`'s mapping; `EPERM` once `F_SEAL_WRITE` is set (it denies new
    /// counts before it is set, so a seal check made after this sees any seal that won).
    pub(crate) fn new(file: ARef<File>) -> Result<Self> {
        // SAFETY: `file` is referenced, so is its mapping.
        let rc = unsafe { shim::iommufd_rs_mapping_map_writable(file.as_ptr()) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: the count was just taken.
        Ok(Self { file })
    }

    /// The file.
    #[inline]
    pub(crate) fn file(&self) -> &ARef<File> {
        &self.file
    }
}

impl Drop for WritableMapping {
    fn drop(&mut self) {
        // SAFETY: the type's invariant: our count, given back once; the file (and so its
        // mapping) is still referenced, `self.file` drops after this.
        unsafe { shim::iommufd_rs_mapping_unmap_writable(self.file.as_ptr()) };
    }
}
