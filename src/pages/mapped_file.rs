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

use crate::abstractions::mm::file::{
    self,
    WritableMapping, //
};

/// A file mapped by `IOMMU_IOAS_MAP_FILE`: a plain reference, or, when devices may write it,
/// one that holds the writable-mapping count.
pub(crate) enum MappedFile {
    /// Mapped for device reads only.
    ReadOnly(ARef<File>),
    /// Mapped device-writable: holds the file's writable-mapping count.
    Writable(WritableMapping),
}

impl MappedFile {
    /// Admits `file` for mapping, for device writes if `writable`.
    pub(crate) fn new(file: ARef<File>, writable: bool) -> Result<Self> {
        if !writable {
            return Ok(Self::ReadOnly(file));
        }
        if !file::is_writable(&file) {
            return Err(EACCES);
        }
        // The count first, then the seals: `F_SEAL_WRITE` denies new counts before it is set,
        // so one of the two sees the other. `EPERM` once the seal is there. Dropping `mapped`
        // gives the count back.
        let mapped = WritableMapping::new(file)?;
        if file::is_write_sealed(mapped.file()) {
            return Err(EPERM);
        }
        Ok(Self::Writable(mapped))
    }
}

impl Deref for MappedFile {
    type Target = File;

    fn deref(&self) -> &File {
        match self {
            Self::ReadOnly(f) => f,
            Self::Writable(m) => m.file(),
        }
    }
}
