// SPDX-License-Identifier: GPL-2.0
//! The fd of an event queue object (a fault queue, a vEVENTQ): an anonymous file whose private
//! data holds the queue and the context's file. Reads (and, for queues that take answers, writes)
//! go to the queue at position 0 only; poll waits on the queue's wait queue; the fd holds
//! the queue (`Users::hold`) until it is released.
//!
//! Each queue kind keeps one [`QueueFops`] static, filled in at module init by
//! [`QueueFops::init`] with the file operations of that kind's [`QueueFd`].

use kernel::{
    fs::{
        file::flags::O_RDWR,
        File, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
};

pub(crate) use crate::abstractions::file::poll::{
    PollQueue,
    PollTable, //
};
use crate::{
    abstractions::file::anon::{
        self,
        AnonFile,
        AnonFops, //
    },
    context::ioctl::Ucmd,
    context::object::Used,
    ffi::uapi, //
};

/// A queue object that can be read through a fd.
pub(crate) trait QueueFile: Used + Send + Sync + Sized + 'static {
    /// The anonymous inode's name (`[iommufd-...]`).
    const NAME: &'static CStr;
    /// The queue takes records through `write()` too.
    const WRITABLE: bool = false;

    /// The file operations of this kind's fds.
    fn fops() -> &'static QueueFops<Self>;
    /// `read()` at position 0 into user memory at `buf`.
    fn read(&self, buf: usize, count: usize) -> Result<usize>;
    /// `write()` at position 0 from user memory at `buf` (only if [`Self::WRITABLE`]).
    fn write(&self, _buf: usize, _count: usize) -> Result<usize> {
        Err(EINVAL)
    }
    /// Registers poll on what is woken when something is queued (a [`PollQueue`] of the
    /// queue's, with `table.register()`).
    fn register_poll<'a>(&'a self, table: &PollTable<'a>);
    /// Something waits to be read.
    fn readable(&self) -> bool;
}

/// The file operations of one queue kind: empty until [`QueueFops::init`], read-only after.
pub(crate) type QueueFops<T> = AnonFops<QueueFd<T>>;

/// What the fd holds: the queue, held (`Users::hold`) until release, and the context's file (the
/// context stays while the fd is open).
pub(crate) struct QueueFd<T: QueueFile> {
    q: Arc<T>,
    _ictx: ARef<File>,
}

impl<T: QueueFile> QueueFd<T> {
    fn new(q: &Arc<T>, ictx: &File) -> Self {
        q.users().hold(1);
        Self {
            q: q.clone(),
            _ictx: ARef::from(ictx),
        }
    }
}

impl<T: QueueFile> Drop for QueueFd<T> {
    /// Release of the fd (or a fd never made): drops its hold on the queue.
    fn drop(&mut self) {
        self.q.users().release(1);
    }
}

impl<T: QueueFile> AnonFile for QueueFd<T> {
    const NAME: &'static CStr = T::NAME;
    const WRITABLE: bool = T::WRITABLE;

    fn read(&self, buf: usize, count: usize, pos: i64) -> Result<usize> {
        if pos != 0 {
            return Err(ESPIPE);
        }
        self.q.read(buf, count)
    }

    fn write(&self, buf: usize, count: usize, pos: i64) -> Result<usize> {
        if pos != 0 {
            return Err(ESPIPE);
        }
        self.q.write(buf, count)
    }

    /// Always writable, readable while something waits.
    fn poll<'a>(&'a self, table: &PollTable<'a>) -> u32 {
        self.q.register_poll(table);
        let mut mask = uapi::EPOLLOUT;
        if self.q.readable() {
            mask |= uapi::EPOLLIN | uapi::EPOLLRDNORM;
        }
        mask
    }
}

/// Makes the fd of `q`: a file holding the queue (a hold, given back in release) and the context
/// (in `ucmd`). Dropping the returned file runs release.
pub(crate) fn make_file<T: QueueFile>(ucmd: &Ucmd<'_>, q: &Arc<T>) -> Result<ARef<File>> {
    let data = KBox::new(QueueFd::new(q, ucmd.file), GFP_KERNEL_ACCOUNT)?;
    anon::new_file(T::fops(), data, O_RDWR)
}
