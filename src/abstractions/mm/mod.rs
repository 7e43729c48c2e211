// SPDX-License-Identifier: GPL-2.0
//! User memory: pinning pages and folios for DMA, the RLIMIT_MEMLOCK / locked_vm accounting of
//! a pin, the task and mm a pin is charged to, and the files (memfd, shmem, hugetlbfs) behind a
//! mapping.
