// SPDX-License-Identifier: GPL-2.0
//! vEVENTQs (upstream's eventq.c, vEVENTQ part): events a vIOMMU reports for its guest, read
//! from the queue's fd as `struct iommufd_vevent_header` records, each followed by the event's
//! data. A queue holds at most `depth` events; reports beyond that are lost, and a single header
//! with `IOMMU_VEVENTQ_FLAG_LOST_EVENTS` at the tail of the queue says so. Every report, kept or
//! lost, takes the next sequence number (31 bits, wrapping), so a reader sees the gap.
//!
//! A vIOMMU of a kernel driver (`viommu/kernel_driver.rs`) reports through the kernel's
//! `iommufd_viommu_report_event()`, which queues on a C `struct iommufd_veventq`: such a queue's
//! records live there ([`CVeventq`]), with the same rules, and this reads them from it.
//!
//! Lock order: `Veventq::reader` (a mutex: readers copy to user memory under it) before
//! `Veventq::q` (a spinlock: reporters may run where they cannot sleep; only `GFP_NOWAIT`
//! allocations under it). `Viommu::veventqs` before `Veventq::q`, and before the C vIOMMU's
//! `veventqs_rwsem` (taken to list a C queue), which comes before the C queue's spinlock.

use core::mem::size_of;
use kernel::{
    fs::file::{
        flags::O_CLOEXEC,
        FileDescriptorReservation, //
    },
    new_mutex, new_spinlock,
    prelude::*,
    sync::{
        Arc,
        Mutex,
        SpinLock, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abstractions::iommufd_c::CVeventq,
    context::errno,
    context::ioctl::Ucmd,
    context::object::{
        Hold,
        Object,
        Used,
        Users, //
    },
    eventq::queue_fd::{
        self,
        PollQueue,
        PollTable,
        QueueFile,
        QueueFops, //
    },
    ffi::uapi,
    viommu::{
        VeventqRef, //
        Viommu,
    },
};

/// Upstream's bound on `veventq_depth`, enough for every existing IOMMU.
const VEVENTQ_MAX_DEPTH: u32 = 1 << 19;

const HDR: usize = size_of::<uapi::iommufd_vevent_header>();

/// One reported event.
struct Vevent {
    sequence: u32,
    data: KVec<u8>,
}

/// The queue proper: events in `events[head..]`, oldest first; then, if set, the lost-events
/// header (always the last thing in the queue).
struct Queue {
    events: KVec<Option<Vevent>>,
    head: usize,
    /// Events queued and not yet read (the lost header does not count).
    num_events: u32,
    /// The next report's sequence number.
    sequence: u32,
    /// The lost-events header is queued, with this sequence number.
    lost: Option<u32>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.head == self.events.len() && self.lost.is_none()
    }

    fn next_sequence(&mut self) -> u32 {
        let s = self.sequence;
        self.sequence = s.wrapping_add(1) & i32::MAX as u32;
        s
    }

    /// Drops the slots already read once they are most of the vector.
    fn compact(&mut self) {
        if self.head == self.events.len() {
            self.events.clear();
            self.head = 0;
        } else if self.head >= 64 && self.head * 2 >= self.events.len() {
            self.events.retain(|e| e.is_some());
            self.head = 0;
        }
    }
}

/// `IOMMUFD_OBJ_VEVENTQ`.
#[pin_data(PinnedDrop)]
pub(crate) struct Veventq {
    /// The C queue a kernel driver's reports go to (then `q` stays empty); dropped before the
    /// hold on the vIOMMU, whose C part it is listed on.
    c: Option<CVeventq>,
    viommu: Hold<Viommu>,
    pub(crate) queue_type: u32,
    depth: u32,
    #[pin]
    q: SpinLock<Queue>,
    #[pin]
    reader: Mutex<()>,
    #[pin]
    wait: PollQueue,
    users: Users,
}

impl Used for Veventq {
    fn users(&self) -> &Users {
        &self.users
    }
}

#[pinned_drop]
impl PinnedDrop for Veventq {
    /// Unlists the queue if it was listed; then the field gives back the hold on the vIOMMU.
    fn drop(self: Pin<&mut Self>) {
        let me: *const Veventq = &*self;
        let mut list = self.viommu.veventqs.lock();
        if let Some(i) = list.iter().position(|r| core::ptr::eq(r.0, me)) {
            let _ = list.remove(i);
        }
        // Off the C list under the same lock, so a new queue of the type never finds this one
        // still listed there.
        if let Some(c) = &self.c {
            c.unlist();
        }
    }
}

