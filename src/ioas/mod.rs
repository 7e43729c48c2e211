// SPDX-License-Identifier: GPL-2.0
//! IOAS: an I/O address space, the object a VMM maps guest memory into, and its ioctls.
//!
//! Lock order: `Ioas::iopt` is taken after the context's object table has been released (lookups
//! return a reference and drop the table lock); user memory is read before and written after it
//! is held, never under it.

pub(crate) mod access;
pub(crate) mod iopt;

use kernel::{
    bindings, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::{
        dma_buf::DmaBuf,
        mm::cond_resched, //
    },
    context::errno,
    context::ioctl::Ucmd,
    context::object::{
        self,
        Object,
        Used,
        Users, //
    },
    ffi::uapi, //
    ioas::access::Access,
    ioas::iopt::{
        Area,
        Elem,
        Iopt,
        SpanTree, //
    },
    pages::mapped_file::MappedFile,
    pages::{
        Pages,
        Source, //
    },
    pure::{
        iova,
        span::{
            Span,
            SpanSet, //
        },
        ulong::Ulong,
    },
};

#[pin_data]
pub(crate) struct Ioas {
    #[pin]
    pub(crate) iopt: Mutex<Iopt>,
    /// IDs of the automatic HWPTs over this IOAS; its lock serializes their choice and creation
    /// (IDs of HWPTs that went away are pruned when met).
    #[pin]
    pub(crate) hwpts: Mutex<KVec<u32>>,
    /// Attached accesses, told when memory they may pin is unmapped. Each holds the IOAS and is
    /// held here until it detaches.
    #[pin]
    pub(crate) accesses: Mutex<KVec<Arc<Access>>>,
    users: Users,
}

impl Used for Ioas {
    fn users(&self) -> &Users {
        &self.users
    }
}

impl Ioas {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Ioas {
                iopt <- new_mutex!(Iopt::new()),
                hwpts <- new_mutex!(KVec::new()),
                accesses <- new_mutex!(KVec::new()),
                users: Users::default(),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

/// `IOMMU_IOAS_ALLOC`.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_alloc = ucmd.cmd()?;
    if cmd.flags != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioas = Object::Ioas(Ioas::new()?);
    object::publish(ucmd, ioas, |id| {
        cmd.out_ioas_id = id;
        ucmd.respond(&cmd)
    })?;
    Ok(())
}

/// Byte size of one `struct iommu_iova_range` in a user array.
const RANGE_SIZE: usize = core::mem::size_of::<uapi::iommu_iova_range>();

/// `&array[index]` of a user array of `iommu_iova_range`, checked for overflow.
fn range_slot(base: u64, index: usize) -> Result<UserSlice> {
    let offset = index.checked_mul(RANGE_SIZE).ok_or(EOVERFLOW)?;
    let addr = usize::try_from(base)
        .ok()
        .and_then(|b| b.checked_add(offset))
        .ok_or(EFAULT)?;
    Ok(UserSlice::new(UserPtr::from_addr(addr), RANGE_SIZE))
}

/// `IOMMU_IOAS_IOVA_RANGES`: the usable IOVA ranges; with too small an array the caller gets the
/// count it needs and `EMSGSIZE`.
pub(crate) fn iova_ranges_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_iova_ranges = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    let capacity = usize::try_from(cmd.num_iovas).map_err(|_| EOVERFLOW)?;

    // Take a snapshot under the lock, write it out after: no user access under the lock. The
    // snapshot is bounded by the caller's array.
    let mut ranges = KVec::new();
    let total = {
        let iopt = ioas.iopt.lock();
        cmd.out_iova_alignment = iopt.iova_alignment;
        let mut total = 0u32;
        for span in iova::usable_ranges(&iopt.reserved, ULONG) {
            if ranges.len() < capacity {
                ranges.push(span, GFP_KERNEL)?;
            }
            total = total.checked_add(1).ok_or(EOVERFLOW)?;
        }
        total
    };
    for (i, span) in ranges.iter().enumerate() {
        let elm = uapi::iommu_iova_range {
            start: span.start,
            last: span.last,
        };
        range_slot(cmd.allowed_iovas, i)?.writer().write(&elm)?;
    }
    cmd.num_iovas = total;
    ucmd.respond(&cmd)?;
    if usize::try_from(total).map_err(|_| EOVERFLOW)? > capacity {
        return Err(EMSGSIZE);
    }
    Ok(())
}

/// A tree of allowed ranges being built, or on its way out: `num_iovas` is any `u32`, so it may
/// hold millions of nodes, and it is freed one node at a time with a chance to reschedule in
/// between rather than in one go.
struct AllowedTree(SpanTree<u64>);

