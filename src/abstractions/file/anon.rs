// SPDX-License-Identifier: GPL-2.0
//! Anonymous-inode files (`anon_inode_getfile()`) whose file operations are a Rust type's: the
//! file owns a `KBox<T>` as its private data, `read`, `write` and `poll` borrow it, `release`
//! drops it. Modelled on the kernel crate's `miscdevice.rs`: a trait ([`AnonFile`]) and an
//! adapter whose `extern "C"` functions make the table ([`AnonFops`]).

use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int, //
    },
    fs::File,
    prelude::*,
    sync::aref::ARef,
};

use super::{
    fops::FopsCell,
    poll::PollTable, //
};

/// The private data of an anonymous file, and what the file's operations do with it.
///
/// The data lives from [`new_file`] to the file's `release`, which drops it; the operations
/// only ever borrow it shared.
pub(crate) trait AnonFile: Send + Sync + Sized + 'static {
    /// The anonymous inode's name (`[...]`).
    const NAME: &'static CStr;
    /// The file has a `write` operation.
    const WRITABLE: bool = false;

    /// `read()` of `count` bytes into user memory at `buf`, from position `pos`.
    fn read(&self, buf: usize, count: usize, pos: i64) -> Result<usize>;
    /// `write()` of `count` bytes from user memory at `buf`, at position `pos` (only if
    /// [`Self::WRITABLE`]).
    fn write(&self, _buf: usize, _count: usize, _pos: i64) -> Result<usize> {
        Err(EINVAL)
    }
    /// `poll()`: registers on the wait queues readiness changes wake (`table`) and returns the
    /// `EPOLL*` mask of the moment.
    fn poll<'a>(&'a self, table: &PollTable<'a>) -> u32;
}

/// The file operations of the files of `T`: empty until [`AnonFops::init`] at module init.
pub(crate) struct AnonFops<T> {
    cell: FopsCell,
    _t: PhantomData<fn() -> T>,
}

impl<T: AnonFile> AnonFops<T> {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        Self {
            cell: FopsCell::new(),
            _t: PhantomData,
        }
    }

    /// Fills in the operations of `T`; `module` is their owner, pinned while a file is open.
    /// Later calls change nothing.
    pub(crate) fn init(&self, module: &'static ThisModule) {
        self.cell.set(bindings::file_operations {
            owner: module.as_ptr(),
            read: Some(fops_read::<T>),
            write: if T::WRITABLE {
                Some(fops_write::<T>)
            } else {
                None
            },
            poll: Some(fops_poll::<T>),
            release: Some(fops_release::<T>),
            ..pin_init::zeroed()
        });
    }
}

/// Makes a file of `T` with `data` and open `flags` (`O_RDWR`...). Dropping the returned
/// reference (the last one) releases the file and drops `data`; on failure `data` is dropped
/// here. `EINVAL` if `fops` was not initialised.
pub(crate) fn new_file<T: AnonFile>(
    fops: &'static AnonFops<T>,
    data: KBox<T>,
    flags: u32,
) -> Result<ARef<File>> {
    let table = fops.cell.get().ok_or(EINVAL)?;
    let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
    let raw_data = KBox::into_raw(data);
    // SAFETY: `table` is a static table whose `release` takes the box back; `NAME` is static.
    // On success the file owns the box.
    let raw = unsafe {
        crate::ffi::kbind::anon_inode_getfile(
            T::NAME.as_char_ptr(),
            core::ptr::from_ref(table),
            raw_data.cast::<c_void>(),
            flags,
        )
    };
    match kernel::error::from_err_ptr(raw) {
        // SAFETY: a new file with one reference, now ours; `File` is a transparent wrapper of
        // `struct file`. Dropping it runs release.
        Ok(f) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(f.cast::<File>())) }),
        Err(e) => {
            // SAFETY: not handed over: the box is still ours.
            drop(unsafe { KBox::from_raw(raw_data) });
            Err(e)
        }
    }
}

/// # Safety
///
/// `file` is a live file of `T` (made by [`new_file`]) not yet released.
#[inline]
unsafe fn data_of<'a, T: AnonFile>(file: *mut bindings::file) -> &'a T {
    // SAFETY: the caller's guarantee: the private data is the box `new_file` gave the file,
    // freed only in release.
    unsafe { &*(*file).private_data.cast::<T>() }
}

/// A byte count or error as a `read`/`write` return value.
fn ret(r: Result<usize>) -> isize {
    match r {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by the VFS on a file of `T`, with a valid position.
unsafe extern "C" fn fops_read<T: AnonFile>(
    file: *mut bindings::file,
    buf: *mut c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: the VFS passes a valid position.
    let pos = unsafe { *ppos };
    // SAFETY: a file of `T`, during one of its operations.
    ret(unsafe { data_of::<T>(file) }.read(buf as usize, count, pos))
}

/// # Safety
///
/// Called by the VFS on a file of `T`, with a valid position.
unsafe extern "C" fn fops_write<T: AnonFile>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: the VFS passes a valid position.
    let pos = unsafe { *ppos };
    // SAFETY: a file of `T`, during one of its operations.
    ret(unsafe { data_of::<T>(file) }.write(buf as usize, count, pos))
}

/// # Safety
///
/// Called by the VFS on a file of `T` with a valid or NULL poll table.
unsafe extern "C" fn fops_poll<T: AnonFile>(
    file: *mut bindings::file,
    table: *mut bindings::poll_table_struct,
) -> bindings::__poll_t {
    // SAFETY: a file of `T`, during one of its operations; the private data lives until
    // release, after epoll and poll dropped their entries (see `PollQueue`).
    let data = unsafe { data_of::<T>(file) };
    // SAFETY: `file` is live for this call.
    let kfile = unsafe { File::from_raw_file(file) };
    // SAFETY: the VFS's table for this call; `data` lives until release (above).
    let table = unsafe { PollTable::from_raw(kfile, table) };
    data.poll(&table)
}

/// # Safety
///
/// Called by the VFS once per file of `T`, when its last reference goes.
unsafe extern "C" fn fops_release<T: AnonFile>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: the box `new_file` gave the file, taken back once, here.
    drop(unsafe { KBox::from_raw((*file).private_data.cast::<T>()) });
    0
}