impl Veventq {
    /// Queues one event with a copy of `data`, or records it lost (upstream's
    /// `iommufd_viommu_report_event()` past the queue lookup).
    pub(crate) fn report(&self, data: &[u8]) -> Result {
        // A kernel driver's queue takes its reports in C (`iommufd_viommu_report_event()`);
        // nothing reads this one's Rust queue.
        if self.c.is_some() {
            return Err(errno::eopnotsupp());
        }
        let mut copy = KVec::new();
        let copied = copy.extend_from_slice(data, GFP_NOWAIT).map_err(|_| ENOMEM);
        let mut q = self.q.lock();
        let mut rc = Ok(());
        let keep = match copied {
            Err(e) => {
                rc = Err(e);
                false
            }
            Ok(()) if q.num_events >= self.depth => false,
            Ok(()) => {
                if q.events.len() == q.events.capacity() && q.events.reserve(1, GFP_NOWAIT).is_err()
                {
                    rc = Err(ENOMEM);
                    false
                } else {
                    true
                }
            }
        };
        // A new report replaces the lost header at the tail: its sequence number tells the
        // reader what went missing.
        q.lost = None;
        let sequence = q.next_sequence();
        if keep {
            // Room was made above; should it still fail, the event counts as lost.
            match q.events.push_within_capacity(Some(Vevent {
                sequence,
                data: copy,
            })) {
                Ok(()) => q.num_events += 1,
                Err(_) => q.lost = Some(sequence),
            }
        } else {
            q.lost = Some(sequence);
        }
        drop(q);
        self.wait.wake_all();
        rc
    }

    /// `read()` of a C queue: as [`Veventq::read`].
    fn read_c(&self, c: &CVeventq, buf: usize, count: usize) -> Result<usize> {
        let _reader = self.reader.lock();
        let mut done = 0usize;
        while let Some(rec) = c.fetch() {
            let left = count - done;
            let lost = rec.flags() & uapi::IOMMU_VEVENTQ_FLAG_LOST_EVENTS != 0;
            let need = HDR.checked_add(rec.data().len()).ok_or(EINVAL)?;
            if left < HDR || (!lost && need > left) {
                // Back to the head (the record's drop) for the next read.
                if done == 0 {
                    return Err(EINVAL);
                }
                break;
            }
            let hdr = uapi::iommufd_vevent_header {
                flags: rec.flags(),
                sequence: rec.sequence(),
            };
            match write_record(buf, done, &hdr, rec.data()) {
                Ok(n) => {
                    done += n;
                    rec.done();
                }
                Err(e) => return if done == 0 { Err(e) } else { Ok(done) },
            }
        }
        Ok(done)
    }

    /// `read()`: whole records only; `EINVAL` if not even the first one fits.
    fn read(&self, buf: usize, count: usize) -> Result<usize> {
        if count < HDR {
            return Err(EINVAL);
        }
        if let Some(c) = &self.c {
            return self.read_c(c, buf, count);
        }
        let _reader = self.reader.lock();
        let mut done = 0usize;
        loop {
            let left = count - done;
            let mut q = self.q.lock();
            if q.head < q.events.len() {
                let head = q.head;
                let need = match &q.events[head] {
                    Some(ev) => HDR + ev.data.len(),
                    None => return Err(EINVAL),
                };
                if left < HDR {
                    break;
                }
                if need > left {
                    if done == 0 {
                        return Err(EINVAL);
                    }
                    break;
                }
                let Some(ev) = q.events[head].take() else {
                    return Err(EINVAL);
                };
                q.head += 1;
                drop(q);
                let hdr = uapi::iommufd_vevent_header {
                    flags: 0,
                    sequence: ev.sequence,
                };
                match write_record(buf, done, &hdr, &ev.data) {
                    Ok(n) => {
                        done += n;
                        let mut q = self.q.lock();
                        q.num_events = q.num_events.saturating_sub(1);
                        q.compact();
                    }
                    Err(e) => {
                        // Back where it was: only this reader takes from the head.
                        let mut q = self.q.lock();
                        q.head -= 1;
                        let h = q.head;
                        q.events[h] = Some(ev);
                        return if done == 0 { Err(e) } else { Ok(done) };
                    }
                }
            } else if let Some(sequence) = q.lost {
                if left < HDR {
                    break;
                }
                q.lost = None;
                drop(q);
                let hdr = uapi::iommufd_vevent_header {
                    flags: uapi::IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
                    sequence,
                };
                match write_record(buf, done, &hdr, &[]) {
                    Ok(n) => done += n,
                    Err(e) => {
                        // Put back unless a newer report already replaced it.
                        let mut q = self.q.lock();
                        if q.is_empty() {
                            q.lost = Some(sequence);
                        }
                        return if done == 0 { Err(e) } else { Ok(done) };
                    }
                }
            } else {
                break;
            }
        }
        Ok(done)
    }
}

/// Writes a header and its data at `buf + at`; returns the bytes written.
fn write_record(
    buf: usize,
    at: usize,
    hdr: &uapi::iommufd_vevent_header,
    data: &[u8],
) -> Result<usize> {
    let addr = buf.checked_add(at).ok_or(EFAULT)?;
    let len = HDR.checked_add(data.len()).ok_or(EFAULT)?;
    let mut w = UserSlice::new(UserPtr::from_addr(addr), len).writer();
    w.write(hdr)?;
    w.write_slice(data)?;
    Ok(len)
}