impl Drop for AllowedTree {
    fn drop(&mut self) {
        let mut cursor = self.0 .0.cursor_front_mut();
        while let Some(c) = cursor {
            let (next, node) = c.remove_current();
            drop(node);
            cond_resched();
            cursor = next;
        }
    }
}

/// `IOMMU_IOAS_ALLOW_IOVAS`: replaces the allowed list; all or nothing.
pub(crate) fn allow_iovas_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_ioas_allow_iovas = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    let count = usize::try_from(cmd.num_iovas).map_err(|_| EOVERFLOW)?;

    // Build the new tree from user memory with no lock held; one range per iteration, each a
    // user copy and an allocation, up to 2^32 of them: reschedule as we go.
    let mut allowed = AllowedTree(SpanTree::new());
    for i in 0..count {
        cond_resched();
        let elm: uapi::iommu_iova_range = range_slot(cmd.allowed_iovas, i)?.reader().read()?;
        // A single-byte range is refused too: upstream requires start < last.
        if elm.start >= elm.last {
            return Err(EINVAL);
        }
        // Overlap first, then the allocation: EINVAL wins over ENOMEM as upstream.
        if allowed.0.intersects(Span {
            start: elm.start,
            last: elm.last,
        }) {
            return Err(EINVAL);
        }
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        if !allowed.0.insert(elm.start, elm.last, node) {
            return Err(EINVAL);
        }
    }

    let mut iopt = ioas.iopt.lock();
    // A reserved range inside an allowed one would break the promise that IOVA_RANGES never
    // narrows below the allowed list.
    if iopt.reserved.spans().any(|r| allowed.0.intersects(r)) {
        drop(iopt);
        return Err(errno::eaddrinuse());
    }
    // The old tree is freed after the lock is released.
    let old = AllowedTree(core::mem::replace(
        &mut iopt.allowed,
        core::mem::replace(&mut allowed.0, SpanTree::new()),
    ));
    drop(iopt);
    drop(old);
    Ok(())
}

/// Largest alignment worth keeping between user memory and its IOVA: the PMD size when THP can
/// back the memory with huge pages (upstream's `HPAGE_SIZE`), so a huge page can be a huge IOPTE.
#[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
const MAX_ALIGN: u64 = 1 << 21;
#[cfg(not(CONFIG_TRANSPARENT_HUGEPAGE))]
const MAX_ALIGN: u64 = PAGE_SIZE as u64;

const GEOMETRY: iova::Geometry = iova::Geometry {
    page_size: PAGE_SIZE as u64,
    max_align: MAX_ALIGN,
    ulong: ULONG,
};

/// Upstream's IOVAs and lengths are `unsigned long`: every `__u64` of the uAPI is bounded by this
/// kernel's `ULONG_MAX` before it is used (`pure::ulong`).
const ULONG: Ulong = Ulong::NATIVE;

/// Upstream's `iopt_alloc_user_pages()` checks of user memory to map: the range must not wrap
/// the address space (`EOVERFLOW`) and its length must leave room for the page count (`EINVAL`).
pub(crate) fn check_user_range(user_va: u64, length: u64) -> Result {
    let uptr = usize::try_from(user_va).map_err(|_| EOVERFLOW)?;
    let len = usize::try_from(length).map_err(|_| EOVERFLOW)?;
    uptr.checked_add(len).ok_or(EOVERFLOW)?;
    ULONG.pages_length(length, PAGE_SIZE as u64)?;
    Ok(())
}

/// The flags MAP, MAP_FILE and COPY know; anything else is `EOPNOTSUPP`.
const MAP_FLAGS: u32 = uapi::IOMMU_IOAS_MAP_FIXED_IOVA
    | uapi::IOMMU_IOAS_MAP_WRITEABLE
    | uapi::IOMMU_IOAS_MAP_READABLE;

/// `IOMMU_IOAS_MAP`: maps user memory at a fixed or kernel-chosen IOVA.
pub(crate) fn map_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_map = ucmd.cmd()?;
    if cmd.flags & !MAP_FLAGS != 0 || cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    ULONG.arg(cmd.iova)?;
    ULONG.arg(cmd.length)?;
    let prot = map_prot(cmd.flags)?;
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;

    // The pages object: user memory from the page holding `user_va`.
    check_user_range(cmd.user_va, cmd.length)?;
    let account_mm = ucmd.ictx.objects.lock().account_mm;
    let iova = map_pages(
        &ioas,
        Source::User,
        account_mm,
        cmd.user_va,
        cmd.length,
        cmd.flags,
        cmd.iova,
        prot,
    )?;

    // As upstream, a mapping made stays made even if the answer cannot be written back.
    cmd.iova = iova;
    ucmd.respond(&cmd)
}

