// SPDX-License-Identifier: GPL-2.0
//! Pinning and accounting of the memory behind areas (upstream's `struct iopt_pages` and the
//! pinning half of pages.c).
//!
//! A [`Pages`] is user memory or a file range that one MAP created and COPY may share. Nothing is
//! pinned until something needs physical pages: an IOAS with a domain pins every area, an access
//! pins what it asks for. Each of those is a *user* of a span of page indexes; a page is pinned
//! once, when the first user covering it arrives, and unpinned when the last one leaves
//! (`pure::cover`), so COPY and a second domain cost no second pin. The PFN of each pinned page
//! is kept here, so domains and accesses read it without another walk of user memory.
//!
//! Pinned pages are charged to RLIMIT_MEMLOCK as upstream does: the user's `locked_vm`, or with
//! `IOMMU_OPTION_RLIMIT_MODE` = 1 the process's (`mm->locked_vm`, as VFIO does), against the
//! limit of the process that mapped them, whoever pins them later (a child, a helper, a kernel
//! thread); `CAP_IPC_LOCK` of the mapper exempts. `mm->pinned_vm` counts them in every mode. A
//! pin is charged a batch at a time before it allocates anything for that batch.
//!
//! Lock order: `Pages::pins` is a leaf, taken under an IOAS's `iopt` lock; it may sleep (GUP
//! takes the mmap lock), never under a spinlock.

pub(crate) mod batch_limit;
pub(crate) mod dmabuf;
pub(crate) mod exporter;
pub(crate) mod mapped_file;
pub(crate) mod pfns;
pub(crate) mod pin_users;

use kernel::{
    fs::File,
    mm::Mm,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
};

use crate::{
    abstractions::mm::{
        account::{
            self,
            SourceTask,
            UserRef, //
        },
        pin::{
            PageBatch,
            PfnRuns,
            PinnedFolios,
            PinnedPfns, //
        },
    },
    pages::pfns::{
        PfnTable,
        PfnView, //
    },
    pages::pin_users::PinUsers,
    pure::{
        cover,
        span::Span, //
    },
};

const PAGE: u64 = PAGE_SIZE as u64;

/// Where the memory of a [`Pages`] lives.
pub(crate) enum Source {
    /// User memory of the process that mapped it (`IOMMU_IOAS_MAP`, `IOPT_ADDRESS_USER`).
    User,
    /// A file's pages, a memfd typically (`IOMMU_IOAS_MAP_FILE`, `IOPT_ADDRESS_FILE`); held open
    /// for as long as anything maps it, admitted for device writes as a writable `mmap()` is.
    File(crate::pages::mapped_file::MappedFile),
    /// A dma-buf's physical range (`IOMMU_IOAS_MAP_FILE` on a dma-buf fd): device memory (MMIO)
    /// or an exporter's buffer, not pinned or charged; the exporter may revoke it.
    DmaBuf(crate::pages::dmabuf::DmaBufSrc),
}

/// How pins are charged (upstream's `IOPT_PAGES_ACCOUNT_*`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The mapping process has `CAP_IPC_LOCK`.
    None,
    /// The user's `locked_vm` against RLIMIT_MEMLOCK.
    User,
    /// The process's `mm->locked_vm`, as VFIO type1 does.
    Mm,
}

/// Whom pinned pages are charged to: the user and process that mapped them, judged against the
/// limit of the task that mapped them (its thread group leader, upstream's
/// `pages->source_task`), whichever task or kernel thread pins them later.
pub(crate) struct Account {
    mode: Mode,
    user: UserRef,
    mm: ARef<Mm>,
    task: SourceTask,
}

impl Account {
    /// The calling process and user in `mode`.
    fn current_in_mode(mode: Mode) -> Result<Self> {
        let task = kernel::current!();
        let mm = ARef::<Mm>::from(&**task.mm().ok_or(EFAULT)?);
        let user = UserRef::current().ok_or(EFAULT)?;
        Ok(Self {
            mode,
            user,
            mm,
            task: SourceTask::current(),
        })
    }

    /// Whether charges held by `self` belong to another process or user than `new`'s.
    fn needs_update(&self, new: &Account) -> bool {
        let same_mm = core::ptr::eq(self.mm.as_raw(), new.mm.as_raw());
        match self.mode {
            Mode::None => false,
            Mode::Mm => !same_mm,
            // `mm->pinned_vm` counts in every mode, so the mm matters too.
            Mode::User => !same_mm || !self.user.is(&new.user),
        }
    }

