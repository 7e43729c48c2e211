// SPDX-License-Identifier: GPL-2.0
//! Emulated access (upstream's `iommufd_access_*`): a driver reads and writes an IOAS with the
//! CPU instead of DMA (mdev-style devices, a test's access fd). It pins pages under IOVAs
//! or copies through them, and is told, through its `unmap` op, when memory it may hold is being
//! unmapped; it must unpin before the op returns.
//!
//! The ops are C-shaped (`struct iommufd_access_ops` plus a data pointer) because the in-kernel
//! API hands them over that way.
//!
//! Lock order: the lock of `Access::ops` (held across the driver's `unmap` op, which may unpin and so
//! take the locks after it) before `Access::state` before `Ioas::accesses` before `Ioas::iopt`;
//! the `unmap` op is called with none of the latter three held.
//!
//! Destroying an access waits for `unmap` ops in flight on other threads (an IOAS unmap telling
//! every access): once it returns, the driver's data is never used again, as upstream's destroy
//! waits for the users an unmap notification takes.

use core::sync::atomic::{
    AtomicU32,
    Ordering, //
};
use kernel::{
    bindings,
    fs::File,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        MutexGuard, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::{access_ops::AccessOps, iommufd_api::AccessOps as DriverOps},
    context::ictx::Ictx,
    context::object::{
        Object,
        Used,
        Users, //
    },
    ffi::kbind,
    ioas::iopt::Iopt,
    ioas::Ioas,
    pages::Source,
    pure::{
        span::Span,
        ulong::Ulong, //
    },
};

const PAGE: u64 = PAGE_SIZE as u64;

/// `IOMMUFD_ACCESS_RW_*` flags of [`Access::rw`].
pub(crate) const RW_WRITE: u32 = kbind::IOMMUFD_ACCESS_RW_WRITE;
pub(crate) const RW_KTHREAD: u32 = kbind::IOMMUFD_ACCESS_RW_KTHREAD;
pub(crate) const RW_SLOW_PATH: u32 = kbind::__IOMMUFD_ACCESS_RW_SLOW_PATH;

/// Which IOAS the access works on: `ioas` for new pins, `ioas_unpin` for undoing old ones; they
/// differ only while a change is under way.
struct State {
    ioas: Option<Arc<Ioas>>,
    ioas_unpin: Option<Arc<Ioas>>,
}

/// `IOMMUFD_OBJ_ACCESS`.
#[pin_data]
pub(crate) struct Access {
    /// The `/dev/iommu` file: the context stays while the access does.
    _ictx_file: ARef<File>,
    /// That context.
    ctx: *const Ictx,
    /// The driver's ops and data; revoked (after any op in flight) by destroy.
    #[pin]
    ops: AccessOps,
    /// `PAGE_SIZE` for accesses that pin pages, 1 otherwise.
    pub(crate) iova_alignment: u64,
    #[pin]
    state: Mutex<State>,
    users: Users,
    id: AtomicU32,
}

// SAFETY: the context pointer is only read, and the context outlives the access (it holds the
// context's file); the rest is `Send` (the driver's ops promise they may be used from any thread).
unsafe impl Send for Access {}
// SAFETY: as above; the rest is under the mutexes or atomic.
unsafe impl Sync for Access {}