static FOPS: QueueFops<Veventq> = QueueFops::new();

/// Fills in the vEVENTQ fd's file operations.
pub(crate) fn init_statics(module: &'static ThisModule) {
    FOPS.init(module);
}

impl QueueFile for Veventq {
    const NAME: &'static CStr = c"[iommufd-viommu-event]";

    fn fops() -> &'static QueueFops<Self> {
        &FOPS
    }

    fn read(&self, buf: usize, count: usize) -> Result<usize> {
        Veventq::read(self, buf, count)
    }

    fn register_poll<'a>(&'a self, table: &PollTable<'a>) {
        match &self.c {
            Some(c) => c.register_poll(table),
            None => table.register(&self.wait),
        }
    }

    fn readable(&self) -> bool {
        match &self.c {
            Some(c) => c.readable(),
            None => !self.q.lock().is_empty(),
        }
    }
}

/// `IOMMU_VEVENTQ_ALLOC`: a queue for one event type of a vIOMMU, and its fd.
pub(crate) fn alloc_ioctl(ucmd: &mut Ucmd<'_>) -> Result {
    let mut cmd: uapi::iommu_veventq_alloc = ucmd.cmd()?;
    if cmd.flags != 0 || cmd.__reserved != 0 || cmd.type_ == uapi::IOMMU_VEVENTQ_TYPE_DEFAULT {
        return Err(errno::eopnotsupp());
    }
    if cmd.veventq_depth == 0 || cmd.veventq_depth > VEVENTQ_MAX_DEPTH {
        return Err(EINVAL);
    }
    let viommu = ucmd.ictx.objects.lock().get_viommu(cmd.viommu_id)?;
    // Held from the type check to the listing: one queue per type.
    let mut list = viommu.veventqs.lock();
    let taken = list.iter().any(|r| {
        // SAFETY: listed queues are alive (they unlist themselves under this lock).
        let ty = unsafe { (*r.0).queue_type };
        ty == cmd.type_
    });
    if taken {
        return Err(EEXIST);
    }
    list.reserve(1, GFP_KERNEL_ACCOUNT)?;
    let c = match viommu.ops().c_viommu() {
        Some(cv) => Some(CVeventq::new(cv, cmd.type_, cmd.veventq_depth)?),
        None => None,
    };
    let owner = Hold::new(viommu.arc().clone());
    // Once made, the value's drop unlists it (it is not listed yet) and the hold goes with it;
    // it takes the list lock, so every drop of it below comes after `list` is released. Unmade,
    // the hold and the C queue (unlisted: its free takes only the C rwsem, after this lock in the
    // order) go with the unused initializer, under the lock.
    let q = Arc::pin_init(
        try_pin_init!(Veventq {
            c,
            viommu: owner,
            queue_type: cmd.type_,
            depth: cmd.veventq_depth,
            q <- new_spinlock!(Queue {
                events: KVec::new(),
                head: 0,
                num_events: 0,
                sequence: 0,
                lost: None,
            }),
            reader <- new_mutex!(()),
            wait <- PollQueue::new(c"iommufd vevent", kernel::static_lock_class!()),
            users: Users::default(),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    let node = kernel::rbtree::RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT);
    let built = node.and_then(|node| {
        let reserved = ucmd.ictx.objects.lock().reserve(node)?;
        let fd = match FileDescriptorReservation::get_unused_fd_flags(O_CLOEXEC) {
            Ok(fd) => fd,
            Err(e) => {
                ucmd.ictx.objects.lock().abort(reserved);
                return Err(e);
            }
        };
        match queue_fd::make_file(ucmd, &q) {
            Ok(file) => Ok((reserved, fd, file)),
            Err(e) => {
                ucmd.ictx.objects.lock().abort(reserved);
                Err(e)
            }
        }
    });
    let (reserved, fd, file) = match built {
        Ok(b) => b,
        Err(e) => {
            drop(list);
            drop(q);
            return Err(e);
        }
    };
    cmd.out_veventq_id = reserved.id;
    cmd.out_veventq_fd = fd.reserved_fd();
    if let Err(e) = ucmd.respond(&cmd) {
        ucmd.ictx.objects.lock().abort(reserved);
        drop(list);
        // Dropping the file runs release, which lets go of the queue.
        drop(file);
        drop(q);
        return Err(e);
    }
    // Room was reserved above. The C queue is listed under the same lock, after the check.
    if list
        .push_within_capacity(VeventqRef(&raw const *q))
        .is_err()
    {
        ucmd.ictx.objects.lock().abort(reserved);
        drop(list);
        drop(file);
        drop(q);
        return Err(ENOMEM);
    }
    if let Some(c) = &q.c {
        c.list();
    }
    drop(list);
    ucmd.ictx
        .objects
        .lock()
        .finalize(reserved, Object::Veventq(q));
    fd.fd_install(file);
    Ok(())
}