    /// Whether this account's process is the caller.
    fn is_current_mm(&self) -> bool {
        kernel::current!()
            .mm()
            .is_some_and(|mm| core::ptr::eq(mm.as_raw(), self.mm.as_raw()))
    }

    /// `mm->locked_vm += npages` (or `-=`) under the mmap lock, judged against the source task's
    /// limit unless `bypass`; `ENOMEM` over it. Only a charge can fail.
    fn account_mm(&self, npages: usize, inc: bool, bypass: bool) -> Result {
        account::account_locked_vm(&self.mm, npages, inc, self.task.task(), bypass)
    }

    /// Charges without the limit check, so it cannot fail: giving back a charge that was just
    /// taken away (`IOMMU_IOAS_CHANGE_PROCESS` rolling back).
    fn charge_always(&self, npages: u64) {
        let Ok(n) = i64::try_from(npages) else {
            return;
        };
        if n == 0 {
            return;
        }
        match self.mode {
            Mode::None => {}
            Mode::User => {
                self.locked_vm().fetch_add(n, Full);
            }
            Mode::Mm => {
                if let Ok(n) = usize::try_from(npages) {
                    // Bypassing the limit, the charge cannot fail.
                    let _ = self.account_mm(n, true, true);
                }
            }
        }
        self.pinned_vm().add(n, Relaxed);
    }

    /// The calling process and user, in the context's accounting mode (decided now, for the
    /// life of the mapping: `CAP_IPC_LOCK` of the mapper exempts).
    fn current(account_mm: bool) -> Result<Self> {
        let mode = if account::capable_ipc_lock() {
            Mode::None
        } else if account_mm {
            Mode::Mm
        } else {
            Mode::User
        };
        Self::current_in_mode(mode)
    }

    /// `user->locked_vm`.
    fn locked_vm(&self) -> &Atomic<i64> {
        self.user.locked_vm()
    }

    /// `mm->pinned_vm`.
    fn pinned_vm(&self) -> &Atomic<i64> {
        account::pinned_vm(&self.mm)
    }

    /// Charges `npages` newly pinned pages against the source task's RLIMIT_MEMLOCK; `ENOMEM`
    /// over the limit, as upstream. The pinning task's own limit and capabilities play no part.
    fn charge(&self, npages: u64) -> Result {
        if npages == 0 {
            return Ok(());
        }
        // The test build's fault point, where upstream's `do_update_pinned()` has it.
        if crate::context::fail_point::should_fail() {
            return Err(ENOMEM);
        }
        let n = i64::try_from(npages).map_err(|_| ENOMEM)?;
        match self.mode {
            Mode::None => {}
            Mode::User => {
                let limit = i64::try_from(self.task.memlock_pages()).unwrap_or(i64::MAX);
                let counter = self.locked_vm();
                let mut cur = counter.load(Relaxed);
                loop {
                    let new = cur.checked_add(n).ok_or(ENOMEM)?;
                    if new > limit {
                        return Err(ENOMEM);
                    }
                    match counter.cmpxchg(cur, new, Full) {
                        Ok(_) => break,
                        Err(seen) => cur = seen,
                    }
                }
            }
            Mode::Mm => {
                let n = usize::try_from(npages).map_err(|_| ENOMEM)?;
                self.account_mm(n, true, false)?;
            }
        }
        self.pinned_vm().add(n, Relaxed);
        Ok(())
    }

    /// Returns a charge made by [`Self::charge`].
    fn uncharge(&self, npages: u64) {
        let Ok(n) = i64::try_from(npages) else {
            return;
        };
        if n == 0 {
            return;
        }
        match self.mode {
            Mode::None => {}
            Mode::User => {
                self.locked_vm().fetch_sub(n, Full);
            }
            Mode::Mm => {
                if let Ok(n) = usize::try_from(npages) {
                    // An uncharge never fails.
                    let _ = self.account_mm(n, false, true);
                }
            }
        }
        self.pinned_vm().fetch_sub(n, Full);
    }
}

