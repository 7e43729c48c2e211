// SPDX-License-Identifier: GPL-2.0
//! Event queues (upstream's eventq.c): the fault queue of I/O page faults, the vEVENTQ of a
//! vIOMMU, and the anonymous file both are read through.

pub(crate) mod fault;
pub(crate) mod queue_fd;
pub(crate) mod veventq;