/// Maps `length` bytes of `source` from `start` (user address or file offset): one pages object,
/// one area. Returns the IOVA.
#[allow(clippy::too_many_arguments)]
pub(crate) fn map_pages(
    ioas: &Ioas,
    source: Source,
    account_mm: bool,
    start: u64,
    length: u64,
    flags: u32,
    iova: u64,
    prot: u32,
) -> Result<u64> {
    let start_byte = start % PAGE_SIZE as u64;
    let writable = prot & bindings::IOMMU_WRITE != 0;
    let pages = Pages::new(source, start, length, writable, account_mm)?;
    // One element and one node: on the stack, no vectors for the common case.
    let elems = [Elem {
        pages,
        start_byte,
        length,
    }];
    let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
    insert_areas(
        &mut ioas.iopt.lock(),
        (flags & uapi::IOMMU_IOAS_MAP_FIXED_IOVA == 0).then_some(start),
        iova,
        length,
        prot,
        &elems,
        [node],
    )
}

/// `IOMMU_IOAS_MAP_FILE`: maps a file's pages (a memfd, typically) at a fixed or kernel-chosen
/// IOVA. The file stays referenced while mapped.
pub(crate) fn map_file_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_map_file = ucmd.cmd()?;
    if cmd.flags & !MAP_FLAGS != 0 {
        return Err(errno::eopnotsupp());
    }
    ULONG.arg(cmd.iova)?;
    ULONG.arg(cmd.length)?;
    let prot = map_prot(cmd.flags)?;
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    // `EINVAL` if empty, `EOVERFLOW` if the file range reaches past `ULONG_MAX`.
    ULONG.span(cmd.start, cmd.length)?;
    // A dma-buf maps its exporter's physical range; any other file its pages.
    if let Ok(dmabuf) = DmaBuf::get(cmd.fd) {
        let src = crate::pages::dmabuf::DmaBufSrc::attach(dmabuf, cmd.start, cmd.length)?;
        let iova = map_pages(
            &ioas,
            Source::DmaBuf(src),
            false,
            cmd.start,
            cmd.length,
            cmd.flags,
            cmd.iova,
            prot,
        )?;
        cmd.iova = iova;
        return ucmd.respond(&cmd);
    }
    let fd = u32::try_from(cmd.fd).map_err(|_| EBADF)?;
    let file = crate::abstractions::mm::file::fget(fd)?;
    // As upstream's `iopt_alloc_pages()`: the page count of the range must fit.
    ULONG.pages_length(cmd.length, PAGE_SIZE as u64)?;
    // Stricter than upstream: device writes only where a writable shared mmap() could write.
    let file = MappedFile::new(file, prot & bindings::IOMMU_WRITE != 0)?;
    let account_mm = ucmd.ictx.objects.lock().account_mm;
    let iova = map_pages(
        &ioas,
        Source::File(file),
        account_mm,
        cmd.start,
        cmd.length,
        cmd.flags,
        cmd.iova,
        prot,
    )?;
    cmd.iova = iova;
    ucmd.respond(&cmd)
}

/// rbtree nodes for `n` new areas, allocated before the IOAS lock is taken.
fn area_nodes(n: usize) -> Result<KVec<RBTreeNodeReservation<u64, Area>>> {
    let mut nodes = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for _ in 0..n {
        nodes.push(
            RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?,
            GFP_KERNEL_ACCOUNT,
        )?;
    }
    Ok(nodes)
}