/// The pinned part of a [`Pages`]: who uses which page span, and the PFN of every pinned page.
pub(crate) struct Pins {
    users: PinUsers,
    /// The users of `users` that are accesses' pins (upstream's `access_itree`), by span
    /// (`(start, last)`) with how many pins have exactly that span: an access unpin must match
    /// one of these exactly, never an area's own pin of the same span. An rbtree, so that many
    /// per-page access pins cost a lookup each, not a scan.
    accesses: RBTree<(u64, u64), u32>,
    /// The PFN of every pinned page; meaningful where a user covers it.
    pfns: PfnTable,
    /// Whom the pins are charged to; `IOMMU_IOAS_CHANGE_PROCESS` moves the charge.
    account: Account,
    /// Pages pinned (and charged).
    npinned: u64,
}

impl Pins {
    /// PFNs of pages `span` (page indexes), which a user must cover.
    pub(crate) fn pfns(&self, span: Span) -> Option<PfnView<'_>> {
        self.pfns.view(span)
    }
}

/// Frees the PFN chunks touching `span` that no user of `pins` covers any page of.
fn release_unused(pins: &mut Pins, span: Span) {
    let users = &pins.users;
    pins.pfns.release_unused(
        !users.is_empty(),
        |chunk| cover::covers_any(users, chunk),
        span,
    );
}

/// The memory an area maps (upstream's `struct iopt_pages`). Areas share it:
/// `IOMMU_IOAS_COPY` maps the same pages again without a second pin.
#[pin_data(PinnedDrop)]
pub(crate) struct Pages {
    pub(crate) source: Source,
    /// Page-aligned start: a user address, or a file offset.
    pub(crate) base: u64,
    /// Bytes from `base` to the end of the memory.
    pub(crate) length: u64,
    /// Whether the memory may be mapped for device writes.
    pub(crate) writable: bool,
    #[pin]
    pins: Mutex<Pins>,
}

/// Pages per pin call: bounds the temporary page array, as upstream's temp memory limit does
/// (tests shrink it to force many small batches: `batch_limit.rs`).
fn batch_pages() -> usize {
    let limit = crate::pages::batch_limit::get();
    (limit / core::mem::size_of::<usize>()).max(1)
}

impl Pages {
    /// The dma-buf behind these pages, if that is what they are.
    pub(crate) fn dmabuf(&self) -> Option<&crate::pages::dmabuf::DmaBufSrc> {
        match &self.source {
            Source::DmaBuf(d) => Some(d),
            _ => None,
        }
    }