impl Used for Access {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Access {
    /// A new access in `ictx` (upstream's `iommufd_access_create()`), not yet visible: the
    /// creator allocates what else it needs, then [`Access::publish`]es it last. `ictx` is the
    /// context of `file`.
    pub(crate) fn new(ictx: &Ictx, file: &File, driver: DriverOps) -> Result<Arc<Access>> {
        let (ops, pins) = AccessOps::new(driver);
        let access = Arc::pin_init(
            try_pin_init!(Access {
                _ictx_file: ARef::from(file),
                ctx: core::ptr::from_ref(ictx),
                ops <- ops,
                iova_alignment: if pins { PAGE } else { 1 },
                state <- new_mutex!(State {
                    ioas: None,
                    ioas_unpin: None,
                }),
                users: Users::default(),
                id: AtomicU32::new(0),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(access)
    }

    /// Gives the access its ID in the context it was made for: the creator's last step, which
    /// fails with nothing published. The creator holds the access until [`Access::destroy`].
    pub(crate) fn publish(self: &Arc<Self>) -> Result<u32> {
        let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut objects = self.ctx().objects.lock();
        let reserved = objects.reserve(node)?;
        self.users.hold(1);
        objects.finalize(reserved, Object::Access(self.clone()));
        Ok(self.id())
    }

    pub(crate) fn set_id(&self, id: u32) {
        self.id.store(id, Ordering::Relaxed);
    }

    pub(crate) fn id(&self) -> u32 {
        self.id.load(Ordering::Relaxed)
    }

    /// The context the access lives in.
    pub(crate) fn ctx(&self) -> &Ictx {
        // SAFETY: the access holds the context's file (`_ictx_file`).
        unsafe { &*self.ctx }
    }

    /// Stops working on the IOAS (upstream's `iommufd_access_detach()`).
    pub(crate) fn detach(self: &Arc<Self>) {
        let st = self.state.lock();
        if st.ioas.is_none() {
            kernel::pr_warn_once!("iommufd: access detach while detached\n");
            return;
        }
        let _ = self.change_ioas(st, None);
    }

    /// Detaches and removes the access from the table (upstream's `iommufd_access_destroy()`).
    pub(crate) fn destroy(self: &Arc<Self>, ictx: &Ictx) {
        let st = self.state.lock();
        if st.ioas.is_some() {
            let _ = self.change_ioas(st, None);
        } else {
            drop(st);
        }
        // Waits for `unmap` ops other threads are in; none starts after this.
        self.ops.revoke();
        self.users.release(1);
        let obj = ictx
            .objects
            .lock()
            .remove_access(self.id.load(Ordering::Relaxed));
        drop(obj);
    }

    /// Starts working on IOAS `ioas_id` (upstream's `iommufd_access_attach()`).
    pub(crate) fn attach(self: &Arc<Self>, ictx: &Ictx, ioas_id: u32) -> Result {
        self.switch_to(ictx, ioas_id, false)
    }

    /// Moves to IOAS `ioas_id` (upstream's `iommufd_access_replace()`): `ENOENT` if detached.
    pub(crate) fn replace(self: &Arc<Self>, ictx: &Ictx, ioas_id: u32) -> Result {
        self.switch_to(ictx, ioas_id, true)
    }

    /// Attach (`attached` false: `EINVAL` if attached) or replace (`ENOENT` if not attached).
    fn switch_to(self: &Arc<Self>, ictx: &Ictx, ioas_id: u32, attached: bool) -> Result {
        let st = self.state.lock();
        match (st.ioas.is_some(), attached) {
            (true, false) => return Err(EINVAL),
            (false, true) => return Err(ENOENT),
            _ => {}
        }
        let ioas = ictx.get_ioas(ioas_id)?;
        self.change_ioas(st, Some(ioas.arc().clone()))
    }

    /// Switches IOAS; the old one's pins are dropped through the driver's `unmap` op first,
    /// called with the state lock released (the driver's unpins take it).
    fn change_ioas<'a>(
        self: &'a Arc<Self>,
        mut st: MutexGuard<'a, State>,
        new: Option<Arc<Ioas>>,
    ) -> Result {
        let cur = st.ioas.clone();
        // Racing with a concurrent change.
        let same_unpin = match (&cur, &st.ioas_unpin) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same_unpin {
            return Err(EBUSY);
        }
        if let (Some(a), Some(b)) = (&cur, &new) {
            if Arc::ptr_eq(a, b) {
                return Ok(());
            }
        }
        // No new pins while this runs; unpins keep using `ioas_unpin`.
        st.ioas = None;
        if let Some(new) = &new {
            if let Err(e) = self.add_to(new) {
                st.ioas = cur;
                return Err(e);
            }
            new.users().hold(1);
        }
        if let Some(cur) = &cur {
            drop(st);
            // Everything, as upstream's `unmap(data, 0, ULONG_MAX)`.
            self.call_unmap(0, Ulong::NATIVE.max);
            st = self.state.lock();
            self.remove_from(cur);
            cur.users().release(1);
        }
        st.ioas = new.clone();
        st.ioas_unpin = new;
        Ok(())
    }

    /// Joins `ioas`'s access list; a pinning access raises its alignment (`EADDRINUSE` if an area
    /// would then be misaligned).
    fn add_to(self: &Arc<Self>, ioas: &Arc<Ioas>) -> Result {
        let mut list = ioas.accesses.lock();
        list.reserve(1, GFP_KERNEL_ACCOUNT)?;
        if self.iova_alignment == PAGE {
            let mut iopt = ioas.iopt.lock();
            iopt.pinning_accesses += 1;
            if let Err(e) = iopt.update_alignment() {
                iopt.pinning_accesses -= 1;
                return Err(e);
            }
        }
        list.push(self.clone(), GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    fn remove_from(self: &Arc<Self>, ioas: &Arc<Ioas>) {
        let mut list = ioas.accesses.lock();
        if let Some(i) = list.iter().position(|a| Arc::ptr_eq(a, self)) {
            let me = list.remove(i);
            if self.iova_alignment == PAGE {
                let mut iopt = ioas.iopt.lock();
                iopt.pinning_accesses = iopt.pinning_accesses.saturating_sub(1);
                // Lowering the alignment cannot fail.
                let _ = iopt.update_alignment();
            }
            drop(list);
            drop(me);
        }
    }

    /// Calls the driver's `unmap` op, if it has one.
    fn call_unmap(&self, iova: u64, length: u64) {
        // The op's `unsigned long` IOVA and length. Every area passed the bound on its way in.
        let Ok((c_iova, c_len)) = Ulong::NATIVE.narrow::<usize>(iova, length) else {
            kernel::pr_warn_once!(
                "iommufd: access unmap of {length} bytes at {iova:#x} out of range\n"
            );
            return;
        };
        self.ops.unmap(c_iova, c_len);
    }

    /// An unmap of `[iova, iova + length)` in the attached IOAS wants the pins gone.
    pub(crate) fn notify_unmap(&self, iova: u64, length: u64) {
        self.call_unmap(iova, length);
    }

    /// The IOAS new pins and copies go to; `ENOENT` while detached.
    fn current_ioas(st: &State) -> Result<Arc<Ioas>> {
        st.ioas.clone().ok_or(ENOENT)
    }

    /// Pins the pages under `[iova, iova + length)` into `out` (upstream's
    /// `iommufd_access_pin_pages()`); undone by [`Self::unpin_pages`] of the same range.
    pub(crate) fn pin_pages(
        &self,
        iova: u64,
        length: u64,
        out: &mut [*mut bindings::page],
        flags: u32,
    ) -> Result {
        // Drivers without the ops to be told about unmaps cannot hold pins.
        if self.iova_alignment != PAGE || !self.ops.has_unmap() {
            return Err(EINVAL);
        }
        if length == 0 {
            return Err(EINVAL);
        }
        let span = Span::from_len(iova, length).ok_or(EOVERFLOW)?;
        let st = self.state.lock();
        let ioas = Self::current_ioas(&st)?;
        let mut iopt = ioas.iopt.lock();
        iopt.access_pin(span.start, span.last, flags & RW_WRITE != 0, out)
    }

    /// Gives back pins of [`Self::pin_pages`].
    pub(crate) fn unpin_pages(&self, iova: u64, length: u64) {
        let Some(span) = Span::from_len(iova, length) else {
            return;
        };
        let st = self.state.lock();
        let Some(ioas) = st.ioas_unpin.clone() else {
            kernel::pr_warn_once!("iommufd: access unpin while detached\n");
            return;
        };
        ioas.iopt.lock().access_unpin(span.start, span.last);
    }

    /// Copies between `buf` and the memory under `[iova, iova + buf.len())` (upstream's
    /// `iommufd_access_rw()`): from `buf` with `RW_WRITE`, into it otherwise.
    pub(crate) fn rw(&self, iova: u64, buf: &mut [u8], flags: u32) -> Result {
        let length = u64::try_from(buf.len()).map_err(|_| EOVERFLOW)?;
        if length == 0 {
            return Err(EINVAL);
        }
        let span = Span::from_len(iova, length).ok_or(EOVERFLOW)?;
        let st = self.state.lock();
        let ioas = Self::current_ioas(&st)?;
        let mut iopt = ioas.iopt.lock();
        rw_iopt(&mut iopt, span, buf, flags)
    }
}

/// The copy walk of [`Access::rw`] over the areas of `span`.
fn rw_iopt(iopt: &mut Iopt, span: Span, buf: &mut [u8], flags: u32) -> Result {
    let mut off = 0usize;
    iopt.for_each_contig(span.start, span.last, |a_iova, area, first, end| {
        if area.prevent_access {
            return Err(EINVAL);
        }
        let need = if flags & RW_WRITE != 0 {
            bindings::IOMMU_WRITE
        } else {
            bindings::IOMMU_READ
        };
        if area.prot & need == 0 {
            return Err(EPERM);
        }
        let n = usize::try_from(end - first + 1).map_err(|_| EOVERFLOW)?;
        let chunk = buf.get_mut(off..off + n).ok_or(EINVAL)?;
        pages_rw(area, a_iova, first, chunk, flags)?;
        off += n;
        Ok(())
    })
}

/// Copies `buf` to or from the pages of `area` from IOVA `at` (upstream's
/// `iopt_pages_rw_access()`): straight through user memory when it is the caller's own, else
/// page by page through a temporary pin.
fn pages_rw(
    area: &crate::ioas::iopt::Area,
    a_iova: u64,
    at: u64,
    buf: &mut [u8],
    flags: u32,
) -> Result {
    let pages = &area.pages;
    if pages.dmabuf().is_some() {
        return Err(crate::context::errno::eopnotsupp());
    }
    let write = flags & RW_WRITE != 0;
    if write && !pages.writable {
        return Err(EPERM);
    }
    let start_byte = area.start_byte_of(a_iova, at);
    if let Source::User = pages.source {
        if flags & (RW_SLOW_PATH | RW_KTHREAD) == 0 && pages.is_current_mm() {
            let addr = pages
                .base
                .checked_add(start_byte)
                .and_then(|a| usize::try_from(a).ok())
                .ok_or(EFAULT)?;
            let user = UserSlice::new(UserPtr::from_addr(addr), buf.len());
            return if write {
                user.writer().write_slice(buf)
            } else {
                user.reader().read_slice(buf)
            };
        }
    }
    // Slow path: pin the pages for the copy, then give them back.
    let len = u64::try_from(buf.len()).map_err(|_| EOVERFLOW)?;
    let pspan = Span {
        start: start_byte / PAGE,
        last: (start_byte + len - 1) / PAGE,
    };
    let offset = usize::try_from(start_byte % PAGE).map_err(|_| EINVAL)?;
    pages.copy_pinned(pspan, offset, buf, write)
}