/// Maps `elems` (`length` bytes in all) back to back at a kernel-chosen IOVA (`alloc_hint` = the
/// memory's address) or at `iova`, after upstream's `iopt_alloc_area_pages()` and
/// `iopt_insert_area()` checks. All or nothing: every check runs before the first insert.
/// Returns the IOVA.
fn insert_areas(
    iopt: &mut Iopt,
    alloc_hint: Option<u64>,
    iova: u64,
    length: u64,
    prot: u32,
    elems: &[Elem],
    nodes: impl IntoIterator<Item = RBTreeNodeReservation<u64, Area>>,
) -> Result<u64> {
    // `checked_rem`: the alignment is never 0, and no panic path is compiled in to prove it.
    let misaligned = |x: u64| x.checked_rem(iopt.iova_alignment) != Some(0);
    if length == 0 || misaligned(length) {
        return Err(EINVAL);
    }
    let space = iova::IovaSpace {
        allowed: &iopt.allowed,
        reserved: &iopt.reserved,
        areas: &iopt.areas,
        iova_alignment: iopt.iova_alignment,
    };
    let span = match alloc_hint {
        Some(addr) => {
            let start = space.alloc(GEOMETRY, addr, length).map_err(iova_errno)?;
            ULONG.span(start, length)?
        }
        None => space
            .check_fixed(GEOMETRY, iova, length)
            .map_err(iova_errno)?,
    };
    let page = PAGE_SIZE as u64;
    let mut cur = span.start;
    for elem in elems.iter() {
        if prot & bindings::IOMMU_WRITE != 0 && !elem.pages.writable {
            return Err(EPERM);
        }
        if misaligned(elem.start_byte % page) {
            return Err(EINVAL);
        }
        let last = Span::from_len(cur, elem.length).ok_or(EOVERFLOW)?.last;
        elem.start_byte
            .checked_add(elem.length - 1)
            .ok_or(EOVERFLOW)?;
        cur = last.wrapping_add(1);
    }
    let area_at = |cur: u64, elem: &Elem| Area {
        last: cur + (elem.length - 1),
        pages: elem.pages.clone(),
        start_byte: elem.start_byte,
        prot,
        num_accesses: 0,
        prevent_access: false,
        num_locks: 0,
    };
    // Pin and map into the domains first: a failure leaves no area behind. (Without a domain
    // there is nothing to do: not even the trial areas are built.)
    let small = iopt.disable_large_pages;
    let mut cur = span.start;
    let to_fill = if iopt.domains.is_empty() {
        &[][..]
    } else {
        elems
    };
    for (i, elem) in to_fill.iter().enumerate() {
        let area = area_at(cur, elem);
        if let Err(e) = iopt::fill_area(&iopt.domains, cur, &area, small) {
            let mut undo = span.start;
            for elem in &elems[..i] {
                let area = area_at(undo, elem);
                iopt::unfill_area(&iopt.domains, undo, &area);
                undo = area.last.wrapping_add(1);
            }
            return Err(e);
        }
        cur = area.last.wrapping_add(1);
    }
    let mut cur = span.start;
    for (elem, node) in elems.iter().zip(nodes) {
        let area = area_at(cur, elem);
        let next = area.last.wrapping_add(1);
        // `span` was checked free above, and the elements tile it.
        iopt.areas.insert_free(cur, area, node);
        cur = next;
    }
    Ok(span.start)
}

/// `IOMMU_IOAS_COPY`: maps memory already mapped in one IOAS into another (or the same) at a
/// fixed or kernel-chosen IOVA, sharing the pages: nothing is pinned or accounted twice.
pub(crate) fn copy_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_copy = ucmd.cmd()?;
    if cmd.flags & !MAP_FLAGS != 0 {
        return Err(errno::eopnotsupp());
    }
    ULONG.arg(cmd.length)?;
    ULONG.arg(cmd.src_iova)?;
    ULONG.arg(cmd.dst_iova)?;
    let prot = map_prot(cmd.flags)?;
    let src = ucmd.ictx.get_ioas(cmd.src_ioas_id)?;
    let mut elems = KVec::new();
    src.iopt
        .lock()
        .get_pages(cmd.src_iova, cmd.length, &mut elems)?;
    let dst = ucmd.ictx.get_ioas(cmd.dst_ioas_id)?;
    let hint = match elems.first() {
        Some(e) => e.pages.base.checked_add(e.start_byte).ok_or(EOVERFLOW)?,
        None => return Err(EINVAL),
    };
    let nodes = area_nodes(elems.len())?;
    let iova = insert_areas(
        &mut dst.iopt.lock(),
        (cmd.flags & uapi::IOMMU_IOAS_MAP_FIXED_IOVA == 0).then_some(hint),
        cmd.dst_iova,
        cmd.length,
        prot,
        &elems,
        nodes,
    )?;
    cmd.dst_iova = iova;
    ucmd.respond(&cmd)
}

/// An area's `IOMMU_*` bits from MAP/COPY flags (`pure::prot`); `EINVAL` for neither read nor
/// write.
fn map_prot(flags: u32) -> Result<u32> {
    crate::pure::prot::area_prot(
        flags & uapi::IOMMU_IOAS_MAP_READABLE != 0,
        flags & uapi::IOMMU_IOAS_MAP_WRITEABLE != 0,
    )
    .ok_or(EINVAL)
}

fn iova_errno(e: iova::IovaError) -> Error {
    match e {
        iova::IovaError::Inval => EINVAL,
        iova::IovaError::Overflow => EOVERFLOW,
        iova::IovaError::NoSpace => ENOSPC,
        iova::IovaError::Exists => EEXIST,
    }
}