    /// A pages object for `length` bytes of `source` from `start` (any alignment), charged to
    /// the caller (a dma-buf's range is never charged: it is not the caller's memory).
    pub(crate) fn new(
        source: Source,
        start: u64,
        length: u64,
        writable: bool,
        account_mm: bool,
    ) -> Result<Arc<Self>> {
        let start_byte = start % PAGE;
        let account = match source {
            Source::DmaBuf(_) => Account::current_in_mode(Mode::None)?,
            _ => Account::current(account_mm)?,
        };
        let length = length.checked_add(start_byte).ok_or(EOVERFLOW)?;
        let npages = length.div_ceil(PAGE);
        Arc::pin_init(
            try_pin_init!(Pages {
                source,
                // `start` rounded down to its page: no arithmetic that could fail.
                base: start & !(PAGE - 1),
                length,
                writable,
                pins <- new_mutex!(Pins {
                    users: PinUsers::new(),
                    accesses: RBTree::new(),
                    pfns: PfnTable::new(npages),
                    account,
                    npinned: 0,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Whether the memory is the calling process's own.
    pub(crate) fn is_current_mm(&self) -> bool {
        self.pins.lock().account.is_current_mm()
    }

    /// `IOMMU_IOAS_CHANGE_PROCESS` for these pages: the calling process (and its user) takes
    /// over the charge for what is pinned. Returns the previous account when it changed (to give
    /// back with [`Self::restore_account`] if a later pages object fails).
    pub(crate) fn change_account(&self) -> Result<Option<Account>> {
        let mut pins = self.pins.lock();
        let new = Account::current_in_mode(pins.account.mode)?;
        if !pins.account.needs_update(&new) {
            return Ok(None);
        }
        let n = pins.npinned;
        new.charge(n)?;
        pins.account.uncharge(n);
        Ok(Some(core::mem::replace(&mut pins.account, new)))
    }

    /// Undoes [`Self::change_account`].
    pub(crate) fn restore_account(&self, old: Account) {
        let mut pins = self.pins.lock();
        let n = pins.npinned;
        pins.account.uncharge(n);
        old.charge_always(n);
        pins.account = old;
    }

    /// Number of pages from `base` to the end of the memory.
    fn npages(&self) -> u64 {
        self.length.div_ceil(PAGE)
    }

    /// Pages `span` (page indexes) as a new user: pins and charges what no other user already
    /// pinned. All or nothing: on failure nothing of it stays pinned or charged, and the PFN
    /// table is back to what the other users need.
    pub(crate) fn pin(&self, span: Span) -> Result {
        if span.last >= self.npages() {
            return Err(EINVAL);
        }
        let mut guard = self.pins.lock();
        let pins = &mut *guard;
        pins.users.reserve_user(span)?;
        let mut failed_at = None;
        let mut pinned = 0u64;
        let rc = cover::for_each_uncovered(&pins.users, span, |part| {
            self.pin_part(&pins.account, &mut pins.pfns, part)
                .inspect_err(|_| {
                    failed_at = Some(part.start);
                })?;
            pinned += part.len();
            Ok(())
        });
        if let Err(e) = rc {
            // The parts before the one that failed are pinned and charged, `pinned` pages (that
            // one unwound itself).
            if let Some(stop) = failed_at.filter(|&s| s > span.start) {
                let done = Span {
                    start: span.start,
                    last: stop - 1,
                };
                let _ = cover::for_each_uncovered::<()>(&pins.users, done, |part| {
                    self.unpin_part(&pins.pfns, part);
                    Ok(())
                });
            }
            pins.account.uncharge(pinned);
            release_unused(pins, span);
            return Err(e);
        }
        pins.npinned += pinned;
        // Room was reserved above.
        pins.users.add_user(span);
        Ok(())
    }

    /// Ends a user [`Self::pin`] added with the same `span`: unpins and uncharges what no other
    /// user still covers, and frees the PFN chunks no other user needs. `false` (and nothing
    /// done) if no user has exactly that span.
    pub(crate) fn unpin(&self, span: Span) -> bool {
        let mut guard = self.pins.lock();
        let pins = &mut *guard;
        if !pins.users.remove_user(span) {
            kernel::pr_warn_once!("iommufd: unpin of a span that was never pinned\n");
            return false;
        }
        let freed = cover::uncovered_len(&pins.users, span);
        let _ = cover::for_each_uncovered::<()>(&pins.users, span, |part| {
            self.unpin_part(&pins.pfns, part);
            Ok(())
        });
        pins.account.uncharge(freed);
        pins.npinned = pins.npinned.saturating_sub(freed);
        release_unused(pins, span);
        true
    }

    /// [`Self::pin`] for an access (upstream's `iopt_area_add_access()`), recorded as such.
    pub(crate) fn pin_access(&self, span: Span) -> Result {
        // The record's node first, so that nothing after the pin can fail.
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        self.pin(span)?;
        let key = (span.start, span.last);
        let mut pins = self.pins.lock();
        match pins.accesses.get_mut(&key) {
            Some(n) => *n = n.saturating_add(1),
            None => {
                pins.accesses.insert(node.into_node(key, 1));
            }
        }
        Ok(())
    }

    /// Ends an access pin of exactly `span` (upstream's `iopt_area_remove_access()`); `false`,
    /// and nothing changed, if no access holds that span.
    pub(crate) fn unpin_access(&self, span: Span) -> bool {
        let key = (span.start, span.last);
        {
            let mut pins = self.pins.lock();
            match pins.accesses.get_mut(&key) {
                None => {
                    kernel::pr_warn_once!("iommufd: access unpin of a span no access pinned\n");
                    return false;
                }
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    let _ = pins.accesses.remove(&key);
                }
            }
        }
        self.unpin(span)
    }

    /// Replaces the user `whole` by `a` and `b`, which cover the same pages: an area split.
    pub(crate) fn split_user(&self, whole: Span, a: Span, b: Span) -> Result {
        self.pins.lock().users.split_user(whole, a, b)
    }

    /// Runs `f` on the pin state (to read PFNs of pinned spans).
    pub(crate) fn with_pins<R>(&self, f: impl FnOnce(&Pins) -> R) -> R {
        f(&self.pins.lock())
    }

    /// Pins pages `part`, none of which is pinned, recording their PFNs, a batch at a time: each
    /// batch is charged, then given room in the PFN table, then pinned, so what a pin costs
    /// follows what it pinned, never the length of `part` (a huge mapping of unbacked memory
    /// fails at its first unbacked page having allocated one batch's worth). On failure nothing
    /// of `part` stays pinned or charged; the chunks of the table it made are the caller's to
    /// release.
    fn pin_part(&self, account: &Account, pfns: &mut PfnTable, part: Span) -> Result {
        let batch = batch_pages();
        // First page not pinned yet.
        let mut idx = part.start;
        let mut charged = 0u64;
        let rc = (|| -> Result {
            let first_len = usize::try_from(part.len()).unwrap_or(usize::MAX).min(batch);
            let mut pages = PageBatch::with_capacity(first_len)?;
            while idx <= part.last {
                let room = u64::try_from(pages.capacity()).unwrap_or(u64::MAX).max(1);
                let end = idx.saturating_add(room - 1).min(part.last);
                let this = Span {
                    start: idx,
                    last: end,
                };
                account.charge(this.len())?;
                charged += this.len();
                pfns.reserve(this)?;
                while idx <= end {
                    let want = usize::try_from(end - idx + 1).unwrap_or(usize::MAX);
                    let got = match &self.source {
                        Source::User => self.pin_user(account, idx, want, &mut pages)?,
                        Source::File(file) => self.pin_file(file, idx, want, pfns)?,
                        Source::DmaBuf(d) => d.pfns(self.base, idx, want, pfns)?,
                    };
                    if let Source::User = self.source {
                        // Recorded a chunk's slice at a time (one table lookup per run, not
                        // per page); the pins go into the table with their PFNs.
                        let mut i = 0;
                        while i < got {
                            let Some(slots) = pfns.slots_mut(idx + i as u64, got - i) else {
                                // Cannot happen (the batch was reserved); the batch gives back
                                // the pins not recorded as it drops.
                                idx += i as u64;
                                return Err(EINVAL);
                            };
                            i += pages.take_pfns(slots);
                        }
                    }
                    idx += got as u64;
                }
            }
            Ok(())
        })();
        if rc.is_err() {
            if idx > part.start {
                self.unpin_part(
                    pfns,
                    Span {
                        start: part.start,
                        last: idx - 1,
                    },
                );
            }
            account.uncharge(charged);
        }
        rc
    }

    /// Pins up to `want` pages of user memory from page `idx` into `pages`; how many it pinned
    /// (at least one).
    fn pin_user(
        &self,
        account: &Account,
        idx: u64,
        want: usize,
        pages: &mut PageBatch,
    ) -> Result<usize> {
        // The test build's fault point, where upstream's `pfn_reader_user_pin()` has it.
        if crate::context::fail_point::should_fail() {
            return Err(EFAULT);
        }
        let addr = idx
            .checked_mul(PAGE)
            .and_then(|o| o.checked_add(self.base))
            .and_then(|a| usize::try_from(a).ok())
            .ok_or(EFAULT)?;
        let got = if account.is_current_mm() {
            pages.pin_fast(addr, want, self.writable)?
        } else {
            // Another process (after fork, or a kernel thread): pin from the mapper's mm while it
            // still has users.
            let mm = account.mm.mmget_not_zero().ok_or(EFAULT)?;
            pages.pin_remote(&mm, addr, want, self.writable)?
        };
        match got {
            0 => Err(EFAULT),
            got => Ok(got.min(want)),
        }
    }

    /// Pins up to `want` pages of the file from page `idx`, writing their PFNs into `pfns`; how
    /// many it pinned. Each page holds one pin of its folio, so pages unpin one by one as user
    /// pages do.
    fn pin_file(&self, file: &File, idx: u64, want: usize, pfns: &mut PfnTable) -> Result<usize> {
        let start = idx
            .checked_mul(PAGE)
            .and_then(|o| o.checked_add(self.base))
            .ok_or(EINVAL)?;
        let end = (want as u64)
            .checked_mul(PAGE)
            .and_then(|l| start.checked_add(l - 1))
            .ok_or(EINVAL)?;
        let mut folios = PinnedFolios::pin(
            file,
            i64::try_from(start).map_err(|_| EINVAL)?,
            i64::try_from(end).map_err(|_| EINVAL)?,
            want,
        )?;
        let mut done = 0usize;
        let mut rc = Ok(());
        while let Some(run) = folios.next_run(want - done) {
            let run = match run {
                Ok(run) => run,
                Err(e) => {
                    rc = Err(e);
                    break;
                }
            };
            let mut recorded = 0;
            while recorded < run.len()
                && pfns
                    .set(
                        idx + (done + recorded) as u64,
                        (run.pfn() + recorded) as u64,
                    )
                    .is_ok()
            {
                recorded += 1;
            }
            done += recorded;
            let complete = recorded == run.len();
            // The recorded pages' pins go into the table; the others back, unused.
            run.keep(recorded);
            if !complete {
                rc = Err(EINVAL);
                break;
            }
        }
        // Folios not reached after a failure still hold their pin.
        drop(folios);
        if rc.is_err() && done > 0 {
            // The caller unwinds the batches before this one; this one's recorded pages go here.
            self.unpin_part(
                pfns,
                Span {
                    start: idx,
                    last: idx + done as u64 - 1,
                },
            );
        }
        rc?;
        if done == 0 {
            return Err(EFAULT);
        }
        Ok(done)
    }

    /// Unpins pages `part` (all pinned), a contiguous run of PFNs per call.
    fn unpin_part(&self, pfns: &PfnTable, part: Span) {
        // A dma-buf's range is held by its attachment, not by page pins.
        if let Source::DmaBuf(_) = self.source {
            return;
        }
        if let Some(pinned) = pinned(pfns, part) {
            pinned.unpin(self.writable);
        }
    }
}

impl PfnRuns for PfnView<'_> {
    #[inline]
    fn len(&self) -> usize {
        PfnView::len(self)
    }

    #[inline]
    fn get(&self, i: usize) -> Option<u64> {
        PfnView::get(self, i)
    }

    #[inline]
    fn run_at(&self, i: usize) -> Option<(u64, usize)> {
        PfnView::run_at(self, i)
    }
}

/// The pinned pages `part` of user memory or a file: the PFN table is the record of the pins.
/// Callers are [`Pages::unpin_part`], which gives them back when the last user of `part` left
/// (after which no user covers them, so no other `pinned` of them is made until they are pinned
/// again), and [`Pages::copy_pinned`], which copies through pages it pinned for the copy.
#[inline]
fn pinned(pfns: &PfnTable, part: Span) -> Option<PinnedPfns<'_, PfnView<'_>>> {
    let view = pfns.view(part)?;
    // SAFETY: cannot live in the layer, which does not know our record of pins: every page of
    // `part` is covered by a user (the callers' contract above), so `pin_part` pinned it once
    // through the layer (`PageBatch`, `PinnedFolios`) and recorded its PFN here, and it stays
    // pinned while the table is borrowed (unpinning takes `&mut Pins`) or until `unpin`.
    Some(unsafe { PinnedPfns::new(view) })
}

impl Pages {
    /// Copies between `buf` and pages `span` of user memory or a file through a temporary pin
    /// (upstream's `iopt_pages_rw_slow()`), from byte `offset` of the first page: into them with
    /// `write`, out of them otherwise. `EOPNOTSUPP` for a dma-buf, which has no pages to copy.
    pub(crate) fn copy_pinned(
        &self,
        span: Span,
        offset: usize,
        buf: &mut [u8],
        write: bool,
    ) -> Result {
        if let Source::DmaBuf(_) = self.source {
            return Err(crate::context::errno::eopnotsupp());
        }
        self.pin(span)?;
        let rc = {
            // `span` is covered by the user just added.
            let pins = self.pins.lock();
            pinned(&pins.pfns, span).map_or(Err(EINVAL), |p| p.copy(offset, buf, write))
        };
        self.unpin(span);
        rc
    }
}

#[pinned_drop]
impl PinnedDrop for Pages {
    fn drop(self: Pin<&mut Self>) {
        // Every user unpins before it lets go; anything left would leak pins and charges.
        loop {
            let Some(span) = self.pins.lock().users.any_user() else {
                break;
            };
            kernel::pr_warn_once!("iommufd: pages freed while still pinned\n");
            self.unpin(span);
        }
    }
}
