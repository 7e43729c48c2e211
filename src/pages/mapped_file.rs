// SPDX-License-Identifier: GPL-2.0
//! The file behind an `IOMMU_IOAS_MAP_FILE` mapping of memory (a memfd, or a tmpfs or hugetlbfs
//! file): held open for as long as anything maps it, and, when devices may write it, admitted only
//! where a shared writable `mmap()` of it would be.
//!
//! Upstream maps such a file device-writable whatever the fd's mode and the memfd's seals: an fd
//! opened read-only, or a memfd sealed with `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE`, is then
//! written by DMA behind the promise the mode or the seal made (a sealed memfd is how one process
//! hands another memory it can trust not to change). Ours answers what
//! `mmap(PROT_WRITE, MAP_SHARED)` of the fd answers: `EACCES` for an fd not open for writing,
//! `EPERM` for a write-sealed memfd. While mapped writable it holds the file's writable-mapping
//! count, as a writable shared mapping does, so a later `F_SEAL_WRITE` fails with `EBUSY` instead
//! of sealing memory devices can still write. Documentation/design.rst lists this under "Where we
//! are stricter than upstream".

use core::ops::Deref;
use kernel::{
    fs::File,
    prelude::*,
    sync::aref::ARef, //
};

use crate::{
    ffi::kbind,
    ffi::shim, //
};

/// A file mapped by `IOMMU_IOAS_MAP_FILE`.
///
/// # Invariants
///
/// With `writable`, the file's mapping has one writable-mapping count of ours
/// (`mapping_map_writable()`), given back on drop.
pub(crate) struct MappedFile {
    file: ARef<File>,
    writable: bool,
}

impl MappedFile {
    /// Admits `file` for mapping, for device writes if `writable`.
    pub(crate) fn new(file: ARef<File>, writable: bool) -> Result<Self> {
        if !writable {
            return Ok(Self {
                file,
                writable: false,
            });
        }
        // SAFETY: `file` is referenced.
        if !unsafe { shim::iommufd_rs_file_writable(file.as_ptr()) } {
            return Err(EACCES);
        }
        // The count first, then the seals: `F_SEAL_WRITE` denies new counts before it is set,
        // so one of the two sees the other. `EPERM` once the seal is there.
        // SAFETY: `file` is referenced, so is its mapping.
        let rc = unsafe { shim::iommufd_rs_mapping_map_writable(file.as_ptr()) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: the count was just taken; dropping `mapped` gives it back.
        let mapped = Self {
            file,
            writable: true,
        };
        // SAFETY: `file` is referenced.
        let seals = unsafe { shim::iommufd_rs_file_seals(mapped.file.as_ptr()) };
        if seals & (kbind::F_SEAL_WRITE | kbind::F_SEAL_FUTURE_WRITE) != 0 {
            return Err(EPERM);
        }
        Ok(mapped)
    }
}

impl Deref for MappedFile {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if self.writable {
            // SAFETY: the type's invariant: our count, given back once; the file (and so its
            // mapping) is still referenced, `self.file` drops after this.
            unsafe { shim::iommufd_rs_mapping_unmap_writable(self.file.as_ptr()) };
        }
    }
}
