// SPDX-License-Identifier: GPL-2.0
//! User memory: pinning pages and folios for DMA, the RLIMIT_MEMLOCK / locked_vm accounting of
//! a pin, the task and mm a pin is charged to, and the files (memfd, shmem, hugetlbfs) behind a
//! mapping.
//!
//! - [`pin`]: FOLL_PIN pins of user pages (`pin_user_pages_fast()`/`_remote()`) and of a memfd's
//!   folios (`memfd_pin_folios()`), handed to the caller as PFNs; unpinning them; copying
//!   through a pinned page.
//! - [`account`]: `user_struct` references, `mm->locked_vm`/`pinned_vm`, the task whose
//!   RLIMIT_MEMLOCK judges a charge, `CAP_IPC_LOCK`.
//! - [`file`]: the facts of a file mapped for DMA (mode, seals, writable-mapping count).

pub(crate) mod account;
pub(crate) mod file;
pub(crate) mod pin;

/// `cond_resched()`: a long loop driven by userspace gives the CPU up where it has to (kernels
/// without full preemption). Callers are in process context with no spinlock held, the only
/// context this module loops in.
#[inline]
pub(crate) fn cond_resched() {
    // SAFETY: `cond_resched()` may be called from any sleepable context; in atomic context it
    // only complains (and the module never loops under a spinlock).
    unsafe { crate::ffi::shim::iommufd_rs_cond_resched() };
}