/// `IOMMU_IOAS_UNMAP`: removes whole areas; `iova` 0 with `length` U64_MAX removes all.
pub(crate) fn unmap_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_ioas_unmap = ucmd.cmd()?;
    let ioas = ucmd.ictx.get_ioas(cmd.ioas_id)?;
    let all = cmd.iova == 0 && cmd.length == u64::MAX;
    let range = if all {
        ULONG.whole()
    } else {
        ULONG.arg(cmd.iova)?;
        ULONG.arg(cmd.length)?;
        // `EINVAL` if empty, `EOVERFLOW` past `ULONG_MAX`.
        ULONG.span(cmd.iova, cmd.length)?
    };
    let unmapped = ioas.unmap(range)?;
    if unmapped == 0 && !all {
        return Err(ENOENT);
    }
    cmd.length = unmapped;
    ucmd.respond(&cmd)
}

impl Ioas {
    /// Unmaps the areas of `range` (see [`Iopt::unmap_range`]); areas that accesses pin are
    /// unmapped once the accesses, told to, unpinned them. Returns the bytes unmapped.
    pub(crate) fn unmap(&self, range: Span) -> Result<u64> {
        let mut total = 0u64;
        let mut start = range.start;
        let mut tries = 0u32;
        loop {
            let (unmapped, stop) = self.iopt.lock().unmap_range(Span {
                start,
                last: range.last,
            })?;
            total = total.saturating_add(unmapped);
            let Some(area) = stop else {
                return Ok(total);
            };
            if area.iova != start {
                tries = 0;
            }
            start = area.iova;
            self.notify_unmap(area.iova, area.length);
            // Something is not responding to unmap requests.
            tries += 1;
            if tries > 100 {
                kernel::pr_warn_once!("iommufd: an access does not unpin on unmap\n");
                return Err(errno::edeadlk());
            }
        }
    }

    /// Tells every attached access that `[iova, iova + length)` is going away; they unpin what
    /// they pinned there before returning.
    pub(crate) fn notify_unmap(&self, iova: u64, length: u64) {
        let mut list = KVec::new();
        {
            let accesses = self.accesses.lock();
            if list.reserve(accesses.len(), GFP_KERNEL).is_err() {
                return;
            }
            for a in accesses.iter() {
                let _ = list.push(a.clone(), GFP_KERNEL);
            }
        }
        for a in list.iter() {
            a.notify_unmap(iova, length);
        }
    }
}

/// `IOMMU_OPTION` with `IOMMU_OPTION_HUGE_PAGES`, on an IOAS.
pub(crate) fn option_huge_pages(ioas: &Ioas, cmd: &mut uapi::iommu_option) -> Result {
    let mut iopt = ioas.iopt.lock();
    match u32::from(cmd.op) {
        uapi::IOMMU_OPTION_OP_GET => {
            cmd.val64 = u64::from(!iopt.disable_large_pages);
            Ok(())
        }
        uapi::IOMMU_OPTION_OP_SET => match cmd.val64 {
            0 => iopt.disable_huge_pages(),
            1 => {
                iopt.enable_huge_pages();
                Ok(())
            }
            _ => Err(EINVAL),
        },
        _ => Err(errno::eopnotsupp()),
    }
}

/// `IOMMU_IOAS_CHANGE_PROCESS`: the calling process takes over the accounting of everything
/// pinned in this context (after a VMM hands its fd to a new process, live update). Only file
/// mappings may exist: user memory belongs to the old process's address space.
pub(crate) fn change_process_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let cmd: uapi::iommu_ioas_change_process = ucmd.cmd()?;
    if cmd.__reserved != 0 {
        return Err(errno::eopnotsupp());
    }
    let ioases = ucmd.ictx.objects.lock().all_ioas()?;
    // Every pages object once, checked to be file-backed.
    let mut all: KVec<Arc<Pages>> = KVec::new();
    for ioas in ioases.iter() {
        let iopt = ioas.iopt.lock();
        for area in iopt.areas.0.values() {
            if !matches!(area.pages.source, Source::File(_)) {
                return Err(EINVAL);
            }
            if !all.iter().any(|p| Arc::ptr_eq(p, &area.pages)) {
                all.push(area.pages.clone(), GFP_KERNEL)?;
            }
        }
    }
    let mut moved = KVec::with_capacity(all.len(), GFP_KERNEL)?;
    for pages in all.iter() {
        match pages.change_account() {
            Ok(Some(old)) => moved.push((pages.clone(), old), GFP_KERNEL)?,
            Ok(None) => {}
            Err(e) => {
                // Give every charge moved so far back to where it was.
                while let Some((p, old)) = moved.pop() {
                    p.restore_account(old);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}
